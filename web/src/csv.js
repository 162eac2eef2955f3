// CSV exports (docs/dashboard.md): RFC 4180 quoting, and a cell a spreadsheet would run as a
// formula kept as text.
import { api } from './api.js';

function csvCell(v) {
  const s = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // A cell a spreadsheet would run as a formula is quoted as text.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function toCsv(header, rows) {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export function download(name, text) {
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

