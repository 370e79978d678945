// SPDX-License-Identifier: MIT
// token add / ls / check / rm, expiry flagged everywhere, tokens encrypted at
// rest with TRELLOHOOK_SECRET_KEY, and serve's periodic health pass.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, closedPort, control, newBoard, sleep, startMock } from './lib/mock.mjs';
import { baseEnv, startServe, tempDir, th, thJson } from './lib/serve.mjs';

const KEY = '00112233445566778899aabbccddeeff';
const SECRET = 'e2e-tokens-secret-0123456789abcdef';
const newTok = () => 'ATTA' + randomBytes(32).toString('hex') + randomBytes(4).toString('hex').toUpperCase();
const masked = (t) => `${t.slice(0, 4)}…${t.slice(-4)}`;

async function stack({ extraEnv = {}, serveArgs = [] } = {}) {
  const tmp = tempDir('th-tok-');
  const token = newTok();
  const mock = await startMock(['--key', KEY, '--secret', SECRET, '--token', token, '--retry-delays', '0.1']);
  const port = await closedPort();
  const env = baseEnv(tmp.dir, {
    CALLBACK_DOMAIN: `http://127.0.0.1:${port}`, TRELLO_API_URL: mock.url, TRELLO_API_KEY: KEY,
    TRELLO_API_SECRET: SECRET, TRELLOHOOK_HEALTH_INTERVAL: '0', ...extraEnv,
  });
  const serve = await startServe(env, ['--listen', `127.0.0.1:${port}`, ...serveArgs]);
  return {
    mock, serve, env, token, dir: tmp.dir,
    async stop() { await serve.stop(); await mock.stop(); tmp.cleanup(); },
  };
}

function noFullToken(r, ...toks) {
  for (const t of toks) {
    assert.ok(!r.stdout.includes(t), 'stdout must not contain a full token');
    assert.ok(!r.stderr.includes(t), 'stderr must not contain a full token');
  }
}

