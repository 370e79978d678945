// SPDX-License-Identifier: MIT
// The admin in a real browser: playwright-core drives Debian's chromium
// (never a downloaded one) against `trellohook serve` wired to trello-mock.
// Goes through the "done when": sign in, get a token through the
// mock's authorize page, add a webhook by pasting a board URL, see actions
// arrive as events, see a <script> card name shown as text, retry a failed
// delivery, sign out. Saves screenshots of the main pages to $TH_SCREENSHOTS, by default
// the build directory's screenshots/ (`make screenshots` points it at the README's tracked pictures).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { closedPort, control, newBoard, sleep, startMock } from '../e2e/lib/mock.mjs';
import { baseEnv, buildDir, startServe, tempDir, th } from '../e2e/lib/serve.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.TH_SCREENSHOTS ?? path.join(buildDir, 'screenshots');
const USER = 'admin';
const PASSWORD = 'correct horse battery';
const EVIL = '<script>alert(1)</script>';

let mock, serve, env, tmp, board, context, page, profile, base;
const dialogs = [];

before(async () => {
  tmp = tempDir('th-browser-');
  mock = await startMock(['--listen', '127.0.0.1:0']);
  const port = await closedPort();
  base = `http://127.0.0.1:${port}`;
  env = baseEnv(tmp.dir, {
    CALLBACK_DOMAIN: base,
    TRELLOHOOK_LISTEN: `127.0.0.1:${port}`,
    TRELLO_API_URL: mock.url,
    TRELLO_API_KEY: mock.key,
    TRELLO_API_SECRET: mock.secret,
    TRELLO_AUTH_URL: `${mock.base}/1/authorize`,
    TRELLOHOOK_RETRY_SCHEDULE: '100ms',
    TRELLOHOOK_LOG_LEVEL: 'warn',
  });
  const u = th(env, ['user', 'add', USER], `${PASSWORD}\n`);
  assert.equal(u.code, 0, u.stderr);
  const h = th(env, ['handler', 'add', '--exec', 'echo handler output; exit 1', '--on', 'commentCard']);
  assert.equal(h.code, 0, h.stderr);
  serve = await startServe(env, ['--listen', `127.0.0.1:${port}`]);
  board = await newBoard(mock, 'Roadmap 2027');

  profile = mkdtempSync(path.join(tmpdir(), 'th-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 800 },
  });
  page = context.pages()[0] ?? await context.newPage();
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await serve?.stop();
  await mock?.stop();
  tmp?.cleanup();
});

const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

test('an admin page without a session leads to the sign-in page, which signs in', async () => {
  await page.goto(`${base}/admin/events`);
  assert.match(page.url(), /\/admin\/login\?next=%2Fadmin%2Fevents$/);
  await shot('login');
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill('wrong password!');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong user name or password.').waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/admin/events`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Events');
  const cookies = await context.cookies(`${base}/admin/`);
  const sess = cookies.find((c) => c.name === 'trellohook_session');
  assert.ok(sess, 'session cookie set');
  assert.equal(sess.httpOnly, true);
  assert.equal(sess.sameSite, 'Strict');
  assert.equal(sess.path, '/admin');
});

