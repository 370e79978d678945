// SPDX-License-Identifier: MIT
// Handlers end to end: real `trellohook serve` processes, real shell commands
// and real HTTP receivers (node:http on 127.0.0.1). Events arrive as signed
// POSTs to /callbacks/{id} of a webhook row written into the test's store
// (sqlite3 or psql, by the schema of src/store/migrations_*.h).
//
// The same tests run on PostgreSQL: dispatch_pg.test.mjs sets
// TH_DISPATCH_BACKEND=postgresql and imports this file; every test then gets
// a fresh database on a throwaway cluster (scripts/pg.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { baseEnv, root, startServe, tempDir, th, thJson, trelloSignature, TEST_SECRET } from './lib/serve.mjs';

const ON_PG = process.env.TH_DISPATCH_BACKEND === 'postgresql';
const PG = path.join(root, 'scripts', 'pg.sh');
let pgCluster = null;
let pgUrl = null;
let pgDbs = 0;
if (ON_PG) {
  before(() => {
    // directly under /tmp: pg.sh runs the server as the postgres user
    pgCluster = mkdtempSync('/tmp/th-dispatch-pg-');
    const r = spawnSync(PG, ['start', pgCluster], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scripts/pg.sh start failed: ${r.stderr}`);
    pgUrl = r.stdout.trim();
  });
  after(() => {
    if (!pgCluster) return;
    spawnSync(PG, ['stop', pgCluster]);
    rmSync(pgCluster, { recursive: true, force: true });
  });
}

/** Run @sql on the test's store (the SQLite file or the PostgreSQL database). */
function storeSql(env, sql) {
  const r = ON_PG
    ? spawnSync('psql', [env.DATABASE_URL, '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' })
    : spawnSync('sqlite3', [env.DATABASE_URL.slice('sqlite:'.length), sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** A DATABASE_URL for one test: a fresh PostgreSQL database, or none (SQLite in the temp dir). */
function freshDatabase() {
  if (!ON_PG) return {};
  pgDbs += 1;
  const name = `th_dispatch_${process.pid}_${pgDbs}`;
  const r = spawnSync('psql', [pgUrl, '-qAt', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { DATABASE_URL: pgUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`) };
}

const BOARD = '6123456789abcdef01234567';
const OTHER_BOARD = '6123456789abcdef0000ffff';
const LIST_A = '6123456789abcdef0000aa01';
const LIST_B = '6123456789abcdef0000aa02';
const CARD = '6123456789abcdef0000cc07';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex24 = () => randomBytes(12).toString('hex');

/** Poll @fn until it returns a truthy value (returned) or fail after @ms. */
async function waitFor(fn, ms = 10000, what = 'condition') {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A Trello-like payload. */
function payload(type, { id = hex24(), board = BOARD, card = CARD, list = LIST_A, old, text } = {}) {
  const data = {
    board: { id: board, name: 'Roadmap 2027', shortLink: 'Rm27xQp9' },
    card: { id: card, name: 'Ship it — ünïcödé', idList: list, shortLink: 'Cd42kLm8' },
    list: { id: list, name: 'To do' },
  };
  if (old) data.old = old;
  if (text) data.text = text;
  if (type === 'updateCard' && old?.idList) {
    data.listBefore = { id: old.idList, name: 'To do' };
    data.listAfter = { id: list, name: 'Doing' };
    delete data.list;
  }
  return JSON.stringify({
    model: { id: board, name: 'Roadmap 2027' },
    action: {
      id, type, date: '2026-11-20T10:41:34.244Z', idMemberCreator: '5e3b1c9f8a7d6e5f4a3b2c1d',
      data, memberCreator: { id: '5e3b1c9f8a7d6e5f4a3b2c1d', fullName: 'Zoë Ångström', username: 'zoe' },
    },
  });
}

/**
 * A store with one webhook row, and (unless serve: false) a running serve.
 * Returns { env, dir, webhookId, callbackURL, serve, post(body), stop() }.
 */
async function setup(extraEnv = {}, { serve: startIt = true } = {}) {
  const tmp = tempDir('th-dispatch-');
  const env = baseEnv(tmp.dir, {
    TRELLOHOOK_RETRY_SCHEDULE: '100ms,200ms',
    TRELLOHOOK_LOG_LEVEL: 'warn',
    ...freshDatabase(),
    ...extraEnv,
  });
  const m = th(env, ['migrate']);
  assert.equal(m.code, 0, m.stderr);
  const webhookId = randomBytes(15).toString('base64url');
  const callbackURL = `http://127.0.0.1:1/callbacks/${webhookId}`;
  storeSql(env, `INSERT INTO webhooks (id, id_model, model_type, callback_url, token, state, active, created_at)
     VALUES ('${webhookId}', '${BOARD}', 'board', '${callbackURL}', 'tok-${webhookId}', 'active', ${ON_PG ? 'true' : 1}, 1)`);
  const s = {
    env, dir: tmp.dir, webhookId, callbackURL, serve: null,
    async start(extra = {}) {
      s.serve = await startServe({ ...env, ...extra });
      return s.serve;
    },
    /** POST a signed body; resolves with the HTTP status. */
    async post(body) {
      const r = await fetch(`${s.serve.url}/callbacks/${webhookId}`, {
        method: 'POST', body,
        headers: { 'X-Trello-Webhook': trelloSignature(TEST_SECRET, body, callbackURL), 'Content-Type': 'application/json' },
      });
      await r.arrayBuffer();
      return r.status;
    },
    deliveries: (args = []) => thJson(env, ['deliveries', 'ls', ...args]),
    handlerAdd: (args) => thJson(env, ['handler', 'add', ...args]),
    async stop() {
      if (s.serve) await s.serve.stop();
      tmp.cleanup();
    },
  };
  if (startIt) await s.start();
  return s;
}

/** Events stored so far (newest first), via the CLI. */
const events = (s) => thJson(s.env, ['events', 'ls', '--limit', '1000']);

/** Wait until no delivery is pending, running or failed. */
const settled = (s, ms = 15000) => waitFor(() => {
  const ds = s.deliveries();
  return ds.length && ds.every((d) => d.status === 'done' || d.status === 'dead') ? ds : null;
}, ms, 'deliveries to settle');

/** A loopback receiver answering with @answer(req, body) → status. Records requests. */
async function receiver(answer = () => 200) {
  const got = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      got.push({ headers: req.headers, body, method: req.method, url: req.url });
      res.statusCode = answer(req, body, got.length);
      res.end(res.statusCode >= 300 ? 'receiver says no\n' : 'ok');
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}/hook`, got, server: srv,
    close: () => new Promise((r) => { srv.close(r); srv.closeAllConnections?.(); }) };
}

test('an exec handler gets the exact payload bytes on stdin and the TRELLO_* variables, not our secrets', async () => {
  const s = await setup({ TRELLO_API_KEY: 'a'.repeat(32), TRELLOHOOK_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') });
  try {
    const h = s.handlerAdd(['--exec', `cat > "${s.dir}/in.$TRELLO_EVENT_ID"; env > "${s.dir}/env.$TRELLO_EVENT_ID"`]);
    assert.equal(h.kind, 'exec');
    assert.equal(h.enabled, true);
    // odd but valid JSON formatting and non-ASCII text must survive byte for byte
    const body = payload('updateCard', { list: LIST_B, old: { idList: LIST_A } }).replace('{"model"', '{ \n\t"model"');
    assert.equal(await s.post(body), 200);
    const [ev] = await waitFor(() => { const e = events(s); return e.length ? e : null; });
    const ds = await settled(s);
    assert.equal(ds.length, 1);
    assert.equal(ds[0].status, 'done');
    assert.equal(ds[0].attempts, 1);
    assert.equal(ds[0].event_id, ev.id);
    assert.equal(ds[0].handler_id, h.id);
    assert.deepEqual(Object.keys(ds[0]).slice(0, 8).sort(),
      ['attempts', 'event_id', 'handler_id', 'id', 'last_error', 'next_attempt_at', 'status', 'updated_at'].slice(0, 8).sort());
    assert.ok(readFileSync(path.join(s.dir, `in.${ev.id}`)).equals(Buffer.from(body)));
    const vars = Object.fromEntries(readFileSync(path.join(s.dir, `env.${ev.id}`), 'utf8')
      .split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(vars.TRELLO_EVENT_ID, ev.id);
    assert.equal(vars.TRELLO_ACTION_ID, ev.action_id);
    assert.equal(vars.TRELLO_ACTION_TYPE, 'updateCard');
    assert.equal(vars.TRELLO_WEBHOOK_ID, s.webhookId);
    assert.equal(vars.TRELLO_MODEL_ID, BOARD);
    assert.equal(vars.TRELLO_BOARD_ID, BOARD);
    assert.equal(vars.TRELLO_LIST_ID, LIST_B);
    assert.equal(vars.TRELLO_CARD_ID, CARD);
    assert.equal(vars.TRELLO_SUMMARY, ev.summary);
    assert.match(vars.TRELLO_SUMMARY, /Zoë Ångström moved/);
    assert.equal(vars.PATH, process.env.PATH);
    for (const secret of ['TRELLO_API_SECRET', 'TRELLO_API_KEY', 'TRELLOHOOK_SECRET_KEY', 'DATABASE_URL', 'CALLBACK_DOMAIN']) {
      assert.equal(vars[secret], undefined, `${secret} leaked to the handler`);
    }
    const text = readFileSync(path.join(s.dir, `env.${ev.id}`), 'utf8');
    assert.ok(!text.includes(TEST_SECRET), 'the API secret appears in the handler environment');
  } finally { await s.stop(); }
});

test('a command of plain words runs without a shell and gets the same environment and stdin as one that needs the shell', async () => {
  const s = await setup({ TRELLO_API_KEY: 'a'.repeat(32), TRELLOHOOK_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') });
  try {
    const d = s.dir;
    // run directly: only words and quotes (docs/handlers.md)
    s.handlerAdd(['--exec', `cp /proc/self/environ '${d}/env.direct'`]);
    s.handlerAdd(['--exec', `tee '${d}/in.direct'`]);
    const quoted = s.handlerAdd(['--exec', `/usr/bin/printf %s/ 'Roadmap 2027' "it's \\"done\\"" a\\ b '' Zoë`]);
    // also directly: words and plain file redirections, done by the spawn as sh does them
    s.handlerAdd(['--exec', `cat >${d}/in.redir 2>&1`]);
    s.handlerAdd(['--exec', `tee ${d}/in.tee >>${d}/in.append`]);
    // through /bin/sh -c: a list and redirections
    s.handlerAdd(['--exec', `cp /proc/self/environ "${d}/env.shell"; cat > "${d}/in.shell"`]);
    const body = payload('commentCard', { text: 'ünïcödé \u0001 "quotes" $HOME `x`' });
    assert.equal(await s.post(body), 200);
    const ds = await settled(s);
    assert.equal(ds.length, 6);
    assert.ok(ds.every((x) => x.status === 'done'), JSON.stringify(ds));
    const [ev] = events(s);
    const vars = (f) => readFileSync(path.join(d, f), 'latin1').split('\0').filter(Boolean).sort();
    const direct = vars('env.direct');
    assert.deepEqual(direct, vars('env.shell'));
    const names = direct.map((l) => l.slice(0, l.indexOf('=')));
    for (const want of ['TRELLO_EVENT_ID', 'TRELLO_ACTION_ID', 'TRELLO_ACTION_TYPE', 'TRELLO_WEBHOOK_ID',
      'TRELLO_MODEL_ID', 'TRELLO_BOARD_ID', 'TRELLO_SUMMARY', 'PATH', 'PWD']) {
      assert.ok(names.includes(want), `${want} missing: ${names}`);
    }
    assert.ok(direct.includes(`TRELLO_EVENT_ID=${ev.id}`));
    for (const secret of ['TRELLO_API_SECRET', 'TRELLO_API_KEY', 'TRELLOHOOK_SECRET_KEY', 'DATABASE_URL', 'CALLBACK_DOMAIN']) {
      assert.ok(!names.includes(secret), `${secret} leaked to the handler`);
    }
    assert.ok(readFileSync(path.join(d, 'in.direct')).equals(Buffer.from(body)));
    assert.ok(readFileSync(path.join(d, 'in.shell')).equals(Buffer.from(body)));
    for (const f of ['in.redir', 'in.tee', 'in.append']) {
      assert.ok(readFileSync(path.join(d, f)).equals(Buffer.from(body)), f);
    }
    const q = ds.find((x) => x.handler_id === quoted.id);
    assert.equal(q.last_error, `Roadmap 2027/it's "done"/a b//Zoë/`);
  } finally { await s.stop(); }
});

