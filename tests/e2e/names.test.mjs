// SPDX-License-Identifier: MIT
// Names travel with events: a card moved in trello-mock reaches `trellohook
// serve`, and `events show/ls --json` and an exec handler's environment carry
// the board, list (the one it moved to), card and member names as the
// delivery had them, with the actor's id.
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startStack } from './lib/stack.mjs';
import { control } from './lib/mock.mjs';
import { thJson } from './lib/serve.mjs';

async function waitFor(fn, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('names travel with events', () => {
  let s;
  let moved;
  before(async () => {
    s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
    s.addWebhook(s.board.id, ['--description', 'names e2e']);
    thJson(s.env, ['handler', 'add', '--exec', `env > "${s.dir}/env.$TRELLO_EVENT_ID"`, '--on', 'updateCard']);
    const [card] = s.board.cards;
    const to = s.board.lists.find((l) => l.id !== card.idList);
    const r = await s.act({ type: 'updateCard', idModel: card.id, idList: to.id });
    assert.equal(r.deliveries, 1);
    moved = { card, to, action: r.action };
  });
  after(async () => { await s.stop(); });

  test('events show --json and events ls --json: names, the list moved to, the actor', async () => {
    const [ls] = await waitFor(() => {
      const e = thJson(s.env, ['events', 'ls', '--type', 'updateCard']);
      return e.length ? e : null;
    });
    const ev = thJson(s.env, ['events', 'show', ls.id]);
    for (const e of [ev, ls]) {
      assert.equal(e.action_id, moved.action.id);
      assert.equal(e.board_id, s.board.id);
      assert.equal(e.board_name, s.board.name);
      assert.equal(e.list_id, moved.to.id);
      assert.equal(e.list_name, moved.to.name);
      assert.equal(e.card_id, moved.card.id);
      assert.equal(e.card_name, moved.card.name);
      assert.equal(e.member_name, moved.action.memberCreator.fullName);
      assert.equal(e.member, e.member_name);
      // a listing reads no payload: who acted, as an id, is a column of its own
      assert.equal(e.member_id, moved.action.idMemberCreator);
      assert.equal(e.source, 'delivery');
    }
    assert.match(ev.summary, new RegExp(`moved "${moved.card.name}" from .+ to ${moved.to.name}`));
  });

  test("an exec handler's environment carries the names", async () => {
    const [ev] = thJson(s.env, ['events', 'ls', '--type', 'updateCard']);
    const file = path.join(s.dir, `env.${ev.id}`);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('TRELLO_SUMMARY='));
    const vars = Object.fromEntries(readFileSync(file, 'utf8').split('\n').filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(vars.TRELLO_BOARD_NAME, s.board.name);
    assert.equal(vars.TRELLO_LIST_NAME, moved.to.name);
    assert.equal(vars.TRELLO_LIST_ID, moved.to.id);
    assert.equal(vars.TRELLO_CARD_NAME, moved.card.name);
    assert.equal(vars.TRELLO_MEMBER_NAME, moved.action.memberCreator.fullName);
    assert.equal(vars.TRELLO_EVENT_SOURCE, 'delivery');
  });

  test("trello-mock's member actions have the real shape and read with the member's name", async () => {
    const card = s.board.cards[0];
    const bjorn = { id: '5e3b1c9f8a7d6e5f4a3b2c2e', fullName: "Björn O'Brien", username: 'bjornobrien' };
    const add = await s.act({ type: 'addMemberToCard', idModel: card.id, member: bjorn });
    assert.equal(add.deliveries, 1);
    assert.deepEqual(add.action.member.id, bjorn.id);
    assert.equal(add.action.member.fullName, bjorn.fullName);
    assert.equal(add.action.data.idMember, bjorn.id);
    assert.equal(add.action.data.member, undefined, 'Trello never sends data.member');
    const self = await s.act({ type: 'removeMemberFromCard', idModel: card.id });
    assert.equal(self.action.member.id, self.action.idMemberCreator);
    const bad = await control(s.mock, 'POST', '/_mock/actions', { type: 'addMemberToCard', idModel: card.id, member: 'x' }, { ok: false });
    assert.equal(bad.status, 400);
    const evs = await waitFor(() => {
      const e = thJson(s.env, ['events', 'ls']);
      return e.filter((x) => x.action_type.endsWith('MemberToCard') || x.action_type.endsWith('MemberFromCard')).length === 2 ? e : null;
    });
    const byAction = Object.fromEntries(evs.map((e) => [e.action_id, e]));
    assert.equal(byAction[add.action.id].summary, `${add.action.memberCreator.fullName} added ${bjorn.fullName} to "${card.name}"`);
    assert.equal(byAction[self.action.id].summary, `${self.action.memberCreator.fullName} left "${card.name}"`);
  });
});