test('a token comes back from the authorize page through the fragment', async () => {
  await page.goto(`${base}/admin/tokens`);
  const href = await page.locator('#get-token').getAttribute('href');
  const u = new URL(href);
  assert.equal(u.origin + u.pathname, `${mock.base}/1/authorize`);
  assert.equal(u.searchParams.get('key'), mock.key);
  assert.equal(u.searchParams.get('scope'), 'read');
  assert.equal(u.searchParams.get('expiration'), 'never');
  assert.equal(u.searchParams.get('response_type'), 'token');
  assert.equal(u.searchParams.get('callback_method'), 'fragment');
  assert.equal(u.searchParams.get('return_url'), `${base}/admin/tokens/return`);
  await page.locator('#get-token').click();
  await page.waitForURL((url) => url.href.startsWith(`${mock.base}/1/authorize`));
  await page.locator('#approve').click();
  await page.waitForURL(`${base}/admin/tokens?done=token-added`);
  await page.getByText('Token stored.').waitFor();
  const rows = page.locator('tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /valid/);
  // The page never shows the whole token.
  assert.doesNotMatch(await page.content(), /ATTA[0-9a-fA-F]{20,}/);
  await shot('tokens');
});

test('a webhook is added by pasting a board URL', async () => {
  await page.goto(`${base}/admin/webhooks`);
  await page.getByLabel('Trello board or card URL, or a 24-hex id').fill(board.url);
  await page.getByLabel('Description (optional)').fill('Roadmap <b>watch</b>');
  await page.getByRole('button', { name: 'Add webhook' }).click();
  await page.waitForURL(`${base}/admin/webhooks?done=webhook-added`);
  const row = page.locator('tbody tr').first();
  const text = await row.textContent();
  assert.match(text, /Roadmap 2027/);
  assert.match(text, /Roadmap <b>watch<\/b>/, 'description shown as text');
  assert.match(text, /active/);
  const hooks = await control(mock, 'GET', '/_mock/webhooks');
  assert.equal(hooks.length, 1);
  assert.equal(hooks[0].idModel, board.id);
});

test('a webhook is edited, paused and resumed from its edit page', async () => {
  await page.goto(`${base}/admin/webhooks`);
  await page.locator('tbody tr').first().getByRole('link', { name: 'Edit' }).click();
  await page.waitForURL(/\/admin\/webhooks\/[A-Za-z0-9_-]+\/edit$/);
  const field = page.getByLabel('Description');
  assert.equal(await field.inputValue(), 'Roadmap <b>watch</b>');
  // the browser keeps to maxlength; the server says so for anything longer
  await field.fill('Roadmap, edited ✓');
  await page.getByRole('button', { name: 'Save description' }).click();
  await page.waitForURL(`${base}/admin/webhooks?done=webhook-updated`);
  await page.getByText('Webhook changed on Trello and here.').waitFor();
  assert.match(await page.locator('tbody tr').first().textContent(), /Roadmap, edited ✓/);
  let hooks = await control(mock, 'GET', '/_mock/webhooks');
  assert.equal(hooks[0].description, 'Roadmap, edited ✓');

  await page.locator('tbody tr').first().getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('button', { name: 'Pause deliveries' }).click();
  await page.waitForURL(`${base}/admin/webhooks?done=webhook-paused`);
  await page.getByText('Webhook paused').waitFor();
  assert.match(await page.locator('tbody tr').first().textContent(), /disabled/);
  hooks = await control(mock, 'GET', '/_mock/webhooks');
  assert.equal(hooks[0].active, false);
  // paused on Trello's side: an action is not delivered
  const paused = await control(mock, 'POST', '/_mock/actions',
    { wait: true, type: 'commentCard', idModel: board.cards[0].id, text: 'while paused' });
  assert.equal(paused.deliveries, 0);

  await page.locator('tbody tr').first().getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('button', { name: 'Resume deliveries' }).click();
  await page.waitForURL(`${base}/admin/webhooks?done=webhook-resumed`);
  assert.match(await page.locator('tbody tr').first().textContent(), /active/);
  hooks = await control(mock, 'GET', '/_mock/webhooks');
  assert.equal(hooks[0].active, true);
  // what Trello did while the webhook was paused is recovered by the backfill resuming starts
  const backUntil = Date.now() + 30000;
  for (;;) {
    const evs = JSON.parse(th(env, ['events', 'ls', '--json']).stdout);
    const back = evs.find((e) => /while paused/.test(e.summary));
    if (back) {
      assert.equal(back.source, 'backfill');
      break;
    }
    assert.ok(Date.now() < backUntil, 'the action made while paused was not backfilled');
    await sleep(200);
  }

  // a tampered form (an over-long description past the browser's limit) gets a clear error
  await page.locator('tbody tr').first().getByRole('link', { name: 'Edit' }).click();
  await page.getByLabel('Description').evaluate((el) => { el.removeAttribute('maxlength'); });
  await page.getByLabel('Description').fill('y'.repeat(1001));
  await page.getByRole('button', { name: 'Save description' }).click();
  await page.getByText('The description is too long: at most 1000 bytes of UTF-8 text.').waitFor();
  hooks = await control(mock, 'GET', '/_mock/webhooks');
  assert.equal(hooks[0].description, 'Roadmap, edited ✓');
  assert.deepEqual(dialogs, []);
});

test('actions in Trello appear as events with their summaries', async () => {
  const card = board.cards[0];
  await control(mock, 'POST', '/_mock/actions',
    { wait: true, type: 'commentCard', idModel: card.id, text: 'Looks good' });
  await control(mock, 'POST', '/_mock/actions',
    { wait: true, type: 'createCard', idList: board.lists[0].id, name: EVIL });
  await control(mock, 'POST', '/_mock/actions',
    { wait: true, type: 'updateCard', idModel: card.id, idList: board.lists[1].id });
  await page.goto(`${base}/admin/events`);
  const summaries = await page.locator('a.summary').allTextContents();
  // and, oldest, the comment made while the webhook was paused (backfilled on resume)
  assert.equal(summaries.length, 4, summaries.join('\n'));
  assert.match(summaries[0], new RegExp(`moved "${card.name}" from To do to Doing`));
  assert.match(summaries[1], /created "<script>alert\(1\)<\/script>"/);
  assert.match(summaries[2], new RegExp(`commented on "${card.name}": Looks good`));
  assert.match(summaries[3], /while paused/);
  await shot('events');
  // Filters: by type and by text.
  await page.getByLabel('Type').fill('commentCard');
  await page.getByRole('button', { name: 'Filter' }).click();
  assert.equal(await page.locator('a.summary').count(), 2);
  await page.goto(`${base}/admin/events?q=${encodeURIComponent('alert(1)')}`);
  assert.equal(await page.locator('a.summary').count(), 1);
});

test('an event whose card name is <script> shows it as text', async () => {
  await page.goto(`${base}/admin/events`);
  await page.getByRole('link', { name: /created "<script>/ }).click();
  await page.waitForURL(/\/admin\/events\/[A-Za-z0-9_-]+$/);
  assert.match(await page.locator('p.summary').textContent(), /created "<script>alert\(1\)<\/script>"/);
  assert.match(await page.locator('pre.payload').textContent(), /"name": "<script>alert\(1\)<\/script>"/);
  // The only script element is the admin's own file.
  const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src));
  assert.deepEqual(scripts, [`${base}/admin/static/admin.js`]);
  assert.deepEqual(dialogs, []);
  await shot('event');
});

test('a failed delivery is retried from the deliveries page', async () => {
  // The exec handler fails; with one 100 ms retry it is dead quickly.
  const deadline = Date.now() + 15000;
  for (;;) {
    await page.goto(`${base}/admin/deliveries?status=dead`);
    if (await page.getByRole('button', { name: 'Retry' }).count() > 0) break;
    assert.ok(Date.now() < deadline, 'no dead delivery appeared');
    await sleep(200);
  }
  assert.match(await page.locator('pre.err').first().textContent(), /handler output|exit|status/);
  await shot('deliveries');
  const beforeRetry = JSON.parse(th(env, ['deliveries', 'ls', '--status', 'dead', '--json']).stdout);
  // the two comments' deliveries (one backfilled) fail; at least one is dead by now
  assert.ok(beforeRetry.length >= 1 && beforeRetry.length <= 2, JSON.stringify(beforeRetry));
  await page.getByRole('button', { name: 'Retry' }).first().click();
  await page.waitForURL(`${base}/admin/deliveries?status=dead&done=delivery-retried`);
  await page.getByText('Delivery queued again.').waitFor();
  // It ran again (attempts restart at 0 on a retry): dead again, later.
  const until = Date.now() + 15000;
  for (;;) {
    const r = th(env, ['deliveries', 'ls', '--json']);
    const ds = JSON.parse(r.stdout);
    // the one the first Retry button was for: ran again, dead again
    const again = beforeRetry.some((b) => {
      const d = ds.find((x) => x.id === b.id);
      return d && d.status === 'dead' && d.attempts === 2 && d.updated_at > b.updated_at;
    });
    if (again) break;
    assert.ok(Date.now() < until, `delivery was not attempted again: ${r.stdout}`);
    await sleep(200);
  }
});

test('dashboard, then sign out leads to the sign-in page', async () => {
  await page.goto(`${base}/admin/`);
  assert.match(await page.locator('.stats').textContent(), /1\s*webhooks/);
  await shot('dashboard');
  await page.goto(`${base}/admin/webhooks`);
  await shot('webhooks');
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`${base}/admin/events`);
  await shot('events-phone');
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/admin/login`);
  await page.goto(`${base}/admin/webhooks`);
  assert.match(page.url(), /\/admin\/login\?next=/);
  assert.deepEqual(dialogs, []);
});
