// SPDX-License-Identifier: MIT
// `trellohook sync` against trello-mock and a real serve, across two tokens:
// local-only, Trello-only, duplicate, orphan, foreign-domain and drifted
// webhooks; --dry-run changes nothing; --prune deletes what points at us
// without a row; a token that cannot be listed leaves its rows alone.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { api, closedPort, control, newBoard, startMock, startReceiver } from './lib/mock.mjs';
import { baseEnv, startServe, tempDir, th, thJson } from './lib/serve.mjs';

const KEY = 'fedcba9876543210fedcba9876543210';
const SECRET = 'e2e-sync-secret-0123456789abcdef';
const newTok = () => 'ATTA' + randomBytes(32).toString('hex') + randomBytes(4).toString('hex').toUpperCase();
const newId = () => randomBytes(15).toString('base64url'); // 20 URL-safe characters

describe('sync', () => {
  let mock, serve, env, tmp, domain, receiver;
  const A = newTok();
  const B = newTok();
  const w = {}; // the webhooks of the scenario
  before(async () => {
    tmp = tempDir('th-sync-');
    mock = await startMock(['--key', KEY, '--secret', SECRET, '--token', A, '--token', B, '--retry-delays', '0.1']);
    const port = await closedPort();
    domain = `http://127.0.0.1:${port}`;
    env = baseEnv(tmp.dir, {
      CALLBACK_DOMAIN: domain, TRELLO_API_URL: mock.url, TRELLO_API_KEY: KEY, TRELLO_API_SECRET: SECRET,
      TRELLOHOOK_HEALTH_INTERVAL: '0',
    });
    serve = await startServe(env, ['--listen', `127.0.0.1:${port}`]);
    receiver = await startReceiver();
    const boards = [];
    for (let i = 0; i < 5; i++) boards.push(await newBoard(mock, `Sync ${i}`));
    w.boards = boards;
    // local-only: added, then deleted on Trello behind our back
    w.localOnly = thJson(env, ['webhook', 'add', '--model', boards[0].id, '--token', A]);
    assert.equal((await api(mock, 'DELETE', `/webhooks/${w.localOnly.trello_id}`, { token: A })).status, 200);
    // in sync, plus a duplicate Trello webhook pointing at the same callback
    w.kept = thJson(env, ['webhook', 'add', '--model', boards[1].id, '--token', A]);
    w.dup = (await api(mock, 'POST', '/webhooks', { token: A, body: { callbackURL: w.kept.callback_url, idModel: boards[1].cards[0].id } })).json;
    assert.ok(w.dup?.id, 'duplicate created');
    // an orphan: our domain, no callback of ours
    w.orphan = (await api(mock, 'POST', '/webhooks', { token: A, body: { callbackURL: `${domain}/callbacks/${newId()}?from=elsewhere`, idModel: boards[2].id } })).json;
    assert.ok(w.orphan?.id, 'orphan created');
    // Trello-only, pointing at us (token B)
    w.adoptId = newId();
    w.adopt = (await api(mock, 'POST', '/webhooks', { token: B, body: { callbackURL: `${domain}/callbacks/${w.adoptId}`, idModel: boards[3].id, description: 'made elsewhere' } })).json;
    assert.ok(w.adopt?.id, 'Trello-only webhook created');
    // foreign (token B)
    w.foreign = (await api(mock, 'POST', '/webhooks', { token: B, body: { callbackURL: `${receiver.base}/hook`, idModel: boards[3].id } })).json;
    assert.ok(w.foreign?.id, 'foreign webhook created');
    // drifted (token B): description and active changed on Trello
    w.drift = thJson(env, ['webhook', 'add', '--model', boards[4].id, '--token', B, '--description', 'original']);
    const put = await api(mock, 'PUT', `/webhooks/${w.drift.trello_id}`, { token: B, body: { description: 'changed', active: false } });
    assert.equal(put.status, 200, put.text);
  });
  after(async () => {
    await serve?.stop();
    await mock?.stop();
    await receiver?.close();
    tmp?.cleanup();
  });

  const snapshot = async () => ({
    local: thJson(env, ['webhook', 'ls']),
    tokens: thJson(env, ['token', 'ls']),
    trello: await control(mock, 'GET', '/_mock/webhooks'),
  });
  const byAction = (plan, action) => plan.actions.filter((a) => a.action === action);

  test('--dry-run prints the whole plan and changes nothing', async () => {
    const before0 = await snapshot();
    const r = th(env, ['sync', '--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(A) && !r.stdout.includes(B), 'tokens masked');
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.dry_run, true);
    assert.equal(plan.tokens.length, 2);
    assert.ok(plan.actions.every((a) => a.result === 'planned'));
    assert.deepEqual(byAction(plan, 'register').map((a) => a.webhook_id), [w.localOnly.id]);
    assert.deepEqual(byAction(plan, 'adopt').map((a) => a.webhook_id), [w.adoptId]);
    assert.deepEqual(byAction(plan, 'update').map((a) => a.webhook_id), [w.drift.id]);
    assert.deepEqual(byAction(plan, 'foreign').map((a) => a.trello_id), [w.foreign.id]);
    assert.deepEqual(byAction(plan, 'report-duplicate').map((a) => a.trello_id).sort(), [w.dup.id, w.orphan.id].sort());
    assert.equal(plan.in_sync, 1);
    assert.deepEqual(await snapshot(), before0, 'store and Trello unchanged');
    // the text form has one line per action
    const t = th(env, ['sync', '--dry-run']);
    assert.equal(t.code, 0);
    for (const k of ['register', 'adopt', 'update', 'foreign', 'report-duplicate']) assert.match(t.stdout, new RegExp(`^${k} `, 'm'));
    assert.deepEqual(await snapshot(), before0, 'still unchanged');
  });

  test('sync registers, adopts, corrects drift, reports duplicates and leaves foreign alone', async () => {
    const plan = thJson(env, ['sync']);
    assert.equal(plan.failures, 0, JSON.stringify(plan));
    for (const a of plan.actions) {
      if (['register', 'adopt', 'update'].includes(a.action)) assert.equal(a.result, 'done', JSON.stringify(a));
      else assert.equal(a.result, 'reported');
    }
    const trello = await control(mock, 'GET', '/_mock/webhooks');
    const local = thJson(env, ['webhook', 'ls']);
    // local-only → registered again, with its callback URL
    const lo = local.find((x) => x.id === w.localOnly.id);
    assert.ok(lo.trello_id && lo.trello_id !== w.localOnly.trello_id);
    assert.equal(lo.state, 'active');
    assert.ok(trello.some((x) => x.id === lo.trello_id && x.callbackURL === w.localOnly.callback_url));
    // Trello-only → adopted under its own id and exact callback URL
    const ad = local.find((x) => x.id === w.adoptId);
    assert.ok(ad, 'adopted');
    assert.equal(ad.trello_id, w.adopt.id);
    assert.equal(ad.callback_url, `${domain}/callbacks/${w.adoptId}`);
    assert.equal(ad.description, 'made elsewhere');
    assert.equal(ad.model_type, 'board');
    // drift corrected on Trello
    const dr = trello.find((x) => x.id === w.drift.trello_id);
    assert.equal(dr.description, 'original');
    assert.equal(dr.active, true);
    // duplicates and foreign untouched
    assert.ok(trello.some((x) => x.id === w.dup.id));
    assert.ok(trello.some((x) => x.id === w.orphan.id));
    assert.ok(trello.some((x) => x.id === w.foreign.id && x.callbackURL === `${receiver.base}/hook`));
    // the adopted webhook receives and verifies deliveries
    const res = await control(mock, 'POST', '/_mock/actions', { type: 'commentCard', idModel: w.boards[3].cards[0].id, text: 'adopted?', wait: true });
    const evs = thJson(env, ['events', 'ls', '--webhook', w.adoptId]);
    assert.equal(evs.length, 1);
    assert.equal(evs[0].action_id, res.action.id);
  });

  test('a second sync has nothing left to do but report', async () => {
    const plan = thJson(env, ['sync']);
    assert.deepEqual(plan.actions.map((a) => a.action).sort(), ['foreign', 'report-duplicate', 'report-duplicate']);
    assert.equal(plan.in_sync, 4);
  });

  test('--prune deletes duplicates and orphans pointing at us, never foreign ones', async () => {
    const plan = thJson(env, ['sync', '--prune']);
    const pr = byAction(plan, 'prune');
    assert.deepEqual(pr.map((a) => a.trello_id).sort(), [w.dup.id, w.orphan.id].sort());
    assert.ok(pr.every((a) => a.result === 'done'));
    const trello = await control(mock, 'GET', '/_mock/webhooks');
    assert.ok(!trello.some((x) => x.id === w.dup.id || x.id === w.orphan.id));
    assert.ok(trello.some((x) => x.id === w.foreign.id));
    assert.ok(trello.some((x) => x.id === w.kept.trello_id), 'the original stays');
    const again = thJson(env, ['sync']);
    assert.deepEqual(again.actions.map((a) => a.action), ['foreign']);
  });

  test('--token adds a token; a token Trello refuses is reported and its rows left alone', async () => {
    const C = (await control(mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(mock, 'Sync C');
    const wc = thJson(env, ['webhook', 'add', '--model', b.id, '--token', C]);
    const D = (await control(mock, 'POST', '/_mock/tokens', {})).token;
    await control(mock, 'POST', `/_mock/tokens/${C}/expire`);
    const r = th(env, ['sync', '--token', D, '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(![A, B, C, D].some((t) => r.stdout.includes(t) || r.stderr.includes(t)), 'tokens masked');
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.tokens.length, 4);
    const te = byAction(plan, 'token-error');
    assert.equal(te.length, 1);
    assert.match(te[0].detail, /expired token/);
    const row = thJson(env, ['webhook', 'show', wc.id]);
    assert.equal(row.state, 'needs_token');
    const toks = thJson(env, ['token', 'ls']);
    assert.equal(toks.length, 4, 'D was saved');
    assert.equal(toks.filter((t) => t.state === 'expired').length, 1);
  });

  test('usage errors: exit 2', () => {
    assert.equal(th(env, ['sync', '--token', 'nope']).code, 2);
    assert.equal(th(env, ['sync', '--bogus']).code, 2);
  });
});
