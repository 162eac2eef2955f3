import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { t, fmtNum, fmtAgo } from '../i18n.js';
import { useLive } from '../live.js';
import { exportStats } from '../csv.js';
import { BarChart, Badge, ErrorBox, Link, Loading, Table, WaveBars, useFetch } from '../components.jsx';

const activeStates = ['running', 'paused', 'awaiting-approval', 'awaiting-confirmation', 'scheduled'];

function Tile({ label, value, href, tone }) {
  const body = (
    <>
      <span class="tile-value">{fmtNum(value)}</span>
      <span class="tile-label">{label}</span>
    </>
  );
  return <li class={`tile ${tone ?? ''}`}>{href ? <Link href={href}>{body}</Link> : body}</li>;
}

function ActiveRollouts() {
  const [version, setVersion] = useState(0);
  const list = useFetch('/api/v1/rollouts', version);
  const [statuses, setStatuses] = useState({});
  useLive(['rollout', 'actions'], () => setVersion((v) => v + 1), { minMs: 1000 });
  const active = (list.data ?? []).filter((r) => activeStates.includes(r.state)).slice(0, 8);
  useEffect(() => {
    let gone = false;
    Promise.all(active.map((r) => api('GET', `/api/v1/rollouts/${enc(r.name)}`).catch(() => null))).then((all) => {
      if (gone) return;
      const out = {};
      for (const s of all) if (s) out[s.name] = s;
      setStatuses(out);
    });
    return () => {
      gone = true;
    };
  }, [list.data]);
  return (
    <section aria-labelledby="active-rollouts">
      <h2 id="active-rollouts">{t('overview.active_rollouts')}</h2>
      <ErrorBox error={list.error} />
      {active.length === 0 && !list.loading ? <p class="muted">{t('overview.no_rollouts')}</p> : null}
      <ul class="cards">
        {active.map((r) => (
          <li class="card" key={r.name} data-rollout={r.name}>
            <h3>
              <Link href={`/rollouts/${enc(r.name)}`}>{r.name}</Link> <Badge state={r.state} />
            </h3>
            <p class="muted">
              {r.release} · {t('rollouts.wave')} {r.wave}/{r.waves.length}
            </p>
            {statuses[r.name] ? <WaveBars status={statuses[r.name]} /> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function RecentFailures() {
  const [version, setVersion] = useState(0);
  const failures = useFetch('/api/v1/actions?state=failed&limit=10', version);
  useLive(['actions'], () => setVersion((v) => v + 1), { minMs: 2000, match: (k, d) => d.states?.failed > 0 || d.more });
  return (
    <section aria-labelledby="recent-failures">
      <h2 id="recent-failures">{t('overview.recent_failures')}</h2>
      <ErrorBox error={failures.error} />
      <Table
        captionHidden
        caption={t('overview.recent_failures')}
        empty={t('overview.no_failures')}
        columns={[
          { key: 'device', label: t('devices.name'), render: (a) => <Link href={`/devices/${enc(a.device)}`}>{a.device}</Link> },
          { key: 'release', label: t('action.release') },
          { key: 'updated', label: t('action.updated'), render: (a) => fmtAgo(a.updated) },
        ]}
        rows={(failures.data ?? []).map((a) => ({ ...a, key: a.id }))}
      />
    </section>
  );
}

export function Overview() {
  const [version, setVersion] = useState(0);
  const stats = useFetch('/api/v1/stats', version);
  useLive(['actions', 'devices', 'releases'], () => setVersion((v) => v + 1), { minMs: 2000 });
  const s = stats.data;
  // A chart per module; a type of many modules (a vehicle's ECUs) is one table instead: ECU,
  // its versions and how many devices run each.
  const charts = [];
  const manyModules = [];
  if (s) {
    for (const [type, modules] of Object.entries(s.devices_by_version ?? {})) {
      const list = Object.entries(modules).sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
      if (list.length > 4) {
        manyModules.push({ type, rows: list.map(([module, versions]) => ({ key: module, module, versions })) });
        continue;
      }
      for (const [module, versions] of list) {
        const entries = Object.entries(versions).sort((a, b) => b[1] - a[1]).slice(0, 12);
        charts.push({ key: `${type}/${module}`, labels: entries.map((e) => e[0]), values: entries.map((e) => e[1]) });
      }
    }
  }
  return (
    <>
      <div class="title-row">
        <h1>{t('overview.title')}</h1>
        <button type="button" onClick={() => exportStats().catch((e) => alert(e.message))}>
          {t('audit.csv')}
        </button>
      </div>
      <ErrorBox error={stats.error} />
      <Loading when={!s && stats.loading} />
      {s ? (
        <ul class="tiles" aria-label={t('overview.title')}>
          <Tile label={t('overview.devices')} value={s.devices} href="/devices" />
          <Tile label={t('overview.seen_hour')} value={s.seen_last_hour} href="/devices?seen=3600" />
          <Tile label={t('overview.seen_day')} value={s.seen_last_day} href="/devices?seen=86400" />
          <Tile label={t('overview.failing')} value={s.failing} href="/devices?state=failing" tone={s.failing ? 'bad' : ''} />
          <Tile label={t('overview.releases')} value={s.releases} href="/releases" />
        </ul>
      ) : null}
      <ActiveRollouts />
      <section aria-labelledby="versions">
        <h2 id="versions">{t('overview.versions')}</h2>
        <div class="chart-grid">
          {charts.map((c) => (
            <div class="card" key={c.key}>
              <h3>{c.key}</h3>
              <BarChart label={`${t('overview.versions')}: ${c.key}`} labels={c.labels} values={c.values} height={180} />
            </div>
          ))}
        </div>
        {manyModules.map((m) => (
          <Table
            key={m.type}
            caption={m.type}
            columns={[
              { key: 'module', label: t('device.module') },
              {
                key: 'versions',
                label: t('devices.versions'),
                render: (r) =>
                  Object.entries(r.versions)
                    .sort((a, b) => b[1] - a[1])
                    .map(([v, n]) => `${v} (${fmtNum(n)})`)
                    .join(', '),
              },
            ]}
            rows={m.rows}
          />
        ))}
      </section>
      <RecentFailures />
    </>
  );
}
