// SPDX-License-Identifier: MIT
// A full disk (issue 15, probe 10): the store lives on a small tmpfs that is
// then filled up. Callbacks get 503 (Trello retries) and /healthz answers 503
// saying the store cannot commit, not 200 "ok"; once space is freed, the idle
// write probe (or the next commit) makes it healthy again and Trello's retry
// is stored. Needs root for the mount; without it the test is skipped, saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { root, tempDir, thJson, trelloSignature } from '../e2e/lib/serve.mjs';
import { startStack } from '../e2e/lib/stack.mjs';

const isRoot = process.getuid?.() === 0;
let mnt;
let holder;
let s;
let wh;

before(async () => {
  if (!isRoot) return;
  holder = tempDir('th-diskfull-');
  mnt = path.join(holder.dir, 'fs');
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  assert.equal(m.status, 0, `mount: ${m.stderr}`);
  s = await startStack({ env: { DATABASE_URL: `sqlite:${path.join(mnt, 'th.db')}` } });
  wh = s.addWebhook();
});

after(async () => {
  await s?.stop();
  if (mnt) spawnSync('umount', [mnt]);
  holder?.cleanup();
});

let counter = 0;
function freshPayload() {
  counter += 1;
  const doc = JSON.parse(readFileSync(path.join(root, 'tests/data/payloads/commentCard.json')));
  doc.action.id = (0x7100000000 + counter).toString(16).padStart(24, '0');
  // random text: the store packs payloads (LZ4), and repeated characters would pack to nothing
  doc.action.data.text = `comment ${counter} ${randomBytes(3000).toString('base64')}`;
  return { id: doc.action.id, body: JSON.stringify(doc) };
}

async function post(body) {
  const sig = trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url);
  const r = await fetch(wh.callback_url, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-trello-webhook': sig },
  });
  await r.text();
  return r.status;
}

async function healthz() {
  const r = await fetch(`${s.serve.url}/healthz`);
  return { status: r.status, text: await r.text() };
}

/** Write zeros into @file until the filesystem says it is full. */
function fill(file) {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(16384);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    assert.equal(e.code, 'ENOSPC', String(e));
  } finally {
    closeSync(fd);
  }
}

test('a full disk: callbacks 503, /healthz 503 with the reason; healthy again once freed',
  { skip: isRoot ? false : 'needs root to mount a small tmpfs' }, async () => {
    assert.equal((await healthz()).status, 200);
    const filler = path.join(mnt, 'filler');
    fill(filler);
    // commits need new pages (the WAL, the database); keep sending until one fails
    let refused = null;
    for (let i = 0; i < 400 && !refused; i++) {
      const p = freshPayload();
      const st = await post(p.body);
      assert.ok(st === 200 || st === 503, `status ${st}`);
      if (st === 503) refused = p;
    }
    assert.ok(refused, 'no callback was refused on a full disk');
    const h = await healthz();
    assert.equal(h.status, 503, h.text);
    assert.match(h.text, /store cannot commit: .*(full|disk)/i);
    // free the space: the idle probe (at most one per 5 s) clears it
    rmSync(filler);
    const t0 = Date.now();
    let now;
    while ((now = await healthz()).status !== 200 && Date.now() - t0 < 15000)
      await new Promise((r) => setTimeout(r, 250));
    assert.equal(now.status, 200, `still unhealthy after space was freed: ${now.text}`);
    assert.equal(now.text, 'ok\n');
    // Trello's retry of the refused delivery is stored once
    assert.equal(await post(refused.body), 200);
    const events = thJson(s.env, ['events', 'ls', '--limit', '1000']);
    assert.equal(events.filter((e) => e.action_id === refused.id).length, 1);
  });
