// SPDX-License-Identifier: MIT
// trello-mock against the facts of ../shared/trello/API.md: error texts and
// statuses, the HEAD rule, signed deliveries, retries, 410, token expiry,
// rate limits, both auth forms, both token forms, hostile input, authorize.
// Every test runs the real binary and real HTTP receivers on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  DEMO_KEY,
  MOCK_BIN,
  ROOT,
  api,
  closedPort,
  control,
  newBoard,
  newToken,
  sleep,
  startMock,
  startReceiver,
} from './lib/mock.mjs';

const ATTA_RE = /^ATTA[0-9a-f]{64}[0-9A-F]{8}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const ID_RE = /^[0-9a-f]{24}$/;
const SEED_TOKEN = 'ATTA' + 'a1'.repeat(32) + '0BADF00D';
const SEED_HEX = 'f0'.repeat(32);
// Big limits: only the rate-limit tests run into them.
const NO_LIMITS = ['--rate-key', '1000000', '--rate-token', '1000000'];

function trelloSig(secret, body, callbackURL) {
  return crypto.createHmac('sha1', secret).update(Buffer.concat([body, Buffer.from(callbackURL, 'utf8')])).digest('base64');
}

// Send raw bytes on a socket; resolve with whatever comes back (or '' on close).
function rawRequest(port, bytes, { waitMs = 2000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const done = () => {
      s.destroy();
      resolve(out);
    };
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => s.write(bytes));
    setTimeout(done, waitMs);
  });
}

describe('command line', () => {
  test('--help exits 0 and names the flags; unknown flags exit 2', () => {
    const h = spawnSync(MOCK_BIN, ['--help'], { encoding: 'utf8' });
    assert.equal(h.status, 0);
    for (const f of ['--listen', '--key', '--secret', '--token', '--retry-delays', '--state', '--json-errors'])
      assert.ok(h.stdout.includes(f), f);
    for (const bad of [['--bogus'], ['--listen', 'nope'], ['--token', 'short'], ['--retry-delays', '1,x'], ['--key']]) {
      const r = spawnSync(MOCK_BIN, bad, { encoding: 'utf8' });
      assert.equal(r.status, 2, bad.join(' '));
      assert.match(r.stderr, /^trello-mock: /);
    }
  });

  test('prints its base URL first and exits 0 on SIGTERM and SIGINT', async () => {
    for (const sig of ['SIGTERM', 'SIGINT']) {
      const m = await startMock([]);
      assert.match(m.url, /^http:\/\/127\.0\.0\.1:\d+\/1$/);
      const r = await fetch(m.base + '/');
      assert.equal(r.status, 200);
      m.proc.kill(sig);
      const { code } = await m.exited;
      assert.equal(code, 0, sig);
      assert.ok(m.stderr().includes(DEMO_KEY), 'the demo key is logged');
    }
  });
});

