// SPDX-License-Identifier: MIT
// `trellohook restore PATH`: a backup put back in place of the SQLite store
// with serve stopped (refused while serve has the store open), the store it
// replaced kept beside it with every event it held, and the actions Trello
// performed since the backup recovered by serve's backfill from trello-mock.
// Then the refusals: no PATH, a missing file, a file that is not a store, an
// SQLite file that is not trellohook's, a newer schema, the store itself;
// each leaves the store as it was and nothing beside it. PostgreSQL is
// answered with the pg_restore command, password masked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { until } from './lib/mock.mjs';
import { baseEnv, tempDir, th, thJson } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

function sqlite(file, query) {
  const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', file, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function actionIds(env) {
  return thJson(env, ['events', 'ls', '--limit', '1000']).map((e) => e.action_id).sort();
}

test('a backup put back: refused beside serve; the replaced store kept whole; what Trello did since comes back by backfill', async (t) => {
  const s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
  t.after(() => s.stop());
  s.addWebhook();
  const card = s.board.cards[0].id;
  const comment = (text) => s.act({ type: 'commentCard', idModel: card, text });
  const before = [];
  for (let i = 0; i < 3; i++) before.push((await comment(`before ${i}`)).action.id);
  await until('the events before the backup', () => actionIds(s.env).length === 3);
  const copy = path.join(s.dir, 'th-backup.db');
  assert.equal(th(s.env, ['backup', copy]).code, 0);
  const after = [];
  for (let i = 0; i < 2; i++) after.push((await comment(`after ${i}`)).action.id);
  await until('the events after the backup', () => actionIds(s.env).length === 5);
  const store = s.env.DATABASE_URL.slice('sqlite:'.length);
  chmodSync(store, 0o640); // an operator's choice, which the restored file must keep
  const mode = statSync(store).mode & 0o777;

  // serve has the store open: refused, naming it, and nothing changes
  let r = th(s.env, ['restore', copy]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^trellohook: restore: process ${s.serve.proc.pid} \\(trellohook serve\\) has the store open: stop serve .*then run this again$`, 'm'));
  assert.deepEqual(actionIds(s.env), [...before, ...after].sort());

  await s.serve.stop();
  r = th(s.env, ['restore', copy, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(doc), ['store', 'path', 'bytes', 'schema_version', 'replaced', 'ms']);
  assert.equal(doc.store, 'sqlite');
  assert.equal(doc.path, copy);
  assert.equal(doc.bytes, statSync(store).size);
  assert.match(doc.replaced, /th\.db\.replaced-\d{8}T\d{6}Z$/);
  assert.equal(path.dirname(doc.replaced), path.dirname(store));
  // the replaced store is whole (its WAL folded in), with every event it held
  assert.equal(sqlite(doc.replaced, 'PRAGMA integrity_check'), 'ok');
  assert.equal(sqlite(doc.replaced, 'SELECT count(*) FROM events'), '5');
  // the store is the backup, alone: no WAL or index of the old one beside it, same mode
  assert.equal(sqlite(store, 'PRAGMA integrity_check'), 'ok');
  assert.deepEqual(actionIds(s.env), before.slice().sort());
  assert.equal(statSync(store).mode & 0o777, mode);
  assert.deepEqual(readdirSync(s.dir).filter((f) => f.includes('.restore-')), [], 'no temporary file left');

  // serve on the restored store lists what Trello did since the backup
  await s.restart();
  await until('the backfill', () => actionIds(s.env).length === 5);
  assert.deepEqual(actionIds(s.env), [...before, ...after].sort());
  const back = thJson(s.env, ['events', 'ls', '--limit', '1000']).filter((e) => after.includes(e.action_id));
  assert.deepEqual(back.map((e) => e.source), ['backfill', 'backfill']);

  // the text form, with serve stopped again
  await s.serve.stop();
  r = th(s.env, ['restore', copy]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^restored the store from .*th-backup\.db: \d+ bytes, schema version \d+, in \d+ ms\nthe store it replaced is kept as .*th\.db\.replaced-\S+ \(remove it once you no longer need it\)\nstart serve: it brings the schema up to date and backfills from Trello what happened since the backup/);
});

test('refusals leave the store as it was and nothing beside it', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  await s.act({ type: 'commentCard', idModel: s.board.cards[0].id, text: 'kept' });
  await until('the event', () => actionIds(s.env).length === 1);
  await s.serve.stop();
  const store = s.env.DATABASE_URL.slice('sqlite:'.length);
  const listing = () => readdirSync(s.dir).sort();
  const files = listing();
  const refuse = (args, code, re) => {
    const r = th(s.env, ['restore', ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
    assert.deepEqual(listing(), files, `${args.join(' ')}: nothing left beside the store`);
    assert.equal(actionIds(s.env).length, 1);
  };
  refuse([], 2, /restore: give the PATH of the backup/);
  refuse(['a.db', 'b.db'], 2, /unexpected|b\.db/);
  refuse(['--frobnicate'], 2, /frobnicate/);
  refuse([path.join(s.dir, 'nowhere.db')], 1, /restore: cannot use the backup .*nowhere\.db: No such file/);
  refuse([s.dir], 2, /is not a file; name a backup/);
  refuse([store], 2, /is the store itself; name a backup/);
  refuse([path.join(path.dirname(store), '.', path.basename(store))], 2, /is the store itself/);

  const outside = path.join(s.dir, '..', `${path.basename(s.dir)}-other`);
  const keep = [];
  try {
    spawnSync('mkdir', ['-p', outside]);
    const junk = path.join(outside, 'junk.db');
    writeFileSync(junk, 'not a database at all, but long enough to look like a header '.repeat(20));
    keep.push(junk);
    refuse([junk], 2, /restore: .*junk\.db is not an SQLite store \(file is not a database\)/);
    const plain = path.join(outside, 'plain.db');
    sqlite(plain, 'CREATE TABLE x (a)');
    refuse([plain], 2, /plain\.db is an SQLite file but not a trellohook store/);
    const newer = path.join(outside, 'newer.db');
    assert.equal(th(s.env, ['backup', newer]).code, 0);
    sqlite(newer, 'INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)');
    refuse([newer], 2, /newer\.db is at schema version 999, newer than this trellohook's \d+: restore it with the version that made it, or upgrade first/);
  } finally {
    spawnSync('rm', ['-rf', outside]);
  }
  assert.ok(!existsSync(`${store}.replaced`), 'nothing set aside');
});

test('into a path with no store yet: the backup becomes the store, nothing is set aside', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  const copy = path.join(s.dir, 'copy.db');
  assert.equal(th(s.env, ['backup', copy]).code, 0);
  const fresh = path.join(s.dir, 'fresh', 'th.db');
  spawnSync('mkdir', ['-p', path.dirname(fresh)]);
  const env = { ...s.env, DATABASE_URL: `sqlite:${fresh}` };
  const doc = thJson(env, ['restore', copy]);
  assert.equal(doc.replaced, null);
  assert.deepEqual(readdirSync(path.dirname(fresh)), ['th.db']);
  assert.equal(statSync(fresh).mode & 0o777, 0o600, 'a new store holds tokens: its owner only');
  assert.equal(thJson(env, ['webhook', 'ls']).length, 1);
});

test('no room for the copy: backup and restore refuse before copying, saying how much it needs (exit 1)',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs' }, (t) => {
  const holder = tempDir('th-room-');
  const mnt = path.join(holder.dir, 'small');
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount: ${m.stderr}`);
  t.after(() => {
    spawnSync('umount', [mnt]);
    holder.cleanup();
  });
  // a store of about 3 MiB beside the small file system
  const big = path.join(holder.dir, 'big.db');
  const env = baseEnv(holder.dir, { DATABASE_URL: `sqlite:${big}` });
  assert.equal(th(env, ['migrate']).code, 0);
  sqlite(big, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
    INSERT INTO events (id, webhook_id, action_id, action_type, summary, payload, received_at)
    SELECT 'big' || printf('%017d', i), 'w', printf('%024x', i), 'commentCard', 's',
    randomblob(50000), 1700000000000 + i FROM n`);
  const need = /the copy needs 3\.\d MiB in \S*small, where [\d.]+ [KM]iB are free; free space there first/;

  let r = th(env, ['backup', path.join(mnt, 'copy.db')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^trellohook: backup: ${need.source}, or choose a PATH on another file system$`, 'm'));
  assert.deepEqual(readdirSync(mnt), [], 'nothing left in the small file system');

  const smallEnv = baseEnv(holder.dir, { DATABASE_URL: `sqlite:${path.join(mnt, 'th.db')}` });
  assert.equal(th(smallEnv, ['migrate']).code, 0);
  const files = readdirSync(mnt).sort();
  r = th(smallEnv, ['restore', big]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^trellohook: restore: ${need.source}$`, 'm'));
  assert.deepEqual(readdirSync(mnt).sort(), files, 'the store alone, as it was');
  assert.equal(sqlite(path.join(mnt, 'th.db'), 'SELECT count(*) FROM events'), '0');
});

test('PostgreSQL: the pg_restore command for the configured URL, password masked, exit 2', () => {
  const url = 'postgresql://th:hunter2@db.example:5433/trello?pool_size=4&sslmode=require';
  const r = th({ PATH: process.env.PATH, DATABASE_URL: url }, ['restore', "/var/backups/it's.dump"]);
  assert.equal(r.code, 2);
  assert.ok(!r.stderr.includes('hunter2'), r.stderr);
  assert.ok(r.stderr.includes(
    "pg_restore --clean --if-exists --dbname='postgresql://th:****@db.example:5433/trello?sslmode=require' '/var/backups/it'\\''s.dump'"), r.stderr);
});
