// SPDX-License-Identifier: MIT
// The live view in a real browser (Debian's chromium through playwright-core):
// with the events page and the dashboard open, a signed delivery's row
// appears on top within 2 s without a reload, escaped; with JavaScript
// disabled the pages still list events and say a refresh shows new ones.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { root, th, trelloSignature } from '../e2e/lib/serve.mjs';
import { startStack } from '../e2e/lib/stack.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const USER = 'admin';
const PASSWORD = 'correct horse battery';

let s, wh, base;
const browsers = [];

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
  const problems = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) problems.push(m.text()); });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`${base}/admin/login`);
  await page.getByLabel('User name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/admin\/$/);
  return { page, problems };
}

let counter = 0;
async function deliver(text) {
  counter += 1;
  const doc = JSON.parse(readFileSync(path.join(root, 'tests/data/payloads/commentCard.json')));
  doc.action.id = (0x7200000000 + counter).toString(16).padStart(24, '0');
  doc.action.data.text = text;
  const body = JSON.stringify(doc);
  const r = await fetch(wh.callback_url, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json',
      'x-trello-webhook': trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url) },
  });
  assert.equal(r.status, 200, await r.text());
}

before(async () => {
  s = await startStack({ env: { TRELLOHOOK_LOG_LEVEL: 'warn' } });
  const u = th(s.env, ['user', 'add', USER], `${PASSWORD}\n`);
  assert.equal(u.code, 0, u.stderr);
  wh = s.addWebhook();
  base = s.serve.url;
});

after(async () => {
  for (const b of browsers) {
    await b.context.close();
    rmSync(b.profile, { recursive: true, force: true });
  }
  await s?.stop();
});

test('a new event appears on the events page and the dashboard without a reload', async () => {
  const { page, problems } = await signedInPage();
  // an empty history first: the table appears with the first live row
  await page.goto(`${base}/admin/events`);
  await page.locator('#live-status', { hasText: /^Live:/ }).waitFor({ timeout: 5000 });
  let t0 = Date.now();
  await deliver('first live <img src=x onerror=alert(1)> Zoë');
  const row = page.locator('tbody[data-live-max] tr').first();
  await row.waitFor({ timeout: 2000 });
  assert.ok(Date.now() - t0 <= 2000, `row after ${Date.now() - t0} ms`);
  assert.match(await row.textContent(), /first live <img src=x onerror=alert\(1\)> Zoë/);
  assert.equal(await page.locator('tbody img').count(), 0, 'the summary is text, not markup');
  assert.equal(await page.locator('#no-events').count(), 0);
  assert.match(await row.locator('a.summary').getAttribute('href'), /^\/admin\/events\/[A-Za-z0-9_-]+$/);
  // a second one goes on top
  t0 = Date.now();
  await deliver('second live');
  await page.locator('tbody[data-live-max] tr').first().filter({ hasText: 'second live' })
    .waitFor({ timeout: 2000 });
  assert.equal(await page.locator('tbody[data-live-max] tr').count(), 2);
  // the dashboard's recent events too
  await page.goto(`${base}/admin/`);
  await page.locator('#live-status', { hasText: /^Live:/ }).waitFor({ timeout: 5000 });
  t0 = Date.now();
  await deliver('third live');
  await page.locator('tbody[data-live-max] tr').first().filter({ hasText: 'third live' })
    .waitFor({ timeout: 2000 });
  assert.ok(Date.now() - t0 <= 2000);
  assert.deepEqual(problems, []);
});

test('a filtered events page is not live (new events may not match it)', async () => {
  const { page } = await signedInPage();
  await page.goto(`${base}/admin/events?type=createCard`);
  assert.equal(await page.locator('tbody[data-live-max]').count(), 0);
  assert.equal(await page.locator('#live-status').count(), 0);
});

test('with JavaScript disabled the events page lists events and offers a refresh', async () => {
  const { page } = await signedInPage({ javaScriptEnabled: false });
  await page.goto(`${base}/admin/events`);
  assert.ok(await page.locator('tbody tr').count() >= 3);
  assert.match(await page.locator('#live-status').textContent(), /refresh/);
  await deliver('seen after a refresh');
  await page.locator('#live-status a').click();
  await page.locator('tbody tr').first().filter({ hasText: 'seen after a refresh' }).waitFor({ timeout: 5000 });
});
