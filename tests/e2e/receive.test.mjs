// SPDX-License-Identifier: MIT
// The receive path end to end: trello-mock delivers, serve verifies, stores,
// dedupes and answers with exactly the status codes of INTERFACE.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { control } from './lib/mock.mjs';
import { root, th, thJson, trelloSignature, trellohookBin } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

let s;
let wh;

before(async () => {
  // No periodic health pass: its first run (2 s after start) reaches trello-mock
  // and would finish a removal the tests below leave pending on purpose, after
  // which a callback is rightly 404, not 410. Under load that pass landed
  // between `webhook rm` and the POST (the flake of issue 16).
  s = await startStack({ env: { TRELLOHOOK_MAX_BODY: '65536', TRELLOHOOK_HEALTH_INTERVAL: '0' } });
  wh = s.addWebhook();
});

after(async () => {
  await s?.stop();
});

const sample = (name) => readFileSync(path.join(root, 'tests/data/payloads', name));

/** POST @body (Buffer|string) to our callback, signed unless told otherwise. */
async function post(body, { sign = true, signature, url = wh.callback_url, headers = {} } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (signature !== undefined) h['x-trello-webhook'] = signature;
  else if (sign) h['x-trello-webhook'] = trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url);
  const r = await fetch(url, { method: 'POST', body, headers: h });
  return { status: r.status, text: await r.text() };
}

/** A distinct, valid delivery body built from a sample, with a new action id. */
let counter = 0;
function freshPayload(extra = '') {
  counter += 1;
  const doc = JSON.parse(sample('commentCard.json'));
  doc.action.id = (0x6000000000 + counter).toString(16).padStart(24, '0');
  doc.action.data.text = `comment ${counter} ${extra}`;
  return { id: doc.action.id, body: JSON.stringify(doc) };
}

function eventByAction(actionId) {
  return thJson(s.env, ['events', 'ls', '--limit', '1000']).find((e) => e.action_id === actionId);
}

test('webhook add registers through the real HEAD check', () => {
  assert.match(wh.callback_url, new RegExp(`^${s.env.CALLBACK_DOMAIN}/callbacks/[A-Za-z0-9_-]{20}$`));
  assert.ok(wh.trello_id);
});

test('a delivery from trello-mock is verified, stored and listed with its summary', async () => {
  const card = s.board.cards[0];
  const r = await s.act({ type: 'commentCard', idModel: card.id, text: 'Looks good 🚀 <b>bold</b>' });
  assert.equal(r.deliveries, 1);
  const attempts = (await control(s.mock, 'GET', '/_mock/deliveries')).filter((d) => d.action_id === r.action.id);
  assert.deepEqual(attempts.map((d) => d.status), [200]);
  const ev = eventByAction(r.action.id);
  assert.ok(ev, 'event stored');
  assert.equal(ev.webhook_id, wh.id);
  assert.equal(ev.action_type, 'commentCard');
  assert.match(ev.summary, /commented on ".*": Looks good 🚀 <b>bold<\/b>$/);
  const shown = thJson(s.env, ['events', 'show', ev.id]);
  assert.equal(JSON.parse(shown.payload).action.id, r.action.id);
});

test('the same action delivered twice is stored once and both get 200', async () => {
  const { id, body } = freshPayload();
  assert.equal((await post(body)).status, 200);
  assert.equal((await post(body)).status, 200);
  const all = thJson(s.env, ['events', 'ls', '--limit', '1000']).filter((e) => e.action_id === id);
  assert.equal(all.length, 1);
  const metrics = await (await fetch(`${s.serve.url}/metrics`)).text();
  assert.match(metrics, /trellohook_events_duplicate_total [1-9]/);
});

