import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { t, fmtNum, fmtTime } from '../i18n.js';
import { useLive } from '../live.js';
import { can } from '../roles.js';
import { Badge, ErrorBox, Link, Loading, Table, TimeChart, WaveBars, inputValue, navigate, useFetch, useForm } from '../components.jsx';

export function Rollouts({ session }) {
  const [version, setVersion] = useState(0);
  const list = useFetch('/api/v1/rollouts', version);
  useLive(['rollout'], () => setVersion((v) => v + 1), { minMs: 500 });
  return (
    <>
      <h1>{t('rollouts.title')}</h1>
      {can(session, 'release') ? (
        <p>
          <Link href="/rollouts/new" class="button primary">
            {t('rollouts.new')}
          </Link>
        </p>
      ) : null}
      <ErrorBox error={list.error} />
      <Loading when={!list.data && list.loading} />
      <Table
        caption={t('rollouts.title')}
        columns={[
          { key: 'name', label: t('rollouts.name'), render: (r) => <Link href={`/rollouts/${enc(r.name)}`}>{r.name}</Link> },
          { key: 'release', label: t('rollouts.release') },
          { key: 'state', label: t('rollouts.state'), render: (r) => <Badge state={r.state} /> },
          { key: 'wave', label: t('rollouts.wave'), render: (r) => `${r.wave}/${r.waves.length}` },
          { key: 'created_by', label: t('rollouts.created_by') },
          { key: 'updated', label: t('action.updated'), render: (r) => fmtTime(r.updated) },
        ]}
        rows={[...(list.data ?? [])].reverse().map((r) => ({ ...r, key: r.name }))}
      />
    </>
  );
}