describe('Trello API', () => {
  let m, board, recv;
  before(async () => {
    m = await startMock(['--token', SEED_TOKEN, '--token', SEED_HEX, '--retry-delays', '0.05,0.05,0.05', ...NO_LIMITS]);
    board = await newBoard(m);
    recv = await startReceiver((req) => (req.url.startsWith('/missing') ? 404 : 200));
  });
  after(async () => {
    await recv?.close();
    await m?.stop();
  });

  test('control API seeds a board with two lists and a card', () => {
    assert.match(board.id, ID_RE);
    assert.match(board.shortLink, /^[A-Za-z0-9]{8}$/);
    assert.equal(board.url, `https://trello.com/b/${board.shortLink}/roadmap-2027`);
    assert.equal(board.lists.length, 2);
    assert.equal(board.cards.length, 1);
    assert.equal(board.cards[0].idList, board.lists[0].id);
    assert.match(board.cards[0].shortLink, /^[A-Za-z0-9]{8}$/);
  });

  test('key errors: missing or wrong key is 401 invalid key', async () => {
    let r = await api(m, 'GET', '/members/me', { auth: false, query: { token: SEED_TOKEN } });
    assert.equal(r.status, 401);
    assert.equal(r.text, 'invalid key');
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    r = await api(m, 'GET', '/members/me', { auth: false, query: { key: 'f'.repeat(32), token: SEED_TOKEN } });
    assert.equal(r.status, 401);
    assert.equal(r.text, 'invalid key');
  });

  test('token errors: missing, malformed and unknown tokens are 401 invalid token', async () => {
    for (const token of [undefined, 'abc', 'ATTA' + '0'.repeat(72), 'e'.repeat(64)]) {
      const r = await api(m, 'GET', '/members/me', { token });
      assert.equal(r.status, 401, String(token));
      assert.equal(r.text, 'invalid token');
    }
  });

  test('both token forms work; minted tokens are ATTA, hex64 on request', async () => {
    for (const token of [SEED_TOKEN, SEED_HEX]) {
      const r = await api(m, 'GET', '/members/me', { token });
      assert.equal(r.status, 200);
      assert.equal(r.json.username, 'zoeangstrom');
    }
    const atta = await newToken(m);
    assert.match(atta, ATTA_RE);
    assert.equal(atta.length, 76);
    const hex = await newToken(m, { format: 'hex64' });
    assert.match(hex, HEX64_RE);
    assert.equal((await api(m, 'GET', '/members/me', { token: hex })).status, 200);
  });

  test('auth by OAuth header, JSON body and form body', async () => {
    let r = await api(m, 'GET', '/members/me', {
      auth: false,
      headers: { authorization: `OAuth oauth_consumer_key="${m.key}", oauth_token="${SEED_TOKEN}"` },
    });
    assert.equal(r.status, 200, r.text);
    r = await api(m, 'GET', '/members/me', { auth: false, headers: { authorization: `OAuth oauth_consumer_key="${m.key}", oauth_token="${'e'.repeat(64)}"` } });
    assert.equal(r.text, 'invalid token');
    const cb = recv.base + '/body-auth';
    r = await api(m, 'POST', '/webhooks', { auth: false, body: { key: m.key, token: SEED_TOKEN, idModel: board.id, callbackURL: cb } });
    assert.equal(r.status, 200, r.text);
    const form = new URLSearchParams({ key: m.key, token: SEED_TOKEN, idModel: board.id, callbackURL: cb + '/form' });
    r = await api(m, 'POST', '/webhooks', {
      auth: false,
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.callbackURL, cb + '/form');
  });

  test('boards and cards by id and short link; lists; members', async () => {
    for (const id of [board.id, board.shortLink]) {
      const r = await api(m, 'GET', `/boards/${id}`, { token: SEED_TOKEN });
      assert.equal(r.status, 200);
      assert.equal(r.json.id, board.id);
      assert.equal(r.json.name, 'Roadmap 2027');
    }
    const card = board.cards[0];
    for (const id of [card.id, card.shortLink]) {
      const r = await api(m, 'GET', `/cards/${id}`, { token: SEED_TOKEN });
      assert.equal(r.status, 200);
      assert.equal(r.json.id, card.id);
      assert.equal(r.json.idBoard, board.id);
    }
    let r = await api(m, 'GET', `/lists/${board.lists[1].id}`, { token: SEED_TOKEN });
    assert.equal(r.json.name, 'Doing');
    // A board's lists and cards: as sub-resources, and inline with ?lists=&cards=.
    r = await api(m, 'GET', `/boards/${board.id}/lists`, { token: SEED_TOKEN });
    assert.deepEqual(r.json.map((l) => l.name), ['To do', 'Doing']);
    r = await api(m, 'GET', `/boards/${board.id}/cards`, { token: SEED_TOKEN });
    assert.deepEqual(r.json.map((c) => c.id), [card.id]);
    r = await api(m, 'GET', `/boards/${board.id}`, { token: SEED_TOKEN, query: { lists: 'open', cards: 'none' } });
    assert.deepEqual(r.json.lists.map((l) => l.id), board.lists.map((l) => l.id));
    assert.equal(r.json.cards, undefined);
    r = await api(m, 'GET', '/members/me/boards', { token: SEED_TOKEN, query: { fields: 'name,url' } });
    const b = r.json.find((x) => x.id === board.id);
    assert.deepEqual(Object.keys(b).sort(), ['id', 'name', 'url']);
    r = await api(m, 'GET', `/boards/${'0'.repeat(24)}`, { token: SEED_TOKEN });
    assert.equal(r.status, 404);
    r = await api(m, 'GET', '/boards/not-an-id!', { token: SEED_TOKEN });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'invalid id');
  });

  test('the HEAD check: 200 passes, 404 and an unreachable URL fail with Trello texts', async () => {
    const before = recv.requests.length;
    const cb = recv.base + '/head-ok';
    let r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body: { idModel: board.id, callbackURL: cb, description: 'Roadmap board' } });
    assert.equal(r.status, 200, r.text);
    const head = recv.requests.slice(before).find((q) => q.path === '/head-ok');
    assert.equal(head.method, 'HEAD');
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['x-trello-webhook'], undefined);
    assert.deepEqual(Object.keys(r.json), ['id', 'description', 'idModel', 'callbackURL', 'active', 'consecutiveFailures', 'firstConsecutiveFailDate']);
    assert.deepEqual({ ...r.json, id: 'x' }, {
      id: 'x', description: 'Roadmap board', idModel: board.id, callbackURL: cb, active: true, consecutiveFailures: 0, firstConsecutiveFailDate: null,
    });

    const missing = recv.base + '/missing';
    r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body: { idModel: board.id, callbackURL: missing } });
    assert.equal(r.status, 400);
    assert.equal(r.text, `URL (${missing}) did not return 200 status code, got 404`);

    const dead = `http://127.0.0.1:${await closedPort()}/cb`;
    r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body: { idModel: board.id, callbackURL: dead } });
    assert.equal(r.status, 400);
    assert.ok(r.text.startsWith(`URL (${dead}) not reachable`), r.text);
  });

  test('validation: idModel, callbackURL, description, active, duplicates', async () => {
    const cb = recv.base + '/validate';
    const cases = [
      [{ callbackURL: cb }, 'invalid value for idModel'],
      [{ callbackURL: cb, idModel: '0'.repeat(24) }, 'invalid value for idModel'],
      [{ callbackURL: cb, idModel: 'nope' }, 'invalid value for idModel'],
      [{ idModel: board.id }, 'invalid value for callbackURL'],
      [{ idModel: board.id, callbackURL: 'ftp://x/y' }, 'invalid value for callbackURL'],
      [{ idModel: board.id, callbackURL: cb, description: 'x'.repeat(16385) }, 'invalid value for description'],
      [{ idModel: board.id, callbackURL: cb, active: 'maybe' }, 'invalid value for active'],
    ];
    for (const [body, text] of cases) {
      const r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body });
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(r.text, text);
    }
    let r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body: { idModel: board.id, callbackURL: cb, description: 'x'.repeat(16384) } });
    assert.equal(r.status, 200);
    r = await api(m, 'POST', '/webhooks', { token: SEED_TOKEN, body: { idModel: board.id, callbackURL: cb } });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'A webhook with that callback, model, and token already exists');
    // Same URL and model with another token is fine.
    r = await api(m, 'POST', '/webhooks', { token: SEED_HEX, body: { idModel: board.id, callbackURL: cb } });
    assert.equal(r.status, 200);
  });

  test('a webhook belongs to its token: GET/PUT/DELETE, fields, listing', async () => {
    const other = await newToken(m);
    const cb = recv.base + '/owned';
    const wh = (await api(m, 'POST', `/tokens/${SEED_TOKEN}/webhooks`, { token: SEED_TOKEN, body: { idModel: board.cards[0].id, callbackURL: cb } })).json;
    assert.match(wh.id, ID_RE);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await api(m, method, `/webhooks/${wh.id}`, { token: other, body: method === 'PUT' ? { description: 'x' } : undefined });
      assert.equal(r.status, 401, method);
      assert.equal(r.text, 'webhook does not belong to token');
      const r2 = await api(m, method, `/tokens/${other}/webhooks/${wh.id}`, { token: other });
      assert.equal(r2.status, 401);
      assert.equal(r2.text, 'webhook does not belong to token');
    }
    let r = await api(m, 'GET', `/webhooks/${wh.id}`, { token: SEED_TOKEN });
    assert.deepEqual(r.json, wh);
    r = await api(m, 'GET', `/webhooks/${wh.id}/callbackURL`, { token: SEED_TOKEN });
    assert.deepEqual(r.json, { _value: cb });
    r = await api(m, 'GET', `/webhooks/${wh.id}/consecutiveFailures`, { token: SEED_TOKEN });
    assert.deepEqual(r.json, { _value: 0 });
    r = await api(m, 'GET', `/tokens/${SEED_TOKEN}/webhooks`, { token: SEED_TOKEN });
    assert.ok(r.json.some((w) => w.id === wh.id));
    r = await api(m, 'GET', `/tokens/${other}/webhooks`, { token: other });
    assert.deepEqual(r.json, []);
    r = await api(m, 'GET', `/webhooks/${'a'.repeat(24)}`, { token: SEED_TOKEN });
    assert.equal(r.status, 404);
    assert.equal(r.text, 'The requested resource was not found.');

    // PUT: description; a changed callbackURL is HEAD-checked again.
    r = await api(m, 'PUT', `/webhooks/${wh.id}`, { token: SEED_TOKEN, body: { description: 'renamed', active: false } });
    assert.equal(r.status, 200);
    assert.equal(r.json.description, 'renamed');
    assert.equal(r.json.active, false);
    r = await api(m, 'PUT', `/webhooks/${wh.id}`, { token: SEED_TOKEN, body: { callbackURL: recv.base + '/missing/2' } });
    assert.equal(r.status, 400);
    assert.equal(r.text, `URL (${recv.base}/missing/2) did not return 200 status code, got 404`);
    r = await api(m, 'PUT', `/tokens/${SEED_TOKEN}/webhooks/${wh.id}`, { token: SEED_TOKEN, body: { callbackURL: cb + '/moved', active: true } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.callbackURL, cb + '/moved');

    r = await api(m, 'DELETE', `/webhooks/${wh.id}`, { token: SEED_TOKEN });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"_value":null}');
    r = await api(m, 'GET', `/webhooks/${wh.id}`, { token: SEED_TOKEN });
    assert.equal(r.status, 404);
  });

  test('GET /1/tokens/{token} describes the token', async () => {
    const t = await newToken(m, { expires_in: 3600 });
    const r = await api(m, 'GET', `/tokens/${t}`, { token: t });
    assert.equal(r.status, 200);
    assert.match(r.json.id, ID_RE);
    assert.equal(r.json.idMember, '5e3b1c9f8a7d6e5f4a3b2c1d');
    assert.ok(Math.abs(Date.parse(r.json.dateExpires) - Date.now() - 3600e3) < 60e3);
    assert.ok(Array.isArray(r.json.permissions));
    const never = await api(m, 'GET', `/tokens/${SEED_TOKEN}`, { token: SEED_TOKEN });
    assert.equal(never.json.dateExpires, null);
    const gone = await api(m, 'GET', `/tokens/${'c'.repeat(64)}`, { token: SEED_TOKEN });
    assert.equal(gone.status, 401);
    assert.equal(gone.text, 'invalid token');
  });

  test('revoking a token (DELETE /1/tokens/{token}) deletes its webhooks', async () => {
    const t = await newToken(m);
    const wh = (await api(m, 'POST', '/webhooks', { token: t, body: { idModel: board.id, callbackURL: recv.base + '/revoke' } })).json;
    const r = await api(m, 'DELETE', `/tokens/${t}`, { token: t });
    assert.deepEqual(r.json, { _value: null });
    assert.equal((await api(m, 'GET', '/members/me', { token: t })).text, 'invalid token');
    const all = await control(m, 'GET', '/_mock/webhooks');
    assert.ok(!all.some((w) => w.id === wh.id));
  });

  test('unknown routes and methods are 404, nothing crashes', async () => {
    let r = await api(m, 'GET', '/nothing/here', { token: SEED_TOKEN });
    assert.equal(r.status, 404);
    r = await api(m, 'PATCH', `/webhooks/${'a'.repeat(24)}`, { token: SEED_TOKEN });
    assert.equal(r.status, 404);
    r = await fetch(m.base + '/_mock/nope');
    assert.equal(r.status, 404);
  });
});

