import { useState } from 'preact/hooks';
import { enc, query } from '../api.js';
import { t, fmtAgo, fmtTime } from '../i18n.js';
import { useLive } from '../live.js';
import { Badge, ErrorBox, Link, Loading, Pager, Table, navigate, useFetch, useForm, useLocation } from '../components.jsx';

const kPage = 50;
const filterKeys = ['q', 'type', 'group', 'tag', 'version', 'state', 'seen'];

function Filters({ params, types }) {
  const [draft, set] = useForm(() => Object.fromEntries(filterKeys.map((k) => [k, params.get(k) ?? ''])));
  const apply = (e) => {
    e.preventDefault();
    navigate(`/devices${query(draft)}`);
  };
  return (
    <form class="filters" onSubmit={apply} role="search" aria-label={t('devices.title')}>
      <label>
        {t('devices.search')}
        <input name="q" value={draft.q} onInput={set('q')} />
      </label>
      <label>
        {t('devices.type')}
        <select name="type" value={draft.type} onChange={set('type')}>
          <option value="">{t('all')}</option>
          {(types ?? []).map((ty) => (
            <option key={ty.name} value={ty.name}>
              {ty.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('devices.group')}
        <input name="group" value={draft.group} onInput={set('group')} />
      </label>
      <label>
        {t('devices.tag')}
        <input name="tag" value={draft.tag} onInput={set('tag')} />
      </label>
      <label>
        {t('devices.version')}
        <input name="version" value={draft.version} onInput={set('version')} />
      </label>
      <label>
        {t('devices.state')}
        <select name="state" value={draft.state} onChange={set('state')}>
          <option value="">{t('all')}</option>
          {['idle', 'updating', 'failing', 'never-seen'].map((s) => (
            <option key={s} value={s}>
              {t(`state.${s === 'failing' ? 'failed' : s}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('devices.seen_within')}
        <select name="seen" value={draft.seen} onChange={set('seen')}>
          <option value="">{t('devices.any')}</option>
          <option value="3600">{t('devices.hour')}</option>
          <option value="86400">{t('devices.day')}</option>
          <option value="604800">{t('devices.week')}</option>
        </select>
      </label>
      <button type="submit" class="primary">
        {t('search')}
      </button>
    </form>
  );
}

function versionsText(v) {
  const e = Object.entries(v ?? {});
  const shown = e.slice(0, 3).map(([m, ver]) => `${m} ${ver}`).join(', ');
  return e.length > 3 ? `${shown} … (+${e.length - 3})` : shown;
}

export function Devices() {
  const { params } = useLocation();
  const offset = Number(params.get('offset') ?? 0) || 0;
  const apiQuery = query({
    q: params.get('q'),
    type: params.get('type'),
    group: params.get('group'),
    tag: params.get('tag'),
    version: params.get('version'),
    state: params.get('state'),
    seen_within_s: params.get('seen'),
    limit: kPage,
    offset,
  });
  const [version, setVersion] = useState(0);
  const list = useFetch(`/api/v1/devices${apiQuery}`, version);
  const types = useFetch('/api/v1/device-types');
  useLive(['devices', 'actions'], () => setVersion((v) => v + 1), { minMs: 5000 });
  const page = (o) => {
    const p = new URLSearchParams(params);
    p.set('offset', String(o));
    navigate(`/devices?${p}`);
  };
  return (
    <>
      <h1>{t('devices.title')}</h1>
      <Filters key={location.search} params={params} types={types.data} />
      <ErrorBox error={list.error} />
      <Loading when={!list.data && list.loading} />
      {list.data ? (
        <>
          <Table
            caption={t('devices.title')}
            empty={t('devices.none_found')}
            columns={[
              { key: 'name', label: t('devices.name'), render: (d) => <Link href={`/devices/${enc(d.name)}`}>{d.name}</Link> },
              { key: 'device_type', label: t('devices.type') },
              { key: 'group', label: t('devices.group'), render: (d) => d.group ?? '' },
              { key: 'tags', label: t('devices.tag'), render: (d) => (d.tags ?? []).join(', ') },
              { key: 'versions', label: t('devices.versions'), render: (d) => versionsText(d.versions) },
              { key: 'last_seen', label: t('devices.last_seen'), render: (d) => <time dateTime={d.last_seen ?? ''} title={fmtTime(d.last_seen)}>{fmtAgo(d.last_seen)}</time> },
            ]}
            rows={list.data.items.map((d) => ({ ...d, key: d.name }))}
          />
          <Pager offset={offset} limit={kPage} total={list.data.total} onPage={page} />
        </>
      ) : null}
    </>
  );
}

const rollbackPattern = /rolled back|went back|all-old|rollback/i;

function History({ actions }) {
  return (
    <ol class="history">
      {actions.map((a) => {
        const rolledBack = a.state === 'failed' && (a.events ?? []).some((e) => rollbackPattern.test(e.details ?? ''));
        return (
          <li key={a.id} class="card" data-action={a.id}>
            <h3>
              {t('action.id')} {a.id} · {a.release} <Badge state={rolledBack ? 'rolled-back' : a.state} label={rolledBack ? t('device.rolled_back') : undefined} />
            </h3>
            <p class="muted">
              {t('action.created_by')} {a.created_by} · <time dateTime={a.updated}>{fmtTime(a.updated)}</time>
            </p>
            {(a.events ?? []).length ? (
              <table class="events">
                <caption class="sr-only">{t('device.feedback')}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t('action.updated')}</th>
                    <th scope="col">{t('action.state')}</th>
                    <th scope="col">{t('device.feedback')}</th>
                  </tr>
                </thead>
                <tbody>
                  {a.events.map((e, i) => (
                    <tr key={i}>
                      <td>{fmtTime(e.at)}</td>
                      <td>
                        {e.status}
                        {e.progress != null ? ` ${e.progress} %` : ''}
                      </td>
                      <td class="feedback">{e.details}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}

export function DeviceDetail({ name }) {
  const [version, setVersion] = useState(0);
  const device = useFetch(`/api/v1/devices/${enc(name)}`, version);
  const actions = useFetch(`/api/v1/devices/${enc(name)}/actions?events=1&limit=20`, version);
  useLive(['actions'], () => setVersion((v) => v + 1), {
    minMs: 500,
    match: (k, d) => d.more || (d.devices ?? []).includes(name),
  });
  const d = device.data;
  const modules = Object.entries(d?.versions ?? {}).sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
  const vehicle = modules.length > 3;
  return (
    <>
      <h1>{t('device.title', { name })}</h1>
      <ErrorBox error={device.error} />
      <Loading when={!d && device.loading} />
      {d ? (
        <>
          <dl class="facts">
            <dt>{t('devices.type')}</dt>
            <dd>{d.device_type}</dd>
            <dt>{t('devices.group')}</dt>
            <dd>{d.group ?? '—'}</dd>
            <dt>{t('devices.tag')}</dt>
            <dd>{(d.tags ?? []).join(', ') || '—'}</dd>
            <dt>{t('devices.last_seen')}</dt>
            <dd>{fmtTime(d.last_seen)}</dd>
            <dt>{t('device.open_action')}</dt>
            <dd>{d.action ? `${d.action.id} · ${d.action.release} · ${d.action.state}` : '—'}</dd>
          </dl>
          <div class="two">
            <Table
              caption={vehicle ? t('device.ecus') : t('device.modules')}
              columns={[
                { key: 'module', label: t('device.module') },
                { key: 'version', label: t('devices.version') },
              ]}
              rows={modules.map(([module, v]) => ({ key: module, module, version: v }))}
            />
            <Table
              caption={t('device.attributes')}
              columns={[
                { key: 'k', label: t('device.key') },
                { key: 'v', label: t('device.value'), render: (r) => String(r.v) },
              ]}
              rows={Object.entries(d.attributes ?? {}).map(([k, v]) => ({ key: k, k, v }))}
            />
          </div>
        </>
      ) : null}
      <h2>{t('device.history')}</h2>
      <ErrorBox error={actions.error} />
      {actions.data ? <History actions={actions.data} /> : null}
    </>
  );
}
