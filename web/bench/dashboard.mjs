// The dashboard's figures on a large fleet (bench/dashboard.sh prepares the server): with
// 100,000 devices and 50 rollouts in aloftd's database, in Debian's headless Chromium,
//   1. the overview's first meaningful paint: from navigation to the fleet's counts on screen
//      (and to the whole page: charts and rollouts), over RUNS loads;
//   2. a device-list page: the API's answer for a page of 50 at offsets across the fleet, and
//      the page in the browser from the click on "next" to the new rows;
//   3. a live update's latency: a rollout paused / resumed through the API until the open page
//      shows it, p50 and p95 over UPDATES changes;
//   4. aloftd's CPU with IDLE open dashboards (signed in, on the overview, nothing changing),
//      against none, over WINDOW seconds each.
//
// Usage: node bench/dashboard.mjs BASE_URL ADMIN_TOKEN ALOFTD_PID
import { readFileSync } from 'node:fs';
import { launch, password } from '../test/harness.mjs';

const [base, admin, pidText] = process.argv.slice(2);
const pid = Number(pidText);
const RUNS = Number(process.env.RUNS ?? 7);
const UPDATES = Number(process.env.UPDATES ?? 20);
const IDLE = Number(process.env.IDLE ?? 50);
const WINDOW = Number(process.env.WINDOW ?? 30);

const api = async (method, path, body) => {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${admin}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
};
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const ms = (x) => `${x.toFixed(0)} ms`;
const cpuTicks = () => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 per second)
};
async function cpuShare(seconds) {
  const t0 = cpuTicks();
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return (cpuTicks() - t0) / 100 / ((Date.now() - w0) / 1000);
}

const browser = await launch();
async function signedIn() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const res = await context.request.post(`${base}/api/v1/session`, { data: { user: 'bench', password } });
  if (!res.ok()) throw new Error(`sign-in: ${res.status()}`);
  return context;
}

const rows = [];
const stats = await api('GET', '/api/v1/stats');
const rollouts = await api('GET', '/api/v1/rollouts');
console.log(`fleet: ${stats.devices} devices, ${rollouts.length} rollouts, ${Object.values(stats.actions_by_state).reduce((a, b) => a + b, 0)} actions`);

// 1. The overview.
{
  const context = await signedIn();
  const page = await context.newPage();
  const counts = [];
  const whole = [];
  for (let i = 0; i < RUNS + 1; i++) {
    await page.goto(`${base}/`, { waitUntil: 'commit' });
    await page.locator('.tile-value').first().waitFor();
    const c = await page.evaluate(() => performance.now());
    await page.locator('.chart canvas').first().waitFor();
    await page.locator('.waves li').first().waitFor();
    const w = await page.evaluate(() => performance.now());
    if (i > 0) {
      counts.push(c); // the first load fills caches: not counted
      whole.push(w);
    }
  }
  rows.push(['overview: counts on screen (first meaningful paint), median', ms(pct(counts, 0.5)), '< 1000 ms']);
  rows.push(['overview: counts on screen, worst of ' + RUNS, ms(Math.max(...counts)), '']);
  rows.push(['overview: charts and rollouts too, median', ms(pct(whole, 0.5)), '']);
  await context.close();
}

// 2. The device list.
{
  const apiTimes = [];
  for (const offset of [0, 25_000, 50_000, 75_000, 99_950]) {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await api('GET', `/api/v1/devices?limit=50&offset=${offset}`);
      apiTimes.push(performance.now() - t0);
    }
  }
  const filtered = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await api('GET', `/api/v1/devices?limit=50&offset=0&group=g07&version=1.1.0`);
    filtered.push(performance.now() - t0);
  }
  const context = await signedIn();
  const page = await context.newPage();
  await page.goto(`${base}/devices?offset=50000`);
  await page.locator('table tbody tr').first().waitFor();
  const clicks = [];
  for (let i = 0; i < 5; i++) {
    const first = await page.locator('table tbody tr td').first().textContent();
    const t0 = performance.now();
    await page.getByRole('button', { name: /Next page/ }).click();
    await page.waitForFunction((prev) => document.querySelector('table tbody tr td')?.textContent !== prev, first);
    clicks.push(performance.now() - t0);
  }
  rows.push(['device list: API page of 50 (offsets 0 .. 99,950), median', ms(pct(apiTimes, 0.5)), '']);
  rows.push(['device list: API page of 50, worst', ms(Math.max(...apiTimes)), '']);
  rows.push(['device list: API page, group and version filter, median', ms(pct(filtered, 0.5)), '']);
  rows.push(['device list: "next page" click to new rows in the browser, median', ms(pct(clicks, 0.5)), '< 300 ms']);
  rows.push(['device list: "next page" in the browser, worst of 5', ms(Math.max(...clicks)), '']);
  await context.close();
}

// 3. A live update's latency.
{
  const name = rollouts.find((r) => r.state === 'running')?.name;
  if (!name) throw new Error('no running rollout to pause');
  const context = await signedIn();
  const page = await context.newPage();
  await page.goto(`${base}/rollouts/${name}`);
  await page.locator('h1 .badge').waitFor();
  const lat = [];
  for (let i = 0; i < UPDATES; i++) {
    const verb = i % 2 ? 'resume' : 'pause';
    const want = i % 2 ? 'running' : 'paused';
    const t0 = performance.now();
    await api('POST', `/api/v1/rollouts/${name}/${verb}`);
    await page.locator('h1 .badge', { hasText: want }).waitFor({ timeout: 10_000 });
    lat.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 500)); // not in step with the feed
  }
  if (UPDATES % 2) await api('POST', `/api/v1/rollouts/${name}/resume`);
  rows.push([`live update: API change to the open page showing it, p50 (${UPDATES} changes)`, ms(pct(lat, 0.5)), '']);
  rows.push(['live update: p95', ms(pct(lat, 0.95)), '< 2000 ms']);
  await context.close();
}

// 4. aloftd's CPU with idle open dashboards.
{
  const none = await cpuShare(WINDOW);
  const contexts = [];
  for (let i = 0; i < IDLE; i++) {
    const context = await signedIn();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.locator('.tile-value').first().waitFor();
    contexts.push(context);
  }
  const connected = (await (await fetch(`${base}/metrics`)).text()).match(/^aloft_http_connections (\d+)/m)?.[1];
  await new Promise((r) => setTimeout(r, 3000)); // the pages' first fetches are over
  const open = await cpuShare(WINDOW);
  rows.push([`aloftd CPU, no dashboard open (${WINDOW} s)`, `${(100 * none).toFixed(2)} % of a core`, '']);
  rows.push([`aloftd CPU, ${IDLE} idle dashboards open (${WINDOW} s; ${connected} connections)`, `${(100 * open).toFixed(2)} % of a core`, '< 2 %']);
  rows.push([`aloftd CPU: what the ${IDLE} dashboards add`, `${(100 * (open - none)).toFixed(2)} % of a core`, '']);
  for (const c of contexts) await c.close();
}
await browser.close();

const w = Math.max(...rows.map((r) => r[0].length));
const v = Math.max(...rows.map((r) => r[1].length));
console.log(`\n${'figure'.padEnd(w)}  ${'measured'.padStart(v)}  goal`);
console.log(`${'-'.repeat(w)}  ${'-'.repeat(v)}  ----`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w)}  ${b.padStart(v)}  ${c}`);
