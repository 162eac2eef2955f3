// What the browser tests share (docs/dashboard.md): a real aloftd (the build's binary) on a fresh
// SQLite database in a temporary directory, seeded through its own API with a fleet, releases,
// devices that reported (some with hostile text in every field a page shows), a vehicle with 14
// ECUs, rollouts, and users of each role; and Debian's Chromium driven by playwright-core
// (executablePath: /usr/bin/chromium, never a downloaded browser), with axe-core for
// accessibility.
//
// Environment: ALOFT_BUILD (default ../build/dev), CHROMIUM (default /usr/bin/chromium).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const webRoot = resolve(here, '..');
export const build = resolve(process.env.ALOFT_BUILD ?? join(webRoot, '..', 'build', 'dev'));
export const aloftd = join(build, 'apps/aloftd/aloftd');
export const aloft = join(build, 'apps/aloft/aloft');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const password = 'correct horse battery';

// The text an attacker would put wherever the dashboard shows what devices and people wrote.
export const xss = '<img src=x onerror="window.__xss=1">"><script>window.__xss=1</script>';
// Where a field holds at most 64 characters (versions).
export const xssShort = '<img src=x onerror="window.__xss=1">';

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

export class Server {
  // `dir`: where its keys, database and packages go (default: a new temporary directory, removed
  // by stop()).
  constructor(dir) {
    this.temporary = !dir;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'aloft-web-'));
    this.proc = null;
    this.log = '';
  }

  // `detached`: aloftd outlives this process (the demo leaves it running), its log in DIR/aloftd.log.
  async start({ webDir = join(webRoot, 'dist'), extraArgs = [], port, detached = false } = {}) {
    for (const [what, path] of [['aloftd', aloftd], ['aloft', aloft], ['the dashboard (node build.mjs)', join(webDir, 'index.html')]]) {
      if (!existsSync(path)) throw new Error(`${what} not found at ${path} (set ALOFT_BUILD, build first)`);
    }
    if (!existsSync(join(this.dir, 'keys/release.key'))) {
      execFileSync(aloft, ['keygen', '--out', join(this.dir, 'keys/release')], { stdio: 'ignore' });
    }
    this.port = port ?? (await freePort());
    this.base = `http://127.0.0.1:${this.port}`;
    const args = ['--data', join(this.dir, 'data'), '--listen', `127.0.0.1:${this.port}`, '--trust', join(this.dir, 'keys/release.pub'), '--web', webDir, ...extraArgs];
    const logFile = join(this.dir, 'aloftd.log');
    if (detached) {
      const fd = openSync(logFile, 'w');
      this.proc = spawn(aloftd, args, { stdio: ['ignore', fd, fd], detached: true });
      this.proc.unref();
    } else {
      this.proc = spawn(aloftd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.proc.stderr.on('data', (d) => (this.log += d));
    }
    for (let i = 0; i < 100; i++) {
      if (detached) this.log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      if (this.log.includes('listening')) break;
      if (this.proc.exitCode !== null) throw new Error(`aloftd exited: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!this.log.includes('listening')) throw new Error(`aloftd did not start: ${this.log}`);
    this.admin = readFileSync(join(this.dir, 'data/admin.token'), 'utf8').trim();
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    if (this.temporary) rmSync(this.dir, { recursive: true, force: true });
  }

  // The API as the CLI uses it: a Bearer token (the admin's unless given).
  async api(method, path, body, token = this.admin) {
    const res = await fetch(this.base + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return data;
  }

  async device(name, token, body) {
    const res = await fetch(`${this.base}/device/v1/${encodeURIComponent(name)}/${body.path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body.json),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`device ${name} ${body.path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  // A signed package `name@version` for `hardware`, with one component per module; its path.
  pack(name, version, hardware, modules = ['main']) {
    const out = join(this.dir, `${name}-${version}.aloft`);
    const args = ['-q', 'pack', '--name', name, '--version', version, '--hardware', hardware, '--key', join(this.dir, 'keys/release.key'), '-o', out];
    for (const m of modules) {
      const file = join(this.dir, `${name}-${version}-${m}.bin`);
      writeFileSync(file, Buffer.alloc(4096 + modules.indexOf(m) * 512, `${name} ${version} ${m}`));
      args.push('--component', `${m}=${file}`);
    }
    execFileSync(aloft, args, { stdio: 'ignore' });
    return out;
  }

  // pack(), then uploaded through the API.
  async upload(name, version, hardware, modules = ['main']) {
    const out = this.pack(name, version, hardware, modules);
    const res = await fetch(`${this.base}/api/v1/releases?filename=${name}-${version}.aloft`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.admin}` },
      body: readFileSync(out),
    });
    if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
    return out;
  }

  // A fleet to look at: board-a devices on versions 1.0.0 and 1.1.0, one that failed and rolled
  // back, one whose every text field is an XSS probe, a vehicle with 14 ECUs, a running rollout.
  async seed({ devices = 24 } = {}) {
    await this.api('POST', '/api/v1/device-types', { name: 'board-a', modules: ['bms'] });
    await this.api('POST', '/api/v1/device-types', { name: 'demo-car', modules: Array.from({ length: 13 }, (_, i) => `ecu${i + 2}`) });
    await this.upload('fw', '1.2.0', 'board-a', ['main', 'bms']);
    await this.upload('fw', '1.3.0', 'board-a', ['main', 'bms']);
    this.tokens = {};
    for (let i = 1; i <= devices; i++) {
      const name = `dev-${String(i).padStart(3, '0')}`;
      const d = await this.api('POST', '/api/v1/devices', { name, device_type: 'board-a', group: i % 2 ? 'lab' : 'field', tags: i % 3 ? ['eu'] : ['us'] });
      this.tokens[name] = d.token;
      await this.device(name, d.token, { path: 'check-in', json: { versions: { main: i % 4 ? '1.0.0' : '1.1.0', bms: '1.0.0' }, attributes: { hw: `rev-${i % 3}` } } });
    }
    // The probe device: names, groups, tags and versions are plain (the API refuses markup in
    // them), but attributes and feedback are free text.
    const probe = await this.api('POST', '/api/v1/devices', { name: 'probe-1', device_type: 'board-a', group: 'probes' });
    this.tokens['probe-1'] = probe.token;
    await this.device('probe-1', probe.token, { path: 'check-in', json: { versions: { main: '1.0.0', bms: '1.0.0' }, attributes: { note: xss, label: xssShort } } });
    const dep = await this.api('POST', '/api/v1/deployments', { release: 'fw@1.2.0', devices: ['dev-001', 'dev-002', 'probe-1'] });
    const ids = Object.fromEntries(dep.actions.map((a) => [a.device, a.id]));
    const fb = (name, json) => this.device(name, this.tokens[name], { path: `actions/${ids[name]}/feedback`, json });
    await fb('dev-001', { status: 'downloading', progress: 50 });
    await fb('dev-001', { status: 'success', details: 'rebooted into 1.2.0' });
    await fb('dev-002', { status: 'installing' });
    await fb('dev-002', { status: 'failure', details: 'health check failed; rolled back: running 1.0.0' });
    await fb('probe-1', { status: 'failure', details: xss });
    // The vehicle, as aloft-vehicle reports it: a VIN and a version per ECU.
    const car = await this.api('POST', '/api/v1/devices', { name: 'car-001', device_type: 'demo-car' });
    this.tokens['car-001'] = car.token;
    const ecus = { main: '2026.11.0' };
    for (let i = 2; i <= 14; i++) ecus[`ecu${i}`] = `2026.11.${i}`;
    await this.device('car-001', car.token, { path: 'check-in', json: { versions: ecus, attributes: { vin: 'WDD2040081A123456' } } });
    await this.api('POST', '/api/v1/rollouts', { name: 'spring', release: 'fw@1.3.0', filter: { groups: ['field'] }, waves: [{ percent: 50 }, {}] });
  }

  // A user of `role` named `name`, with the harness's password unless given.
  async user(name, role, pw = password) {
    return this.api('POST', '/api/v1/users', { name, role, password: pw });
  }
}

