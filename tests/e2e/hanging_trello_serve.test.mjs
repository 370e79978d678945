// SPDX-License-Identifier: MIT
// serve against a Trello that accepts connections and never answers (issue
// 15): an admin request that calls Trello ends within its budget (10 s) with
// an error page saying what it waited for, and the periodic health pass ends
// within its per-pass budget instead of hanging its thread (~121 s per call).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, TOKEN } from './lib/stack.mjs';
import { closedPort, sleep, until } from './lib/mock.mjs';
import { startServe, th } from './lib/serve.mjs';

const PASSWORD = 'hunter2hunter2';
let s;
let hang;
let serve;
const sockets = new Set();
let accepted = 0;

before(async () => {
  s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
  s.addWebhook(); // a webhook and its token in the store, for the health pass
  const r = th(s.env, ['user', 'add', 'erin'], `${PASSWORD}\n`);
  assert.equal(r.code, 0, r.stderr);
  await s.serve.stop();
  hang = net.createServer((sock) => {
    accepted += 1;
    sockets.add(sock);
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((res) => hang.listen(0, '127.0.0.1', res));
  serve = await startServe({
    ...s.env,
    TRELLO_API_URL: `http://127.0.0.1:${hang.address().port}/1`,
    TRELLOHOOK_HEALTH_INTERVAL: '20s', // a pass budget of 10 s
  }, ['--listen', `127.0.0.1:${s.port}`]);
});

after(async () => {
  await serve?.stop();
  for (const sock of sockets) sock.destroy();
  await new Promise((res) => hang.close(res));
  s.serve = { stop: async () => {} };
  await s.stop();
});

async function signIn() {
  const page = await fetch(`${serve.url}/admin/login`);
  await page.text();
  const lt = page.headers.getSetCookie().find((c) => c.startsWith('trellohook_login=')).split(';')[0].split('=')[1];
  const res = await fetch(`${serve.url}/admin/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${lt}` },
    body: new URLSearchParams({ login_token: lt, user: 'erin', password: PASSWORD }).toString(),
  });
  const sid = res.headers.getSetCookie().find((c) => c.startsWith('trellohook_session=')).split(';')[0];
  const dash = await (await fetch(`${serve.url}/admin/`, { headers: { cookie: sid } })).text();
  return { cookie: sid, csrf: dash.match(/name=csrf value="([^"]+)"/)[1] };
}

test('an admin request that calls a hanging Trello ends within 10 s with an error page', async () => {
  const { cookie, csrf } = await signIn();
  const t0 = Date.now();
  const r = await fetch(`${serve.url}/admin/webhooks/add`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ csrf, model: s.board.id, token: TOKEN }).toString(),
    signal: AbortSignal.timeout(60000),
  });
  const page = await r.text();
  const took = Date.now() - t0;
  assert.equal(r.status, 502);
  assert.match(page, /did not answer .* within 10 s/);
  assert.ok(took >= 9000 && took < 16000, `took ${took} ms`);
  assert.ok(!page.includes(TOKEN), 'the page never shows the full token');
});

test('the health pass against a hanging Trello ends within its budget', async () => {
  // first pass ~2 s after start, then at most 10 s of waiting for Trello
  const t0 = Date.now();
  let line;
  while (!(line = serve.stderr().match(/health pass (in (\d+) ms|failed)[^\n]*/)) && Date.now() - t0 < 30000)
    await new Promise((res) => setTimeout(res, 250));
  assert.ok(line, `no health pass ended within 30 s:\n${serve.stderr()}`);
  if (line[2]) assert.ok(Number(line[2]) < 14000, line[0]);
  const metrics = await (await fetch(`${serve.url}/metrics`)).text();
  assert.match(metrics, /^trellohook_health_(passes|failures)_total [1-9]/m);
});

test('SIGTERM while the health pass waits for a hanging Trello stops serve at once, not after the pass budget', async (t) => {
  // the default interval (15 min): a pass budget of 5 min, and a call's own timeout of 30 s
  // a try; before the stop ended the call in flight, this serve took ~120 s to exit
  const env = { ...s.env, TRELLO_API_URL: `http://127.0.0.1:${hang.address().port}/1` };
  delete env.TRELLOHOOK_HEALTH_INTERVAL;
  const port = await closedPort();
  const before = accepted;
  const other = await startServe({ ...env, CALLBACK_DOMAIN: `http://127.0.0.1:${port}` }, ['--listen', `127.0.0.1:${port}`]);
  t.after(() => other.stop('SIGKILL'));
  await until('the health pass to call Trello', () => accepted > before, 15000);
  await sleep(500);
  const t0 = Date.now();
  const stop = other.stop();
  const end = await Promise.race([stop, sleep(20000).then(() => null)]);
  const took = Date.now() - t0;
  assert.ok(end, `serve still running ${took} ms after SIGTERM:\n${other.stderr()}`);
  assert.equal(end.code, 0, other.stderr());
  assert.ok(took < 5000, `stopped after ${took} ms`);
  assert.match(other.stderr(), /stopping: the call GET \/tokens\/ATTA…[A-Za-z0-9]{4} to Trello was abandoned/);
  assert.match(other.stderr(), /serve: stopped cleanly/);
  assert.ok(!other.stderr().includes(TOKEN), 'the full token was logged');
});
