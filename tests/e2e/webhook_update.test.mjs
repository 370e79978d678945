// SPDX-License-Identifier: MIT
// `trellohook webhook update`: description and active change on trello-mock
// (PUT /1/webhooks/{id}) and then locally; a refusal by Trello changes
// neither side and shows Trello's message; a paused webhook gets no
// deliveries until it is resumed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, control } from './lib/mock.mjs';
import { startStack } from './lib/stack.mjs';
import { th, thJson } from './lib/serve.mjs';

describe('webhook update', () => {
  let s;
  let hook;
  const onTrello = async () => (await control(s.mock, 'GET', '/_mock/webhooks')).find((w) => w.id === hook.trello_id);
  before(async () => {
    s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
    hook = s.addWebhook(s.board.id, ['--description', 'before']);
  });
  after(async () => { await s.stop(); });

  test('--description changes it on Trello and here (--json)', async () => {
    const w = thJson(s.env, ['webhook', 'update', hook.id, '--description', 'Roadmap — ünïcode <b>x</b>']);
    assert.equal(w.id, hook.id);
    assert.equal(w.description, 'Roadmap — ünïcode <b>x</b>');
    assert.equal(w.active, true);
    assert.equal((await onTrello()).description, 'Roadmap — ünïcode <b>x</b>');
    assert.equal(thJson(s.env, ['webhook', 'show', hook.id]).description, 'Roadmap — ünïcode <b>x</b>');
  });

  test('--active false pauses deliveries on Trello; --active true resumes them', async () => {
    const paused = thJson(s.env, ['webhook', 'update', hook.id, '--active', 'false']);
    assert.equal(paused.active, false);
    assert.equal(paused.state, 'disabled');
    assert.equal((await onTrello()).active, false);
    const card = s.board.cards[0];
    let r = await s.act({ type: 'commentCard', idModel: card.id, text: 'while paused' });
    assert.equal(r.deliveries, 0);
    const text = th(s.env, ['webhook', 'update', hook.id, '--active', 'true']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /updated webhook .+: active/);
    assert.equal((await onTrello()).active, true);
    const shown = thJson(s.env, ['webhook', 'show', hook.id]);
    assert.equal(shown.active, true);
    assert.equal(shown.state, 'active');
    r = await s.act({ type: 'commentCard', idModel: card.id, text: 'after resuming' });
    assert.equal(r.deliveries, 1);
  });

  test("Trello's refusal changes nothing here and shows Trello's message", async () => {
    // a webhook Trello no longer has (deleted on Trello's side, not here)
    const other = s.addWebhook(s.board.lists[0].id, ['--description', 'list hook']);
    const del = await api(s.mock, 'DELETE', `/webhooks/${other.trello_id}`, { token: s.token });
    assert.equal(del.status, 200);
    const before = thJson(s.env, ['webhook', 'show', other.id]);
    const r = th(s.env, ['webhook', 'update', other.id, '--description', 'new', '--active', 'false']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^trellohook: Trello refused the change \(nothing changed here\): .*not found/i);
    assert.equal(r.stdout, '');
    assert.deepEqual(thJson(s.env, ['webhook', 'show', other.id]), before);
  });

  test('a description over Trello\'s limit is refused before sending; nothing changes', async () => {
    const before = thJson(s.env, ['webhook', 'show', hook.id]);
    const r = th(s.env, ['webhook', 'update', hook.id, '--description', 'x'.repeat(16385), '--active', 'false']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^trellohook: .*16384/);
    assert.deepEqual(thJson(s.env, ['webhook', 'show', hook.id]), before);
    const t = await onTrello();
    assert.equal(t.description, before.description);
    assert.equal(t.active, true);
  });

  test('usage errors exit 2 and change nothing', () => {
    for (const args of [[hook.id], [hook.id, '--active', 'yes'], ['--active', 'true'], [hook.id, '--bogus']]) {
      const r = th(s.env, ['webhook', 'update', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: /);
    }
    const r = th(s.env, ['webhook', 'update', 'nosuchwebhook', '--active', 'true']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nosuchwebhook/);
  });
});