test('non-ASCII and HTML text round-trips byte for byte', async () => {
  // unusual spacing and key order on purpose: the stored bytes must be these bytes
  const { id, body } = freshPayload('Zoë Ångström <script>alert(1)</script> \u2028 "q" 🚀');
  const odd = body.replace('{"model"', '{  "model"').replace(/,"/g, ' ,\t"');
  assert.equal((await post(odd)).status, 200);
  const ev = eventByAction(id);
  const shown = thJson(s.env, ['events', 'show', ev.id]);
  assert.equal(shown.payload, odd);
});

test('signatures: missing, malformed, wrong secret, wrong URL all get 401 and store nothing', async () => {
  const { id, body } = freshPayload();
  const cases = [
    { sign: false },
    { signature: '' },
    { signature: 'not base64!' },
    { signature: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' },
    { signature: trelloSignature('another-secret-entirely', body, wh.callback_url) },
    { signature: trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url + '/') },
    { signature: trelloSignature(s.env.TRELLO_API_SECRET, body + ' ', wh.callback_url) },
  ];
  for (const c of cases) {
    const r = await post(body, c);
    assert.equal(r.status, 401, JSON.stringify(c));
    assert.match(r.text, /X-Trello-Webhook/);
  }
  assert.equal(eventByAction(id), undefined);
  const metrics = await (await fetch(`${s.serve.url}/metrics`)).text();
  for (const reason of ['signature_missing', 'signature_malformed', 'signature_mismatch'])
    assert.match(metrics, new RegExp(`reason="${reason}"} [1-9]`));
});

test('signed bodies that are not Trello payloads get 400 naming the problem', async () => {
  const bad = [
    ['{"action":', /not JSON/],
    ['[]', /object/],
    ['{}', /action/],
    ['{"action":{"id":5,"type":"x"}}', /action\.id/],
    ['{"action":{"id":"6123456789abcdef00010001"}}', /action\.type/],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /UTF-8/],
    ['['.repeat(500) + ']'.repeat(500), /deep|depth|nest/i],
  ];
  for (const [body, why] of bad) {
    const r = await post(body);
    assert.equal(r.status, 400, String(body).slice(0, 40));
    assert.match(r.text, why);
  }
});

test('unknown webhook 404, oversized body 413', async () => {
  const { body } = freshPayload();
  const url = wh.callback_url.replace(/[^/]+$/, 'ZZZZZZZZZZZZZZZZZZZZ');
  assert.equal((await post(body, { url })).status, 404);
  const big = freshPayload('x'.repeat(70000)).body;
  assert.equal((await post(big)).status, 413);
});

/** POST a fresh signed delivery to webhook @w; { status, id } (the action id). */
async function postTo(w, extra = '') {
  const { id, body } = freshPayload(extra);
  const r = await fetch(w.callback_url, {
    method: 'POST', body,
    headers: { 'x-trello-webhook': trelloSignature(s.env.TRELLO_API_SECRET, body, w.callback_url) },
  });
  return { status: r.status, id };
}

test('a removed webhook answers 410 so Trello deletes its side, from the first POST after rm', async () => {
  const other = s.addWebhook(s.board.cards[0].id);
  // serve has this webhook in its cache (2 s) as active when rm runs
  assert.equal((await postTo(other, 'before rm')).status, 200);
  // Trello unreachable: rm (another process) keeps the row as "removing"
  const down = th({ ...s.env, TRELLO_API_URL: 'http://127.0.0.1:9/1' }, ['webhook', 'rm', other.id]);
  assert.equal(down.code, 1, down.stderr);
  const shown = thJson(s.env, ['webhook', 'show', other.id]);
  assert.equal(shown.state, 'removing');
  assert.equal(shown.active, false);
  // at once, although the cache may still say active: the store refuses (410)
  const first = await postTo(other, 'after rm');
  assert.equal(first.status, 410);
  assert.equal(eventByAction(first.id), undefined, 'nothing stored after rm');
  const again = await postTo(other, 'after rm, again');
  assert.equal(again.status, 410);
  assert.equal(eventByAction(again.id), undefined);
  // nothing finished the removal behind the test's back (then 404 is right)
  assert.equal(thJson(s.env, ['webhook', 'show', other.id]).state, 'removing');
  // (which of the two refused it, the store or a cache entry that expired
  // meanwhile, depends on how long rm took; test_receive covers the store's)
});