test('filters: --on types (with updateCard:idList for moves) and --model select what each handler gets', async () => {
  const s = await setup();
  try {
    const comment = s.handlerAdd(['--exec', 'true', '--on', 'commentCard']);
    const moves = s.handlerAdd(['--exec', 'true', '--on', 'updateCard:idList']);
    const several = s.handlerAdd(['--exec', 'true', '--on', 'commentCard,createCard']);
    const otherBoard = s.handlerAdd(['--exec', 'true', '--model', OTHER_BOARD]);
    const card = s.handlerAdd(['--exec', 'true', '--model', CARD, '--on', 'updateCard']);
    const all = s.handlerAdd(['--exec', 'true']);
    const bodies = {
      comment: payload('commentCard', { text: 'hi' }),
      rename: payload('updateCard', { old: { name: 'old name' } }),
      move: payload('updateCard', { list: LIST_B, old: { idList: LIST_A } }),
      create: payload('createCard', { card: hex24() }),
    };
    for (const b of Object.values(bodies)) assert.equal(await s.post(b), 200);
    const ds = await settled(s);
    const evs = events(s);
    const typeOf = {};
    for (const e of evs) {
      const name = Object.entries(bodies).find(([, b]) => JSON.parse(b).action.id === e.action_id)[0];
      typeOf[e.id] = name;
    }
    const got = (h) => ds.filter((d) => d.handler_id === h.id).map((d) => typeOf[d.event_id]).sort();
    assert.deepEqual(got(comment), ['comment']);
    assert.deepEqual(got(moves), ['move']);
    assert.deepEqual(got(several), ['comment', 'create']);
    assert.deepEqual(got(otherBoard), []);
    assert.deepEqual(got(card), ['move', 'rename']);
    assert.deepEqual(got(all), ['comment', 'create', 'move', 'rename']);
    assert.ok(ds.every((d) => d.status === 'done'));
  } finally { await s.stop(); }
});

