// SPDX-License-Identifier: MIT
// Backfill end to end: trello-mock keeps every action (delivered or not) and
// lists them like Trello; trellohook, when it was down, recovers what it
// missed from that listing — at serve start, on `webhook backfill`, after
// faults — storing each action once, marked "backfill", handled once, in order.
// Runs on SQLite; backfill_pg.test.mjs runs it again on PostgreSQL.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { control, sleep, until } from './lib/mock.mjs';
import { root, th, thJson } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const ON_PG = process.env.TH_BACKFILL_BACKEND === 'postgresql';
const PG = path.join(root, 'scripts', 'pg.sh');
let pgCluster = null;
let pgUrl = null;
let pgDbs = 0;
if (ON_PG) {
  before(() => {
    pgCluster = mkdtempSync('/tmp/th-backfill-pg-');
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

/** A fresh PostgreSQL database for one test, or {} (SQLite in the stack's dir). */
function freshDatabase() {
  if (!ON_PG) return {};
  pgDbs += 1;
  const name = `th_backfill_${process.pid}_${pgDbs}`;
  const r = spawnSync('psql', [pgUrl, '-qAt', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { DATABASE_URL: pgUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`) };
}

/** Start the stack with an exec handler that appends each action id it is given to a file. */
async function stack(t, { mockArgs = [], env = {} } = {}) {
  const s = await startStack({
    mockArgs: ['--retry-delays', '600', ...mockArgs],
    env: { TRELLOHOOK_HEALTH_INTERVAL: '0', TRELLOHOOK_RETRY_SCHEDULE: '100ms', ...freshDatabase(), ...env },
  });
  t.after(() => s.stop());
  s.handled = path.join(s.dir, 'handled.txt');
  writeFileSync(s.handled, '');
  const cmd = `printf '%s %s\\n' "$TRELLO_ACTION_ID" "$TRELLO_EVENT_SOURCE" >> '${s.handled}'`;
  thJson(s.env, ['handler', 'add', '--exec', cmd]);
  return s;
}

/** Every stored event of webhook @id, oldest first. */
function events(s, id) {
  return thJson(s.env, ['events', 'ls', '--webhook', id, '--limit', '1000']).reverse();
}

/** Lines "ACTION_ID SOURCE" the handler wrote. */
function handled(s) {
  return readFileSync(s.handled, 'utf8').split('\n').filter(Boolean);
}

/** SIGKILL @serve the moment its log matches @re (from the stderr reader
 * itself: polling let a fast disk commit the pass's remaining chunks between
 * the line and the kill), and wait until it is gone. */
function killAt(serve, re, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { serve.proc.stderr.off('data', check); reject(new Error(`timed out waiting for ${re}`)); }, ms);
    function check() {
      if (!re.test(serve.stderr())) return;
      serve.proc.stderr.off('data', check);
      clearTimeout(timer);
      serve.stop('SIGKILL').then(resolve);
    }
    serve.proc.stderr.on('data', check); // after the helper's own reader: stderr() is current
    check();
  });
}

/** Perform @n comments on @card while nobody listens (deliveries fail). */
async function comment(s, card, n, prefix = 'missed') {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await control(s.mock, 'POST', '/_mock/actions', {
      type: 'commentCard', idModel: card, text: `${prefix} ${i}`,
    });
    ids.push(r.action.id);
  }
  return ids;
}

function assertOnce(list, ids, what) {
  for (const id of ids) assert.equal(list.filter((x) => x === id).length, 1, `${what}: ${id} once`);
}

test('serve stopped, actions on the board, serve started: every missed action stored once, marked backfill, handled once, in order', async (t) => {
  const s = await stack(t);
  const w = s.addWebhook();
  const card = s.board.cards[0].id;
  const live = await s.act({ type: 'commentCard', idModel: card, text: 'while up' });
  await until('the live event', () => events(s, w.id).length === 1);
  await s.serve.stop();
  const missed = await comment(s, card, 7);
  await s.restart();
  const evs = await until('the backfill', () => {
    const e = events(s, w.id);
    return e.length === 8 && e;
  });
  assert.equal(evs[0].action_id, live.action.id);
  assert.equal(evs[0].source, 'delivery');
  assert.deepEqual(evs.slice(1).map((e) => e.action_id), missed, 'stored in the order of the actions');
  for (const e of evs.slice(1)) {
    assert.equal(e.source, 'backfill');
    assert.match(e.summary, /commented/);
  }
  // the payload is {"action", "model"} like a delivery, the model as Trello has it
  const shown = thJson(s.env, ['events', 'show', evs[1].id]);
  const payload = JSON.parse(shown.payload);
  assert.deepEqual(Object.keys(payload), ['action', 'model']);
  assert.equal(payload.model.id, s.board.id);
  assert.equal(payload.action.data.text, 'missed 0');
  // handled once each, in order, told it is a backfill
  const lines = await until('the handler', () => handled(s).length === 8 && handled(s));
  assert.deepEqual(lines.slice(1), missed.map((id) => `${id} backfill`));
  // webhook show tells of the gap
  const shownW = thJson(s.env, ['webhook', 'show', w.id]);
  assert.equal(shownW.backfill.recovered, 7);
  assert.equal(shownW.backfill.error, null);
  assert.ok(Date.parse(shownW.backfill.gap_from) <= Date.parse(shownW.backfill.gap_to));
  const text = th(s.env, ['webhook', 'show', w.id]);
  assert.match(text.stdout, /backfill +7 missed action\(s\) recovered, from \S+ to \S+/);
  // metric
  const metrics = await (await fetch(`${s.serve.url}/metrics`)).text();
  assert.match(metrics, /^trellohook_backfilled_events_total 7$/m);
  // a second pass finds nothing new and stores nothing twice
  const again = thJson(s.env, ['webhook', 'backfill', w.id]);
  assert.equal(again.recovered, 0);
  assert.equal(events(s, w.id).length, 8);
});

test('a card webhook is backfilled from the card\'s actions', async (t) => {
  const s = await stack(t);
  const card = s.board.cards[0].id;
  const w = s.addWebhook(card);
  assert.equal(w.model_type, 'card');
  await s.serve.stop();
  const missed = await comment(s, card, 3);
  // an action elsewhere on the board is not the card's
  const other = await control(s.mock, 'POST', '/_mock/cards', { idList: s.board.lists[1].id, name: 'Other' });
  await comment(s, other.id, 2, 'elsewhere');
  await s.restart();
  const evs = await until('the backfill', () => {
    const e = events(s, w.id);
    return e.length >= 3 && e;
  });
  await sleep(500);
  assert.deepEqual(events(s, w.id).map((e) => e.action_id), missed);
  assert.ok(evs.every((e) => e.source === 'backfill'));
  assert.equal(JSON.parse(thJson(s.env, ['events', 'show', evs[0].id]).payload).model.id, card);
});

test('a late retry by Trello of an action already backfilled is answered 200 and not stored again', async (t) => {
  // the mock retries a failed delivery after 4 s: by then backfill stored it
  const s = await stack(t, { mockArgs: ['--retry-delays', '4'] });
  const w = s.addWebhook();
  const card = s.board.cards[0].id;
  await s.serve.stop();
  const [id] = await comment(s, card, 1);
  await s.restart();
  await until('the backfill', () => events(s, w.id).length === 1);
  await until('the retry', async () => {
    const d = await control(s.mock, 'GET', '/_mock/deliveries');
    return d.some((x) => x.action_id === id && x.attempt === 2);
  });
  const d = (await control(s.mock, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === id);
  assert.equal(d.find((x) => x.attempt === 2).status, 200, 'the retry was answered 200');
  assert.equal(events(s, w.id).length, 1, 'and not stored again');
  await sleep(500);
  assertOnce(handled(s).map((l) => l.split(' ')[0]), [id], 'handled');
});

test('an expired token ends the pass with a clear error, kept for webhook show; nothing duplicated', async (t) => {
  const s = await stack(t);
  const w = s.addWebhook();
  await s.serve.stop();
  await comment(s, s.board.cards[0].id, 2);
  await control(s.mock, 'POST', `/_mock/tokens/${s.token}/expire`);
  const r = th(s.env, ['webhook', 'backfill', w.id]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^trellohook: .*expired token.*token add/m);
  const shown = thJson(s.env, ['webhook', 'show', w.id]);
  assert.match(shown.backfill.error, /expired token/);
  assert.equal(shown.state, 'needs_token', 'the token and its webhooks are flagged');
  assert.equal(events(s, w.id).length, 0);
});

test('a 429 during backfill is reported, and the next pass stores everything once', async (t) => {
  const s = await stack(t, { mockArgs: ['--rate-window-ms', '100'] });
  const w = s.addWebhook();
  await s.serve.stop();
  const missed = await comment(s, s.board.cards[0].id, 5);
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'status', status: 429, times: -1 });
  const r = th(s.env, ['webhook', 'backfill', w.id, '--json']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /rate limit/i);
  assert.match(JSON.parse(r.stdout).error, /Rate limit exceeded/);
  assert.match(thJson(s.env, ['webhook', 'show', w.id]).backfill.error, /rate limit/i);
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'none' });
  const ok = thJson(s.env, ['webhook', 'backfill', w.id]);
  assert.equal(ok.recovered, 5);
  assert.equal(thJson(s.env, ['webhook', 'show', w.id]).backfill.error, null);
  assert.deepEqual(events(s, w.id).map((e) => e.action_id), missed);
});

test('hostile actions listings are refused with a clear error and store nothing', async (t) => {
  const s = await stack(t);
  const w = s.addWebhook();
  await s.serve.stop();
  await comment(s, s.board.cards[0].id, 2);
  for (const [mode, want] of [
    ['truncated', /unexpected answer/],
    ['wrong-types', /unexpected answer/],
    ['huge', /unexpected answer/],
    ['status', /Internal server error|unavailable|5\d\d/i],
  ]) {
    await control(s.mock, 'POST', '/_mock/faults/actions', { mode, status: 500, times: -1 });
    const r = th(s.env, ['webhook', 'backfill', w.id]);
    assert.equal(r.code, 1, `${mode}: ${r.stdout}`);
    assert.match(r.stderr, want, mode);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('trellohook: ')).length, 1, `${mode}: one error line`);
    assert.equal(events(s, w.id).length, 0, `${mode}: nothing stored`);
  }
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'none' });
  assert.equal(thJson(s.env, ['webhook', 'backfill', w.id]).recovered, 2);
});

test('webhook backfill --since: a date or an action id; malformed values are usage errors', async (t) => {
  const s = await stack(t);
  const w = s.addWebhook();
  await s.serve.stop();
  const ids = await comment(s, s.board.cards[0].id, 4);
  const r1 = thJson(s.env, ['webhook', 'backfill', w.id, '--since', ids[1]]);
  assert.equal(r1.recovered, 2, 'only the actions after the id');
  assert.deepEqual(events(s, w.id).map((e) => e.action_id), ids.slice(2));
  const r2 = thJson(s.env, ['webhook', 'backfill', w.id, '--since', '2001-01-01T00:00:00Z']);
  assert.equal(r2.clamped, true, 'bounded by TRELLOHOOK_BACKFILL_MAX_AGE');
  assert.equal(r2.recovered, 2);
  assert.equal(events(s, w.id).length, 4);
  for (const bad of ['yesterday', '2026-13-01T00:00:00Z', 'é', '']) {
    const r = th(s.env, ['webhook', 'backfill', w.id, '--since', bad]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--since/, bad);
  }
  assert.equal(thJson(s.env, ['webhook', 'show', w.id]).backfill.error, null, 'a usage error is not the pass\'s');
  const r3 = th(s.env, ['webhook', 'backfill', 'nosuchwebhook']);
  assert.equal(r3.code, 1);
  const r4 = th({ ...s.env, TRELLOHOOK_BACKFILL_MAX_AGE: 'ever' }, ['webhook', 'backfill', w.id]);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /TRELLOHOOK_BACKFILL_MAX_AGE/);
});

test('kill -9 mid-backfill and restart: nothing lost, nothing twice', async (t) => {
  const WORKERS = 2;
  const s = await stack(t, { env: { TRELLOHOOK_LOG_LEVEL: 'debug', TRELLOHOOK_WORKERS: String(WORKERS) } });
  const w = s.addWebhook();
  await s.serve.stop();
  const N = 1500;
  const missed = await comment(s, s.board.cards[0].id, N);
  // slow listings (2 pages of 1000), so a kill lands while a pass is under way
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'none', delay_ms: 300, times: -1 });
  const count = () => thJson(s.env, ['webhook', 'show', w.id]).event_count;
  // 1: while listing (nothing stored yet); 2: as soon as the first chunk committed
  for (const when of [/backfill pass: listing/, /listed action\(s\) committed/]) {
    const serve = await s.restart();
    await killAt(serve, when, 120000); // a loaded machine is slow
    const n = count();
    t.diagnostic(`killed at ${when}: ${n} of ${N} stored`);
    assert.ok(n < N, 'the kill landed before the pass ended');
    const ids = events(s, w.id).map((e) => e.action_id);
    assert.equal(new Set(ids).size, ids.length, 'nothing twice after a kill');
  }
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'none' });
  await s.restart();
  await until('every missed action', () => count() === N, 60000);
  await sleep(1000);
  const shown = thJson(s.env, ['webhook', 'show', w.id]);
  assert.equal(shown.event_count, N, 'every missed action stored, none twice');
  assert.equal(shown.backfill.error, null);
  const newest = new Set(events(s, w.id).map((e) => e.action_id));
  for (const id of missed.slice(-1000)) assert.ok(newest.has(id), `${id} stored`);
  const lines = await until('the handler', () => handled(s).length >= N && handled(s), 120000);
  await sleep(1000); // a re-run still under way shows up too
  const ran = handled(s).map((l) => l.split(' ')[0]);
  // Handlers run at least once: a delivery whose handler was running when
  // serve was killed ran, but its outcome was never written, so it runs
  // again after the restart. Only those can run twice: at most one per
  // worker for the kill after the first chunk (the kill while listing comes
  // before any event is stored).
  for (const id of missed) assert.ok(ran.includes(id), `handled: ${id}`);
  for (const id of new Set(ran)) assert.ok(missed.includes(id), `handled only missed actions: ${id}`);
  assert.ok(ran.length - N <= WORKERS, `at most ${WORKERS} re-runs after the kill, not ${ran.length - N}`);
  t.diagnostic(`${ran.length - N} handler re-run(s) after the kill`);
});

test('the admin: a Backfill button (POST with CSRF) on the webhooks page, the gap and errors shown, the event page says a backfilled event has no signature', async (t) => {
  const s = await stack(t);
  assert.equal(th(s.env, ['user', 'add', 'alice'], 'hunter2hunter2\n').code, 0);
  const w = s.addWebhook();
  const url = s.serve.url;
  const get = (p, cookie) => fetch(url + p, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const post = (p, form, cookie) => fetch(url + p, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form).toString(),
  });
  const cookieOf = (res, name) => {
    for (const c of res.headers.getSetCookie()) {
      const m = c.match(new RegExp(`^${name}=([^;]*)`));
      if (m) return m[1];
    }
    return null;
  };
  const page = await get('/admin/login');
  const lt = cookieOf(page, 'trellohook_login');
  const login = await fetch(url + '/admin/login', {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${lt}` },
    body: new URLSearchParams({ login_token: lt, user: 'alice', password: 'hunter2hunter2' }).toString(),
  });
  const cookie = `trellohook_session=${cookieOf(login, 'trellohook_session')}`;
  let html = await (await get('/admin/webhooks', cookie)).text();
  const csrf = html.match(/name=csrf value="([^"]+)"/)[1];
  assert.match(html, new RegExp(`action="/admin/webhooks/${w.id}/backfill"`));
  // actions Trello could not deliver (the callback answers 503 meanwhile: serve is stopped)
  await s.serve.stop();
  const missed = await comment(s, s.board.cards[0].id, 3);
  await s.restart();
  await until('the start-up backfill', () => events(s, w.id).length === 3);
  // without the CSRF field: refused; GET: 405; an unknown webhook: 404
  assert.equal((await post(`/admin/webhooks/${w.id}/backfill`, {}, cookie)).status, 403);
  assert.equal((await get(`/admin/webhooks/${w.id}/backfill`, cookie)).status, 405);
  assert.equal((await post('/admin/webhooks/nosuchwebhook/backfill', { csrf }, cookie)).status, 404);
  // the button: serve runs the pass on its Trello thread, the row shows the outcome
  await control(s.mock, 'POST', '/_mock/faults/actions', { mode: 'truncated', times: 1 });
  const r = await post(`/admin/webhooks/${w.id}/backfill`, { csrf }, cookie);
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/admin/webhooks?done=backfill-asked');
  html = await until('the failed pass', async () => {
    const h = await (await get('/admin/webhooks', cookie)).text();
    return /last backfill failed: .*unexpected answer/.test(h) && h;
  });
  assert.match(html, /recovered 3 missed actions from/);
  assert.equal((await post(`/admin/webhooks/${w.id}/backfill`, { csrf }, cookie)).status, 303);
  await until('the good pass', async () =>
    !/last backfill failed/.test(await (await get('/admin/webhooks', cookie)).text()));
  assert.equal(events(s, w.id).length, 3, 'nothing stored twice');
  const ev = events(s, w.id)[0];
  assert.equal(ev.action_id, missed[0]);
  const evPage = await (await get(`/admin/events/${ev.id}`, cookie)).text();
  assert.match(evPage, /backfill<\/span> recovered from Trello's actions listing/);
  assert.match(evPage, /no Trello\s+signature/);
});

test('a webhook Trello disabled after failures is enabled again by sync, then backfilled', async (t) => {
  const s = await stack(t, { mockArgs: ['--disable-after', '2', '--retry-delays', '0.1,0.1'] });
  const w = s.addWebhook();
  await s.serve.stop();
  const missed = await comment(s, s.board.cards[0].id, 3);
  await until('Trello disables it', async () =>
    (await control(s.mock, 'GET', '/_mock/webhooks')).some((x) => x.id === w.trello_id && x.active === false));
  const rep = thJson(s.env, ['sync']);
  assert.ok(rep.actions.some((a) => a.action === 'update' && a.result === 'done'), JSON.stringify(rep.actions));
  assert.equal(rep.backfilled, 3);
  assert.ok((await control(s.mock, 'GET', '/_mock/webhooks')).find((x) => x.id === w.trello_id).active);
  assert.deepEqual(events(s, w.id).map((e) => e.action_id), missed);
  assert.equal(thJson(s.env, ['webhook', 'show', w.id]).backfill.recovered, 3);
  // webhook update --active true after a pause does the same
  thJson(s.env, ['webhook', 'update', w.id, '--active', 'false']);
  const paused = await comment(s, s.board.cards[0].id, 2, 'paused');
  thJson(s.env, ['webhook', 'update', w.id, '--active', 'true']);
  assert.deepEqual(events(s, w.id).map((e) => e.action_id), [...missed, ...paused]);
});
