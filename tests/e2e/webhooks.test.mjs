// SPDX-License-Identifier: MIT
// webhook add / ls / show / rm against a real trello-mock and a real
// `trellohook serve` (Trello's HEAD check and deliveries reach it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { api, closedPort, control, newBoard, sleep, startMock } from './lib/mock.mjs';
import { baseEnv, startServe, tempDir, th, thJson, trelloSignature } from './lib/serve.mjs';

const KEY = '0123456789abcdef0123456789abcdef';
const SECRET = 'e2e-webhooks-secret-0123456789';
const newTok = () => 'ATTA' + randomBytes(32).toString('hex') + randomBytes(4).toString('hex').toUpperCase();

// mock + serve on a port chosen first (CALLBACK_DOMAIN names it)
async function stack(mockArgs = []) {
  const tmp = tempDir('th-wh-');
  const token = newTok();
  const mock = await startMock(['--key', KEY, '--secret', SECRET, '--token', token, '--retry-delays', '0.1', ...mockArgs]);
  const port = await closedPort();
  const domain = `http://127.0.0.1:${port}`;
  const env = baseEnv(tmp.dir, {
    CALLBACK_DOMAIN: domain, TRELLO_API_URL: mock.url, TRELLO_API_KEY: KEY, TRELLO_API_SECRET: SECRET,
    TRELLOHOOK_HEALTH_INTERVAL: '0',
  });
  const serve = await startServe(env, ['--listen', `127.0.0.1:${port}`]);
  const board = await newBoard(mock);
  return {
    mock, serve, env, token, board, domain,
    async stop() { await serve.stop(); await mock.stop(); tmp.cleanup(); },
  };
}

const mockHooks = async (m) => control(m, 'GET', '/_mock/webhooks');
const localHooks = (env) => thJson(env, ['webhook', 'ls']);

function noFullToken(r, token) {
  assert.ok(!r.stdout.includes(token), 'stdout must not contain the full token');
  assert.ok(!r.stderr.includes(token), 'stderr must not contain the full token');
}