test('webhook rm with Trello reachable: the first POST after it is refused and not stored', async () => {
  const gone = s.addWebhook(s.board.lists[0].id);
  assert.equal((await postTo(gone, 'cached')).status, 200);
  const rm = th(s.env, ['webhook', 'rm', gone.id]);
  assert.equal(rm.code, 0, rm.stderr);
  const first = await postTo(gone, 'after a finished rm');
  assert.ok([404, 410].includes(first.status), String(first.status));
  assert.equal(eventByAction(first.id), undefined, 'nothing stored after rm');
  // the cache forgot it: from now on plainly unknown
  assert.equal((await postTo(gone, 'later')).status, 404);
});

test('events ls filters and events tail follows new events', async () => {
  const types = thJson(s.env, ['events', 'ls', '--type', 'commentCard']);
  assert.ok(types.length > 0 && types.every((e) => e.action_type === 'commentCard'));
  assert.deepEqual(thJson(s.env, ['events', 'ls', '--type', 'noSuchType']), []);
  assert.ok(thJson(s.env, ['events', 'ls', '--webhook', wh.id, '--limit', '1']).length === 1);
  const tail = spawn(trellohookBin, ['events', 'tail', '--json'], { env: s.env });
  let out = '';
  tail.stdout.on('data', (d) => { out += d; });
  await new Promise((r) => setTimeout(r, 500));
  const { id, body } = freshPayload('tailed');
  assert.equal((await post(body)).status, 200);
  for (let i = 0; i < 50 && !out.includes(id); i++) await new Promise((r) => setTimeout(r, 100));
  tail.kill('SIGINT');
  assert.ok(out.includes(id), out);
});

test('the store unavailable gives 503, never 200', async () => {
  // hold SQLite's write lock from another process for longer than busy_timeout
  const db = s.env.DATABASE_URL.slice('sqlite:'.length);
  const locker = spawn('sqlite3', [db], { stdio: ['pipe', 'ignore', 'ignore'] });
  locker.stdin.write('PRAGMA busy_timeout=1000;\nBEGIN EXCLUSIVE;\nINSERT INTO schema_migrations(version, applied_at) VALUES (999999, 0);\n');
  await new Promise((r) => setTimeout(r, 300));
  const { id, body } = freshPayload();
  const r = await post(body);
  locker.stdin.end('ROLLBACK;\n');
  await new Promise((res) => locker.on('exit', res));
  assert.equal(r.status, 503);
  // after the lock is gone, Trello's retry succeeds
  assert.equal((await post(body)).status, 200);
  assert.ok(eventByAction(id));
});

test('clients that hang up before their answer leave serve answering the next POST', async () => {
  // Each request is complete on the wire; the client is gone before the group
  // commit answers, so the answer is made (or given up) for a closed socket —
  // the path where the request's memory is freed on its own thread.
  const url = new URL(wh.callback_url);
  await Promise.all(Array.from({ length: 40 }, (_, i) => new Promise((resolve) => {
    const p = freshPayload(`hang-up ${i}`);
    const sig = trelloSignature(s.env.TRELLO_API_SECRET, p.body, wh.callback_url);
    const sock = net.connect(Number(url.port), url.hostname, () => {
      sock.write(`POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Content-Type: application/json\r\nX-Trello-Webhook: ${sig}\r\n` +
        `Content-Length: ${Buffer.byteLength(p.body)}\r\n\r\n${p.body}`, () => {
        if (i % 2) sock.destroy(); else sock.end(); // a reset, or a half-close
        resolve();
      });
    });
    sock.on('error', () => resolve());
  })));
  const { id, body } = freshPayload('after the hang-ups');
  assert.equal((await post(body)).status, 200);
  assert.ok(eventByAction(id));
  assert.equal(s.serve.proc.exitCode, null, 'serve is still running');
  const health = await fetch(`${s.env.CALLBACK_DOMAIN}/healthz`);
  assert.equal(health.status, 200);
});

