// SPDX-License-Identifier: MIT
// `trellohook trigger`: realistic, signed deliveries of every listed action
// type POSTed to a real `trellohook serve` (webhooks registered through the
// real `webhook add` path against trello-mock), stored and summarised.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { startStack } from './lib/stack.mjs';
import { baseEnv, tempDir, th, thJson, trellohookBin } from './lib/serve.mjs';

// What each listed type's summary must say (the board is "Roadmap 2027").
const EXPECT = {
  createCard: /created ".+" in .+ on Roadmap 2027/,
  updateCard: /moved ".+" from .+ to .+/,
  'updateCard-rename': /renamed ".+" to ".+"/,
  'updateCard-desc': /added a description to ".+"/,
  'updateCard-closed': /archived ".+"/,
  'updateCard-due': /set the due date of ".+"/,
  'updateCard-cover': /set the cover of ".+"/,
  copyCard: /copied ".+" from card #\d+ in .+ on Roadmap 2027/,
  emailCard: /created ".+" in .+ on Roadmap 2027 by e-mail/,
  convertToCardFromCheckItem: /converted checklist item ".+" of ".+" into a card/,
  commentCard: /commented on ".+": /,
  updateComment: /edited a comment on ".+"/,
  addLabelToCard: /added label .+ to ".+"/,
  addMemberToCard: /added Björn O'Brien to ".+"/,
  removeMemberFromCard: /removed Björn O'Brien from ".+"/,
  addAttachmentToCard: /attached .+ to ".+"/,
  addChecklistToCard: /added checklist .+ to ".+"/,
  copyChecklist: /copied checklist .+ from checklist .+ on Roadmap 2027/,
  updateChecklist: /renamed checklist .+ to .+ on ".+"/,
  createCheckItem: /to checklist .+ on ".+"/,
  updateCheckItemStateOnCard: /completed ".+" on ".+"/,
  deleteCard: /deleted card/,
  moveCardToBoard: /moved ".+" from .+ to Roadmap 2027/,
  voteOnCard: /voted for ".+"/,
  updateCustomFieldItem: /set .+ to .+ on ".+"/,
  createList: /created list .+ on Roadmap 2027/,
  updateList: /renamed list .+ to .+/,
  moveListFromBoard: /moved list .+ from Roadmap 2027 to .+/,
  moveListToBoard: /moved list .+ from .+ to Roadmap 2027/,
  createLabel: /created label .+ on Roadmap 2027/,
  updateLabel: /removed the name ".+" from the red label on Roadmap 2027/,
  updateBoard: /renamed board .+ to Roadmap 2027/,
  'updateBoard-background': /changed the background of board Roadmap 2027 to blue/,
  addMemberToBoard: /added Björn O'Brien to board Roadmap 2027/,
  removeMemberFromBoard: /removed Björn O'Brien from board Roadmap 2027/,
};

