// The demo's devices (tools/demo.mjs): for a minute, a few each second check in, download and
// report on their action; one in ten fails its health check and rolls back.
//
// Usage: node tools/demo-devices.mjs DEVICES_JSON   ({"base", "tokens": {name: token}})
import { readFileSync } from 'node:fs';

const { base, tokens } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
async function post(name, token, path, json) {
  const res = await fetch(`${base}/device/v1/${encodeURIComponent(name)}/${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(json),
  });
  return res.ok ? res.json().catch(() => null) : null;
}
const started = Date.now();
const done = new Set();
while (Date.now() - started < 60_000) {
  let moved = 0;
  for (const [name, token] of Object.entries(tokens)) {
    if (done.has(name)) continue;
    const i = Number(name.slice(-3)) || 0;
    const r = await post(name, token, 'check-in', { versions: { main: i % 4 ? '1.0.0' : '1.1.0', bms: '1.0.0' } }).catch(() => null);
    const id = r?.action?.id;
    if (!id) continue;
    await post(name, token, `actions/${id}/feedback`, { status: 'downloading', progress: 100 }).catch(() => null);
    const failed = i % 10 === 7;
    await post(name, token, `actions/${id}/feedback`, failed ? { status: 'failure', details: 'health check failed; rolled back: running 1.0.0' } : { status: 'success', details: 'rebooted into 1.3.0' }).catch(() => null);
    if (!failed) await post(name, token, 'check-in', { versions: { main: '1.3.0', bms: '1.3.0' } }).catch(() => null);
    done.add(name);
    if (++moved >= 2) break;
  }
  await new Promise((r) => setTimeout(r, 1000));
}
