// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// aloftd with data (docs/dashboard.md): sign-in, every screen (each checked by axe-core: no
// serious or critical violation), a rollout created, approved and paused from the pages, a live
// update arriving while a page is open, what a viewer is not offered, the Chinese UI, hostile
// text rendered as text, CSRF refused.
//
// Run: node --test test/   (ALOFT_BUILD=build dir, default ../build/dev)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, openPage, axe, xss } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = new Server();
  await server.start();
  await server.seed();
  await server.user('ada', 'admin');
  await server.user('rita', 'release');
  await server.user('alan', 'approver');
  await server.user('vera', 'viewer');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function noViolations(page, where) {
  const v = await axe(page);
  assert.deepEqual(v, [], `${where}: accessibility violations:\n${v.join('\n')}`);
}

test('sign-in: a wrong password is refused with the reason, the right one opens the overview', async () => {
  const page = await openPage(browser, server);
  await noViolations(page, 'sign-in page');
  await page.getByLabel('User name').fill('ada');
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong user name or password' }).waitFor();
  await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
  assert.match(await page.getByTestId('who').textContent(), /user:ada \(admin\)/);
  // The session cookie is out of the page's reach.
  assert.equal(await page.evaluate(() => document.cookie.includes('aloft_session')), false);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'aloft_session');
  assert.ok(session?.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('every screen shows the fleet and passes axe-core', async () => {
  const page = await openPage(browser, server, { user: 'ada' });
  // Overview: counts, a version chart, the active rollout with its waves, recent failures.
  await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
  await page.locator('.tile-value').first().waitFor();
  const tiles = await page.locator('.tiles .tile').allTextContents();
  assert.ok(tiles.some((t) => /^26\s*Devices/.test(t)), tiles.join('|'));
  assert.ok(tiles.some((t) => /^2\s*Failing/.test(t)), tiles.join('|'));
  await page.locator('[data-rollout="spring"]').waitFor();
  await page.locator('.chart canvas').first().waitFor();
  await page.getByRole('link', { name: 'dev-002' }).waitFor();
  await noViolations(page, 'overview');

  // Devices: server-side filters and paging.
  await page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: 'Devices' }).click();
  await page.getByRole('heading', { name: 'Devices' }).waitFor();
  await page.getByText('1–26 of 26').waitFor();
  await page.getByLabel('Group').fill('lab');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('1–12 of 12').waitFor();
  await page.getByLabel('Group').fill('');
  await page.locator('select[name=state]').selectOption('failing');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('1–2 of 2').waitFor();
  await noViolations(page, 'devices');

  // Device detail: versions, attributes, history with feedback, the rollback shown as such.
  await page.getByRole('link', { name: 'dev-002' }).click();
  await page.getByRole('heading', { name: 'Device dev-002' }).waitFor();
  await page.getByText('rolled back', { exact: true }).waitFor();
  await page.getByText('health check failed; rolled back: running 1.0.0').waitFor();
  await noViolations(page, 'device detail');

  // Releases and one release: hashes, the signature's key id, components.
  await page.getByRole('link', { name: 'Releases' }).click();
  await page.getByRole('link', { name: 'fw@1.3.0' }).click();
  await page.getByRole('heading', { name: 'Release fw@1.3.0' }).waitFor();
  await page.reload(); // a deep link: aloftd answers the page's own path with the application
  await page.getByRole('heading', { name: 'Release fw@1.3.0' }).waitFor();
  await page.getByText('SHA-256').first().waitFor();
  assert.match(await page.locator('table').first().textContent(), /[0-9a-f]{64}/);
  await noViolations(page, 'release detail');
  await page.getByRole('link', { name: 'Releases' }).click();
  await page.getByRole('heading', { name: 'Upload a release' }).waitFor();
  await noViolations(page, 'releases');

  // Rollouts and one rollout: its waves and state.
  await page.getByRole('link', { name: 'Rollouts' }).click();
  await page.getByRole('link', { name: 'spring' }).click();
  await page.getByRole('heading', { name: /Rollout spring/ }).waitFor();
  await page.getByText('Wave 1').first().waitFor();
  await noViolations(page, 'rollout detail');

  // Vehicles: each ECU's version.
  await page.getByRole('link', { name: 'Vehicles' }).click();
  await page.locator('[data-vehicle="car-001"]').waitFor();
  assert.equal(await page.locator('[data-vehicle="car-001"] tbody tr').count(), 14);
  await noViolations(page, 'vehicles');

  // Audit log: names the people who signed in.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('cell', { name: 'user:ada' }).first().waitFor();
  await noViolations(page, 'audit');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a rollout created, approved and paused from the pages, and audited in the people\'s names', async () => {
  const rita = await openPage(browser, server, { user: 'rita' });
  await rita.goto(server.base + '/rollouts/new');
  await rita.getByRole('heading', { name: 'Create a rollout' }).waitFor();
  await noViolations(rita, 'create rollout');
  await rita.getByLabel('Rollout name').fill('from-ui');
  await rita.locator('select[name=release]').selectOption('fw@1.3.0');
  await rita.getByLabel('Groups (comma-separated)').fill('lab');
  await rita.getByLabel('Needs an approver').check();
  await rita.getByRole('button', { name: 'Create rollout' }).click();
  await rita.getByRole('heading', { name: /Rollout from-ui/ }).waitFor();
  await rita.locator('.badge', { hasText: 'awaiting approval' }).first().waitFor();
  // The creator may not approve: the page does not offer it to a release user at all.
  assert.equal(await rita.getByRole('button', { name: 'Approve' }).count(), 0);

  const alan = await openPage(browser, server, { user: 'alan' });
  await alan.goto(server.base + '/rollouts/from-ui');
  await alan.getByLabel('Remark').fill('checked the release notes');
  await alan.getByRole('button', { name: 'Approve' }).click();
  // The approver is shown; the remark is in the audit (below). The rollout's reason may already
  // be the engine's next step ("wave 1 ...") by the time the page looks.
  await alan.getByTestId('approved-by').filter({ hasText: 'user:alan' }).waitFor();

  // rita's page learns of the approval by itself (the live feed), then she pauses.
  await rita.getByRole('button', { name: 'Pause' }).waitFor({ timeout: 5000 });
  await rita.getByRole('button', { name: 'Pause' }).click();
  await rita.locator('.badge', { hasText: 'paused' }).first().waitFor();
  const r = await server.api('GET', '/api/v1/rollouts/from-ui');
  assert.equal(r.state, 'paused');
  assert.equal(r.approved_by, 'user:alan');
  assert.equal(r.created_by, 'user:rita');
  const audit = await server.api('GET', '/api/v1/audit?limit=20');
  const of = (action) => audit.find((e) => e.action === action && e.object === 'from-ui');
  assert.equal(of('rollout.create')?.actor, 'user:rita');
  assert.equal(of('rollout.approve')?.actor, 'user:alan');
  assert.equal(of('rollout.approve')?.details.remark, 'checked the release notes');
  assert.equal(of('rollout.pause')?.actor, 'user:rita');
  await rita.context().close();
  await alan.context().close();
});

test('the forms send only what the API accepts: a wrong input is refused with the server\'s reason and nothing is made', async () => {
  const page = await openPage(browser, server, { user: 'rita' });
  await page.goto(server.base + '/rollouts/new');
  await page.getByLabel('Rollout name').fill('bad one');
  await page.locator('select[name=release]').selectOption('fw@1.3.0');
  await page.getByRole('button', { name: 'Create rollout' }).click();
  await page.getByRole('alert').filter({ hasText: 'name' }).waitFor();
  await page.getByLabel('Rollout name').fill('bad-waves');
  await page.getByLabel('Size (% or number; empty: the rest)').first().fill('250%');
  await page.getByRole('button', { name: 'Create rollout' }).click();
  await page.getByRole('alert').filter({ hasText: 'percent' }).waitFor();
  const list = await server.api('GET', '/api/v1/rollouts');
  assert.deepEqual(list.filter((r) => r.name.startsWith('bad')), []);
  await page.context().close();
});

test('a change on the server reaches an open page within 2 s, without polling', async () => {
  const page = await openPage(browser, server, { user: 'vera' });
  await page.goto(server.base + '/rollouts/spring');
  await page.locator('.badge', { hasText: 'running' }).first().waitFor();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.waitForTimeout(2500); // nothing changes: the page asks nothing
  assert.deepEqual(requests, []);
  const t0 = Date.now();
  await server.api('POST', '/api/v1/rollouts/spring/pause', { remark: 'live test' });
  await page.locator('.badge', { hasText: 'paused' }).first().waitFor({ timeout: 2000 });
  const ms = Date.now() - t0;
  assert.ok(ms < 2000, `${ms} ms`);
  await server.api('POST', '/api/v1/rollouts/spring/resume');
  await page.locator('.badge', { hasText: 'running' }).first().waitFor({ timeout: 2000 });
  await page.context().close();
});

test('a viewer is not offered approve, pause, upload or the audit log', async () => {
  await server.api('POST', '/api/v1/rollouts', { name: 'needs-ok', release: 'fw@1.3.0', filter: { groups: ['lab'] }, approval: true });
  const page = await openPage(browser, server, { user: 'vera' });
  await page.goto(server.base + '/rollouts/needs-ok');
  await page.locator('.badge', { hasText: 'awaiting approval' }).first().waitFor();
  for (const name of ['Approve', 'Deny', 'Pause', 'Cancel rollout']) {
    assert.equal(await page.getByRole('button', { name }).count(), 0, name);
  }
  await page.goto(server.base + '/rollouts');
  await page.getByRole('link', { name: 'needs-ok' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'New rollout' }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 0);
  await page.goto(server.base + '/releases');
  await page.getByRole('link', { name: 'fw@1.2.0' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Upload a release' }).count(), 0);
  // And the server refuses what the page does not offer.
  const status = await page.evaluate(async () => {
    const s = await (await fetch('/api/v1/session')).json();
    const r = await fetch('/api/v1/rollouts/needs-ok/approve', { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } });
    return r.status;
  });
  assert.equal(status, 403);
  await page.context().close();
});

test('the Chinese UI: chosen from the browser, switchable, times in the browser\'s zone', async () => {
  const page = await openPage(browser, server, { locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  await page.getByRole('heading', { name: '登录 Aloft' }).waitFor();
  await page.getByLabel('用户名').fill('ada');
  await page.getByLabel('密码', { exact: true }).fill('correct horse battery');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await page.getByRole('heading', { name: '设备群概览' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  await noViolations(page, 'overview (zh-CN)');
  await page.getByRole('link', { name: '设备', exact: true }).click();
  await page.getByRole('heading', { name: '设备', exact: true }).waitFor();
  // Times are written the Chinese way, in Shanghai's time.
  await page.getByRole('link', { name: 'dev-001' }).click();
  const seen = await page.locator('.facts dd').nth(3).textContent();
  assert.match(seen, /\d{4}年\d{1,2}月\d{1,2}日/, seen);
  await page.getByLabel('语言').first().selectOption('en');
  await page.getByRole('heading', { name: 'Device dev-001' }).waitFor();
  await page.context().close();
});

test('keyboard only: sign in, skip to the content, move through the navigation', async () => {
  const page = await openPage(browser, server);
  await page.getByLabel('User name').focus();
  await page.keyboard.type('ada');
  await page.keyboard.press('Tab');
  await page.keyboard.type('correct horse battery');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
  await page.keyboard.press('Tab'); // the first stop is "skip to content"
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Tab'); // the brand
  await page.keyboard.press('Tab'); // Overview
  await page.keyboard.press('Tab'); // Devices
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Devices');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Devices' }).waitFor();
  // The new page's content has the focus; the next Tab reaches its first control, whose focus
  // is visible (an outline).
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'q');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, 'solid');
  await page.context().close();
});

test('hostile text from devices and people renders as text, never as markup', async () => {
  const page = await openPage(browser, server, { user: 'ada' });
  await page.goto(server.base + '/rollouts/needs-ok');
  await page.getByLabel('Remark').fill(xss);
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByTestId('reason').filter({ hasText: '<script>' }).waitFor();
  for (const path of ['/', '/devices/probe-1', '/devices?group=probes', '/audit', '/rollouts/needs-ok']) {
    await page.goto(server.base + path);
    // (not 'networkidle': the live feed keeps a request open for as long as the page lives)
    await page.locator('main h1').first().waitFor();
    await page.locator('main table tbody tr').first().waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__xss), undefined, path);
    assert.equal(await page.locator('main script, main img[src="x"]').count(), 0, path);
  }
  await page.goto(server.base + '/devices/probe-1');
  await page.getByText(xss).first().waitFor();
  await page.getByRole('cell', { name: xss }).first().waitFor();
  await page.context().close();
});