test('crash: kill -9 during a burst loses no event that got 200', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const acked = [];
  let sent = 0;
  const total = 3000;
  const payloads = Array.from({ length: total }, () => freshPayload('burst'));
  const sendOne = (p) => new Promise((resolve) => {
    const sig = trelloSignature(s.env.TRELLO_API_SECRET, p.body, wh.callback_url);
    const req = http.request(wh.callback_url, { method: 'POST', agent, headers: { 'x-trello-webhook': sig, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) acked.push(p.id); resolve(); });
    });
    req.on('error', () => resolve());
    req.end(p.body);
  });
  let killed = false;
  const workers = Array.from({ length: 32 }, async () => {
    while (sent < total) {
      const p = payloads[sent++];
      await sendOne(p);
      if (!killed && acked.length >= 800) {
        killed = true;
        s.serve.proc.kill('SIGKILL');
      }
    }
  });
  await Promise.all(workers);
  agent.destroy();
  assert.ok(killed, 'the server was killed mid-burst');
  await s.serve.stop();
  await s.restart();
  const db = s.env.DATABASE_URL.slice('sqlite:'.length);
  const rows = spawnSync('sqlite3', [db, 'SELECT action_id FROM events'], { encoding: 'utf8' });
  assert.equal(rows.status, 0, rows.stderr);
  const stored = new Set(rows.stdout.split('\n'));
  const lost = acked.filter((id) => !stored.has(id));
  assert.ok(acked.length >= 800, `acked ${acked.length}`);
  assert.deepEqual(lost, [], `${lost.length} acknowledged events lost of ${acked.length}`);
});

// Harder: three kill -9s in a row under 64 connections, each landing while
// batches are being inserted and synced (written for the pipelined commit,
// since reverted; kept for the group commit as it is); after each restart
// every event that got 200 is there and the database is intact.
test('crash: three kill -9s under 64 connections lose nothing acknowledged and leave the database intact', async () => {
  const db = s.env.DATABASE_URL.slice('sqlite:'.length);
  const acked = [];
  for (let cycle = 0; cycle < 3; cycle++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const total = 1500;
    const payloads = Array.from({ length: total }, () => freshPayload(`kill${cycle}`));
    const before = acked.length;
    let sent = 0;
    let killed = false;
    const sendOne = (p) => new Promise((resolve) => {
      const sig = trelloSignature(s.env.TRELLO_API_SECRET, p.body, wh.callback_url);
      const req = http.request(wh.callback_url, { method: 'POST', agent, headers: { 'x-trello-webhook': sig, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => { if (res.statusCode === 200) acked.push(p.id); resolve(); });
      });
      req.on('error', () => resolve());
      req.end(p.body);
    });
    const workers = Array.from({ length: 64 }, async () => {
      while (sent < total) {
        await sendOne(payloads[sent++]);
        if (!killed && acked.length - before >= 300 + 100 * cycle) {
          killed = true;
          s.serve.proc.kill('SIGKILL');
        }
      }
    });
    await Promise.all(workers);
    agent.destroy();
    assert.ok(killed, `cycle ${cycle}: the server was killed mid-burst`);
    await s.serve.stop();
    await s.restart();
    const rows = spawnSync('sqlite3', [db, 'SELECT action_id FROM events'], { encoding: 'utf8' });
    assert.equal(rows.status, 0, rows.stderr);
    const stored = new Set(rows.stdout.split('\n'));
    const lost = acked.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `cycle ${cycle}: ${lost.length} acknowledged events lost of ${acked.length}`);
    const check = spawnSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' });
    assert.equal(check.stdout.trim(), 'ok', `cycle ${cycle}: ${check.stdout}${check.stderr}`);
  }
  assert.ok(acked.length >= 900, `acked ${acked.length}`);
});