describe('token commands', () => {
  let s;
  before(async () => { s = await stack(); });
  after(async () => { await s.stop(); });

  test('add / ls: stored once, shown masked, malformed tokens refused with exit 2', () => {
    let r = th(s.env, ['token', 'add', s.token]);
    assert.equal(r.code, 0, r.stderr);
    noFullToken(r, s.token);
    assert.equal(th(s.env, ['token', 'add', s.token]).code, 0, 'adding twice is fine');
    const ls = thJson(s.env, ['token', 'ls']);
    assert.equal(ls.length, 1);
    assert.deepEqual(Object.keys(ls[0]).filter((k) => ['token', 'member', 'expires_at', 'state'].includes(k)).sort(), ['expires_at', 'member', 'state', 'token']);
    assert.equal(ls[0].token, masked(s.token));
    assert.equal(ls[0].state, 'unchecked');
    for (const bad of ['abc', s.token.slice(0, -1), s.token + '0', 'ATTA' + 'g'.repeat(72), 'é'.repeat(38)]) {
      r = th(s.env, ['token', 'add', bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /^trellohook: .*token/m);
    }
    assert.equal(th(s.env, ['token', 'add']).code, 2);
  });

  test('check: valid token with owner, expiry and permissions', () => {
    const r = th(s.env, ['token', 'check', s.token, '--json']);
    assert.equal(r.code, 0, r.stderr);
    noFullToken(r, s.token);
    const t = JSON.parse(r.stdout);
    assert.equal(t.state, 'valid');
    assert.equal(t.token, masked(s.token));
    assert.ok(t.member);
    assert.ok(Array.isArray(t.permissions) && t.permissions.length > 0);
    assert.equal(thJson(s.env, ['token', 'ls'])[0].state, 'valid');
    const all = th(s.env, ['token', 'check']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /valid/);
  });

  test('check: an unknown (invalid) token exits 1 and is reported invalid', () => {
    const bad = newTok();
    const r = th(s.env, ['token', 'check', bad, '--json']);
    assert.equal(r.code, 1);
    noFullToken(r, bad);
    assert.equal(JSON.parse(r.stdout).state, 'invalid');
  });

  test('expiry: check flags the token and every webhook using it; ls shows it', async () => {
    const tok = (await control(s.mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(s.mock, 'Expiring');
    const w1 = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', tok]);
    const w2 = thJson(s.env, ['webhook', 'add', '--model', b.cards[0].id, '--token', tok]);
    const other = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    await control(s.mock, 'POST', `/_mock/tokens/${tok}/expire`);
    const r = th(s.env, ['token', 'check', tok]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /expired/);
    noFullToken(r, tok);
    const ws = thJson(s.env, ['webhook', 'ls']);
    assert.equal(ws.find((x) => x.id === w1.id).state, 'needs_token');
    assert.equal(ws.find((x) => x.id === w2.id).state, 'needs_token');
    assert.equal(ws.find((x) => x.id === other.id).state, 'active');
    const t = thJson(s.env, ['token', 'ls']).find((x) => x.token === masked(tok));
    assert.equal(t.state, 'expired');
    assert.equal(t.webhooks, 2);
    const text = th(s.env, ['token', 'ls']);
    assert.match(text.stdout, /expired.*needs a new token/);
    // `token check` with no argument checks them all and fails because of this one
    assert.equal(th(s.env, ['token', 'check']).code, 1);
  });

  test('rm: refused while webhooks use the token, then allowed', async () => {
    const tok = (await control(s.mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(s.mock, 'rm token');
    const w = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', tok]);
    let r = th(s.env, ['token', 'rm', tok]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /used by 1 webhook/);
    noFullToken(r, tok);
    assert.equal(th(s.env, ['webhook', 'rm', w.id]).code, 0);
    r = th(s.env, ['token', 'rm', tok]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!thJson(s.env, ['token', 'ls']).some((x) => x.token === masked(tok)));
    assert.equal(th(s.env, ['token', 'rm', tok]).code, 1, 'gone');
  });
});

describe('tokens at rest with TRELLOHOOK_SECRET_KEY', () => {
  let s;
  const key = randomBytes(32).toString('base64');
  before(async () => { s = await stack({ extraEnv: { TRELLOHOOK_SECRET_KEY: key } }); });
  after(async () => { await s.stop(); });

  test('tokens never reach the database file in clear; everything still works', async () => {
    const b = await newBoard(s.mock, 'Sealed');
    const w = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    // duplicates are still caught although the stored forms differ
    const dup = th(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    assert.equal(thJson(s.env, ['token', 'check', s.token]).state, 'valid');
    assert.equal(thJson(s.env, ['token', 'ls']).length, 1, 'one row per token');
    const plan = thJson(s.env, ['sync']);
    assert.equal(plan.in_sync, 1);
    assert.equal(plan.failures, 0);
    const v = thJson(s.env, ['webhook', 'show', w.id, '--trello']);
    assert.equal(v.trello.active, true);
    const db = path.join(s.dir, 'th.db');
    const bytes = [db, `${db}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
    assert.ok(bytes.includes('enc:v1:'), 'sealed form stored');
    assert.ok(!bytes.includes(s.token), 'the token is not in the database in clear');
    assert.ok(!bytes.includes(s.token.slice(4, 40)), 'not even a part of it');
  });

  test('a wrong key or no key: a clear error, nothing changed', () => {
    const wrong = { ...s.env, TRELLOHOOK_SECRET_KEY: randomBytes(32).toString('base64') };
    let r = th(wrong, ['webhook', 'ls']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot decrypt.*TRELLOHOOK_SECRET_KEY/);
    r = th(wrong, ['token', 'ls']);
    assert.equal(r.code, 1);
    const none = { ...s.env };
    delete none.TRELLOHOOK_SECRET_KEY;
    r = th(none, ['token', 'ls']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TRELLOHOOK_SECRET_KEY/);
    assert.equal(thJson(s.env, ['webhook', 'ls']).length, 1);
  });
});

describe('serve: periodic health pass', () => {
  let s;
  before(async () => {
    s = await stack({ serveArgs: ['--health-interval', '1s'] });
  });
  after(async () => { await s.stop(); });

  const until = async (pred, ms = 8000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > end) throw new Error('condition not met in time');
      await sleep(200);
    }
  };

  test('flags expired tokens, disabled and deleted webhooks, finishes removals; counts token problems', async () => {
    const tok = (await control(s.mock, 'POST', '/_mock/tokens', {})).token;
    const b = await newBoard(s.mock, 'Health');
    const b2 = await newBoard(s.mock, 'Health 2');
    const wExp = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', tok]);
    const wDis = thJson(s.env, ['webhook', 'add', '--model', b.id, '--token', s.token]);
    const wDel = thJson(s.env, ['webhook', 'add', '--model', b2.id, '--token', s.token]);
    const wRm = thJson(s.env, ['webhook', 'add', '--model', b.cards[0].id, '--token', s.token]);
    // the world changes behind our back
    await control(s.mock, 'POST', `/_mock/tokens/${tok}/expire`);
    assert.equal((await api(s.mock, 'PUT', `/webhooks/${wDis.trello_id}`, { token: s.token, body: { active: false } })).status, 200);
    assert.equal((await api(s.mock, 'DELETE', `/webhooks/${wDel.trello_id}`, { token: s.token })).status, 200);
    const down = { ...s.env, TRELLO_API_URL: `http://127.0.0.1:${await closedPort()}/1` };
    assert.equal(th(down, ['webhook', 'rm', wRm.id]).code, 1);
    // the pass notices all of it without any command
    await until(() => {
      const ws = thJson(s.env, ['webhook', 'ls']);
      const st = (id) => ws.find((x) => x.id === id);
      return st(wExp.id)?.state === 'needs_token' && st(wDis.id)?.state === 'disabled' &&
        st(wDel.id)?.trello_id === null && !st(wRm.id);
    });
    const toks = thJson(s.env, ['token', 'ls']);
    assert.equal(toks.find((x) => x.token === masked(tok)).state, 'expired');
    assert.equal(toks.find((x) => x.token === masked(s.token)).state, 'valid');
    assert.ok(!(await control(s.mock, 'GET', '/_mock/webhooks')).some((x) => x.id === wRm.trello_id), 'removal finished on Trello');
    const log = s.serve.stderr();
    assert.match(log, /needs a new token/);
    assert.match(log, /Trello disabled webhook/);
    assert.match(log, /deleted on Trello/);
    assert.ok(!log.includes(tok) && !log.includes(s.token), 'logs never hold a full token');
    const metrics = await (await fetch(`${s.env.CALLBACK_DOMAIN}/metrics`)).text();
    const m = metrics.match(/^trellohook_token_problems_total (\d+)/m);
    assert.ok(m && Number(m[1]) >= 1, 'token problems counted');
    const counted = (name) => Number((metrics.match(new RegExp(`^trellohook_health_${name}_total (\\d+)`, 'm')) ?? [0, -1])[1]);
    assert.ok(counted('passes') >= 1, 'health passes counted');
    assert.ok(counted('webhooks_disabled') >= 1, 'disabled webhook counted');
    assert.ok(counted('webhooks_deleted') >= 1, 'deleted webhook counted');
    assert.ok(counted('removals_finished') >= 1, 'finished removal counted');
    // sync brings the disabled and deleted ones back (and fails on the expired token: exit 1)
    const r = th(s.env, ['sync', '--json']);
    assert.equal(r.code, 1);
    const plan = JSON.parse(r.stdout);
    assert.ok(plan.actions.some((a) => a.action === 'token-error' && /expired token/.test(a.detail)));
    assert.ok(plan.actions.some((a) => a.action === 'update' && a.webhook_id === wDis.id && a.result === 'done'));
    assert.ok(plan.actions.some((a) => a.action === 'register' && a.webhook_id === wDel.id && a.result === 'done'));
  });
});