describe('deliveries', () => {
  let m, board, recv, token;
  before(async () => {
    m = await startMock(['--retry-delays', '0.05,0.1,0.1', ...NO_LIMITS]);
    token = await newToken(m);
    board = await newBoard(m, 'Deliveries <b>board</b> — naïve');
    recv = await startReceiver((req) => {
      if (req.method === 'HEAD') return 200;
      if (req.url.startsWith('/fail')) return 500;
      if (req.url.startsWith('/gone')) return 410;
      return 200;
    });
  });
  after(async () => {
    await recv?.close();
    await m?.stop();
  });

  const hook = async (path, idModel) => {
    const r = await api(m, 'POST', '/webhooks', { token, body: { idModel, callbackURL: recv.base + path } });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };

  test('every action type is delivered signed to the card, list and board webhooks', async () => {
    const card = board.cards[0];
    const [todo, doing] = board.lists;
    const whBoard = await hook('/board', board.id);
    const whCard = await hook('/card', card.id);
    const whDoing = await hook('/list-doing', doing.id);
    const other = await control(m, 'POST', '/_mock/cards', { idList: todo.id, name: 'Other' });
    const whOther = await hook('/other-card', other.id);

    const actions = [
      [{ type: 'createCard', idModel: todo.id, name: 'New <i>card</i> 🚀' }, 'action_create_card'],
      [{ type: 'updateCard', idModel: card.id, idList: doing.id }, 'action_move_card_from_list_to_list'],
      [{ type: 'commentCard', idModel: card.id, text: 'Looks good 🚀 — naïve café; <script>x</script>' }, 'action_comment_on_card'],
      [{ type: 'addLabelToCard', idModel: card.id, label: { name: 'blocked', color: 'red' } }, 'action_add_label_to_card'],
      [{ type: 'updateCheckItemStateOnCard', idModel: card.id, checkItem: 'Write the changelog' }, 'action_completed_checkitem'],
      [{ type: 'addLabelToCard', idModel: card.id, label: 'fresh' }, 'action_add_label_to_card'],
      [{ type: 'addLabelToCard', idModel: card.id, label: 'fresh' }, 'action_add_label_to_card'],
      [
        { type: 'updateCheckItemStateOnCard', idModel: card.id, checkItem: { name: 'Write the changelog', state: 'incomplete' } },
        'action_marked_checkitem_incomplete',
      ],
    ];
    for (const [body, key] of actions) {
      const r = await control(m, 'POST', '/_mock/actions', { ...body, wait: true });
      assert.equal(r.action.type, body.type);
      assert.equal(r.action.display.translationKey, key);
      assert.match(r.action.id, ID_RE);
      assert.equal(r.action.memberCreator.fullName, 'Zoë Ångström');
      const paths = recv.posts().filter((q) => JSON.parse(q.body).action.id === r.action.id).map((q) => q.path).sort();
      const want = body.type === 'createCard' ? ['/board'] : ['/board', '/card', '/list-doing'];
      assert.deepEqual(paths, want, body.type);
      assert.equal(r.deliveries, want.length);
    }
    assert.ok(!recv.posts().some((q) => q.path === '/other-card'), 'a card webhook sees only its card');
    // Labels and checklist items are found by name, or made once when missing.
    const cardData = (type) =>
      recv.posts().filter((q) => q.path === '/card' && JSON.parse(q.body).action.type === type).map((q) => JSON.parse(q.body).action.data);
    const [blocked, fresh1, fresh2] = cardData('addLabelToCard').map((x) => x.label);
    assert.equal(blocked.color, 'red');
    assert.equal(fresh1.color, 'green', 'a new label is green unless told');
    assert.equal(fresh2.id, fresh1.id, 'the label made by the first call is found by the second');
    const full = await api(m, 'GET', `/boards/${board.id}`, { token });
    assert.equal(full.status, 200, full.text);
    const named = (name) => full.json.labels.filter((l) => l.name === name).map((l) => l.id);
    assert.deepEqual(named('blocked'), [blocked.id], 'the seeded label is reused');
    assert.deepEqual(named('fresh'), [fresh1.id], 'made once');
    const [done, undone] = cardData('updateCheckItemStateOnCard');
    assert.equal(done.checklist.name, 'Checklist');
    assert.equal(undone.checkItem.id, done.checkItem.id, 'the item made by the first call is found by the second');
    assert.equal(undone.checklist.id, done.checklist.id);
    assert.equal(undone.checkItem.state, 'incomplete');
    assert.ok(whOther.id);

    for (const q of recv.posts()) {
      const url = recv.base + q.path;
      assert.equal(q.headers['x-trello-webhook'], trelloSig(m.secret, q.body, url), 'signature over raw bytes + callbackURL');
      assert.match(q.headers['content-type'], /^application\/json/);
      const p = JSON.parse(q.body.toString('utf8'));
      assert.deepEqual(Object.keys(p).sort(), ['action', 'model', 'webhook']);
      const wh = { '/board': whBoard, '/card': whCard, '/list-doing': whDoing }[q.path];
      assert.equal(p.webhook.id, wh.id);
      assert.equal(p.webhook.callbackURL, url);
      assert.equal(p.model.id, wh.idModel);
    }
    // Non-ASCII crosses as UTF-8 bytes, not \u escapes (that is what is signed).
    const comment = recv.posts().find((q) => JSON.parse(q.body).action.type === 'commentCard');
    assert.ok(comment.body.includes(Buffer.from('naïve café', 'utf8')));
    const move = recv.posts().find((q) => q.path === '/board' && JSON.parse(q.body).action.type === 'updateCard');
    const d = JSON.parse(move.body).action.data;
    assert.equal(d.listBefore.name, 'To do');
    assert.equal(d.listAfter.name, 'Doing');
    assert.equal(d.old.idList, todo.id);
    const boardModel = JSON.parse(move.body).model;
    assert.equal(boardModel.name, 'Deliveries <b>board</b> — naïve');

    const log = await control(m, 'GET', '/_mock/deliveries');
    const rec = log.find((x) => x.webhook_id === whCard.id);
    assert.equal(rec.attempt, 1);
    assert.equal(rec.status, 200);
    assert.ok(Number.isInteger(rec.latency_ms));
    assert.ok(!Number.isNaN(Date.parse(rec.at)));
  });

  test('deliveries run in the background without "wait"', async () => {
    const card = await control(m, 'POST', '/_mock/cards', { idList: board.lists[0].id, name: 'bg' });
    await hook('/bg', card.id);
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: 'hi' });
    assert.equal(r.deliveries, 2, 'the card webhook and the board webhook');
    await recv.until((rs) => rs.some((q) => q.path === '/bg' && q.method === 'POST'));
  });

  test('failures are retried 3 times and counted; success resets the count', async () => {
    const card = await control(m, 'POST', '/_mock/cards', { idList: board.lists[0].id, name: 'flaky' });
    const wh = await hook('/fail/1', card.id);
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: 'x', wait: true });
    const attempts = (await control(m, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === r.action.id && x.webhook_id === wh.id);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.status]), [[1, 500], [2, 500], [3, 500], [4, 500]]);
    let w = (await api(m, 'GET', `/webhooks/${wh.id}`, { token })).json;
    assert.equal(w.consecutiveFailures, 4);
    assert.ok(!Number.isNaN(Date.parse(w.firstConsecutiveFailDate)));
    assert.equal(w.active, true);
    // Point it at a healthy URL: the next success resets the counters.
    await api(m, 'PUT', `/webhooks/${wh.id}`, { token, body: { callbackURL: recv.base + '/healthy' } });
    await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: 'y', wait: true });
    w = (await api(m, 'GET', `/webhooks/${wh.id}`, { token })).json;
    assert.equal(w.consecutiveFailures, 0);
    assert.equal(w.firstConsecutiveFailDate, null);
  });

  test('no answer at all (closed port) is a failure with status 0', async () => {
    const card = await control(m, 'POST', '/_mock/cards', { idList: board.lists[0].id, name: 'dead' });
    // Register on a live receiver (the HEAD passes), then close its port.
    const tmp = await startReceiver();
    const r0 = await api(m, 'POST', '/webhooks', { token, body: { idModel: card.id, callbackURL: tmp.base + '/x' } });
    assert.equal(r0.status, 200);
    await tmp.close();
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: 'z', wait: true });
    const attempts = (await control(m, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === r.action.id && x.webhook_id === r0.json.id);
    assert.equal(attempts.length, 4);
    assert.ok(attempts.every((a) => a.status === 0));
  });

  test('a 410 answer deletes the webhook', async () => {
    const card = await control(m, 'POST', '/_mock/cards', { idList: board.lists[0].id, name: 'gone' });
    const wh = await hook('/gone', card.id);
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: 'x', wait: true });
    const attempts = (await control(m, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === r.action.id && x.webhook_id === wh.id);
    assert.deepEqual(attempts.map((a) => a.status), [410]);
    assert.equal((await api(m, 'GET', `/webhooks/${wh.id}`, { token })).status, 404);
  });

  test('expiry: 401 expired token everywhere and the webhooks are gone', async () => {
    const t = await newToken(m, { expires_in: 1 });
    const r0 = await api(m, 'POST', '/webhooks', { token: t, body: { idModel: board.id, callbackURL: recv.base + '/expiring' } });
    assert.equal(r0.status, 200);
    await sleep(1100);
    let r = await api(m, 'GET', '/members/me', { token: t });
    assert.equal(r.status, 401);
    assert.equal(r.text, 'expired token');
    r = await api(m, 'GET', `/tokens/${t}/webhooks`, { token: t });
    assert.equal(r.text, 'expired token');
    assert.ok(!(await control(m, 'GET', '/_mock/webhooks')).some((w) => w.token === t));

    const t2 = await newToken(m);
    const wh = (await api(m, 'POST', '/webhooks', { token: t2, body: { idModel: board.id, callbackURL: recv.base + '/expire2' } })).json;
    assert.ok((await control(m, 'GET', '/_mock/webhooks')).some((w) => w.id === wh.id && w.token === t2));
    await control(m, 'POST', `/_mock/tokens/${t2}/expire`);
    assert.ok(!(await control(m, 'GET', '/_mock/webhooks')).some((w) => w.id === wh.id));
    const act = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: board.cards[0].id, text: 'after expiry', wait: true });
    assert.ok(!recv.posts().some((q) => q.path === '/expire2' && JSON.parse(q.body).action.id === act.action.id));
    r = await api(m, 'GET', `/tokens/${t2}`, { token: t2 });
    assert.equal(r.text, 'expired token');
  });

  test('bad actions are 400 with the field named', async () => {
    for (const [body, msg] of [
      [{}, 'invalid value for type'],
      [{ type: 'explode', idModel: board.cards[0].id }, 'invalid value for type'],
      [{ type: 'commentCard', idModel: board.cards[0].id }, 'invalid value for text'],
      [{ type: 'commentCard', idModel: '0'.repeat(24), text: 'x' }, 'invalid value for idModel'],
      [{ type: 'createCard', idList: 'nope', name: 'x' }, 'invalid value for idList'],
      [{ type: 'addLabelToCard', idModel: board.cards[0].id, label: { name: 'x', color: 'plaid' } }, 'invalid value for label'],
    ]) {
      const r = await control(m, 'POST', '/_mock/actions', body, { ok: false });
      assert.equal(r.status, 400);
      assert.equal(r.body.message, msg);
    }
  });
});

