// The dashboard demo (scripts/dashboard_demo.sh): aloftd on a demo fleet (devices of a board on
// several versions, a failure that rolled back, a vehicle with 14 ECUs, rollouts), left running
// with the dashboard at its address, and a user to sign in with. Then devices of the running
// rollout check in and report, a few each second for a minute, so that the open pages move.
//
// Usage: node tools/demo.mjs WORK_DIRECTORY [PORT]
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Server, freePort } from '../test/harness.mjs';

const work = resolve(process.argv[2] ?? 'demo-work/dashboard');
mkdirSync(work, { recursive: true });
const server = new Server(work);
const wanted = Number(process.argv[3] ?? 8080);
const port = await (async () => {
  const net = await import('node:net');
  const free = (p) =>
    new Promise((ok) => {
      const s = net.createServer();
      s.once('error', () => ok(false));
      s.listen(p, '127.0.0.1', () => s.close(() => ok(true)));
    });
  for (let p = wanted; p < wanted + 50; p++) if (await free(p)) return p;
  return freePort();
})();
await server.start({ port, detached: true });
await server.seed({ devices: 60 });
const pw = randomBytes(9).toString('base64url');
await server.user('operator', 'admin', pw);
await server.user('viewer', 'viewer', pw);
writeFileSync(join(work, 'sign-in.txt'), `${server.base}\nuser: operator (admin) or viewer (viewer)\npassword: ${pw}\n`, { mode: 0o600 });
writeFileSync(join(work, 'aloftd.pid'), `${server.proc.pid}\n`);
console.log(`dashboard: ${server.base}/`);
console.log(`sign in:   user operator (admin) or viewer (viewer), password ${pw}`);
console.log(`           (also in ${join(work, 'sign-in.txt')}; stop it with: kill $(cat ${join(work, 'aloftd.pid')}))`);

// The rollout 'spring' moves: its devices check in, download and report, one in ten fails.
const started = Date.now();
while (Date.now() - started < 60_000) {
  let moved = 0;
  for (const [name, token] of Object.entries(server.tokens)) {
    const r = await server.device(name, token, { path: 'check-in', json: { versions: { main: '1.0.0', bms: '1.0.0' } } }).catch(() => null);
    const id = r?.action?.id;
    if (!id) continue;
    const fb = (json) => server.device(name, token, { path: `actions/${id}/feedback`, json }).catch(() => null);
    await fb({ status: 'downloading', progress: 100 });
    const n = Number(name.slice(-3));
    await fb(n % 10 === 7 ? { status: 'failure', details: 'health check failed; rolled back: running 1.0.0' } : { status: 'success', details: 'rebooted into 1.3.0' });
    if (++moved >= 3) break;
  }
  await new Promise((r) => setTimeout(r, 1000));
}
console.log('dashboard: the demo devices finished; aloftd keeps running');