test('handler add validates its arguments (exit 2) and ls/rm manage handlers; the forward secret shows once', async () => {
  const s = await setup({}, { serve: false });
  try {
    const bad = [
      ['--exec', 'true', '--on', 'comment Card'],
      ['--exec', 'true', '--on', 'commentCard,'],
      ['--exec', 'true', '--on', 'updateCard:'],
      ['--exec', 'true', '--on', 'update-Card'],
      ['--exec', 'true', '--model', 'not-an-id'],
      ['--exec', 'true', '--model', '6123456789abcdef0123456'],
      ['--forward', 'ftp://example.com/x'],
      ['--forward', 'http://'],
      ['--forward', 'https://exa mple.com/'],
      ['--forward', 'file:///etc/passwd'],
      ['--exec', 'true', '--forward', 'http://127.0.0.1/'],
      [],
      ['--exec'],
      ['--exec', 'true', 'extra'],
    ];
    for (const args of bad) {
      const r = th(s.env, ['handler', 'add', ...args]);
      assert.equal(r.code, 2, `handler add ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: /);
    }
    assert.deepEqual(thJson(s.env, ['handler', 'ls']), []);
    const f = s.handlerAdd(['--forward', 'https://example.com/hook', '--on', 'createCard', '--model', BOARD]);
    assert.match(f.secret, /^whsec_[A-Za-z0-9+/=]{32}$/);
    assert.deepEqual({ ...f, id: 'X', created_at: 'T', secret: 'S' }, {
      id: 'X', kind: 'forward', target: 'https://example.com/hook', on: 'createCard', model: BOARD,
      enabled: true, created_at: 'T', secret: 'S',
    });
    const text = th(s.env, ['handler', 'add', '--forward', 'http://127.0.0.1:9/x']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /whsec_/);
    const ls = thJson(s.env, ['handler', 'ls']);
    assert.equal(ls.length, 2);
    const lsText = th(s.env, ['handler', 'ls']).stdout;
    for (const h of ls) {
      assert.ok(!h.secret.startsWith('whsec_') || h.secret.length < 20, 'secret not masked in ls');
    }
    assert.ok(!lsText.includes(f.secret) && !JSON.stringify(ls).includes(f.secret));
    assert.equal(th(s.env, ['handler', 'rm', f.id]).code, 0);
    assert.equal(th(s.env, ['handler', 'rm', f.id]).code, 1);
    assert.equal(thJson(s.env, ['handler', 'ls']).length, 1);
    assert.equal(th(s.env, ['deliveries', 'ls', '--status', 'bogus']).code, 2);
    assert.equal(th(s.env, ['deliveries', 'retry', 'nope-nope-nope-nope']).code, 1);
    assert.equal(th(s.env, ['events', 'replay', 'nope-nope-nope-nope']).code, 1);
    assert.equal(th(s.env, ['handler', 'add', '--help']).code, 0);
    assert.equal(th(s.env, ['deliveries', 'ls', '--help']).code, 0);
  } finally { await s.stop(); }
});

test('a failing command and a 500-answering receiver are retried on the schedule and end dead; retry and replay deliver again', async () => {
  const s = await setup();
  let healthy = false;
  const rcv = await receiver(() => (healthy ? 200 : 500));
  try {
    const flag = path.join(s.dir, 'ok');
    const cmd = s.handlerAdd(['--exec', `echo boom >&2; test -e "${flag}"`]);
    const fwd = s.handlerAdd(['--forward', rcv.url]);
    const t0 = Date.now();
    assert.equal(await s.post(payload('commentCard', { text: 'x' })), 200);
    const ds = await settled(s);
    const took = Date.now() - t0;
    assert.equal(ds.length, 2);
    for (const d of ds) {
      assert.equal(d.status, 'dead', JSON.stringify(d));
      assert.equal(d.attempts, 3); // 2 delays in the schedule + 1
      assert.equal(d.next_attempt_at, null);
    }
    assert.ok(took >= 250, `retries came too fast (${took} ms)`);
    const dc = ds.find((d) => d.handler_id === cmd.id);
    const df = ds.find((d) => d.handler_id === fwd.id);
    assert.match(dc.last_error, /exit status 1/);
    assert.match(dc.last_error, /boom/);
    assert.match(df.last_error, /500/);
    assert.equal(rcv.got.length, 3);
    assert.equal(thJson(s.env, ['deliveries', 'ls', '--status', 'dead']).length, 2);
    assert.equal(thJson(s.env, ['deliveries', 'ls', '--status', 'done']).length, 0);

    // fix both, retry by hand: done
    healthy = true;
    writeFileSync(flag, '');
    for (const d of ds) assert.equal(th(s.env, ['deliveries', 'retry', d.id]).code, 0);
    const after = await settled(s);
    assert.ok(after.every((d) => d.status === 'done'), JSON.stringify(after));
    assert.equal(rcv.got.length, 4);

    // replay: new deliveries of the event to both handlers
    const [ev] = events(s);
    const r = thJson(s.env, ['events', 'replay', ev.id]);
    assert.equal(r.deliveries, 2);
    const again = await waitFor(() => {
      const all = s.deliveries();
      return all.length === 4 && all.every((d) => d.status === 'done') ? all : null;
    }, 10000, 'replayed deliveries');
    assert.equal(new Set(again.map((d) => d.id)).size, 4);
    assert.equal(rcv.got.length, 5);
    // a done delivery can be retried too
    assert.equal(th(s.env, ['deliveries', 'retry', ds[0].id]).code, 0);
    await waitFor(() => s.deliveries().every((d) => d.status === 'done'), 10000, 'retried done delivery');
  } finally { await rcv.close(); await s.stop(); }
});

test('forwards are signed per Standard Webhooks (verified independently); 410 disables the handler', async () => {
  const s = await setup();
  const rcv = await receiver((req, body, n) => (req.url === '/gone' ? 410 : 204));
  try {
    const h = s.handlerAdd(['--forward', rcv.url]);
    const body = payload('createCard', { card: hex24() });
    assert.equal(await s.post(body), 200);
    await settled(s);
    const [ev] = events(s);
    assert.equal(rcv.got.length, 1);
    const { headers, body: got, method } = rcv.got[0];
    assert.equal(method, 'POST');
    assert.ok(got.equals(Buffer.from(body)), 'forwarded bytes differ');
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['webhook-id'], ev.id);
    const ts = Number(headers['webhook-timestamp']);
    assert.ok(Math.abs(ts - Date.now() / 1000) < 30, `timestamp ${ts}`);
    // Standard Webhooks: v1,base64(HMAC-SHA256(base64decode(secret sans whsec_), id.ts.body))
    const key = Buffer.from(h.secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`), got]))
      .digest('base64');
    const sigs = headers['webhook-signature'].split(' ');
    assert.ok(sigs.includes(`v1,${expected}`), `signature ${headers['webhook-signature']} != v1,${expected}`);
    // a wrong key does not verify (the check above can fail)
    const wrong = createHmac('sha256', Buffer.alloc(24)).update(`${ev.id}.${ts}.`).update(got).digest('base64');
    assert.ok(!sigs.includes(`v1,${wrong}`));

    // 410 Gone: delivery dead after one attempt, handler disabled, no more deliveries
    const gone = s.handlerAdd(['--forward', rcv.url.replace('/hook', '/gone')]);
    assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    await settled(s);
    const dg = s.deliveries().filter((d) => d.handler_id === gone.id);
    assert.equal(dg.length, 1);
    assert.equal(dg[0].status, 'dead');
    assert.equal(dg[0].attempts, 1);
    assert.match(dg[0].last_error, /410/);
    const listed = thJson(s.env, ['handler', 'ls']).find((x) => x.id === gone.id);
    assert.equal(listed.enabled, false);
    assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    await settled(s);
    assert.equal(s.deliveries().filter((d) => d.handler_id === gone.id).length, 1);
    // metrics count attempts by handler and outcome
    const metrics = await (await fetch(`${s.serve.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`trellohook_delivery_attempts_total\\{handler="${h.id}",kind="forward",outcome="done"\\} 3`));
    assert.match(metrics, new RegExp(`trellohook_delivery_attempts_total\\{handler="${gone.id}",kind="forward",outcome="dead"\\} 1`));
    assert.match(metrics, /trellohook_deliveries\{status="pending"\} 0/);
  } finally { await rcv.close(); await s.stop(); }
});

/** The handler row's stored secret, straight from the database. */
const storedSecret = (s, id) => storeSql(s.env, `SELECT secret FROM handlers WHERE id = '${id}'`).trim();

/** Does the forwarded request @got verify with @secret (Standard Webhooks v1)? */
function verifies(got, secret) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const { headers, body } = got;
  const mac = createHmac('sha256', key)
    .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`).update(body).digest('base64');
  return headers['webhook-signature'].split(' ').includes(`v1,${mac}`);
}

test('with TRELLOHOOK_SECRET_KEY a forward secret is stored sealed, opened to sign, never listed whole', async () => {
  const key = Buffer.alloc(32, 9).toString('base64');
  const s = await setup({ TRELLOHOOK_SECRET_KEY: key });
  const rcv = await receiver(() => 204);
  try {
    const h = s.handlerAdd(['--forward', rcv.url]);
    assert.match(h.secret, /^whsec_[A-Za-z0-9+/=]{32}$/);
    const row = storedSecret(s, h.id);
    assert.match(row, /^enc:v1:[A-Za-z0-9+/=]+$/);
    assert.ok(!row.includes(h.secret) && !row.includes(h.secret.slice(6)), `row holds the secret: ${row}`);
    // two handlers with the same plain secret would still look different: a fresh nonce
    assert.notEqual(storedSecret(s, s.handlerAdd(['--forward', rcv.url + '2']).id), row);
    const ls = th(s.env, ['handler', 'ls', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(!ls.stdout.includes(h.secret.slice(6)), 'ls shows the secret');
    const mine = JSON.parse(ls.stdout).find((x) => x.id === h.id);
    assert.match(mine.secret, /^whse…/, 'ls masks the opened secret');

    assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    await settled(s);
    const got = rcv.got.filter((g) => g.url === '/hook');
    assert.equal(got.length, 1);
    assert.ok(verifies(got[0], h.secret), 'the forward does not verify with the secret shown at add');
    assert.ok(!verifies(got[0], 'whsec_' + Buffer.alloc(24).toString('base64')));
    assert.equal(storedSecret(s, h.id), row, 'dispatch rewrote the row');
  } finally { await rcv.close(); await s.stop(); }
});

test('forward secrets stored before the key was set are sealed at start; without the key they fail to open', async () => {
  const key = Buffer.alloc(32, 11).toString('base64');
  const s = await setup({}, { serve: false });
  const rcv = await receiver(() => 204);
  try {
    const h = s.handlerAdd(['--forward', rcv.url]);
    assert.equal(storedSecret(s, h.id), h.secret, 'without a key the secret is stored as it is');
    await s.start({ TRELLOHOOK_SECRET_KEY: key, TRELLOHOOK_LOG_LEVEL: 'info' });
    const row = await waitFor(() => {
      const r = storedSecret(s, h.id);
      return r.startsWith('enc:v1:') ? r : null;
    }, 10000, 'the plain row to be sealed');
    assert.ok(!row.includes(h.secret.slice(6)));
    const keyed = { ...s.env, TRELLOHOOK_SECRET_KEY: key };
    const post = async () => {
      const before = rcv.got.length;
      assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
      return waitFor(() => {
        const ds = thJson(keyed, ['deliveries', 'ls']);
        return rcv.got.length > before || ds.some((d) => d.status === 'failed' || d.status === 'dead') ? ds : null;
      }, 15000, 'the forward');
    };
    await post();
    assert.equal(rcv.got.length, 1);
    assert.ok(verifies(rcv.got[0], h.secret), 'the sealed-at-start secret does not sign as before');
    await s.serve.stop();
    s.serve = null;

    // serving without the key: the delivery fails and says why; nothing is sent unsigned
    await s.start();
    const ds = await post();
    assert.equal(rcv.got.length, 1, 'a forward went out without its secret');
    const bad = ds.find((d) => d.status !== 'done');
    assert.ok(bad, JSON.stringify(ds));
    assert.match(bad.last_error, /signing secret.*encrypted.*TRELLOHOOK_SECRET_KEY/);
    // listings without the key show the sealed form, masked
    assert.match(th(s.env, ['handler', 'ls']).stdout, /enc:…/);
  } finally { await rcv.close(); await s.stop(); }
});

test('deliveries of one webhook to one handler start in the order the events were received', async () => {
  const s = await setup({ TRELLOHOOK_WORKERS: '8', TRELLOHOOK_HANDLER_CONCURRENCY: '8' });
  try {
    const out = path.join(s.dir, 'order');
    // a random sleep would reorder them if several ran at once
    s.handlerAdd(['--exec', `sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 5 )); echo "$TRELLO_ACTION_ID" >> "${out}"`]);
    const ids = [];
    for (let i = 0; i < 12; i++) {
      const id = `6123456789abcdef0000${String(i).padStart(4, '0')}`;
      ids.push(id);
      assert.equal(await s.post(payload('commentCard', { id, text: `#${i}` })), 200);
    }
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').trim().split('\n').length === 12, 15000, 'all 12 runs');
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n'), ids);
  } finally { await s.stop(); }
});

test('a server killed with pending deliveries finishes them after a restart', async () => {
  const s = await setup({ TRELLOHOOK_HANDLER_TIMEOUT: '1s', TRELLOHOOK_WORKERS: '1' });
  try {
    const out = path.join(s.dir, 'done');
    s.handlerAdd(['--exec', `sleep 0.3; echo "$TRELLO_ACTION_ID" >> "${out}"`]);
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const id = hex24();
      ids.push(id);
      assert.equal(await s.post(payload('commentCard', { id })), 200);
    }
    await waitFor(() => existsSync(out), 5000, 'the first run');
    await s.serve.stop('SIGKILL');
    const before = s.deliveries();
    assert.ok(before.some((d) => d.status === 'pending'), JSON.stringify(before));
    await s.start();
    const ds = await settled(s, 20000);
    assert.equal(ds.length, 6);
    assert.ok(ds.every((d) => d.status === 'done'), JSON.stringify(ds));
    await sleep(400); // a run orphaned by the kill may still be writing
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual([...new Set(lines)].sort(), [...ids].sort());
  } finally { await s.stop(); }
});

test('after kill -9 the running delivery is recovered at start-up, not after its lease', async () => {
  // handler timeout 30 s: the lease of a delivery claimed alone is 65 s
  const s = await setup({ TRELLOHOOK_HANDLER_TIMEOUT: '30s', TRELLOHOOK_WORKERS: '1' });
  try {
    const started = path.join(s.dir, 'started');
    const out = path.join(s.dir, 'done');
    // the first run hangs (it is the one the kill interrupts), later ones finish
    s.handlerAdd(['--exec', `if [ ! -e "${started}" ]; then touch "${started}"; sleep 20; exit 1; fi; echo "$TRELLO_ACTION_ID" >> "${out}"`]);
    const ids = [hex24(), hex24()];
    for (const id of ids) assert.equal(await s.post(payload('commentCard', { id })), 200);
    await waitFor(() => existsSync(started), 5000, 'the first run');
    await s.serve.stop('SIGKILL');
    const before = s.deliveries();
    assert.ok(before.some((d) => d.status === 'running'), JSON.stringify(before));
    const t0 = Date.now();
    await s.start();
    const ds = await settled(s, 15000);
    assert.ok(Date.now() - t0 < 15000, 'well within the lease');
    assert.equal(ds.length, 2);
    assert.ok(ds.every((d) => d.status === 'done'), JSON.stringify(ds));
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual([...new Set(lines)].sort(), [...ids].sort());
  } finally { await s.stop(); } // the killed run's orphaned sleep ends by itself
});

test('a delivery that waited behind others of its claim still has a whole timeout of lease when it starts', async () => {
  // One worker, four handlers: one event makes four deliveries that can all
  // run at once, claimed together; three wait while the first runs. Each
  // runs 2 s against a 4 s timeout, so the last starts ~6 s after the claim:
  // a lease of timeout + 5 s would have 3 s left then, less than the run may
  // take, and another process could take the delivery while it still runs.
  const s = await setup({ TRELLOHOOK_HANDLER_TIMEOUT: '4s', TRELLOHOOK_WORKERS: '1' });
  try {
    const hs = [0, 1, 2, 3].map((i) => {
      const mark = path.join(s.dir, `start-${i}`);
      return { mark, id: s.handlerAdd(['--exec', `date +%s%3N > '${mark}'; sleep 2`]).id };
    });
    assert.equal(await s.post(payload('commentCard')), 200);
    // the lease each delivery was claimed with (claimed_until goes back to 0 when it ends)
    const lease = new Map();
    const ended = () => {
      for (const line of storeSql(s.env, "SELECT handler_id, claimed_until FROM deliveries WHERE status = 'running'").trim().split('\n')) {
        const [h, until] = line.split('|');
        if (h && !lease.has(h)) lease.set(h, Number(until));
      }
      return hs.every((h) => existsSync(h.mark)) && lease.size === 4 &&
        s.deliveries().every((d) => d.status === 'done');
    };
    await waitFor(ended, 30000, 'the four deliveries to run one after another');
    const starts = hs.map((h) => Number(readFileSync(h.mark, 'utf8')));
    const last = Math.max(...starts);
    assert.ok(last - Math.min(...starts) >= 5000, `the runs were one after another: ${starts}`);
    for (const h of hs) {
      const left = lease.get(h.id) - Number(readFileSync(h.mark, 'utf8'));
      assert.ok(left >= 4000, `handler ${h.id} started with ${left} ms of its lease left, less than its timeout`);
    }
  } finally { await s.stop(); }
});

test('an exec timeout kills the whole process group, background children included', async () => {
  const s = await setup({ TRELLOHOOK_HANDLER_TIMEOUT: '500ms', TRELLOHOOK_RETRY_SCHEDULE: '50ms' });
  try {
    const pids = path.join(s.dir, 'pids');
    s.handlerAdd(['--exec', `sleep 30 & echo $! >> "${pids}"; echo started; sleep 30`]);
    const t0 = Date.now();
    assert.equal(await s.post(payload('commentCard')), 200);
    const [d] = await settled(s, 10000);
    assert.ok(Date.now() - t0 < 6000);
    assert.equal(d.status, 'dead');
    assert.equal(d.attempts, 2);
    assert.match(d.last_error, /timed out after 500 ms/);
    assert.match(d.last_error, /started/);
    const bg = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    assert.equal(bg.length, 2);
    for (const pid of bg) {
      await waitFor(() => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return / Z /.test(stat); // a zombie waiting for init is dead too
        } catch { return true; }
      }, 3000, `background sleep ${pid} to die`);
    }
  } finally { await s.stop(); }
});