function Actions({ status, session, onChanged }) {
  const [remark, setRemark] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const s = status.state;
  const name = status.name;
  const act = async (verb) => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/api/v1/rollouts/${enc(name)}/${verb}`, remark ? { remark } : {});
      setRemark('');
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const buttons = [];
  if (s === 'awaiting-approval' && can(session, 'approver')) {
    buttons.push(['approve', 'rollout.approve', 'primary'], ['deny', 'rollout.deny', 'danger']);
  }
  if (can(session, 'release')) {
    if (['running', 'scheduled', 'awaiting-confirmation'].includes(s)) buttons.push(['pause', 'rollout.pause', '']);
    if (s === 'paused') buttons.push(['resume', 'rollout.resume', 'primary']);
    if (s === 'awaiting-confirmation') buttons.push(['confirm', 'rollout.confirm', 'primary']);
    if (!['completed', 'canceled', 'expired', 'failed'].includes(s)) buttons.push(['cancel', 'rollout.cancel', 'danger']);
  }
  if (buttons.length === 0) return null;
  return (
    <form class="card actions" onSubmit={(e) => e.preventDefault()} aria-label={t('rollout.title', { name })}>
      <label>
        {t('rollout.remark')}
        <input name="remark" maxLength={500} value={remark} onInput={(e) => setRemark(e.currentTarget.value)} />
      </label>
      <div class="buttons">
        {buttons.map(([verb, key, cls]) => (
          <button type="button" key={verb} class={cls} disabled={busy} onClick={() => act(verb)} data-verb={verb}>
            {t(key)}
          </button>
        ))}
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

function describeFilter(f) {
  const parts = [];
  if (f.device_type) parts.push(`${t('devices.type')}: ${f.device_type}`);
  if (f.groups?.length) parts.push(`${t('devices.group')}: ${f.groups.join(', ')}`);
  if (f.tags?.length) parts.push(`${t('devices.tag')}: ${f.tags.join(', ')}`);
  if (f.devices?.length) parts.push(`${t('nav.devices')}: ${f.devices.length}`);
  if (f.versions?.length) parts.push(`${t('devices.version')}: ${f.versions.join(', ')}`);
  return parts.join(' · ') || t('all');
}

export function RolloutDetail({ name, session }) {
  const [version, setVersion] = useState(0);
  const st = useFetch(`/api/v1/rollouts/${enc(name)}`, version);
  useLive(['rollout', 'actions'], () => setVersion((v) => v + 1), {
    minMs: 500,
    match: (k, d) => (k === 'rollout' ? d.name === name : d.more || (d.rollouts ?? []).includes(name)),
  });
  const s = st.data;
  // From zero at the start, then the server's steps.
  const tl = s?.timeline?.length ? [{ at: s.created, succeeded: 0, failed: 0 }, ...s.timeline] : [];
  return (
    <>
      <h1>
        {t('rollout.title', { name })} {s ? <Badge state={s.state} /> : null}
      </h1>
      <ErrorBox error={st.error} />
      <Loading when={!s && st.loading} />
      {s ? (
        <>
          <dl class="facts">
            <dt>{t('rollouts.release')}</dt>
            <dd>{s.release}</dd>
            <dt>{t('rollout.filter')}</dt>
            <dd>{describeFilter(s.filter)}</dd>
            <dt>{t('rollout.mode')}</dt>
            <dd>{t(`mode.${s.mode}`)}</dd>
            <dt>{t('rollouts.created_by')}</dt>
            <dd>
              {s.created_by} · {fmtTime(s.created)}
            </dd>
            {s.approved_by ? (
              <>
                <dt>{t('rollout.approved_by')}</dt>
                <dd data-testid="approved-by">{s.approved_by}</dd>
              </>
            ) : null}
            {s.reason ? (
              <>
                <dt>{t('rollout.reason')}</dt>
                <dd data-testid="reason">{s.reason}</dd>
              </>
            ) : null}
          </dl>
          <Actions status={s} session={session} onChanged={() => setVersion((v) => v + 1)} />
          <ul class="tiles">
            <li class="tile">
              <span class="tile-value">{fmtNum(s.devices)}</span>
              <span class="tile-label">{t('rollout.devices')}</span>
            </li>
            <li class="tile ok">
              <span class="tile-value" data-testid="succeeded">{fmtNum(s.succeeded)}</span>
              <span class="tile-label">{t('rollout.succeeded')}</span>
            </li>
            <li class={`tile ${s.failed ? 'bad' : ''}`}>
              <span class="tile-value" data-testid="failed">{fmtNum(s.failed)}</span>
              <span class="tile-label">{t('rollout.failed')}</span>
            </li>
          </ul>
          <h2>{t('rollout.waves')}</h2>
          <WaveBars status={s} />
          <Table
            caption={t('rollout.waves')}
            columns={[
              { key: 'wave', label: t('rollouts.wave') },
              { key: 'devices', label: t('rollout.devices'), num: true, render: (w) => fmtNum(w.devices) },
              { key: 'ok', label: t('rollout.succeeded'), num: true, render: (w) => fmtNum(w.states?.succeeded ?? 0) },
              { key: 'bad', label: t('rollout.failed'), num: true, render: (w) => fmtNum(w.states?.failed ?? 0) },
              // The server's rates are percentages already.
              { key: 'sr', label: t('rollout.success_rate'), num: true, render: (w) => `${fmtNum(Math.round(w.success_rate * 10) / 10)} %` },
              { key: 'er', label: t('rollout.error_rate'), num: true, render: (w) => `${fmtNum(Math.round(w.error_rate * 10) / 10)} %` },
              { key: 'th', label: '', render: (w) => t('rollout.thresholds', { s: w.success_threshold, e: w.error_threshold }) },
            ]}
            rows={s.waves.map((w) => ({ ...w, key: w.wave }))}
          />
          <h2>{t('rollout.over_time')}</h2>
          {tl.length ? (
            <TimeChart
              label={t('rollout.over_time')}
              times={tl.map((p) => new Date(p.at).getTime() / 1000)}
              series={[
                { label: t('rollout.succeeded'), values: tl.map((p) => p.succeeded) },
                { label: t('rollout.failed'), values: tl.map((p) => p.failed) },
              ]}
            />
          ) : (
            <p class="muted">{t('none')}</p>
          )}
        </>
      ) : null}
    </>
  );
}

const list = (text) =>
  text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function RolloutCreate({ session }) {
  const releases = useFetch('/api/v1/releases');
  const types = useFetch('/api/v1/device-types');
  const [f, set] = useForm({
    name: '',
    release: '',
    device_type: '',
    groups: '',
    tags: '',
    devices: '',
    mode: 'forced',
    approval: false,
    start_at: '',
    window: '',
    window_duration: '',
    time_zone: 'UTC',
  });
  const [waves, setWaves] = useState([{ size: '10%', success: 90, errors: 10, confirm: false }, { size: '', success: 90, errors: 10, confirm: true }]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!can(session, 'release')) return <p>403</p>;
  const setWave = (i, k) => (e) => {
    const next = [...waves];
    next[i] = { ...next[i], [k]: inputValue(e) };
    setWaves(next);
  };
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    // The body is exactly what `aloft server rollout create --file` sends; the server checks it
    // and answers with what is wrong, which is shown as it is.
    const filter = {};
    if (f.device_type) filter.device_type = f.device_type;
    if (list(f.groups).length) filter.groups = list(f.groups);
    if (list(f.tags).length) filter.tags = list(f.tags);
    if (list(f.devices).length) filter.devices = list(f.devices);
    const body = {
      name: f.name.trim(),
      release: f.release,
      filter,
      mode: f.mode,
      approval: f.approval,
      waves: waves.map((w) => {
        const out = { success_threshold: Number(w.success), error_threshold: Number(w.errors), confirm: w.confirm };
        const size = String(w.size).trim();
        if (size.endsWith('%')) out.percent = Number(size.slice(0, -1));
        else if (size) out.count = Number(size);
        return out;
      }),
    };
    if (f.start_at) body.start_at = new Date(f.start_at).toISOString();
    if (f.window) body.maintenance_window = { schedule: f.window, duration: f.window_duration || '01:00:00', time_zone: f.time_zone || 'UTC' };
    try {
      const r = await api('POST', '/api/v1/rollouts', body);
      navigate(`/rollouts/${enc(r.name)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h1>{t('create.title')}</h1>
      <form class="create card" onSubmit={submit}>
        <ErrorBox error={error} />
        <label>
          {t('create.name')}
          <input name="name" required value={f.name} onInput={set('name')} />
        </label>
        <label>
          {t('create.release')}
          <select name="release" required value={f.release} onChange={set('release')}>
            <option value="">{t('create.choose')}</option>
            {(releases.data ?? []).map((r) => (
              <option key={r.id} value={r.id}>
                {r.id}
              </option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>{t('rollout.filter')}</legend>
          <label>
            {t('create.device_type')}
            <select name="device_type" value={f.device_type} onChange={set('device_type')}>
              <option value="">{t('all')}</option>
              {(types.data ?? []).map((ty) => (
                <option key={ty.name} value={ty.name}>
                  {ty.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('create.groups')}
            <input name="groups" value={f.groups} onInput={set('groups')} />
          </label>
          <label>
            {t('create.tags')}
            <input name="tags" value={f.tags} onInput={set('tags')} />
          </label>
          <label>
            {t('create.devices')}
            <input name="devices" value={f.devices} onInput={set('devices')} />
          </label>
        </fieldset>
        <fieldset>
          <legend>{t('create.waves')}</legend>
          <ol class="wave-list">
            {waves.map((w, i) => (
              <li key={i}>
                <fieldset>
                  <legend>{t('rollout.wave_n', { n: i + 1 })}</legend>
                  <label>
                    {t('create.wave_size')}
                    <input name={`wave-${i}-size`} value={w.size} onInput={setWave(i, 'size')} />
                  </label>
                  <label>
                    {t('create.success')}
                    <input name={`wave-${i}-success`} type="number" min="0" max="100" value={w.success} onInput={setWave(i, 'success')} />
                  </label>
                  <label>
                    {t('create.errors')}
                    <input name={`wave-${i}-errors`} type="number" min="0" max="100" value={w.errors} onInput={setWave(i, 'errors')} />
                  </label>
                  <label class="check">
                    <input name={`wave-${i}-confirm`} type="checkbox" checked={w.confirm} onChange={setWave(i, 'confirm')} />
                    {t('create.confirm_wave')}
                  </label>
                  {waves.length > 1 ? (
                    <button type="button" onClick={() => setWaves(waves.filter((_, j) => j !== i))}>
                      {t('create.remove_wave', { n: i + 1 })}
                    </button>
                  ) : null}
                </fieldset>
              </li>
            ))}
          </ol>
          <button type="button" onClick={() => setWaves([...waves, { size: '', success: 90, errors: 10, confirm: false }])}>
            {t('create.add_wave')}
          </button>
        </fieldset>
        <label>
          {t('create.mode')}
          <select name="mode" value={f.mode} onChange={set('mode')}>
            {['forced', 'soft', 'download-only'].map((m) => (
              <option key={m} value={m}>
                {t(`mode.${m}`)}
              </option>
            ))}
          </select>
        </label>
        <label class="check">
          <input name="approval" type="checkbox" checked={f.approval} onChange={set('approval')} />
          {t('create.approval')}
        </label>
        <label>
          {t('create.start_at')}
          <input name="start_at" type="datetime-local" value={f.start_at} onInput={set('start_at')} />
        </label>
        <fieldset>
          <legend>{t('create.window')}</legend>
          <label>
            {t('create.window')}
            <input name="window" value={f.window} onInput={set('window')} placeholder="0 2 * * *" />
          </label>
          <label>
            {t('create.window_duration')}
            <input name="window_duration" value={f.window_duration} onInput={set('window_duration')} placeholder="02:00:00" />
          </label>
          <label>
            {t('create.time_zone')}
            <input name="time_zone" value={f.time_zone} onInput={set('time_zone')} />
          </label>
        </fieldset>
        <button type="submit" class="primary" disabled={busy}>
          {t('create.submit')}
        </button>
      </form>
    </>
  );
}