describe('options', () => {
  test('--disable-after marks a failing webhook inactive and stops retrying', async (t) => {
    const m = await startMock(['--retry-delays', '0.05,0.05,0.05', '--disable-after', '2', ...NO_LIMITS]);
    const recv = await startReceiver((req) => (req.method === 'HEAD' ? 200 : 503));
    t.after(async () => {
      await recv.close();
      await m.stop();
    });
    const token = await newToken(m);
    const board = await newBoard(m);
    const wh = (await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: recv.base + '/' } })).json;
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: board.cards[0].id, text: 'x', wait: true });
    const attempts = (await control(m, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === r.action.id);
    assert.equal(attempts.length, 2);
    const w = (await api(m, 'GET', `/webhooks/${wh.id}`, { token })).json;
    assert.equal(w.active, false);
    assert.equal(w.consecutiveFailures, 2);
    const r2 = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: board.cards[0].id, text: 'y', wait: true });
    assert.equal(r2.deliveries, 0, 'inactive webhooks get nothing');
  });

  test('a receiver that does not answer in time is a failure (--delivery-timeout)', async (t) => {
    const m = await startMock(['--retry-delays', '0.05', '--delivery-timeout', '0.3', ...NO_LIMITS]);
    const recv = await startReceiver((req) => (req.method === 'HEAD' ? 200 : sleep(1500).then(() => 200)));
    t.after(async () => {
      await recv.close();
      await m.stop();
    });
    const token = await newToken(m);
    const board = await newBoard(m);
    const wh = (await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: recv.base + '/slow' } })).json;
    const t0 = Date.now();
    const r = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: board.cards[0].id, text: 'x', wait: true });
    assert.ok(Date.now() - t0 < 1400, 'did not wait for the slow receiver');
    const attempts = (await control(m, 'GET', '/_mock/deliveries')).filter((x) => x.action_id === r.action.id);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.status]), [[1, 0], [2, 0]]);
    assert.ok(attempts[0].latency_ms >= 250);
    assert.equal((await api(m, 'GET', `/webhooks/${wh.id}/consecutiveFailures`, { token })).json._value, 2);
  });

  test('--json-errors answers {"message","error"}', async (t) => {
    const m = await startMock(['--json-errors', ...NO_LIMITS]);
    t.after(() => m.stop());
    const board = await newBoard(m);
    const token = await newToken(m);
    let r = await api(m, 'GET', '/members/me', { token: 'e'.repeat(64) });
    assert.equal(r.status, 401);
    assert.equal(r.json.message, 'invalid token');
    assert.equal(typeof r.json.error, 'string');
    const dead = `http://127.0.0.1:${await closedPort()}/x`;
    r = await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: dead } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'VALIDATOR_URL_NOT_REACHABLE');
    assert.ok(r.json.message.startsWith(`URL (${dead}) not reachable`));
    r = await api(m, 'POST', '/webhooks', { token, body: { callbackURL: dead } });
    assert.equal(r.json.message, 'invalid value for idModel');
    const recv = await startReceiver(() => 404);
    t.after(() => recv.close());
    r = await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: recv.base + '/x' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.message, `URL (${recv.base}/x) did not return 200 status code, got 404`);
    r = await api(m, 'GET', '/members/me', { token, query: { key: 'nope' } });
    assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message']);
    assert.equal(r.json.message, 'invalid key');
  });

  test('--state keeps boards, tokens and webhooks across restarts', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mock-state-'));
    const file = path.join(dir, 'state.json');
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const recv = await startReceiver();
    t.after(() => recv.close());
    let m = await startMock(['--state', file, ...NO_LIMITS]);
    const board = await newBoard(m, 'Persistent');
    const token = await newToken(m);
    const wh = (await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: recv.base + '/p' } })).json;
    assert.equal((await m.stop()).code, 0);
    assert.ok(fs.existsSync(file));
    m = await startMock(['--state', file, ...NO_LIMITS]);
    t.after(() => m.stop());
    assert.equal((await api(m, 'GET', `/boards/${board.shortLink}`, { token })).json.name, 'Persistent');
    assert.deepEqual((await api(m, 'GET', `/webhooks/${wh.id}`, { token })).json, wh);

    fs.writeFileSync(path.join(dir, 'bad.json'), '{"boards": 3');
    const bad = spawnSync(MOCK_BIN, ['--state', path.join(dir, 'bad.json')], { encoding: 'utf8', timeout: 5000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /state file/);
  });

  test('reset empties the model but keeps --token seeds', async (t) => {
    const m = await startMock(['--token', SEED_TOKEN, ...NO_LIMITS]);
    t.after(() => m.stop());
    const board = await newBoard(m);
    await control(m, 'POST', '/_mock/reset');
    assert.equal((await api(m, 'GET', `/boards/${board.id}`, { token: SEED_TOKEN })).status, 404);
    assert.equal((await api(m, 'GET', '/members/me/boards', { token: SEED_TOKEN })).text, '[]');
  });
});

