// The dashboard demo (scripts/dashboard_demo.sh): aloftd on a demo fleet (devices of a board on
// several versions, a failure that rolled back, a vehicle with 14 ECUs, rollouts), left running
// with the dashboard at its address, and a user to sign in with. Then devices of the running
// rollout check in and report, a few each second for a minute (tools/demo-devices.mjs, in the
// background), so that the open pages move.
//
// Usage: node tools/demo.mjs WORK_DIRECTORY [PORT]
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

// The rollout 'spring' moves for a minute, in a process of its own so that the demo returns.
writeFileSync(join(work, 'devices.json'), JSON.stringify({ base: server.base, tokens: server.tokens }), { mode: 0o600 });
const mover = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'demo-devices.mjs'), join(work, 'devices.json')], {
  detached: true,
  stdio: 'ignore',
});
mover.unref();
console.log('           devices of the rollout "spring" report for the next minute: watch it move');
