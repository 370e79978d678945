// SPDX-License-Identifier: MIT
// `trellohook backup PATH [--force]`: a consistent copy of the SQLite store
// while serve keeps storing signed deliveries; the refusals (an existing
// PATH without --force, a destination that cannot be written, the store
// itself); PostgreSQL answered with the pg_dump command, password masked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { root, th, thAsync, trelloSignature } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

let s;
let wh;

before(async () => {
  s = await startStack();
  wh = s.addWebhook();
});

after(async () => {
  await s?.stop();
});

const sample = JSON.parse(readFileSync(path.join(root, 'tests/data/payloads', 'commentCard.json')));
let counter = 0;

/** POST one new signed delivery; resolves with its action id and status. */
async function deliver(padding = 0) {
  counter += 1;
  const doc = structuredClone(sample);
  doc.action.id = (0x7000000000 + counter).toString(16).padStart(24, '0');
  // random text: the store packs payloads (LZ4), and repeated characters would pack to nothing
  doc.action.data.text = `comment ${counter} ${randomBytes(Math.ceil(padding * 3 / 4)).toString('base64').slice(0, padding)}`;
  const body = JSON.stringify(doc);
  const r = await fetch(wh.callback_url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-trello-webhook': trelloSignature(s.env.TRELLO_API_SECRET, body, wh.callback_url) },
  });
  await r.arrayBuffer();
  return { id: doc.action.id, status: r.status };
}

function sqlite(file, query) {
  const r = spawnSync('sqlite3', [file, query], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('a backup taken during ingest is whole and holds every event acknowledged before it began', async () => {
  // a store of several MiB, so the copy takes many steps
  for (let i = 0; i < 30; i++) {
    const rs = await Promise.all(Array.from({ length: 10 }, () => deliver(20000)));
    assert.deepEqual(rs.map((r) => r.status), rs.map(() => 200));
  }
  const acked = [];
  const statuses = new Map();
  let running = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const r = await deliver(2000);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 200) acked.push(r.id);
    }
  });
  while (acked.length < 40) await new Promise((res) => setTimeout(res, 20));
  const ackedBefore = [...acked];
  const copy = path.join(s.dir, 'backups', 'th-copy.db');
  mkdirSync(path.dirname(copy));
  const b = await thAsync(s.env, ['backup', copy, '--json']);
  const duringAndAfter = acked.length;
  while (acked.length < duringAndAfter + 20) await new Promise((res) => setTimeout(res, 20));
  running = false;
  await Promise.all(loops);

  assert.equal(b.code, 0, b.stderr);
  const doc = JSON.parse(b.stdout);
  assert.equal(doc.store, 'sqlite');
  assert.equal(doc.path, copy);
  assert.ok(doc.pages > 256, `the copy took several steps (${doc.pages} pages)`);
  assert.equal(doc.bytes, statSync(copy).size);
  assert.ok(doc.schema_version >= 1);
  assert.deepEqual([...statuses.keys()], [200], 'serve answered every delivery 200 throughout');

  assert.equal(sqlite(copy, 'PRAGMA integrity_check'), 'ok');
  const inCopy = new Set(sqlite(copy, 'SELECT action_id FROM events').split('\n'));
  const missing = ackedBefore.filter((id) => !inCopy.has(id));
  assert.deepEqual(missing, [], 'events acknowledged before the backup began are in the copy');
  assert.ok(inCopy.size >= 300 + ackedBefore.length);
  assert.equal(sqlite(copy, 'SELECT max(version) FROM schema_migrations'), String(doc.schema_version));
  // the copy holds tokens: only its owner may read it; nothing is left beside it
  assert.equal(statSync(copy).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(path.dirname(copy)), ['th-copy.db']);
  // and it is a store trellohook can use as it is
  const env2 = { ...s.env, DATABASE_URL: `sqlite:${copy}` };
  const ls = th(env2, ['events', 'ls', '--limit', '1', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal(JSON.parse(ls.stdout).length, 1);
});