test('a command that ignores stdin, floods output or exits before reading is handled', async () => {
  const s = await setup();
  try {
    s.handlerAdd(['--exec', 'exit 0']);
    s.handlerAdd(['--exec', 'head -c 100000 /dev/zero | tr "\\0" "x"; printf "\\377\\376 bad utf8"; exit 4']);
    // a big payload the command never reads must not block or kill serve (EPIPE)
    const big = payload('commentCard', { text: 'y'.repeat(200000) });
    assert.equal(await s.post(big), 200);
    const ds = await settled(s);
    assert.equal(ds.length, 2);
    const flood = ds.find((d) => d.status === 'dead');
    assert.ok(flood, JSON.stringify(ds));
    assert.ok(flood.last_error.length < 10000, `kept ${flood.last_error.length} bytes`);
    assert.match(flood.last_error, /exit status 4/);
    assert.match(flood.last_error, /more bytes dropped/);
    assert.ok(ds.some((d) => d.status === 'done'));
    assert.equal((await fetch(`${s.serve.url}/healthz`)).status, 200);
  } finally { await s.stop(); }
});

test('SIGTERM lets a running delivery finish and leaves the rest pending for the next start', async () => {
  const s = await setup({ TRELLOHOOK_WORKERS: '1' });
  try {
    const out = path.join(s.dir, 'done');
    s.handlerAdd(['--exec', `sleep 0.4; echo "$TRELLO_ACTION_ID" >> "${out}"`]);
    for (let i = 0; i < 4; i++) assert.equal(await s.post(payload('commentCard')), 200);
    await sleep(150);
    const r = await s.serve.stop('SIGTERM');
    assert.equal(r.code, 0);
    const ds = s.deliveries();
    assert.ok(!ds.some((d) => d.status === 'running'), JSON.stringify(ds));
    const doneCount = ds.filter((d) => d.status === 'done').length;
    assert.ok(doneCount >= 1, 'the running delivery was not finished');
    assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, doneCount);
    assert.ok(ds.some((d) => d.status === 'pending' || d.status === 'failed'));
    await s.start();
    const all = await settled(s);
    assert.ok(all.every((d) => d.status === 'done'));
    assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 4);
  } finally { await s.stop(); }
});

