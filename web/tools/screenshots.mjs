// The pictures in docs/dashboard.md: every screen of a seeded aloftd, taken in Debian's Chromium.
//
// Usage: node tools/screenshots.mjs OUT_DIR      (ALOFT_BUILD as for the tests)
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Server, launch, openPage } from '../test/harness.mjs';

const out = resolve(process.argv[2] ?? '../docs/dashboard');
mkdirSync(out, { recursive: true });
const server = new Server();
await server.start();
try {
  await server.seed({ devices: 60 });
  await server.user('ada', 'admin');
  await server.api('POST', '/api/v1/rollouts', { name: 'summer', release: 'fw@1.3.0', filter: { groups: ['lab'] }, approval: true });
  // The 'spring' rollout's first wave reports, one in five failing, over a few seconds.
  for (let i = 0; i < 50 && (await server.api('GET', '/api/v1/rollouts/spring')).devices === 0; i++) {
    await new Promise((r2) => setTimeout(r2, 200));
  }
  let n = 0;
  for (const [name, token] of Object.entries(server.tokens)) {
    const i = Number(name.slice(-3));
    const main = i % 4 ? '1.0.0' : '1.1.0';
    const r = await server.device(name, token, { path: 'check-in', json: { versions: { main, bms: '1.0.0' } } }).catch(() => null);
    const id = r?.action?.id;
    if (!id) continue;
    const fb = (json) => server.device(name, token, { path: `actions/${id}/feedback`, json });
    await fb({ status: 'downloading', progress: 100 });
    const failed = ++n % 5 === 0;
    await fb(failed ? { status: 'failure', details: 'health check failed; rolled back: running 1.0.0' } : { status: 'success', details: 'rebooted into 1.3.0' });
    if (!failed) await server.device(name, token, { path: 'check-in', json: { versions: { main: '1.3.0', bms: '1.3.0' } } });
    await new Promise((r2) => setTimeout(r2, 120));
  }
  const browser = await launch();
  const shots = [
    ['overview', '/', '.chart canvas'],
    ['devices', '/devices?group=field', 'table tbody tr'],
    ['device', '/devices/dev-002', '.history'],
    ['releases', '/releases', 'table tbody tr'],
    ['release', '/releases/fw/1.3.0', 'table tbody tr'],
    ['rollouts', '/rollouts', 'table tbody tr'],
    ['rollout', '/rollouts/spring', '.chart canvas'],
    ['rollout-create', '/rollouts/new', 'form'],
    ['approve', '/rollouts/summer', 'button[data-verb=approve]'],
    ['vehicles', '/vehicles', '[data-vehicle]'],
    ['audit', '/audit', 'table tbody tr'],
  ];
  for (const [locale, suffix] of [['en-US', ''], ['zh-CN', '-zh']]) {
    const page = await openPage(browser, server, { user: 'ada', locale, timezoneId: 'Europe/Berlin' });
    for (const [name, path, ready] of locale === 'en-US' ? shots : shots.slice(0, 1).concat(shots.slice(6, 7))) {
      await page.goto(server.base + path);
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(400);
      await page.screenshot({ path: join(out, `${name}${suffix}.png`), fullPage: true });
      console.log(`${name}${suffix}.png`);
    }
    await page.context().close();
  }
  const signin = await openPage(browser, server);
  await signin.screenshot({ path: join(out, 'sign-in.png') });
  await browser.close();
} finally {
  await server.stop();
}