describe('webhook add', () => {
  let s;
  before(async () => { s = await stack(); });
  after(async () => { await s.stop(); });

  test('by board id: stored and registered, JSON fields as documented, token masked', async () => {
    const r = th(s.env, ['webhook', 'add', '--model', s.board.id, '--token', s.token, '--description', 'Zoë <b>', '--json']);
    assert.equal(r.code, 0, r.stderr);
    noFullToken(r, s.token);
    const w = JSON.parse(r.stdout);
    for (const k of ['id', 'trello_id', 'id_model', 'model_type', 'model_name', 'description', 'callback_url', 'active', 'created_at', 'last_event_at', 'state', 'token', 'event_count'])
      assert.ok(k in w, `field ${k}`);
    assert.equal(w.id_model, s.board.id);
    assert.equal(w.model_type, 'board');
    assert.equal(w.model_name, s.board.name);
    assert.equal(w.description, 'Zoë <b>');
    assert.equal(w.callback_url, `${s.domain}/callbacks/${w.id}`);
    assert.equal(w.active, true);
    assert.equal(w.state, 'active');
    assert.match(w.token, /^ATTA…[0-9A-F]{4}$/);
    const on = (await mockHooks(s.mock)).find((x) => x.id === w.trello_id);
    assert.ok(on, 'the mock has it');
    assert.equal(on.callbackURL, w.callback_url);
    assert.equal(on.idModel, s.board.id);
    // the token is remembered, masked in ls
    const toks = thJson(s.env, ['token', 'ls']);
    assert.equal(toks.length, 1);
    assert.equal(toks[0].state, 'unchecked');
  });

  test('by board URL and by card URL', async () => {
    const b2 = await newBoard(s.mock, 'Second board');
    const wb = thJson(s.env, ['webhook', 'add', '--model', b2.url, '--token', s.token]);
    assert.equal(wb.id_model, b2.id);
    assert.equal(wb.model_type, 'board');
    const card = s.board.cards[0];
    const cardUrl = `https://trello.com/c/${card.shortLink}/1-some-slug`;
    const wc = thJson(s.env, ['webhook', 'add', '--model', cardUrl, '--token', s.token]);
    assert.equal(wc.id_model, card.id);
    assert.equal(wc.model_type, 'card');
    assert.equal(wc.model_name, card.name);
    const ids = (await mockHooks(s.mock)).map((x) => x.id);
    assert.ok(ids.includes(wb.trello_id) && ids.includes(wc.trello_id));
  });

  test('a delivery after add is verified and stored (events ls shows it)', async () => {
    const b = await newBoard(s.mock, 'Delivery board');
    const w = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    const res = await control(s.mock, 'POST', '/_mock/actions', { type: 'commentCard', idModel: b.cards[0].id, text: 'héllo <i>', wait: true });
    assert.ok(res.deliveries >= 1);
    const evs = thJson(s.env, ['events', 'ls', '--webhook', w.id]);
    assert.equal(evs.length, 1);
    assert.equal(evs[0].action_type, 'commentCard');
    assert.equal(evs[0].action_id, res.action.id);
    const shown = thJson(s.env, ['webhook', 'show', w.id]);
    assert.equal(shown.event_count, 1);
  });

  test('malformed --model / --token: exit 2 before any Trello call', async () => {
    const before = await mockHooks(s.mock);
    for (const [model, token] of [['not-an-id', s.token], ['https://example.com/b/abcdefgh/x', s.token], [s.board.id, 'short'], [s.board.id, s.token + 'x'], ['', s.token]]) {
      const r = th(s.env, ['webhook', 'add', '--model', model, '--token', token]);
      assert.equal(r.code, 2, `${model} ${token.length}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: .*(--model|--token)/m);
    }
    const r = th(s.env, ['webhook', 'add', '--token', s.token]);
    assert.equal(r.code, 2);
    assert.deepEqual(await mockHooks(s.mock), before);
  });

  test('missing TRELLO_API_KEY / CALLBACK_DOMAIN: exit 2 naming the variable', () => {
    const env1 = { ...s.env };
    delete env1.TRELLO_API_KEY;
    let r = th(env1, ['webhook', 'add', '--model', s.board.id, '--token', s.token]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TRELLO_API_KEY/);
    const env2 = { ...s.env };
    delete env2.CALLBACK_DOMAIN;
    r = th(env2, ['webhook', 'add', '--model', s.board.id, '--token', s.token]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CALLBACK_DOMAIN/);
  });

  test('errors show Trello\'s message and leave the store and Trello unchanged', async (t) => {
    const b = await newBoard(s.mock, 'Errors board');
    const snapshot = async () => ({ local: localHooks(s.env), trello: await mockHooks(s.mock), tokens: thJson(s.env, ['token', 'ls']) });
    const before0 = await snapshot();
    const cases = [
      ['unknown idModel', { model: 'aaaaaaaaaaaaaaaaaaaaaaaa' }, /not found|no board, card or list/i],
      ['invalid token', { token: newTok() }, /invalid token/],
      ['HEAD check fails: server down', { env: { CALLBACK_DOMAIN: `http://127.0.0.1:${await closedPort()}` } }, /not reachable|did not return 200/],
      ['Trello unreachable', { env: { TRELLO_API_URL: `http://127.0.0.1:${await closedPort()}/1` } }, /cannot reach Trello/],
    ];
    for (const [name, c, re] of cases) {
      const env = { ...s.env, ...(c.env ?? {}) };
      const tok = c.token ?? s.token;
      const r = th(env, ['webhook', 'add', '--model', c.model ?? b.id, '--token', tok]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: /m, name);
      assert.match(r.stderr, re, name);
      noFullToken(r, tok);
      assert.deepEqual(await snapshot(), before0, `${name}: nothing changed`);
    }
  });

  test('expired token: Trello\'s message, no webhook, token flagged', async () => {
    const tok = (await control(s.mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(s.mock, 'Expiry board');
    thJson(s.env, ['token', 'add', tok]);
    await control(s.mock, 'POST', `/_mock/tokens/${tok}/expire`);
    const before0 = localHooks(s.env);
    const r = th(s.env, ['webhook', 'add', '--model', b.id, '--token', tok]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /expired token/);
    assert.deepEqual(localHooks(s.env), before0);
    const t = thJson(s.env, ['token', 'ls']).find((x) => tok.endsWith(x.token.slice(-4)) && x.token.startsWith(tok.slice(0, 4)) && x.state !== 'unchecked');
    assert.ok(t, 'token flagged');
    assert.equal(t.state, 'expired');
  });

  test('duplicate (same model and token): exit 1 naming the existing webhook', async () => {
    const b = await newBoard(s.mock, 'Dup board');
    const w = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    const before0 = await mockHooks(s.mock);
    const r = th(s.env, ['webhook', 'add', '--model', b.url, '--token', s.token]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);
    assert.ok(r.stderr.includes(w.id), r.stderr);
    assert.deepEqual(await mockHooks(s.mock), before0);
    assert.equal(localHooks(s.env).filter((x) => x.id_model === b.id).length, 1);
  });

  test('webhook show --trello: Trello\'s view; unknown id: exit 1', async () => {
    const w = localHooks(s.env)[0];
    const v = thJson(s.env, ['webhook', 'show', w.id, '--trello']);
    assert.equal(v.id, w.id);
    assert.equal(v.trello.active, true);
    assert.equal(v.trello.consecutive_failures, 0);
    assert.ok('first_consecutive_fail_date' in v.trello);
    const text = th(s.env, ['webhook', 'show', w.id, '--trello']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /consecutiveFailures/);
    noFullToken(text, s.token);
    const r = th(s.env, ['webhook', 'show', 'NoSuchWebhookId12345']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no webhook/);
  });
});

describe('webhook add under rate limiting', () => {
  let s;
  before(async () => { s = await stack(['--rate-token', '3', '--rate-window-ms', '1500']); });
  after(async () => { await s.stop(); });

  test('429 bursts are waited out: every add succeeds', async () => {
    const boards = [];
    for (let i = 0; i < 3; i++) boards.push(await newBoard(s.mock, `RL ${i}`));
    const t0 = Date.now();
    for (const b of boards) {
      const r = th(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
      assert.equal(r.code, 0, r.stderr);
    }
    // 3 adds × (resolve + create) = 6+ calls on a token allowed 3 per 1.5 s
    assert.ok(Date.now() - t0 >= 1000, 'it had to wait');
    assert.equal(localHooks(s.env).length, 3);
    assert.equal((await mockHooks(s.mock)).length, 3);
  });
});

describe('webhook rm', () => {
  let s;
  before(async () => { s = await stack(); });
  after(async () => { await s.stop(); });

  const add = async (name) => {
    const b = await newBoard(s.mock, name);
    return thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
  };

  test('removes on Trello, then locally', async () => {
    const w = await add('rm 1');
    const r = th(s.env, ['webhook', 'rm', w.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed/);
    assert.ok(!(await mockHooks(s.mock)).some((x) => x.id === w.trello_id));
    assert.ok(!localHooks(s.env).some((x) => x.id === w.id));
  });

  test('Trello already lost it: removed locally, and said so', async () => {
    const w = await add('rm 2');
    const d = await api(s.mock, 'DELETE', `/webhooks/${w.trello_id}`, { token: s.token });
    assert.equal(d.status, 200);
    const r = th(s.env, ['webhook', 'rm', w.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no longer had it/);
    assert.ok(!localHooks(s.env).some((x) => x.id === w.id));
  });

  test('unknown id: exit 1; missing id: exit 2', () => {
    let r = th(s.env, ['webhook', 'rm', 'NoSuchWebhookId12345']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no webhook/);
    r = th(s.env, ['webhook', 'rm']);
    assert.equal(r.code, 2);
  });

  test('Trello unreachable: marked removing, callbacks answer 410, sync finishes it', async () => {
    const w = await add('rm 3');
    const down = { ...s.env, TRELLO_API_URL: `http://127.0.0.1:${await closedPort()}/1` };
    const r = th(down, ['webhook', 'rm', w.id]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach Trello/);
    assert.match(r.stderr, /removing/);
    assert.match(r.stderr, /sync/);
    const row = thJson(s.env, ['webhook', 'show', w.id]);
    assert.equal(row.state, 'removing');
    assert.equal(row.active, false);
    assert.ok((await mockHooks(s.mock)).some((x) => x.id === w.trello_id), 'still on Trello');
    // a signed delivery now gets 410 (serve's cache refreshes within a few seconds)
    const body = JSON.stringify({ action: { id: 'a'.repeat(24), type: 'commentCard', date: new Date().toISOString(), data: {} }, model: { id: w.id_model } });
    let status = 0;
    for (let i = 0; i < 40 && status !== 410; i++) {
      const res = await fetch(w.callback_url, {
        method: 'POST', body, headers: { 'content-type': 'application/json', 'x-trello-webhook': trelloSignature(SECRET, body, w.callback_url) },
      });
      status = res.status;
      if (status !== 410) await sleep(150);
    }
    assert.equal(status, 410);
    // sync (Trello reachable again) finishes the removal
    const plan = thJson(s.env, ['sync']);
    const fin = plan.actions.find((a) => a.action === 'finish-removal' && a.webhook_id === w.id);
    assert.ok(fin, JSON.stringify(plan.actions));
    assert.equal(fin.result, 'done');
    assert.ok(!(await mockHooks(s.mock)).some((x) => x.id === w.trello_id));
    assert.ok(!localHooks(s.env).some((x) => x.id === w.id));
  });

  test('expired token: Trello deleted the webhook with it; removed locally', async () => {
    const tok = (await control(s.mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(s.mock, 'rm 4');
    const w = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', tok]);
    await control(s.mock, 'POST', `/_mock/tokens/${tok}/expire`);
    const r = th(s.env, ['webhook', 'rm', w.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no longer had it/);
    noFullToken(r, tok);
    assert.ok(!localHooks(s.env).some((x) => x.id === w.id));
  });
});