test('an outcome is recorded soon (RECORD_DELAY_MS) even while no claim is due', async () => {
  // 4 workers (8 claim slots). A comment's 4 deliveries run (1 to 4 s); then a new card's 4
  // deliveries are claimed and wait. When the 1 s one ends, a claim is not due (one slot free
  // of 8; the next is due when the 4 s one ends), so its outcome waits only for the timer.
  const s = await setup({ TRELLOHOOK_WORKERS: '4' });
  try {
    const d = s.dir;
    const first = s.handlerAdd(['--exec', 'sleep 1', '--on', 'commentCard']);
    s.handlerAdd(['--exec', 'sleep 2', '--on', 'commentCard']);
    s.handlerAdd(['--exec', 'sleep 3', '--on', 'commentCard']);
    s.handlerAdd(['--exec', `sleep 4 && touch ${d}/slow.done`, '--on', 'commentCard']);
    // longer than the 4 s one: the queue drains (and a claim is due) only when that one ends
    for (let i = 0; i < 4; i++) s.handlerAdd(['--exec', 'sleep 5', '--on', 'createCard']);
    assert.equal(await s.post(payload('commentCard', { text: 'x' })), 200);
    await waitFor(() => s.deliveries().filter((x) => x.status === 'running').length === 4, 5000,
      'the comment\'s deliveries to run');
    assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    await waitFor(() => s.deliveries().some((x) => x.handler_id === first.id && x.status === 'done'),
      10000, 'the first outcome');
    assert.ok(!existsSync(path.join(d, 'slow.done')), 'the first outcome waited for a later claim');
    const ds = await settled(s, 20000);
    assert.equal(ds.filter((x) => x.status === 'done').length, 8);
  } finally { await s.stop(); }
});

