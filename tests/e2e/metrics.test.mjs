// SPDX-License-Identifier: MIT
// /metrics after real deliveries: handler run time by kind and by handler,
// attempts by outcome, the pending gauge and the age of the oldest pending
// delivery (one webhook's deliveries to one handler run in order, so while a
// slow one runs the next waits, pending).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { sleep } from './lib/mock.mjs';
import { startStack } from './lib/stack.mjs';
import { root, thJson } from './lib/serve.mjs';

/** Parse the Prometheus text into { 'name{labels}': value }. */
function parse(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
    assert.ok(m, `malformed sample line: ${JSON.stringify(line)}`);
    assert.ok(!(m[1] in out), `repeated series ${m[1]}`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

async function scrape(s) {
  const r = await fetch(`${s.serve.url}/metrics`);
  assert.equal(r.status, 200);
  return parse(await r.text());
}

async function until(fn, ms, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('handler run time, outcomes, pending and the oldest pending age', async () => {
  const s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0', TRELLOHOOK_RETRY_SCHEDULE: '1h' } });
  try {
    s.addWebhook();
    const card = s.board.cards[0];
    const ok = thJson(s.env, ['handler', 'add', '--exec', 'cat >/dev/null', '--on', 'commentCard']);
    const bad = thJson(s.env, ['handler', 'add', '--exec', 'exit 3', '--on', 'commentCard']);
    const slow = thJson(s.env, ['handler', 'add', '--exec', 'sleep 1.5', '--on', 'addLabelToCard']);
    await s.act({ type: 'commentCard', idModel: card.id, text: 'one' });
    const m1 = await until(async () => {
      const m = await scrape(s);
      return m['trellohook_delivery_outcomes_total{kind="exec",outcome="failed"}'] === 1 &&
        m['trellohook_delivery_outcomes_total{kind="exec",outcome="done"}'] === 1 ? m : null;
    }, 15000, 'both attempts counted');
    assert.equal(m1['trellohook_handler_run_seconds_count{kind="exec"}'], 2);
    assert.equal(m1['trellohook_handler_run_seconds_bucket{kind="exec",le="+Inf"}'], 2);
    assert.equal(m1['trellohook_handler_run_seconds_count{kind="forward"}'], 0);
    assert.ok(m1['trellohook_handler_run_seconds_sum{kind="exec"}'] > 0);
    assert.equal(m1[`trellohook_handler_run_by_handler_seconds_count{handler="${ok.id}",kind="exec"}`], 1);
    assert.equal(m1[`trellohook_handler_run_by_handler_seconds_count{handler="${bad.id}",kind="exec"}`], 1);
    assert.equal(m1[`trellohook_delivery_attempts_total{handler="${ok.id}",kind="exec",outcome="done"}`], 1);
    assert.equal(m1[`trellohook_delivery_attempts_total{handler="${bad.id}",kind="exec",outcome="failed"}`], 1);
    assert.equal(m1[`trellohook_delivery_attempts_total{handler="${bad.id}",kind="exec",outcome="done"}`], 0);
    assert.equal(m1['trellohook_delivery_outcomes_total{kind="exec",outcome="dead"}'], 0);
    // the failed one waits an hour for its retry: failed, not pending
    const m2 = await until(async () => {
      const m = await scrape(s);
      return m['trellohook_deliveries{status="failed"}'] === 1 && m['trellohook_deliveries{status="done"}'] === 1 ? m : null;
    }, 10000, 'outcomes in the store');
    assert.equal(m2['trellohook_deliveries{status="pending"}'], 0);
    assert.equal(m2['trellohook_delivery_oldest_pending_seconds'], 0);

    // two label actions at once: the second waits, pending, behind the slow first
    const acts = [
      s.act({ type: 'addLabelToCard', idModel: card.id, label: { name: 'a', color: 'red' } }),
      s.act({ type: 'addLabelToCard', idModel: card.id, label: { name: 'b', color: 'blue' } }),
    ];
    await Promise.all(acts);
    const m3 = await until(async () => {
      const m = await scrape(s);
      return m['trellohook_deliveries{status="pending"}'] >= 1 &&
        m['trellohook_delivery_oldest_pending_seconds'] >= 0.3 ? m : null;
    }, 10000, 'a pending delivery growing old');
    assert.ok(m3['trellohook_delivery_oldest_pending_seconds'] < 60);
    // both run in the end; each took about 1.5 s
    const m4 = await until(async () => {
      const m = await scrape(s);
      return m[`trellohook_delivery_attempts_total{handler="${slow.id}",kind="exec",outcome="done"}`] === 2 ? m : null;
    }, 15000, 'the slow deliveries');
    const key = `handler="${slow.id}",kind="exec"`;
    assert.equal(m4[`trellohook_handler_run_by_handler_seconds_bucket{${key},le="1"}`], 0);
    assert.equal(m4[`trellohook_handler_run_by_handler_seconds_bucket{${key},le="5"}`], 2);
    assert.ok(m4[`trellohook_handler_run_by_handler_seconds_sum{${key}}`] >= 3);
    await until(async () => (await scrape(s))['trellohook_delivery_oldest_pending_seconds'] === 0, 10000, 'queue drained');

    // the docs name exactly the families /metrics has; the dashboard and the
    // alert rules use no other
    const text = await (await fetch(`${s.serve.url}/metrics`)).text();
    const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const doc = readFileSync(path.join(root, 'docs', 'metrics.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `(trellohook_[a-z_]+)` \|/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), [...families].sort(), 'docs/metrics.md vs /metrics');
    const base = (n) => n.replace(/_(bucket|sum|count)$/, '');
    const dash = JSON.parse(readFileSync(path.join(root, 'docs', 'grafana-dashboard.json'), 'utf8'));
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    exprs.push(readFileSync(path.join(root, 'docs', 'alerts.yml'), 'utf8'));
    for (const e of exprs) {
      for (const [n] of e.matchAll(/trellohook_[a-z_]+/g)) assert.ok(families.has(base(n)), `${n} is not a series of /metrics`);
    }
    for (const want of ['trellohook_events_stored_total', 'trellohook_commit_latency_seconds_bucket',
      'trellohook_handler_run_seconds_bucket', 'trellohook_delivery_outcomes_total',
      'trellohook_deliveries', 'trellohook_delivery_oldest_pending_seconds']) {
      assert.ok(exprs.slice(0, -1).some((e) => e.includes(want)), `no dashboard panel uses ${want}`);
    }
  } finally { await s.stop(); }
});