describe('rate limits', () => {
  test('per token and per key, with 429 bodies and x-rate-limit headers', async (t) => {
    const m = await startMock(['--rate-key', '12', '--rate-token', '5', '--rate-window-ms', '2000']);
    t.after(() => m.stop());
    const a = await newToken(m);
    const b = await newToken(m);
    const burst = await Promise.all(Array.from({ length: 8 }, () => api(m, 'GET', '/members/me', { token: a })));
    const ok = burst.filter((r) => r.status === 200);
    const limited = burst.filter((r) => r.status === 429);
    assert.equal(ok.length, 5);
    assert.equal(limited.length, 3);
    assert.deepEqual(limited[0].json, { error: 'API_TOKEN_LIMIT_EXCEEDED', message: 'Rate limit exceeded' });
    for (const r of burst) {
      assert.equal(r.headers.get('x-rate-limit-api-token-max'), '5');
      assert.equal(r.headers.get('x-rate-limit-api-token-interval-ms'), '2000');
      assert.equal(r.headers.get('x-rate-limit-api-key-max'), '12');
      assert.equal(r.headers.get('x-rate-limit-api-key-interval-ms'), '2000');
      assert.match(r.headers.get('x-rate-limit-api-key-remaining'), /^\d+$/);
    }
    const remaining = ok.map((r) => Number(r.headers.get('x-rate-limit-api-token-remaining'))).sort();
    assert.deepEqual(remaining, [0, 1, 2, 3, 4]);
    // 8 used on the key; 4 more pass, then the key limit answers.
    const more = [];
    for (let i = 0; i < 5; i++) more.push(await api(m, 'GET', '/members/me', { token: b }));
    assert.deepEqual(more.map((r) => r.status), [200, 200, 200, 200, 429]);
    assert.deepEqual(more[4].json, { error: 'API_KEY_LIMIT_EXCEEDED', message: 'Rate limit exceeded' });
    // The window passes.
    await sleep(2100);
    assert.equal((await api(m, 'GET', '/members/me', { token: a })).status, 200);
  });

  test('defaults are 300 per key and 100 per token per 10 s', async (t) => {
    const m = await startMock([]);
    t.after(() => m.stop());
    const r = await api(m, 'GET', '/members/me', { token: await newToken(m) });
    assert.equal(r.headers.get('x-rate-limit-api-key-max'), '300');
    assert.equal(r.headers.get('x-rate-limit-api-token-max'), '100');
    assert.equal(r.headers.get('x-rate-limit-api-token-interval-ms'), '10000');
    assert.equal(r.headers.get('x-rate-limit-api-token-remaining'), '99');
  });
});