test('a burst of 100 forwards to one target reuses kept connections (keep-alive per worker and target)', async () => {
  const s = await setup({ TRELLOHOOK_WORKERS: '4', TRELLOHOOK_HANDLER_CONCURRENCY: '8' });
  const rcv = await receiver(() => 204);
  let connections = 0;
  try {
    // count the TCP connections the receiver accepts
    rcv.server.on('connection', () => { connections += 1; });
    const h = s.handlerAdd(['--forward', rcv.url]);
    assert.equal(h.kind, 'forward');
    for (let i = 0; i < 100; i++) assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    const ds = await settled(s, 30000);
    assert.equal(ds.filter((d) => d.status === 'done').length, 100);
    assert.equal(rcv.got.length, 100);
    console.log(`# 100 forwards opened ${connections} connection(s)`);
    // one kept connection per worker at most (4 workers), not one per forward
    assert.ok(connections <= 4, `100 forwards opened ${connections} connections`);
  } finally { await rcv.close(); await s.stop(); }
});

test('forwards to 8 targets keep a connection per worker and target (100 events, 800 forwards)', async () => {
  const s = await setup({ TRELLOHOOK_WORKERS: '4', TRELLOHOOK_HANDLER_CONCURRENCY: '8' });
  const rcvs = [];
  let connections = 0;
  try {
    for (let i = 0; i < 8; i++) {
      const r = await receiver(() => 204);
      r.server.on('connection', () => { connections += 1; });
      rcvs.push(r);
      s.handlerAdd(['--forward', r.url]);
    }
    for (let i = 0; i < 100; i++) assert.equal(await s.post(payload('createCard', { card: hex24() })), 200);
    const total = () => rcvs.reduce((n, r) => n + r.got.length, 0);
    await waitFor(() => total() >= 800, 60000, '800 forwards');
    assert.equal(total(), 800);
    console.log(`# 800 forwards to 8 targets opened ${connections} connection(s)`);
    // at most one kept connection per worker and target
    assert.ok(connections <= 4 * 8, `800 forwards opened ${connections} connections`);
  } finally {
    for (const r of rcvs) await r.close();
    await s.stop();
  }
});
