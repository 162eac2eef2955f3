import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { useLive } from '../live.js';
import { can } from '../main.jsx';
import { ErrorBox, Loading, Pager, Table, useFetch } from '../components.jsx';

const kPage = 50;

function csvCell(v) {
  const s = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // A cell a spreadsheet would run as a formula is quoted as text.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function toCsv(header, rows) {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function exportStats() {
  const s = await api('GET', '/api/v1/stats');
  const rows = [];
  for (const [type, n] of Object.entries(s.devices_by_type ?? {})) rows.push(['devices_by_type', type, '', '', n]);
  for (const [type, modules] of Object.entries(s.devices_by_version ?? {})) {
    for (const [module, versions] of Object.entries(modules)) {
      for (const [version, n] of Object.entries(versions)) rows.push(['devices_by_version', type, module, version, n]);
    }
  }
  for (const [state, n] of Object.entries(s.devices_by_state ?? {})) rows.push(['devices_by_state', state, '', '', n]);
  for (const [state, n] of Object.entries(s.actions_by_state ?? {})) rows.push(['actions_by_state', state, '', '', n]);
  const rollouts = await api('GET', '/api/v1/rollouts');
  for (const r of rollouts) {
    const st = await api('GET', `/api/v1/rollouts/${encodeURIComponent(r.name)}`);
    rows.push(['rollout', r.name, r.release, st.state, st.devices, st.succeeded, st.failed, st.downloads, st.download_bytes, st.bytes_saved]);
  }
  download(
    `aloft-stats-${new Date().toISOString().slice(0, 19).replaceAll(':', '')}.csv`,
    toCsv(['kind', 'key', 'module_or_release', 'version_or_state', 'devices', 'succeeded', 'failed', 'downloads', 'download_bytes', 'bytes_saved'], rows),
  );
}

export function Audit({ session }) {
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const admin = can(session, 'admin');
  const list = useFetch(admin ? `/api/v1/audit?limit=${kPage}&offset=${offset}` : null, version);
  const [error, setError] = useState(null);
  useLive(['audit'], () => offset === 0 && setVersion((v) => v + 1));
  const exportAudit = async () => {
    const all = [];
    for (let o = 0; ; o += 1000) {
      const page = await api('GET', `/api/v1/audit?limit=1000&offset=${o}`);
      all.push(...page);
      if (page.length < 1000) break;
    }
    download('aloft-audit.csv', toCsv(['at', 'actor', 'action', 'object', 'details'], all.map((e) => [e.at, e.actor, e.action, e.object, e.details])));
  };
  const run = (fn) => () => fn().catch(setError);
  return (
    <>
      <h1>{t('audit.title')}</h1>
      <p class="buttons">
        <button type="button" onClick={run(exportStats)}>
          {t('audit.csv')}
        </button>
        {admin ? (
          <button type="button" onClick={run(exportAudit)}>
            {t('audit.csv_audit')}
          </button>
        ) : null}
      </p>
      <ErrorBox error={error ?? list.error} />
      {!admin ? <p class="muted">{t('audit.admin_only')}</p> : null}
      <Loading when={admin && !list.data && list.loading} />
      {list.data ? (
        <>
          <Table
            caption={t('audit.title')}
            columns={[
              { key: 'at', label: t('audit.at'), render: (e) => <time dateTime={e.at}>{fmtTime(e.at)}</time> },
              { key: 'actor', label: t('audit.actor') },
              { key: 'action', label: t('audit.action') },
              { key: 'object', label: t('audit.object') },
            ]}
            rows={list.data.map((e) => ({ ...e, key: e.id }))}
          />
          <Pager offset={offset} limit={kPage} total={offset + list.data.length + (list.data.length === kPage ? 1 : 0)} onPage={setOffset} />
        </>
      ) : null}
    </>
  );
}