describe('trigger', () => {
  let s;
  let hook;
  before(async () => {
    s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
    hook = s.addWebhook(s.board.id, ['--description', 'trigger e2e']);
  });
  after(async () => { await s.stop(); });

  test('--list: names, action types and descriptions; needs no secret', () => {
    const env = { ...s.env };
    delete env.TRELLO_API_SECRET;
    const types = thJson(env, ['trigger', '--list']);
    assert.ok(types.length >= 20);
    const names = types.map((t) => t.type);
    for (const n of ['createCard', 'commentCard', 'updateCard', 'addLabelToCard', 'updateCheckItemStateOnCard'])
      assert.ok(names.includes(n), n);
    assert.deepEqual(new Set(names), new Set(Object.keys(EXPECT)), 'every listed type has an expectation here');
    for (const t of types) {
      assert.match(t.action_type, /^[a-zA-Z]+$/);
      assert.ok(t.description.length > 5);
    }
    const text = th(env, ['trigger', '--list', '--no-header']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.trim().split('\n').length, types.length);
    assert.match(text.stdout, /^commentCard +a comment/m);
    // with its header row
    const headed = th(env, ['trigger', '--list']).stdout.trim().split('\n');
    assert.match(headed[0], /^TYPE +DESCRIPTION$/);
    assert.equal(headed.length, types.length + 1);
  });

  test('every listed type is accepted (200), stored once and summarised', () => {
    const types = thJson(s.env, ['trigger', '--list']);
    const seen = new Set();
    for (const t of types) {
      const r = thJson(s.env, ['trigger', t.type]);
      assert.equal(r.status, 200, `${t.type}: ${r.answer}`);
      assert.equal(r.webhook_id, hook.id);
      assert.equal(r.callback_url, hook.callback_url);
      assert.match(r.action_id, /^[0-9a-f]{24}$/);
      assert.ok(!seen.has(r.action_id), 'fresh action id');
      seen.add(r.action_id);
      assert.ok(r.event_id, `${t.type}: stored`);
      assert.match(r.summary, EXPECT[t.type], `${t.type}: ${r.summary}`);
      const ev = thJson(s.env, ['events', 'show', r.event_id]);
      assert.equal(ev.action_type, t.action_type);
      assert.equal(ev.action_id, r.action_id);
      assert.equal(ev.summary, r.summary);
      assert.equal(ev.webhook_id, hook.id);
      const p = JSON.parse(ev.payload);
      assert.deepEqual(Object.keys(p), ['model', 'action', 'webhook']);
      assert.equal(p.model.id, s.board.id);
      assert.equal(p.model.name, s.board.name);
      if (p.action.data.board) {
        assert.equal(p.action.data.board.id, s.board.id);
        assert.equal(p.action.data.board.name, s.board.name);
      }
      assert.equal(p.action.type, t.action_type);
      assert.ok(Math.abs(Date.parse(p.action.date) - Date.now()) < 60000, 'date is now');
      assert.deepEqual(p.webhook, {
        id: hook.trello_id, description: 'trigger e2e', idModel: s.board.id,
        callbackURL: hook.callback_url, active: true, consecutiveFailures: 0, firstConsecutiveFailDate: null,
      });
    }
    const events = thJson(s.env, ['events', 'ls', '--limit', '200']);
    for (const id of seen) assert.equal(events.filter((e) => e.action_id === id).length, 1);
  });

  test('text output: the answer status and the stored event id', () => {
    const r = th(s.env, ['trigger', 'commentCard']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^POST ${hook.callback_url} -> 200`, 'm'));
    assert.match(r.stdout, /^stored event \S+ \(action [0-9a-f]{24}\): .+ commented on /m);
  });

  test('--set overrides by dotted path, creating objects; JSON values parse', () => {
    const r = thJson(s.env, ['trigger', 'commentCard', '--set', 'action.data.text=hi there ✅',
      '--set', 'action.data.extra.n=5', '--set', 'action.data.extra.obj={"a":[1,2]}',
      '--set', 'action.data.extra.s="007"', '--set', 'action.display.entities.comment.text=x',
      '--set', 'model.labelNames.green=go']);
    assert.equal(r.status, 200);
    assert.match(r.summary, /commented on ".+": hi there ✅/);
    const p = JSON.parse(thJson(s.env, ['events', 'show', r.event_id]).payload);
    assert.equal(p.action.data.text, 'hi there ✅');
    assert.deepEqual(p.action.data.extra, { n: 5, obj: { a: [1, 2] }, s: '007' });
    assert.equal(p.action.display.entities.comment.text, 'x');
    assert.equal(p.model.labelNames.green, 'go');
  });

  test('--set of action.id and array elements', () => {
    const id = 'abcdefabcdefabcdefabcdef';
    const r = thJson(s.env, ['trigger', 'createCard', '--set', `action.id=${id}`,
      '--set', 'action.data.arr=[1,2]', '--set', 'action.data.arr.1=9', '--set', 'action.data.arr.2=3']);
    assert.equal(r.status, 200);
    assert.equal(r.action_id, id);
    const p = JSON.parse(thJson(s.env, ['events', 'show', r.event_id]).payload);
    assert.deepEqual(p.action.data.arr, [1, 9, 3]);
    // the same action id again: Trello's retry — 200, not stored twice
    const again = thJson(s.env, ['trigger', 'createCard', '--set', `action.id=${id}`]);
    assert.equal(again.status, 200);
    assert.equal(again.event_id, r.event_id);
  });

  test('malformed --set: exit 2 with a clear message, nothing sent', () => {
    const before = thJson(s.env, ['events', 'ls', '--limit', '1000']).length;
    const cases = [
      ['noequals', /expected PATH=VALUE/],
      ['=x', /PATH before '=' is empty/],
      ['action..text=1', /empty segment/],
      ['action.data.=1', /empty segment/],
      ['action.id.x=1', /cannot go into 'x', its parent is a string/],
      ['action.data.arr=[1]', null],
    ];
    for (const [set, re] of cases) {
      if (!re) continue;
      const r = th(s.env, ['trigger', 'commentCard', '--set', set]);
      assert.equal(r.code, 2, `${set}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: /);
      assert.match(r.stderr, re);
    }
    const arr = th(s.env, ['trigger', 'commentCard', '--set', 'action.data.arr=[1]', '--set', 'action.data.arr.5=1']);
    assert.equal(arr.code, 2);
    assert.match(arr.stderr, /not an index of that array/);
    const long = th(s.env, ['trigger', 'commentCard', '--set', 'a.'.repeat(40) + 'b=1']);
    assert.equal(long.code, 2);
    assert.match(long.stderr, /more than 32 path segments/);
    const missing = th(s.env, ['trigger', 'commentCard', '--set']);
    assert.equal(missing.code, 2);
    assert.equal(thJson(s.env, ['events', 'ls', '--limit', '1000']).length, before);
  });

  test('non-UTF-8 --set path or value: exit 2', () => {
    for (const arg of ["$'action.data.text=\\xff\\xfe'", "$'action.\\xc3.text=1'"]) {
      const r = spawnSync('bash', ['-c', `exec "$0" trigger commentCard --set ${arg}`, trellohookBin],
        { env: s.env, encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /not valid UTF-8/);
    }
  });

  test('large bodies: 100 KB of comment is delivered; over TRELLOHOOK_MAX_BODY serve answers 413, exit 1', () => {
    const big = thJson(s.env, ['trigger', 'commentCard', '--set', `action.data.text=${'é'.repeat(50000)}`]);
    assert.equal(big.status, 200);
    assert.ok(big.event_id);
    const sets = [];
    for (let i = 0; i < 10; i++) sets.push('--set', `action.data.pad${i}=${'x'.repeat(120000)}`);
    const r = th(s.env, ['trigger', 'commentCard', ...sets]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /-> 413/);
  });

  test('unknown type: exit 2 listing the types; no type: exit 2', () => {
    const r = th(s.env, ['trigger', 'makeCoffee']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown action type 'makeCoffee'/);
    for (const n of Object.keys(EXPECT)) assert.ok(r.stderr.includes(n), n);
    const none = th(s.env, ['trigger']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /trigger --list/);
    const hostile = th(s.env, ['trigger', 'x\u001b[31m' + 'y'.repeat(500)]);
    assert.equal(hostile.code, 2);
    assert.ok(!hostile.stderr.includes('\u001b'), 'control characters are not echoed');
    assert.ok(hostile.stderr.length < 2000);
  });

  test('without TRELLO_API_SECRET: exit 2 naming it', () => {
    const env = { ...s.env };
    delete env.TRELLO_API_SECRET;
    const r = th(env, ['trigger', 'commentCard']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TRELLO_API_SECRET/);
  });

  test('wrong secret: serve answers 401, exit 1, nothing stored', () => {
    const before = thJson(s.env, ['events', 'ls', '--limit', '1000']).length;
    const r = th({ ...s.env, TRELLO_API_SECRET: 'not-the-secret-of-this-app' }, ['trigger', 'commentCard']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /-> 401/);
    assert.match(r.stderr, /answered 401/);
    assert.equal(thJson(s.env, ['events', 'ls', '--limit', '1000']).length, before);
  });

  test('the body is Trello\'s form: compact JSON, UTF-8 as is', () => {
    const r = thJson(s.env, ['trigger', 'voteOnCard']);
    const ev = thJson(s.env, ['events', 'show', r.event_id]);
    assert.ok(ev.payload.includes('"fullName":"Zoë Ångström"'), 'UTF-8 left as is, no spaces');
    assert.ok(!ev.payload.includes('\\u00'), 'no \\u escapes');
    assert.equal(ev.payload, JSON.stringify(JSON.parse(ev.payload)));
  });

  test('several webhooks: --webhook picks one, none given exits 2 listing ids; card webhook', () => {
    const card = s.board.cards[0];
    const cardHook = s.addWebhook(card.id);
    const r = th(s.env, ['trigger', 'commentCard']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /2 webhooks: choose one with --webhook ID/);
    assert.ok(r.stderr.includes(hook.id) && r.stderr.includes(cardHook.id));
    const c = thJson(s.env, ['trigger', 'commentCard', '--webhook', cardHook.id]);
    assert.equal(c.status, 200);
    assert.equal(c.webhook_id, cardHook.id);
    assert.ok(c.summary.includes(`"${card.name}"`), c.summary);
    const p = JSON.parse(thJson(s.env, ['events', 'show', c.event_id]).payload);
    assert.equal(p.model.id, card.id);
    assert.equal(p.model.name, card.name);
    assert.equal(p.action.data.card.id, card.id);
    assert.equal(p.webhook.idModel, card.id);
    const ev = thJson(s.env, ['events', 'show', c.event_id]);
    assert.equal(ev.model_id, card.id);
    const unknown = th(s.env, ['trigger', 'commentCard', '--webhook', 'nosuchwebhookid0000000']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^trellohook: /);
  });

  test('no webhook at all: exit 2', () => {
    const tmp = tempDir('th-trig-');
    try {
      const r = th(baseEnv(tmp.dir), ['trigger', 'commentCard']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /no webhooks yet/);
    } finally {
      tmp.cleanup();
    }
  });

  test('serve down: no answer, exit 1', async () => {
    await s.serve.stop();
    const r = th(s.env, ['trigger', 'commentCard', '--webhook', hook.id]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no answer/);
    await s.restart();
  });
});
