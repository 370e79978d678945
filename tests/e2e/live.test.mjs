// SPDX-License-Identifier: MIT
// The live view over real sockets: GET /admin/events/stream (Server-Sent
// Events) pushes a new event's row after a signed POST is stored, needs a
// session, keeps to its per-session and total limits, takes GET only, and a
// serve stop ends open streams without waiting for them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { control } from './lib/mock.mjs';
import { root, th, trelloSignature } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const PASSWORD = 'live view password 1';
let s, wh, base;

before(async () => {
  s = await startStack({ env: { TRELLOHOOK_LOG_LEVEL: 'warn' } });
  for (const name of ['alice', 'bob']) {
    const r = th(s.env, ['user', 'add', name], `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  wh = s.addWebhook();
  base = s.serve.url;
});

after(async () => {
  await s?.stop();
});

function cookieOf(res, name) {
  for (const c of res.headers.getSetCookie()) {
    const m = c.match(new RegExp(`^${name}=([^;]*)`));
    if (m) return m[1];
  }
  return null;
}

async function signIn(user) {
  const page = await fetch(`${base}/admin/login`);
  const lt = cookieOf(page, 'trellohook_login');
  const res = await fetch(`${base}/admin/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${lt}` },
    body: new URLSearchParams({ login_token: lt, user, password: PASSWORD }),
  });
  const sid = cookieOf(res, 'trellohook_session');
  assert.ok(sid, `sign-in as ${user}: ${res.status}`);
  return `trellohook_session=${sid}`;
}

/**
 * A raw reader of the stream (no EventSource in node): resolves with
 * { status, headers, text(), waitFor(re, ms), close() } once the head is in.
 */
function openStream(cookie, { method = 'GET' } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(`${base}/admin/events/stream`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method,
      headers: cookie ? { cookie, accept: 'text/event-stream' } : {} }, (res) => {
      let text = '';
      const waiters = [];
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        for (const w of waiters.splice(0)) w();
      });
      let ended = false;
      res.on('end', () => { ended = true; for (const w of waiters.splice(0)) w(); });
      res.on('error', () => {});
      resolve({
        status: res.statusCode, headers: res.headers,
        text: () => text,
        ended: () => ended,
        async waitFor(re, ms = 5000) {
          const deadline = Date.now() + ms;
          while (!re.test(text)) {
            if (ended) throw new Error(`stream ended before ${re}:\n${text}`);
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`no ${re} within ${ms} ms:\n${text}`);
            await new Promise((r) => { waiters.push(r); setTimeout(r, left); });
          }
          return text;
        },
        async waitEnd(ms = 5000) {
          const deadline = Date.now() + ms;
          while (!ended && Date.now() < deadline)
            await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
          return ended;
        },
        close: () => { req.destroy(); },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sign in as @user, open a stream (200, its first bytes in), run @fn(st, cookie), close it. */
async function withStream(user, fn) {
  const cookie = await signIn(user);
  const st = await openStream(cookie);
  try {
    assert.equal(st.status, 200);
    await st.waitFor(/retry:/);
    await fn(st, cookie);
  } finally {
    st.close();
  }
}

let counter = 0;
function payload(text) {
  counter += 1;
  const doc = JSON.parse(readFileSync(path.join(root, 'tests/data/payloads/commentCard.json')));
  doc.action.id = (0x7100000000 + counter).toString(16).padStart(24, '0');
  doc.action.data.text = text;
  return JSON.stringify(doc);
}

async function deliver(body) {
  const r = await fetch(wh.callback_url, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json',
      'x-trello-webhook': trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url) },
  });
  assert.equal(r.status, 200, await r.text());
}

test('without a session the stream answers 401 and says how to sign in', async () => {
  const st = await openStream(null);
  assert.equal(st.status, 401);
  await st.waitEnd();
  assert.match(st.text(), /not signed in.*\/admin\/login/);
  const forged = await openStream('trellohook_session=' + 'A'.repeat(43));
  assert.equal(forged.status, 401);
  forged.close();
});

test('a signed POST reaches an open stream as its escaped table row', async () => {
  await withStream('alice', async (st) => {
    assert.match(st.headers['content-type'], /^text\/event-stream/);
    assert.equal(st.headers['cache-control'], 'no-store');
    await st.waitFor(/^retry: \d+\n/m);
    const t0 = Date.now();
    await deliver(payload('live <script>alert(1)</script> Zoë 🚀\nsecond line'));
    const text = await st.waitFor(/event: row\ndata: .*\n\n/, 2000);
    assert.ok(Date.now() - t0 < 2000);
    const m = text.match(/event: row\ndata: (.*)\n\n/);
    const row = m[1];
    assert.match(row, /^<tr>.*<\/tr>\s*$/);
    assert.match(row, /commentCard/);
    assert.match(row, /&lt;script&gt;alert\(1\)&lt;\/script&gt; Zoë 🚀/);
    assert.doesNotMatch(row, /<script>/);
    assert.match(row, /href="\/admin\/events\/[A-Za-z0-9_-]+"/);
    // a duplicate delivery is not a new event: nothing more is pushed
    const before = st.text().split('event: row').length;
    const again = payload('second');
    await deliver(again);
    await st.waitFor(/second/, 2000);
    await deliver(again);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(st.text().split('event: row').length, before + 1);
  });
});

/** Streams whose client left are noticed at the next write: make one. */
async function flushGone() {
  await deliver(payload('flush'));
  await new Promise((r) => setTimeout(r, 300));
}

test('limits: 4 streams per session (429), 32 in all (503), freed when clients leave', async () => {
  await flushGone(); // the earlier tests' streams
  const cookie = await signIn('bob');
  const mine = [];
  for (let i = 0; i < 4; i++) {
    const st = await openStream(cookie);
    assert.equal(st.status, 200, `stream ${i + 1}`);
    mine.push(st);
  }
  const fifth = await openStream(cookie);
  assert.equal(fifth.status, 429);
  assert.ok(Number(fifth.headers['retry-after']) > 0);
  await fifth.waitEnd();
  assert.match(fifth.text(), /too many live views open in this session \(at most 4\)/);
  // another session still gets its own
  const others = [];
  for (let i = 0; i < 8; i++) others.push(await signIn('alice'));
  const open = [...mine];
  let refused = null;
  for (const c of others) {
    for (let i = 0; i < 4 && !refused; i++) {
      const st = await openStream(c);
      if (st.status === 200) open.push(st);
      else refused = st;
    }
  }
  assert.ok(refused, 'the total limit answered');
  assert.equal(refused.status, 503);
  await refused.waitEnd();
  assert.match(refused.text(), /too many live views open on this server \(at most 32\)/);
  assert.equal(open.length, 32);
  // the clients leave; a write (here a new event) notices, and the slots free up
  for (const st of open) st.close();
  await new Promise((r) => setTimeout(r, 200));
  await deliver(payload('after they left'));
  let st = null;
  for (let i = 0; i < 50; i++) {
    st = await openStream(cookie);
    if (st.status === 200) break;
    st.close();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(st.status, 200);
  st.close();
});

test('an idle stream gets a heartbeat comment within 15 s and stays open', async () => {
  await withStream('alice', async (st) => {
    await st.waitFor(/: heartbeat\n\n/, 17000);
    assert.equal(st.ended(), false);
  });
});

/** The dashboard's CSRF token of the session @cookie. */
async function csrfOf(cookie) {
  const page = await (await fetch(`${base}/admin`, { headers: { cookie } })).text();
  return page.match(/name=csrf value="([^"]+)"/)[1];
}

test('signing out ends the session\'s streams at once; another session\'s stay', async () => {
  await flushGone();
  const cookie = await signIn('alice');
  const other = await signIn('alice');
  const st = await openStream(cookie);
  const kept = await openStream(other);
  try {
    assert.equal(st.status, 200);
    assert.equal(kept.status, 200);
    await st.waitFor(/retry:/);
    const out = await fetch(`${base}/admin/logout`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ csrf: await csrfOf(cookie) }),
    });
    assert.equal(out.status, 303);
    const t0 = Date.now();
    assert.ok(await st.waitEnd(2000), 'the signed-out stream ended');
    assert.ok(Date.now() - t0 < 2000);
    // the other session's stream still gets new rows; the ended one got none
    await deliver(payload('after the sign-out'));
    await kept.waitFor(/after the sign-out/, 2000);
    assert.doesNotMatch(st.text(), /after the sign-out/);
    assert.equal(kept.ended(), false);
    // the cookie no longer opens a stream
    const again = await openStream(cookie);
    assert.equal(again.status, 401);
    again.close();
  } finally {
    st.close();
    kept.close();
  }
});

test('a session removed behind serve\'s back (another instance, the store) ends its streams by the next heartbeat', async () => {
  await withStream('bob', async (st, cookie) => {
    const sid = cookie.slice('trellohook_session='.length);
    const idHash = createHash('sha256').update(sid).digest('hex');
    const db = s.env.DATABASE_URL.slice('sqlite:'.length);
    const r = spawnSync('sqlite3', [db, `DELETE FROM sessions WHERE id_hash = '${idHash}'; SELECT changes();`],
      { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1');
    const seen = st.text().length;
    assert.ok(await st.waitEnd(17000), 'the stream ended at the heartbeat');
    assert.doesNotMatch(st.text().slice(seen), /: heartbeat/, 'no heartbeat after the session went');
  });
});

test('the stream takes GET only and changes nothing', async () => {
  const cookie = await signIn('alice');
  const st = await openStream(cookie, { method: 'POST' });
  assert.equal(st.status, 405);
  assert.equal(st.headers.allow, 'GET');
  st.close();
});

test('serve stopped, an action on the board, serve started: the backfilled row reaches an open stream', async (t) => {
  // a stack of its own: the mock does not retry its failed delivery (600 s),
  // so the row can come from the startup backfill only
  const b = await startStack({ mockArgs: ['--retry-delays', '600'], env: { TRELLOHOOK_LOG_LEVEL: 'warn' } });
  const savedBase = base;
  t.after(async () => { base = savedBase; await b.stop(); });
  const r = th(b.env, ['user', 'add', 'alice'], `${PASSWORD}\n`);
  assert.equal(r.code, 0, r.stderr);
  const w = b.addWebhook();
  await b.serve.stop();
  const card = b.board.cards[0].id;
  const missed = await control(b.mock, 'POST', '/_mock/actions', {
    type: 'commentCard', idModel: card, text: 'missed <b>while down</b> Zoë',
  });
  // slow listings: the stream is open before the startup backfill stores
  await control(b.mock, 'POST', '/_mock/faults/actions', { mode: 'none', delay_ms: 1500, times: -1 });
  await b.restart();
  base = b.serve.url;
  const st = await openStream(await signIn('alice'));
  try {
    assert.equal(st.status, 200);
    await st.waitFor(/^retry: \d+\n/m);
    const stored = () => JSON.parse(th(b.env, ['events', 'ls', '--webhook', w.id, '--json']).stdout);
    assert.equal(stored().length, 0, 'nothing stored yet: the stream was open before the backfill');
    const text = await st.waitFor(/event: row\ndata: .*missed.*\n\n/, 15000);
    const row = text.match(/event: row\ndata: (.*missed.*)\n\n/)[1];
    assert.match(row, /^<tr>.*<\/tr>\s*$/);
    assert.match(row, /missed &lt;b&gt;while down&lt;\/b&gt; Zoë/);
    assert.doesNotMatch(row, /<b>/);
    const evs = stored();
    assert.equal(evs.length, 1);
    assert.equal(evs[0].action_id, missed.action.id);
    assert.equal(evs[0].source, 'backfill');
    assert.match(row, new RegExp(`href="/admin/events/${evs[0].id}"`));
    assert.equal(st.text().split('event: row').length, 2, 'one row, once');
  } finally {
    st.close();
    await control(b.mock, 'POST', '/_mock/faults/actions', { mode: 'none' });
  }
});

test('a serve stop ends open streams and does not wait for them', async () => {
  await flushGone();
  const cookie = await signIn('alice');
  const st = await openStream(cookie);
  assert.equal(st.status, 200);
  await st.waitFor(/retry:/);
  const t0 = Date.now();
  const r = await s.serve.stop();
  assert.equal(r.code, 0);
  assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms`);
  assert.ok(await st.waitEnd(2000), 'the stream ended');
  await s.restart();
});
