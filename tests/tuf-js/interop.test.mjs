// tuf-js (the npm port of python-tuf's ngclient, an independent TUF client) against aloftd's
// Image repository (docs/trust.md): the repository made offline with `aloft repo`, pushed to a
// real aloftd (this build's), refreshed by tuf-js from the root a device ships with, a target
// downloaded through the device API's credentials and checked by tuf-js; then two root rotations
// (new root and targets keys each time), after which both a client that kept its metadata and a
// client that still trusts only root 1 follow the chain and download the new target.
//
// Environment: ALOFT_BUILD (default ../../build/dev).
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

const here = dirname(fileURLToPath(import.meta.url));
const build = resolve(process.env.ALOFT_BUILD ?? join(here, '..', '..', 'build', 'dev'));
const aloftd = join(build, 'apps/aloftd/aloftd');
const aloftBin = join(build, 'apps/aloft/aloft');
const dir = mkdtempSync(join(tmpdir(), 'aloft-tuf-js-'));
const aloft = (...args) => execFileSync(aloftBin, ['-q', ...args], { cwd: dir, encoding: 'utf8' });
let proc, base, admin, deviceToken;

// tuf-js's fetcher with the device's token (targets are served to devices); errors as tuf-js's
// own, so that a 404 ends its search for the next root.
class DeviceFetcher extends BaseFetcher {
  constructor(token) {
    super();
    this.token = token;
    this.urls = [];
  }
  async fetch(url) {
    this.urls.push(url);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${this.token}` } });
    if (!res.ok || !res.body) throw new DownloadHTTPError(`GET ${url}: ${res.status}`, res.status);
    return Readable.fromWeb(res.body);
  }
}

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

async function api(method, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${admin}`, ...headers },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// A signed package fw@version, uploaded as a release; its path.
async function release(version) {
  const image = join(dir, `fw-${version}.bin`);
  writeFileSync(image, Buffer.alloc(70000, `firmware ${version} `));
  const out = join(dir, `fw-${version}.aloft`);
  aloft('pack', '--name', 'fw', '--version', version, '--hardware', 'board-a', '--key', 'keys/release.key', '--component', `main=${image}`, '-o', out);
  await api('POST', `/api/v1/releases?filename=fw-${version}.aloft`, readFileSync(out));
  return out;
}

function client(name) {
  const meta = join(dir, name, 'metadata');
  const targets = join(dir, name, 'targets');
  mkdirSync(meta, { recursive: true });
  mkdirSync(targets, { recursive: true });
  // The root the device shipped with: version 1, as `aloft repo` made it.
  copyFileSync(join(dir, 'repo/metadata/1.root.json'), join(meta, 'root.json'));
  return { meta, targets };
}

function updater(c, fetcher) {
  return new Updater({
    metadataDir: c.meta,
    metadataBaseUrl: `${base}/tuf/image`,
    targetDir: c.targets,
    targetBaseUrl: `${base}/tuf/image/targets`,
    fetcher,
  });
}

before(async () => {
  mkdirSync(join(dir, 'keys'));
  for (const k of ['release', 'root1', 'root2', 'targets1', 'snapshot', 'timestamp']) {
    aloft('keygen', '--out', `keys/${k}`);
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'aloftd.toml'),
    [
      `data_dir = "${join(dir, 'data')}"`,
      `listen = "127.0.0.1:${port}"`,
      `trust = ["${join(dir, 'keys/release.pub')}"]`,
      `tuf_snapshot_key = "${join(dir, 'keys/snapshot.key')}"`,
      `tuf_timestamp_key = "${join(dir, 'keys/timestamp.key')}"`,
      '',
    ].join('\n'),
  );
  let log = '';
  proc = spawn(aloftd, ['-c', join(dir, 'aloftd.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => (log += d));
  for (let i = 0; i < 200 && !log.includes('listening'); i++) {
    if (proc.exitCode !== null) throw new Error(`aloftd exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!log.includes('listening')) throw new Error(`aloftd did not start: ${log}`);
  admin = readFileSync(join(dir, 'data/admin.token'), 'utf8').trim();
  await api('POST', '/api/v1/device-types', JSON.stringify({ name: 'board-a' }), { 'Content-Type': 'application/json' });
  const dev = await api('POST', '/api/v1/devices', JSON.stringify({ name: 'dev-1', device_type: 'board-a' }), { 'Content-Type': 'application/json' });
  deviceToken = dev.token;
});

after(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

test('tuf-js refreshes the Image repository and downloads a target it verified', async () => {
  const pkg = await release('1.0.0');
  aloft('repo', 'init', 'repo', '--root-key', 'keys/root1.pub', '--root-key', 'keys/root2.pub', '--root-threshold', '2',
    '--targets-key', 'keys/targets1.pub', '--snapshot-key', 'keys/snapshot.pub', '--timestamp-key', 'keys/timestamp.pub');
  aloft('repo', 'sign', 'repo', '--key', 'keys/root1.key', '--key', 'keys/root2.key');
  aloft('repo', 'add', 'repo', pkg);
  aloft('repo', 'sign', 'repo', '--key', 'keys/targets1.key');
  aloft('repo', 'push', 'repo', '--url', base, '--token', admin);

  const c = client('device');
  const fetcher = new DeviceFetcher(deviceToken);
  const u = updater(c, fetcher);
  await u.refresh();
  const info = await u.getTargetInfo('fw/1.0.0.aloft');
  assert.ok(info, 'tuf-js found fw/1.0.0.aloft');
  assert.equal(info.length, readFileSync(pkg).length);
  assert.equal(info.custom.version, '1.0.0');
  const path = await u.downloadTarget(info, join(c.targets, 'fw-1.0.0.aloft'));
  assert.deepEqual(readFileSync(path), readFileSync(pkg));
  // Consistent snapshots: versioned metadata, a hash-prefixed target path.
  assert.ok(fetcher.urls.some((u2) => u2.endsWith('/tuf/image/1.snapshot.json')), fetcher.urls.join(' '));
  assert.ok(fetcher.urls.some((u2) => u2.includes(`/targets/fw/${info.hashes.sha256}.1.0.0.aloft`)), fetcher.urls.join(' '));
  assert.equal(await u.getTargetInfo('fw/9.9.9.aloft'), undefined);
});

test('tuf-js refuses a repository whose root it does not trust', async () => {
  const c = client('stranger');
  // A root of another repository (its own keys) in place of the one shipped.
  aloft('keygen', '--out', 'keys/other');
  aloft('repo', 'init', 'other', '--root-key', 'keys/other.pub', '--targets-key', 'keys/other.pub',
    '--snapshot-key', 'keys/other.pub', '--timestamp-key', 'keys/other.pub');
  aloft('repo', 'sign', 'other', '--key', 'keys/other.key');
  copyFileSync(join(dir, 'other/metadata/1.root.json'), join(c.meta, 'root.json'));
  await assert.rejects(updater(c, new DeviceFetcher(deviceToken)).refresh(), /timestamp was signed by 0\/1 keys/);
});

test('after two root rotations tuf-js follows the chain, kept metadata or only root 1', async () => {
  const kept = client('device'); // the first test's client, with what it trusted then
  const fresh = client('offline-since-root-1');
  const pkg = await release('1.1.0');
  let keys = ['root1', 'root2'];
  for (const gen of [2, 3]) {
    const next = [`root${gen}a`, `root${gen}b`];
    for (const k of [...next, `targets${gen}`]) aloft('keygen', '--out', `keys/${k}`);
    aloft('repo', 'rotate-root', 'repo', '--root-key', `keys/${next[0]}.pub`, '--root-key', `keys/${next[1]}.pub`,
      '--root-threshold', '2', '--targets-key', `keys/targets${gen}.pub`);
    for (const k of [...keys, ...next]) aloft('repo', 'sign', 'repo', '--key', `keys/${k}.key`);
    if (gen === 3) aloft('repo', 'add', 'repo', pkg);
    aloft('repo', 'sign', 'repo', '--key', `keys/targets${gen}.key`);
    aloft('repo', 'push', 'repo', '--url', base, '--token', admin);
    keys = next;
  }
  for (const c of [kept, fresh]) {
    const u = updater(c, new DeviceFetcher(deviceToken));
    await u.refresh();
    const root = JSON.parse(readFileSync(join(c.meta, 'root.json'), 'utf8'));
    assert.equal(root.signed.version, 3);
    const info = await u.getTargetInfo('fw/1.1.0.aloft');
    assert.ok(info, 'tuf-js found fw/1.1.0.aloft after the rotations');
    const path = await u.downloadTarget(info, join(c.targets, 'fw-1.1.0.aloft'));
    assert.deepEqual(readFileSync(path), readFileSync(pkg));
  }
});