describe('signature', () => {
  test("the mock's signer reproduces tests/data/signature-vectors.txt", async (t) => {
    const m = await startMock([]);
    t.after(() => m.stop());
    const lines = fs.readFileSync(path.join(ROOT, 'tests/data/signature-vectors.txt'), 'utf8').split('\n');
    let n = 0;
    for (const line of lines) {
      if (!line || line.startsWith('#')) continue;
      const [kind, secret, callbackURL, bodyLit, expected] = line.split('\t');
      if (kind !== 'utf8') continue;
      const body = JSON.parse(bodyLit);
      const r = await control(m, 'POST', '/_mock/sign', { secret, callbackURL, body });
      assert.equal(r.signature, expected, line);
      n++;
    }
    assert.ok(n >= 4, 'all utf8 vectors checked');
  });
});

describe('hostile input', () => {
  let m, token;
  before(async () => {
    m = await startMock(['--max-body', '65536', ...NO_LIMITS]);
    token = await newToken(m);
  });
  after(() => m?.stop());

  test('malformed, oversized, non-UTF-8 and truncated requests never crash it', async () => {
    const port = Number(new URL(m.base).port);
    let r = await api(m, 'POST', '/webhooks', { token, body: '{"idModel": ', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    r = await api(m, 'POST', '/webhooks', { token, body: '[1,2]', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    r = await api(m, 'POST', '/webhooks', { token, body: '['.repeat(100000), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    r = await api(m, 'POST', '/webhooks', { token, body: '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    r = await api(m, 'POST', '/webhooks', { token, body: 'x'.repeat(200000) });
    assert.equal(r.status, 413);
    // Non-UTF-8 in JSON, in a form and in the query.
    r = await api(m, 'POST', '/webhooks', { token, body: Buffer.from('{"idModel":"\xff\xfe"}', 'latin1'), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    r = await api(m, 'POST', '/webhooks', { token, body: 'idModel=%ff%fe&callbackURL=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'invalid value for idModel');
    let raw = await rawRequest(port, `GET /1/members/me?key=${m.key}&token=${token}&fields=%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400/);
    raw = await rawRequest(port, `GET /1/boards/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 4\d\d/);
    // OAuth header garbage.
    r = await api(m, 'GET', '/members/me', { auth: false, headers: { authorization: 'OAuth oauth_consumer_key="' + '%'.repeat(500) } });
    assert.equal(r.status, 401);
    // Truncated body, then a hang-up.
    await rawRequest(port, `POST /1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"idMo`, { waitMs: 200 });
    // Two different Content-Length headers.
    raw = await rawRequest(port, `POST /_mock/boards HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{"a":1}`);
    assert.match(raw, /^HTTP\/1\.1 400/);
    // Control API garbage.
    for (const body of ['nope', '{"name": 5}', '{"name": ""}', '{"idBoard": {}}']) {
      for (const route of ['/_mock/boards', '/_mock/lists', '/_mock/cards', '/_mock/actions', '/_mock/tokens']) {
        const res = await fetch(m.base + route, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        assert.ok(res.status === 400 || res.status === 200, `${route} ${body}: ${res.status}`);
        await res.text();
      }
    }
    // Still alive and answering.
    r = await api(m, 'GET', '/members/me', { token });
    assert.equal(r.status, 200);
    assert.equal(m.proc.exitCode, null);
  });

  test('many requests at once', async () => {
    const board = await newBoard(m);
    const recv = await startReceiver();
    try {
      const results = await Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          i % 3 === 0
            ? api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: `${recv.base}/c/${i}` } })
            : api(m, 'GET', `/boards/${board.id}`, { token }),
        ),
      );
      assert.ok(results.every((r) => r.status === 200), results.map((r) => r.status).join(','));
      const r = await api(m, 'GET', `/tokens/${token}/webhooks`, { token });
      assert.equal(r.json.length, 50);
      const act = await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: board.cards[0].id, text: 'fan-out', wait: true });
      assert.equal(act.deliveries, 50);
      assert.equal(recv.posts().length, 50);
    } finally {
      await recv.close();
    }
  });
});

describe('authorize page', () => {
  let m;
  before(async () => {
    m = await startMock(NO_LIMITS);
  });
  after(() => m?.stop());

  const authorizeUrl = (params) => {
    const u = new URL(m.url + '/authorize');
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u;
  };

  test('Allow mints a token and redirects to return_url#token=...', async () => {
    const page = await fetch(
      authorizeUrl({ key: m.key, name: 'My <script>app</script>', expiration: '1hour', scope: 'read,write', response_type: 'token', callback_method: 'fragment', return_url: 'http://127.0.0.1:9/done' }),
    );
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.ok(html.includes('My &lt;script&gt;app&lt;/script&gt;'));
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('read,write'));
    const rk = html.match(/name=requestKey value="([^"]+)"/)[1];
    const res = await fetch(m.url + '/authorize', {
      method: 'POST',
      body: new URLSearchParams({ requestKey: rk, approve: 'Allow' }),
      redirect: 'manual',
    });
    assert.equal(res.status, 302);
    const loc = res.headers.get('location');
    const mt = loc.match(/^http:\/\/127\.0\.0\.1:9\/done#token=(ATTA[0-9a-fA-F]{72})$/);
    assert.ok(mt, loc);
    const token = mt[1];
    assert.match(token, ATTA_RE);
    const me = await api(m, 'GET', '/members/me', { token });
    assert.equal(me.status, 200);
    const info = await api(m, 'GET', `/tokens/${token}`, { token });
    assert.ok(Math.abs(Date.parse(info.json.dateExpires) - Date.now() - 3600e3) < 60e3);
    // The request key is single-use.
    const again = await fetch(m.url + '/authorize', { method: 'POST', body: new URLSearchParams({ requestKey: rk, approve: 'Allow' }), redirect: 'manual' });
    assert.equal(again.status, 400);
  });

  test('Deny redirects with an error; bad parameters are refused', async () => {
    const page = await (await fetch(authorizeUrl({ key: m.key, name: 'App', expiration: 'never', scope: 'read', response_type: 'token', return_url: 'https://example.com/cb#old' }))).text();
    const rk = page.match(/name=requestKey value="([^"]+)"/)[1];
    const res = await fetch(m.url + '/authorize', { method: 'POST', body: new URLSearchParams({ requestKey: rk, deny: 'Deny' }), redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), 'https://example.com/cb#error=access_denied');

    const bad = [
      [{ key: 'f'.repeat(32), name: 'A' }, 401],
      [{ key: m.key, name: 'A', expiration: 'forever' }, 400],
      [{ key: m.key, name: 'A', scope: 'admin' }, 400],
      [{ key: m.key, name: 'A', return_url: 'javascript:alert(1)' }, 400],
      [{ key: m.key, name: 'A', response_type: 'code' }, 400],
    ];
    for (const [params, status] of bad) {
      const r = await fetch(authorizeUrl(params));
      assert.equal(r.status, status, JSON.stringify(params));
      await r.text();
    }
  });
});

describe('actions listings', () => {
  let m, board, recv, token, dir;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mock-actions-'));
    m = await startMock(['--retry-delays', '0.05', '--rate-token', '20', '--rate-window-ms', '60000', '--state', path.join(dir, 'state.json')]);
    token = await newToken(m);
    board = await newBoard(m, 'Actions board');
    recv = await startReceiver((req) => (req.method === 'HEAD' ? 200 : 500));
  });
  after(async () => {
    await recv?.close();
    await m?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('actions not delivered are kept and listed newest first; filter, limit, since, before, page; counted against rate limits', async () => {
    const card = board.cards[0];
    const [todo, doing] = board.lists;
    const wh = await api(m, 'POST', '/webhooks', { token, body: { idModel: board.id, callbackURL: recv.base + '/down' } });
    assert.equal(wh.status, 200, wh.text);
    for (let i = 0; i < 3; i++) await control(m, 'POST', '/_mock/actions', { type: 'commentCard', idModel: card.id, text: `c${i}`, wait: true });
    await control(m, 'POST', '/_mock/actions', { type: 'updateCard', idModel: card.id, idList: doing.id, wait: true });
    const deliveries = await control(m, 'GET', '/_mock/deliveries');
    assert.ok(deliveries.length >= 4 && deliveries.every((d) => d.status === 500));

    const all = await api(m, 'GET', `/boards/${board.id}/actions`, { token });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json.map((a) => a.type), ['updateCard', 'commentCard', 'commentCard', 'commentCard']);
    assert.deepEqual(all.json.slice(1).map((a) => a.data.text), ['c2', 'c1', 'c0']);
    assert.ok(all.json.every((a) => !('model' in a) && !('webhook' in a) && ID_RE.test(a.id)));
    assert.ok(Number(all.headers.get('x-rate-limit-api-token-remaining')) < 20);

    const comments = await api(m, 'GET', `/boards/${board.id}/actions`, { token, query: { filter: 'commentCard', limit: '2' } });
    assert.deepEqual(comments.json.map((a) => a.data.text), ['c2', 'c1']);
    const older = await api(m, 'GET', `/boards/${board.id}/actions`, { token, query: { filter: 'commentCard', limit: '2', before: comments.json[1].id } });
    assert.deepEqual(older.json.map((a) => a.data.text), ['c0']);
    const page1 = await api(m, 'GET', `/cards/${card.id}/actions`, { token, query: { limit: '2', page: '1' } });
    assert.deepEqual(page1.json.map((a) => a.data.text), ['c1', 'c0']);
    const since = await api(m, 'GET', `/lists/${doing.id}/actions`, { token, query: { since: all.json[1].id } });
    assert.deepEqual(since.json.map((a) => a.type), ['updateCard']);
    const todoList = await api(m, 'GET', `/lists/${todo.id}/actions`, { token, query: { since: '2000-01-01T00:00:00.000Z', before: '2999-01-01T00:00:00Z' } });
    assert.equal(todoList.json.length, 4);
    const none = await api(m, 'GET', `/boards/${board.id}/actions`, { token, query: { limit: '0' } });
    assert.deepEqual(none.json, []);

    for (const [query, text] of [
      [{ limit: '1001' }, 'invalid value for limit'],
      [{ limit: '-1' }, 'invalid value for limit'],
      [{ limit: 'ten' }, 'invalid value for limit'],
      [{ since: 'yesterday' }, 'invalid value for since'],
      [{ before: '2026-13-45T99:00:00Z' }, 'invalid value for before'],
      [{ page: 'x' }, 'invalid value for page'],
    ]) {
      const r = await api(m, 'GET', `/boards/${board.id}/actions`, { token, query });
      assert.equal(r.status, 400, JSON.stringify(query));
      assert.equal(r.text, text);
    }
    assert.equal((await api(m, 'GET', `/boards/${'f'.repeat(24)}/actions`, { token })).status, 404);
    assert.equal((await api(m, 'GET', `/boards/${encodeURIComponent('<x>')}/actions`, { token })).status, 400);
    assert.equal((await api(m, 'GET', `/boards/${board.id}/actions`, { token: 'f'.repeat(64) })).status, 401);

    // The token's budget (20 per window) runs out: 429, as for every call.
    let limited = 0;
    for (let i = 0; i < 10; i++) if ((await api(m, 'GET', `/boards/${board.id}/actions`, { token })).status === 429) limited++;
    assert.ok(limited > 0);

    // Kept across a restart with --state.
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
    assert.equal(saved.actions.length, 4);
  });
});