test('an existing PATH is refused without --force (exit 1, untouched) and replaced with it', () => {
  const dest = path.join(s.dir, 'existing.db');
  writeFileSync(dest, 'not a database, yet');
  let r = th(s.env, ['backup', dest]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^trellohook: backup: .*existing\.db exists; pass --force to replace it/m);
  assert.equal(readFileSync(dest, 'utf8'), 'not a database, yet');
  r = th(s.env, ['backup', '--force', dest]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backed up the store to .*existing\.db: \d+ bytes, schema version \d+/);
  assert.equal(sqlite(dest, 'PRAGMA integrity_check'), 'ok');
  assert.ok(Number(sqlite(dest, 'SELECT count(*) FROM events')) >= 300);
  // a stale -wal beside PATH would be replayed into the copy: refused even with --force
  writeFileSync(`${dest}-wal`, 'stale');
  r = th(s.env, ['backup', '--force', dest]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /existing\.db-wal exists/);
});

test('a destination that cannot be written fails (exit 1) and leaves nothing', () => {
  const ro = path.join(s.dir, 'read-only');
  mkdirSync(ro, { mode: 0o500 });
  // root writes anywhere: then use a directory no one can create files in
  const dest = process.getuid?.() === 0 ? '/proc/trellohook-backup.db' : path.join(ro, 'copy.db');
  let r = th(s.env, ['backup', dest]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^trellohook: backup: cannot write in \/\S+: .* \(choose a writable directory\)$/m);
  assert.ok(!existsSync(dest));
  assert.deepEqual(readdirSync(ro), []);
  r = th(s.env, ['backup', path.join(s.dir, 'no-such-dir', 'copy.db')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot use the directory of .*no-such-dir/);
  r = th(s.env, ['backup', s.dir]);
  assert.equal(r.code, 2, 'a directory is not a file to write');
  assert.match(r.stderr, /is a directory/);
});

test('the store itself, and its own files, are refused whatever --force says (exit 2)', () => {
  const store = s.env.DATABASE_URL.replace(/^sqlite:/, '');
  const before = statSync(store).size;
  const rel = path.relative(process.cwd(), store);
  for (const dest of [store, rel, `${store}-wal`, path.join(path.dirname(store), '.', path.basename(store))]) {
    const r = th(s.env, ['backup', dest, '--force']);
    assert.equal(r.code, 2, `${dest}: ${r.stderr}`);
    assert.match(r.stderr, /is the store(('s own file -wal)| itself); choose another path/);
  }
  assert.ok(statSync(store).size >= before);
  assert.equal(sqlite(store, 'PRAGMA quick_check'), 'ok');
});

test('usage: PATH is required, one only, unknown flags refused; a missing store is not created', () => {
  assert.equal(th(s.env, ['backup']).code, 2);
  assert.equal(th(s.env, ['backup', 'a.db', 'b.db']).code, 2);
  assert.equal(th(s.env, ['backup', 'a.db', '--frobnicate']).code, 2);
  const missing = path.join(s.dir, 'missing.db');
  const r = th({ ...s.env, DATABASE_URL: `sqlite:${missing}` }, ['backup', path.join(s.dir, 'm-copy.db')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no store at .*missing\.db/);
  assert.ok(!existsSync(missing));
  assert.ok(!existsSync(path.join(s.dir, 'm-copy.db')));
});

test('PostgreSQL: the pg_dump command for the configured URL, password masked, exit 2', () => {
  const url = "postgresql://th:hunter2@db.example:5433/trello?pool_size=4&sslmode=require";
  const r = th({ ...s.env, DATABASE_URL: url }, ['backup', "/var/backups/it's.dump"]);
  assert.equal(r.code, 2);
  assert.ok(!r.stderr.includes('hunter2'), r.stderr);
  assert.ok(r.stderr.includes(
    "pg_dump --format=custom --file='/var/backups/it'\\''s.dump' 'postgresql://th:****@db.example:5433/trello?sslmode=require'"), r.stderr);
  assert.match(r.stderr, /pg_restore/);
});
