// SPDX-License-Identifier: MIT
// Four `trellohook webhook add` processes started at once for the same
// (model, token), with TRELLOHOOK_SECRET_KEY set (tokens sealed with a random
// nonce, so only the token's fingerprint can tell they are equal): exactly
// one webhook exists afterwards, locally and on trello-mock; the others exit
// 1 with "already exists" and leave nothing on Trello. On SQLite (one file
// shared by the processes) and on PostgreSQL (a throwaway cluster, two
// `serve` instances on the database while the adds race). Also: rows from
// before fingerprints get theirs when a command opens the store.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { closedPort, control, newBoard, startMock } from './lib/mock.mjs';
import { baseEnv, root, startServe, tempDir, thJson, trellohookBin } from './lib/serve.mjs';
import { needPg, pgSkip } from './lib/pg_optional.mjs';

const KEY = '0123456789abcdef0123456789abcdef';
const SECRET = 'e2e-concurrent-secret-0123456789';
const SECRET_KEY = Buffer.alloc(32, 9).toString('base64');
const RACERS = 4;
const newTok = () => 'ATTA' + randomBytes(32).toString('hex') + randomBytes(4).toString('hex').toUpperCase();

/** Run `trellohook ARGS` without waiting: resolves { code, stdout, stderr }. */
function run(env, args) {
  return new Promise((resolve) => {
    const p = spawn(trellohookBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => resolve({ code, stdout, stderr })); // after stdout/stderr ended
  });
}

/**
 * A proxy in front of trello-mock that, while armed, holds every request for
 * a board until @n of them have arrived (or 10 s passed) and then lets them
 * all through at once: the racing processes then leave model resolution
 * together, and their duplicate check and insert really overlap.
 */
async function startBarrier(target) {
  const up = new URL(target);
  let armed = 0;
  let held = [];
  const release = () => { const h = held; held = []; armed = 0; h.forEach((go) => go()); };
  let timer = null;
  const server = http.createServer((req, res) => {
    const forward = () => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const p = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url,
          headers: req.headers }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
        p.on('error', () => { res.writeHead(502); res.end(); });
        p.end(Buffer.concat(chunks));
      });
    };
    if (armed > 0 && req.method === 'GET' && req.url.startsWith('/1/boards/')) {
      held.push(forward);
      if (held.length >= armed) { clearTimeout(timer); release(); }
      return;
    }
    forward();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/1`,
    arm(n) { armed = n; timer = setTimeout(release, 10000); },
    stop: () => new Promise((r) => { release(); server.closeAllConnections(); server.close(r); }),
  };
}

/** mock + `serve` instances on @databaseUrl (null: SQLite in the temp dir). */
async function stack(databaseUrl, instances) {
  const tmp = tempDir('th-race-');
  const token = newTok();
  const mock = await startMock(['--key', KEY, '--secret', SECRET, '--token', token]);
  const barrier = await startBarrier(mock.url);
  const port = await closedPort();
  const extra = {
    CALLBACK_DOMAIN: `http://127.0.0.1:${port}`, TRELLO_API_URL: barrier.url, TRELLO_API_KEY: KEY,
    TRELLO_API_SECRET: SECRET, TRELLOHOOK_SECRET_KEY: SECRET_KEY, TRELLOHOOK_HEALTH_INTERVAL: '0',
  };
  if (databaseUrl) extra.DATABASE_URL = databaseUrl;
  const env = baseEnv(tmp.dir, extra);
  const serves = [await startServe(env, ['--listen', `127.0.0.1:${port}`])];
  for (let i = 1; i < instances; i++) serves.push(await startServe(env));
  const board = await newBoard(mock);
  return {
    mock, env, token, board, barrier,
    async stop() {
      for (const s of serves) await s.stop();
      await barrier.stop();
      await mock.stop();
      tmp.cleanup();
    },
  };
}