export async function launch() {
  if (!existsSync(chromiumPath)) throw new Error(`no browser at ${chromiumPath}: install Debian's chromium (scripts/setup.sh)`);
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

// A page in a fresh context (cookies of its own) in `locale`, signed in as `user` when given.
export async function openPage(browser, server, { user, locale = 'en-US', timezoneId = 'Europe/Berlin' } = {}) {
  const context = await browser.newContext({ locale, timezoneId, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  // The browser logs every 4xx answer (a refused sign-in, the first "who am I?") as an error:
  // those are answers the pages handle, not errors of the pages.
  page.on('console', (m) => m.type() === 'error' && !/status of 4\d\d/.test(m.text()) && page.errors.push(m.text()));
  await page.goto(server.base + '/');
  if (user) {
    await page.getByLabel(/User name|用户名/).fill(user);
    await page.getByLabel(/^(Password|密码)$/).fill(password);
    await page.getByRole('button', { name: /^(Sign in|登录)$/ }).click();
    await page.getByTestId('who').waitFor();
  }
  return page;
}

const axeSource = readFileSync(join(webRoot, 'node_modules/axe-core/axe.min.js'), 'utf8');

// axe-core's serious and critical violations on the page as it is now (WCAG 2.1 A and AA).
export async function axe(page) {
  // Evaluated through the DevTools protocol: the page's CSP (no inline scripts) does not apply.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')}`);
}