test('CSRF: a signed-in browser\'s change without the session\'s token is refused', async () => {
  const page = await openPage(browser, server, { user: 'ada' });
  const result = await page.evaluate(async () => {
    const body = JSON.stringify({ name: 'csrf-type' });
    const h = { 'Content-Type': 'application/json' };
    const without = await fetch('/api/v1/device-types', { method: 'POST', headers: h, body });
    const s = await (await fetch('/api/v1/session')).json();
    const withToken = await fetch('/api/v1/device-types', { method: 'POST', headers: { ...h, 'X-CSRF-Token': s.csrf }, body });
    return [without.status, (await without.json()).message, withToken.status];
  });
  assert.equal(result[0], 403);
  assert.match(result[1], /X-CSRF-Token/);
  assert.equal(result[2], 201);
  await page.context().close();
});

test('a release uploaded from the page, with progress, then shown with its hashes', async () => {
  const file = server.pack('ui', '2.1.0', 'board-a', ['main', 'bms']);
  const page = await openPage(browser, server, { user: 'rita' });
  await page.goto(server.base + '/releases');
  await page.getByLabel('Signed package (.aloft)').setInputFiles(file);
  await page.getByRole('button', { name: 'Upload a release' }).click();
  await page.getByRole('status').filter({ hasText: 'Uploaded ui@2.1.0.' }).waitFor();
  await page.getByRole('link', { name: 'ui@2.1.0' }).click();
  await page.getByRole('heading', { name: 'Release ui@2.1.0' }).waitFor();
  const rel = await server.api('GET', '/api/v1/releases/ui/2.1.0');
  await page.getByText(rel.sha256).waitFor();
  assert.equal(rel.created_by, 'user:rita');
  await page.context().close();
});
