// SPDX-License-Identifier: MIT
// `trellohook migrate --check` on both stores: exit 0 when the schema is
// current, 1 with the pending versions listed, and nothing changed — no file
// created, no table, no row, not a byte of the SQLite file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { baseEnv, root, startServe, tempDir, th } from './lib/serve.mjs';
import { needPg, pgAvailable, pgSkip } from './lib/pg_optional.mjs';

const PG = path.join(root, 'scripts', 'pg.sh');
let tmp;
let clusterDir;
let clusterUrl;

before(() => {
  tmp = tempDir('th-migrate-');
  if (!pgAvailable) return;
  clusterDir = mkdtempSync('/tmp/th-pgcheck-');
  const r = spawnSync(PG, ['start', clusterDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pg.sh start failed: ${r.stderr}`);
  clusterUrl = r.stdout.trim();
});

after(() => {
  if (clusterDir) spawnSync(PG, ['stop', clusterDir]);
  tmp?.cleanup();
});

function check(env) {
  const text = th(env, ['migrate', '--check']);
  const json = th(env, ['migrate', '--check', '--json']);
  assert.equal(json.code, text.code, json.stderr);
  return { code: text.code, stdout: text.stdout, stderr: text.stderr, doc: json.stdout ? JSON.parse(json.stdout) : null };
}

function sqlite(file, query) {
  const r = spawnSync('sqlite3', [file, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const sha = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('SQLite: a missing store is all pending and is not created', () => {
  const file = path.join(tmp.dir, 'missing.db');
  const env = baseEnv(tmp.dir, { DATABASE_URL: `sqlite:${file}` });
  const r = check(env);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.doc.store, 'sqlite');
  assert.equal(r.doc.version, 0);
  assert.ok(r.doc.latest >= 1);
  assert.deepEqual(r.doc.pending, range(1, r.doc.latest));
  assert.match(r.stdout, new RegExp(`schema version 0 of ${r.doc.latest}; pending versions: 1(, \\d+)*`));
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.startsWith('missing')), []);
});

test('SQLite: current after migrate (exit 0), behind after versions are dropped (exit 1), unchanged by the check', () => {
  const dir = path.join(tmp.dir, 'sq');
  const file = path.join(dir, 'th.db');
  spawnSync('mkdir', ['-p', dir]);
  const env = baseEnv(dir, { DATABASE_URL: `sqlite:${file}` });
  const m = th(env, ['migrate', '--json']);
  assert.equal(m.code, 0, m.stderr);
  const latest = JSON.parse(m.stdout).version;
  let r = check(env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.doc, { store: 'sqlite', version: latest, latest, pending: [] });
  assert.match(r.stdout, new RegExp(`schema version ${latest}: current`));

  // a store as an older trellohook left it, as far as the version goes
  sqlite(file, 'DELETE FROM schema_migrations WHERE version > 1');
  const before = { sum: sha(file), files: readdirSync(dir).sort() };
  r = check(env);
  assert.equal(r.code, 1);
  assert.deepEqual(r.doc.pending, range(2, latest));
  assert.equal(r.doc.version, 1);
  assert.deepEqual({ sum: sha(file), files: readdirSync(dir).sort() }, before, 'the check changed nothing');
  assert.equal(sqlite(file, 'SELECT group_concat(version) FROM schema_migrations'), '1');

  // a store from a newer trellohook
  sqlite(file, `INSERT INTO schema_migrations VALUES (${latest + 5}, 0)`);
  r = check(env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`version ${latest + 5}, newer than this trellohook knows \\(${latest}\\); upgrade`));
});

test('SQLite: the check reads a store that serve is writing (WAL in use)', async () => {
  const dir = path.join(tmp.dir, 'live');
  spawnSync('mkdir', ['-p', dir]);
  const env = baseEnv(dir);
  const srv = await startServe(env);
  try {
    const r = check(env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.doc.pending, []);
  } finally {
    await srv.stop();
  }
});

test('SQLite: a file that is not a store, and a bad URL, are refused', () => {
  const file = path.join(tmp.dir, 'garbage.db');
  writeFileSync(file, Buffer.alloc(4096, 0xa5));
  let r = th(baseEnv(tmp.dir, { DATABASE_URL: `sqlite:${file}` }), ['migrate', '--check']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^trellohook: DATABASE_URL: .*garbage\.db is not a readable SQLite store/m);
  r = th(baseEnv(tmp.dir, { DATABASE_URL: 'mysql://x' }), ['migrate', '--check']);
  assert.equal(r.code, 2);
  r = th(baseEnv(tmp.dir), ['migrate', '--check', 'extra']);
  assert.equal(r.code, 2);
});

function psql(url, query) {
  const r = spawnSync('psql', [url, '-qAt', '-c', query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

test('PostgreSQL: all pending on an empty database, current after migrate, behind when versions are dropped; nothing changed', (t) => {
  if (pgSkip) return t.skip(pgSkip);
  needPg();
  const name = `th_check_${process.pid}`;
  psql(clusterUrl, `CREATE DATABASE ${name}`);
  const url = clusterUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`);
  // our own URL parameters are accepted, as by every other command
  const env = baseEnv(tmp.dir, { DATABASE_URL: `${url}${url.includes('?') ? '&' : '?'}pool_size=2` });
  let r = check(env);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.doc.store, 'postgresql');
  assert.equal(r.doc.version, 0);
  assert.deepEqual(r.doc.pending, range(1, r.doc.latest));
  assert.equal(psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), '0', 'no table created');

  const m = th(env, ['migrate', '--json']);
  assert.equal(m.code, 0, m.stderr);
  const latest = JSON.parse(m.stdout).version;
  assert.equal(latest, r.doc.latest);
  r = check(env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.doc.pending, []);

  psql(url, 'DELETE FROM schema_migrations WHERE version > 1');
  const tables = psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'");
  r = check(env);
  assert.equal(r.code, 1);
  assert.deepEqual(r.doc.pending, range(2, latest));
  assert.match(r.stdout, /pending versions: 2/);
  assert.equal(psql(url, 'SELECT string_agg(version::text, \',\') FROM schema_migrations'), '1');
  assert.equal(psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"), tables);
});

test('PostgreSQL: an unreachable server is an operational failure (exit 1), password masked', (t) => {
  if (pgSkip) return t.skip(pgSkip);
  needPg();
  const r = th(baseEnv(tmp.dir, { DATABASE_URL: 'postgresql://th:hunter2@127.0.0.1:1/none' }), ['migrate', '--check']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot connect to PostgreSQL/);
  assert.ok(!r.stderr.includes('hunter2'), r.stderr);
});

test('the check never created a file next to a missing store', () => {
  assert.ok(!existsSync(path.join(tmp.dir, 'missing.db')));
});
