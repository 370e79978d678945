// SPDX-License-Identifier: MIT
// The dispatcher through a store fault, end to end: a real `trellohook serve`
// of a fault-injection build (meson -Dfault_injection=true, `make fault`,
// src/store/store_fault.h) whose store fails every write of delivery outcomes
// while a file exists. A real shell handler counts its runs in a file.
//
// What must hold: a delivery whose outcome cannot be recorded is not lost
// (it is recorded once the store takes writes again) and does not run a
// second time, even when its claim's lease ends during the fault and the next
// claim hands it out again (its attempt count stays that of the one run);
// events received meanwhile are delivered after.
//
// Runs on SQLite and on PostgreSQL (a throwaway cluster from scripts/pg.sh).
// Without PostgreSQL server binaries the PostgreSQL case FAILS, unless
// TH_SKIP_PG=1 says to skip it (then it is reported as skipped).
// TH_BUILD must be a fault build: `make fault` runs this file with build-fault/.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { baseEnv, root, startServe, tempDir, th, thJson, trelloSignature, TEST_SECRET } from '../e2e/lib/serve.mjs';
import { needPg, pgSkip } from '../e2e/lib/pg_optional.mjs';

const PG = path.join(root, 'scripts', 'pg.sh');
const BOARD = '6123456789abcdef01234567';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

const payload = (n) => JSON.stringify({
  model: { id: BOARD, name: 'Roadmap' },
  action: {
    id: randomBytes(12).toString('hex'), type: 'commentCard', date: '2026-12-01T10:00:00.000Z',
    data: { board: { id: BOARD, name: 'Roadmap' }, card: { id: '6123456789abcdef0000cc07', name: 'A card' },
      text: `comment ${n}` },
    memberCreator: { id: '5e3b1c9f8a7d6e5f4a3b2c1d', username: 'zoe' },
  },
});

let pgCluster = null;
after(() => {
  if (!pgCluster) return;
  spawnSync(PG, ['stop', pgCluster.dir]);
  rmSync(pgCluster.dir, { recursive: true, force: true });
});

/** A fresh PostgreSQL database's URL (the cluster is started on first use). */
function pgDatabase() {
  if (!pgCluster) {
    const dir = mkdtempSync('/tmp/th-fault-pg-'); // directly under /tmp: pg.sh runs it as postgres
    const r = spawnSync(PG, ['start', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scripts/pg.sh start failed: ${r.stderr}`);
    pgCluster = { dir, url: r.stdout.trim() };
  }
  const name = `th_fault_${process.pid}_${randomBytes(3).toString('hex')}`;
  const r = spawnSync('psql', [pgCluster.url, '-qAt', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return pgCluster.url.replace(/\/[^/?]+(\?|$)/, `/${name}$1`);
}

function storeSql(env, pg, sql) {
  const r = pg
    ? spawnSync('psql', [env.DATABASE_URL, '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' })
    : spawnSync('sqlite3', [env.DATABASE_URL.slice('sqlite:'.length), sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

async function scenario(pg) {
  const tmp = tempDir('th-fault-');
  const faultFile = path.join(tmp.dir, 'fault-on');
  const runs = path.join(tmp.dir, 'runs.log');
  const env = baseEnv(tmp.dir, {
    TRELLOHOOK_LOG_LEVEL: 'info',
    TRELLOHOOK_HANDLER_TIMEOUT: '1s', // lease 7 s (2 x timeout + 5 s, claim_lease): it ends during the fault below
    TRELLOHOOK_RETRY_SCHEDULE: '100ms',
    TH_STORE_FAULT: 'finish',
    TH_STORE_FAULT_WHILE: faultFile,
    ...(pg ? { DATABASE_URL: pgDatabase() } : {}),
  });
  let serve = null;
  try {
    const m = th(env, ['migrate']);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /fault injection: every finish fails while this file exists/,
      `TH_BUILD is not a fault-injection build (meson -Dfault_injection=true): ${m.stderr}`);
    const webhookId = randomBytes(15).toString('base64url');
    const callbackURL = `http://127.0.0.1:1/callbacks/${webhookId}`;
    storeSql(env, pg, `INSERT INTO webhooks (id, id_model, model_type, callback_url, token, state, active, created_at)
       VALUES ('${webhookId}', '${BOARD}', 'board', '${callbackURL}', 'tok-${webhookId}', 'active', ${pg ? 'true' : 1}, 1)`);
    thJson(env, ['handler', 'add', '--exec', `cat >/dev/null; echo "$TRELLO_EVENT_ID" >> '${runs}'`]);
    const ran = () => (existsSync(runs) ? readFileSync(runs, 'utf8').split('\n').filter(Boolean) : []);
    const post = async (body) => {
      const r = await fetch(`${serve.url}/callbacks/${webhookId}`, {
        method: 'POST', body,
        headers: { 'X-Trello-Webhook': trelloSignature(TEST_SECRET, body, callbackURL), 'Content-Type': 'application/json' },
      });
      await r.arrayBuffer();
      return r.status;
    };
    const deliveries = () => thJson(env, ['deliveries', 'ls']);

    writeFileSync(faultFile, '');
    serve = await startServe(env);
    assert.equal(await post(payload(1)), 200);
    await waitFor(() => ran().length === 1, 15000, 'the handler to run');
    await waitFor(() => /recording 1 delivery outcome\(s\): .*injected fault/.test(serve.stderr()), 10000,
      'the outcome write to fail');
    // received during the fault: acknowledged and stored, delivered later
    assert.equal(await post(payload(2)), 200);
    // the claim's lease (7 s) ends while the outcome cannot be written: the
    // delivery is claimed again, and must not run again
    await waitFor(() => ran().length > 1 || /claimed again while this process still holds it/.test(serve.stderr()),
      15000, 'the delivery to be claimed again after its lease');
    await sleep(500);
    assert.equal(ran().length, 1, `ran twice during the fault: ${ran()}`);
    const during = deliveries();
    assert.equal(during.length, 2);
    assert.ok(during.every((d) => d.status !== 'done'), JSON.stringify(during));

    rmSync(faultFile); // the store takes writes again
    await waitFor(() => {
      const ds = deliveries();
      return ds.length === 2 && ds.every((d) => d.status === 'done') ? ds : null;
    }, 15000, 'both deliveries to be recorded done');
    assert.equal(ran().length, 2, `runs: ${ran()}`);
    assert.equal(new Set(ran()).size, 2, `one event ran twice: ${ran()}`);
    // each ran once, and says so: the claim that was dropped during the fault
    // added an attempt in the store, which the recorded outcome puts back (a
    // failing delivery would otherwise skip a step of its retry schedule)
    for (const d of deliveries()) assert.equal(d.attempts, 1, JSON.stringify(d));

    // and a restart runs nothing again
    const stopped = await serve.stop();
    assert.equal(stopped.code, 0, serve.stderr());
    serve = await startServe(env);
    await sleep(1500);
    assert.equal(ran().length, 2, `ran again after a restart: ${ran()}`);
    assert.ok(deliveries().every((d) => d.status === 'done'));
  } finally {
    if (serve) await serve.stop();
    tmp.cleanup();
  }
}

test('SQLite: an outcome the store cannot write is recorded once it can, and the delivery runs once', () => scenario(false));

test('PostgreSQL: an outcome the store cannot write is recorded once it can, and the delivery runs once',
  { skip: pgSkip }, () => {
    needPg();
    return scenario(true);
  });