async function race(s) {
  const args = ['webhook', 'add', '--model', s.board.id, '--token', s.token];
  s.barrier.arm(RACERS);
  const results = await Promise.all(Array.from({ length: RACERS }, () => run(s.env, args)));
  const won = results.filter((r) => r.code === 0);
  const lost = results.filter((r) => r.code !== 0);
  assert.equal(won.length, 1, `exactly one add succeeds: ${results.map((r) => `${r.code} ${r.stderr}`).join(' | ')}`);
  for (const r of lost) {
    assert.equal(r.code, 1, `a loser exits 1 (the operation failed): ${r.stderr}`);
    assert.match(r.stderr, /^trellohook: .*already exists/m, `stdout: ${r.stdout}`);
    assert.ok(!r.stderr.includes(s.token) && !r.stdout.includes(s.token), 'the token stays masked');
  }
  const local = thJson(s.env, ['webhook', 'ls']);
  assert.equal(local.length, 1, 'one webhook stored');
  assert.equal(local[0].id_model, s.board.id);
  const remote = await control(s.mock, 'GET', '/_mock/webhooks');
  assert.equal(remote.length, 1, 'one webhook on Trello');
  assert.equal(remote[0].callbackURL, local[0].callback_url);
  // and a later add of the same pair is refused as well
  const again = await run(s.env, args);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  assert.equal((await control(s.mock, 'GET', '/_mock/webhooks')).length, 1);
}

describe('concurrent webhook add on SQLite', () => {
  let s;
  before(async () => { s = await stack(null, 1); });
  after(async () => { if (s) await s.stop(); });
  test(`${RACERS} adds of one (model, token) make one webhook`, async () => { await race(s); });
});

/** Run @sql on the SQLite store of @env. */
function sqlite(env, sql) {
  const r = spawnSync('sqlite3', [env.DATABASE_URL.slice('sqlite:'.length), sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// Rows stored before fingerprints existed (token_fp NULL): the next command
// fills them in, keyed; a row that duplicates another keeps none and is named.
describe('fingerprints of rows from before', () => {
  let s;
  before(async () => { s = await stack(null, 1); });
  after(async () => { if (s) await s.stop(); });
  test('filled when the store is opened; a duplicate from before is reported', async () => {
    // async: the barrier proxy runs on this process's event loop
    const add = await run(s.env, ['webhook', 'add', '--model', s.board.id, '--token', s.token, '--json']);
    assert.equal(add.code, 0, add.stderr);
    const w = JSON.parse(add.stdout);
    const fp = sqlite(s.env, `SELECT token_fp FROM webhooks WHERE id = '${w.id}'`);
    assert.match(fp, /^k:[0-9a-f]{64}$/);
    // as an older trellohook left it: no fingerprints, and a duplicate row (the
    // same token sealed another time: the tokens table's copy has its own nonce)
    assert.notEqual(sqlite(s.env, 'SELECT token FROM tokens'), sqlite(s.env, 'SELECT token FROM webhooks'));
    sqlite(s.env, 'UPDATE webhooks SET token_fp = NULL; UPDATE tokens SET token_fp = NULL;');
    sqlite(s.env, `INSERT INTO webhooks (id, id_model, model_type, callback_url, token, state, active, created_at)
      SELECT 'olddup', id_model, model_type, callback_url || 'x', (SELECT token FROM tokens), state, active, created_at + 1
      FROM webhooks WHERE id = '${w.id}'`);
    const r = await run(s.env, ['webhook', 'ls', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sqlite(s.env, `SELECT token_fp FROM webhooks WHERE id = '${w.id}'`), fp);
    assert.equal(sqlite(s.env, "SELECT count(*) FROM webhooks WHERE id = 'olddup' AND token_fp IS NULL"), '1');
    assert.match(r.stderr, /webhook olddup duplicates another webhook/);
    assert.match(sqlite(s.env, 'SELECT token_fp FROM tokens'), /^k:[0-9a-f]{64}$/);
    assert.ok(!r.stderr.includes(s.token));
  });
});

const PG = path.join(root, 'scripts', 'pg.sh');
describe('concurrent webhook add on PostgreSQL', { skip: pgSkip }, () => {
  if (!pgSkip) needPg(); // no server: fail, unless TH_SKIP_PG=1 skipped this
  let clusterDir;
  let s;
  before(async () => {
    clusterDir = mkdtempSync('/tmp/th-race-pg-');
    const r = spawnSync(PG, ['start', clusterDir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pg.sh start failed: ${r.stderr}`);
    s = await stack(r.stdout.trim(), 2);
  });
  after(async () => {
    if (s) await s.stop();
    if (clusterDir) spawnSync(PG, ['stop', clusterDir]);
  });
  test(`${RACERS} adds of one (model, token) make one webhook, two instances serving`, async () => {
    await race(s);
  });
});
