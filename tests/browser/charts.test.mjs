// SPDX-License-Identifier: MIT
// The admin's charts in a real browser (Debian's chromium through
// playwright-core): with 30 days of seeded history, the dashboard shows the
// hourly and daily event charts stacked by action type, and the webhooks
// page a sparkline per webhook with "last event ... ago" and the silence
// warning for a webhook that usually gets events and has gone quiet. The
// same pages work with JavaScript disabled. Screenshots go to
// $TH_SCREENSHOTS (default: the build directory's screenshots/).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { closedPort, newBoard, newToken, startMock } from '../e2e/lib/mock.mjs';
import { baseEnv, buildDir, startServe, tempDir, th, thJson } from '../e2e/lib/serve.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.TH_SCREENSHOTS ?? path.join(buildDir, 'screenshots');
const USER = 'admin';
const PASSWORD = 'correct horse battery';
const H = 3600000;

let mock, serve, env, tmp, base, busy, quiet;
const browsers = [];

// History written straight into the database (as the store would have):
// events, then the hourly rollup and the per-webhook event count the store
// keeps at ingest, then each webhook's last event time.
function seed(dbPath, now) {
  const rows = [];
  const types = ['createCard', 'updateCard', 'commentCard', 'addMemberToCard',
    'a very long action type name <b>that</b> must be escaped and shortened'];
  let k = 0;
  // busy: events every hour of the last 30 days, more in the last day
  for (let h = 0; h < 30 * 24; h++) {
    const n = h < 24 ? 3 + (h % 5) : 1 + (h % 3 === 0 ? 1 : 0);
    for (let i = 0; i < n; i++)
      rows.push([busy, types[(h + i) % types.length], now - h * H - i * 60000 - 60000]);
  }
  // quiet: 40 events over days 2-6 ago, nothing since (silent: 4 x ~4.2 h)
  for (let i = 0; i < 40; i++) rows.push([quiet, 'commentCard', now - 2 * 24 * H - i * 3 * H]);
  // inserted oldest first, as ingest would have stored them (the event list
  // and "Recent events" are in the order events were stored)
  rows.sort((a, b) => a[2] - b[2]);
  const values = rows.map(([w, t, at]) => {
    k++;
    const id = `seed${String(k).padStart(16, '0')}`;
    return `('${id}','${w}','act${k}','${t.replace(/'/g, "''")}','Seeded card ${k}',x'7b7d',${at})`;
  });
  const sql = ['.timeout 10000', 'BEGIN;'];
  for (let i = 0; i < values.length; i += 500)
    sql.push('INSERT INTO events (id, webhook_id, action_id, action_type, summary, payload, received_at) VALUES ' +
      values.slice(i, i + 500).join(',') + ';');
  sql.push('INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)' +
    " SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*) FROM events" +
    ' GROUP BY 1, 2, 3 ON CONFLICT (hour, webhook_id, action_type) DO UPDATE SET n = excluded.n;');
  sql.push('INSERT INTO webhook_event_count (webhook_id, n) SELECT webhook_id, count(*) FROM events' +
    ' GROUP BY 1 ON CONFLICT (webhook_id) DO UPDATE SET n = excluded.n;');
  sql.push('UPDATE webhooks SET last_event_at = (SELECT max(received_at) FROM events' +
    ' WHERE events.webhook_id = webhooks.id);');
  sql.push('COMMIT;');
  execFileSync('sqlite3', [dbPath], { input: sql.join('\n') });
}

async function signedInPage(opts = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), 'th-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 800 },
    ...opts,
  });
  browsers.push({ context, profile });
  const page = context.pages()[0] ?? await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await page.goto(`${base}/admin/login`);
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/admin\/(events)?$/);
  return { page, violations };
}

before(async () => {
  tmp = tempDir('th-charts-');
  mock = await startMock(['--listen', '127.0.0.1:0']);
  const port = await closedPort();
  base = `http://127.0.0.1:${port}`;
  env = baseEnv(tmp.dir, {
    CALLBACK_DOMAIN: base,
    TRELLO_API_URL: mock.url,
    TRELLO_API_KEY: mock.key,
    TRELLO_API_SECRET: mock.secret,
    TRELLOHOOK_LOG_LEVEL: 'warn',
  });
  const u = th(env, ['user', 'add', USER], `${PASSWORD}\n`);
  assert.equal(u.code, 0, u.stderr);
  const token = await newToken(mock);
  const b1 = await newBoard(mock, 'Roadmap 2027');
  const b2 = await newBoard(mock, 'Quiet board');
  // Trello checks the callback URL when a webhook is made: serve must run
  serve = await startServe(env, ['--listen', `127.0.0.1:${port}`]);
  busy = thJson(env, ['webhook', 'add', '--model', b1.id, '--token', token]).id;
  quiet = thJson(env, ['webhook', 'add', '--model', b2.id, '--token', token]).id;
  seed(path.join(tmp.dir, 'th.db'), Date.now());
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  for (const b of browsers) {
    await b.context.close();
    rmSync(b.profile, { recursive: true, force: true });
  }
  await serve?.stop();
  await mock?.stop();
  tmp?.cleanup();
});

test('the dashboard shows events per hour and per day, stacked by action type', async () => {
  const { page, violations } = await signedInPage();
  await page.goto(`${base}/admin/`);
  for (const id of ['ev-24h', 'ev-30d']) {
    const fig = page.locator(`figure#${id}`);
    await fig.waitFor();
    const box = await fig.locator('svg').boundingBox();
    assert.ok(box && box.width > 300 && box.height > 100, `${id} drawn: ${JSON.stringify(box)}`);
    assert.ok(await fig.locator('svg rect').count() > 20, `${id} has bars`);
    assert.match(await fig.locator('svg > title').textContent(), /Events received per/);
  }
  const legend = await page.locator('figure#ev-24h svg').textContent();
  assert.match(legend, /createCard/);
  // the hostile type is text, never markup
  assert.equal(await page.locator('figure#ev-24h b').count(), 0);
  // the table alternative holds the same numbers
  assert.ok(await page.locator('figure#ev-30d table.chart-table tr').count() >= 30);
  await page.screenshot({ path: path.join(SHOTS, 'charts-dashboard.png'), fullPage: true });
  assert.deepEqual(violations, []);
});

test('the webhooks page shows a sparkline per webhook and flags the silent one', async () => {
  const { page, violations } = await signedInPage();
  await page.goto(`${base}/admin/webhooks`);
  assert.equal(await page.locator('figure.spark svg').count(), 2);
  const rows = page.locator('tbody tr');
  const busyRow = rows.filter({ hasText: 'Roadmap 2027' });
  const quietRow = rows.filter({ hasText: 'Quiet board' });
  assert.match(await busyRow.textContent(), /last event \d+ minutes? ago/);
  assert.equal(await busyRow.locator('.silent').count(), 0);
  assert.match(await quietRow.locator('.silent').textContent(), /last event 2 days ago — silent for longer than usual/);
  assert.ok(await busyRow.locator('figure.spark polyline').count() === 1);
  await page.screenshot({ path: path.join(SHOTS, 'charts-webhooks.png'), fullPage: true });
  assert.deepEqual(violations, []);
});

test('with JavaScript disabled the charts are still there', async () => {
  const { page } = await signedInPage({ javaScriptEnabled: false });
  await page.goto(`${base}/admin/`);
  assert.equal(await page.locator('figure#ev-24h svg').count(), 1);
  await page.goto(`${base}/admin/webhooks`);
  assert.equal(await page.locator('figure.spark svg').count(), 2);
});
