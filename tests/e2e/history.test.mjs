// SPDX-License-Identifier: MIT
// `events export` and `events prune` end to end, on SQLite and (when a
// PostgreSQL server is installed) PostgreSQL: real deliveries through
// trello-mock and `trellohook trigger` into a real `serve`, real exec
// handlers (one that succeeds, one that fails and waits an hour to retry),
// then the CLI against the same store. And TRELLOHOOK_RETENTION: serve
// prunes on its own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sleep } from './lib/mock.mjs';
import { needPg, pgAvailable, pgSkip } from './lib/pg_optional.mjs';
import { root, startServe, th, thJson, trellohookBin } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const PG = path.join(root, 'scripts', 'pg.sh');
// without a server the PostgreSQL half fails, or with TH_SKIP_PG=1 is skipped (lib/pg_optional.mjs)
if (!pgAvailable) {
  test('history on postgresql: a server to run on', { skip: pgSkip }, () => needPg());
}

const FIELDS = ['id', 'webhook_id', 'action_id', 'action_type', 'action_date', 'received_at', 'source',
  'summary', 'board_name', 'list_name', 'card_name', 'payload'];

/**
 * Wait until the deliveries settle: none running, every one of @okHandler's
 * done, and @failHandler's first one failed (its later ones then stay pending
 * behind it: a handler gets a webhook's events in order).
 */
async function settle(env, okHandler, failHandler) {
  for (let i = 0; i < 300; i++) {
    const ds = thJson(env, ['deliveries', 'ls', '--limit', '1000']);
    if (!ds.some((d) => d.status === 'running') &&
        ds.filter((d) => d.handler_id === okHandler).every((d) => d.status === 'done') &&
        ds.some((d) => d.handler_id === failHandler && d.status === 'failed')) return ds;
    await sleep(100);
  }
  throw new Error('deliveries did not settle');
}

/** `events export ARGS --format jsonl` on stdout: the parsed lines. */
function exportLines(env, args = []) {
  const r = th(env, ['events', 'export', '--format', 'jsonl', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout === '' || r.stdout.endsWith('\n'), 'every line ends with a newline');
  return { raw: r.stdout, lines: r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) };
}

function allEvents(env) {
  return thJson(env, ['events', 'ls', '--limit', '1000']);
}

for (const kind of ['sqlite', 'postgresql']) {
  describe(`history on ${kind}`, { skip: kind === 'postgresql' && !pgAvailable && 'no PostgreSQL server (see the test above)' }, () => {
    let s;
    let cluster;
    let hook;
    let types;
    let ok;
    let failing;
    before(async () => {
      const env = { TRELLOHOOK_HEALTH_INTERVAL: '0', TRELLOHOOK_RETRY_SCHEDULE: '1h' };
      if (kind === 'postgresql') {
        cluster = mkdtempSync('/tmp/th-hist-pg-');
        const r = spawnSync(PG, ['start', cluster], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`pg.sh start failed: ${r.stderr}`);
        env.DATABASE_URL = r.stdout.trim();
      }
      s = await startStack({ env });
      hook = s.addWebhook(s.board.id, ['--description', 'history e2e']);
      // createCard's deliveries finish (done), commentCard's fail and wait an hour
      ok = thJson(s.env, ['handler', 'add', '--exec', 'cat >/dev/null', '--on', 'createCard']).id;
      failing = thJson(s.env, ['handler', 'add', '--exec', 'cat >/dev/null; exit 3', '--on', 'commentCard']).id;
      types = thJson(s.env, ['trigger', '--list']).map((t) => t.type);
      for (const t of types) assert.equal(thJson(s.env, ['trigger', t]).status, 200, t);
      for (let i = 0; i < 3; i++) thJson(s.env, ['trigger', 'commentCard']);
      await settle(s.env, ok, failing);
    });
    after(async () => {
      if (s) await s.stop();
      if (cluster) spawnSync(PG, ['stop', cluster]);
    });

    test('export: one JSON object a line, oldest first, payload identical to events show', () => {
      const { lines } = exportLines(s.env);
      const evs = allEvents(s.env).reverse(); // ls: newest first
      assert.equal(lines.length, types.length + 3);
      assert.deepEqual(lines.map((l) => l.id), evs.map((e) => e.id));
      for (const l of lines) {
        assert.deepEqual(Object.keys(l), FIELDS);
        const shown = thJson(s.env, ['events', 'show', l.id]);
        for (const f of FIELDS.filter((x) => x !== 'payload')) assert.deepEqual(l[f], shown[f], `${l.id} ${f}`);
        assert.equal(typeof l.payload, 'object');
        assert.deepEqual(l.payload, JSON.parse(shown.payload));
        assert.equal(l.source, 'delivery');
        assert.equal(l.webhook_id, hook.id);
      }
    });

    test('export: the payload is written as the bytes received', () => {
      const { raw } = exportLines(s.env, ['--type', 'createCard']);
      const line = raw.split('\n')[0];
      const ev = JSON.parse(line);
      const shown = thJson(s.env, ['events', 'show', ev.id]);
      assert.ok(line.endsWith(`,"payload":${shown.payload}}`), 'payload bytes verbatim');
    });

    test('export: filters by type, webhook and time received', () => {
      const all = exportLines(s.env).lines;
      assert.deepEqual(exportLines(s.env, ['--type', 'commentCard']).lines.map((l) => l.id),
        all.filter((l) => l.action_type === 'commentCard').map((l) => l.id));
      assert.equal(exportLines(s.env, ['--type', 'noSuchType']).lines.length, 0);
      assert.equal(exportLines(s.env, ['--webhook', hook.id]).lines.length, all.length);
      assert.equal(exportLines(s.env, ['--webhook', 'nope']).lines.length, 0);
      assert.equal(exportLines(s.env, ['--since', '1h']).lines.length, all.length);
      assert.equal(exportLines(s.env, ['--until', '1h']).lines.length, 0);
      assert.equal(exportLines(s.env, ['--since', '2999-01-01']).lines.length, 0);
      assert.equal(exportLines(s.env, ['--since', '2000-01-01T00:00:00Z', '--until', '2999-01-01']).lines.length, all.length);
      // --since/--until split the events at the received time of the middle one
      const mid = all[Math.floor(all.length / 2)].received_at;
      const a = exportLines(s.env, ['--until', mid]).lines;
      const b = exportLines(s.env, ['--since', mid]).lines;
      assert.deepEqual([...a, ...b].map((l) => l.id), all.map((l) => l.id));
    });

    test('export --output: the same lines in the file, written whole; nothing on stdout', () => {
      const out = path.join(s.dir, 'export.jsonl');
      const r = th(s.env, ['events', 'export', '--format', 'jsonl', '--output', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`exported ${types.length + 3} event\\(s\\) to `));
      assert.equal(readFileSync(out, 'utf8'), exportLines(s.env).raw);
      assert.deepEqual(readdirSync(s.dir).filter((f) => f.startsWith('export.jsonl.')), [], 'no temp file left');
      // an existing file is replaced whole
      writeFileSync(out, 'old');
      assert.equal(th(s.env, ['events', 'export', '--format', 'jsonl', '--output', out, '--type', 'createCard']).code, 0);
      assert.equal(readFileSync(out, 'utf8').split('\n').filter(Boolean).length, 1);
    });

    test('export: hostile and wrong flags are refused with the reason (exit 2)', () => {
      const bad = [
        [[], /--format jsonl is required/],
        [['--format', 'csv'], /--format: expected jsonl, got 'csv'/],
        [['--format', 'jsonl', '--since', 'yesterday'], /--since: expected a UTC time/],
        [['--format', 'jsonl', '--since', '2026-02-31'], /--since: expected/],
        [['--format', 'jsonl', '--since', '2026-12-01T10:00:00+02:00'], /--since: expected/],
        [['--format', 'jsonl', '--until', '-5d'], /--until: expected/],
        [['--format', 'jsonl', '--until', '\xff\xfe'], /--until: expected/],
        [['--format', 'jsonl', '--since', '9'.repeat(400) + 'd'], /--since: expected/],
        [['--format', 'jsonl', '--since', '1d', '--until', '2d'], /--since must be before --until/],
        [['--format', 'jsonl', '--output', ''], /--output: expected a file name/],
        [['--format', 'jsonl', '--since'], /--since/],
        [['--format', 'jsonl', '--bogus'], /--bogus/],
      ];
      for (const [args, re] of bad) {
        const r = th(s.env, ['events', 'export', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^trellohook: /);
        assert.match(r.stderr, re, args.join(' '));
        assert.equal(r.stdout, '');
      }
    });

    test('export: a write error (full disk, file size limit, no directory) fails with no file left', () => {
      const full = spawnSync('sh', ['-c', `exec "${trellohookBin}" events export --format jsonl >/dev/full`],
        { env: s.env, encoding: 'utf8' });
      assert.equal(full.status, 1, full.stderr);
      assert.match(full.stderr, /^trellohook: events export: writing to standard output: No space left on device/);
      const out = path.join(s.dir, 'limited.jsonl');
      // a file size limit (in 512-byte blocks) of half the export: the store's
      // own files (SQLite's 32 KiB -shm) still fit, the export does not
      const size = exportLines(s.env).raw.length;
      assert.ok(size >= 2 * 40000, `enough to export (${size} bytes)`);
      const blocks = Math.floor(size / 2 / 512);
      const lim = spawnSync('sh', ['-c', `ulimit -f ${blocks}; exec "${trellohookBin}" events export --format jsonl --output "${out}"`],
        { env: s.env, encoding: 'utf8' });
      assert.equal(lim.status, 1, lim.stderr);
      assert.match(lim.stderr, /limited\.jsonl: File too large \(nothing written\)/);
      assert.ok(!existsSync(out), 'no file under the name');
      assert.deepEqual(readdirSync(s.dir).filter((f) => f.startsWith('limited.jsonl')), [], 'no temp file left');
      const nodir = th(s.env, ['events', 'export', '--format', 'jsonl', '--output', path.join(s.dir, 'no', 'x.jsonl')]);
      assert.equal(nodir.code, 1);
      assert.match(nodir.stderr, /cannot create a file next to .*x\.jsonl: No such file or directory/);
    });

    test('prune: flags checked; --dry-run counts and changes nothing; prune keeps unfinished deliveries', async () => {
      for (const [args, re] of [
        [[], /--older-than DURATION is required/],
        [['--older-than', '90'], /--older-than: expected a duration/],
        [['--older-than', '-1d'], /expected a duration/],
        [['--older-than', '99999999d'], /at most 36500d/],
        [['--older-than', 'x'.repeat(5000)], /expected a duration/],
        [['--older-than', '1d', '--force'], /--force/],
      ]) {
        const r = th(s.env, ['events', 'prune', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
      }
      const before = exportLines(s.env).raw;
      const dsBefore = thJson(s.env, ['deliveries', 'ls', '--limit', '1000']);
      // nothing is older than a day
      let r = thJson(s.env, ['events', 'prune', '--older-than', '1d']);
      assert.equal(r.events, 0);
      await sleep(50);
      const unfinished = new Set(dsBefore.filter((d) => d.status !== 'done' && d.status !== 'dead').map((d) => d.event_id));
      assert.equal(unfinished.size, 4, 'the commentCard events wait for a retry (or behind it)');
      const total = before.split('\n').filter(Boolean).length;
      const dry = thJson(s.env, ['events', 'prune', '--older-than', '10ms', '--dry-run']);
      assert.deepEqual(Object.keys(dry), ['dry_run', 'cutoff', 'events', 'deliveries', 'kept', 'pages_freed']);
      assert.equal(dry.dry_run, true);
      assert.equal(dry.events, total - unfinished.size);
      assert.equal(dry.kept, unfinished.size);
      assert.equal(dry.deliveries, dsBefore.filter((d) => !unfinished.has(d.event_id)).length);
      assert.equal(dry.pages_freed, 0);
      assert.equal(exportLines(s.env).raw, before, 'a dry run changes nothing');
      assert.deepEqual(thJson(s.env, ['deliveries', 'ls', '--limit', '1000']), dsBefore);
      // text output
      const text = th(s.env, ['events', 'prune', '--older-than', '10ms', '--dry-run']);
      assert.equal(text.code, 0);
      assert.match(text.stdout, new RegExp(`^would prune ${dry.events} event\\(s\\) received before \\S+Z, with ${dry.deliveries} delivery\\(ies\\); kept 4 with a delivery not yet done or dead\\n$`));

      r = thJson(s.env, ['events', 'prune', '--older-than', '10ms']);
      assert.equal(r.dry_run, false);
      assert.equal(r.events, dry.events);
      assert.equal(r.deliveries, dry.deliveries);
      assert.equal(r.kept, 4);
      const left = exportLines(s.env).lines;
      assert.deepEqual(new Set(left.map((l) => l.id)), unfinished);
      for (const l of left) assert.equal(l.action_type, 'commentCard');
      const dsAfter = thJson(s.env, ['deliveries', 'ls', '--limit', '1000']);
      assert.deepEqual(new Set(dsAfter.map((d) => d.event_id)), unfinished);
      // serve still takes new events
      assert.equal(thJson(s.env, ['trigger', 'createCard']).status, 200);
    });

    test('migrate --vacuum and --repack need the SQLite store to themselves: refused while serve has it open', async () => {
      if (kind === 'postgresql') {
        // nothing to rewrite there: both run beside serve
        assert.equal(th(s.env, ['migrate', '--vacuum']).code, 0);
        assert.equal(th(s.env, ['migrate', '--repack']).code, 0);
        return;
      }
      const before = exportLines(s.env).raw;
      for (const flag of ['--vacuum', '--repack']) {
        const r = th(s.env, ['migrate', flag]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, new RegExp(`^trellohook: migrate ${flag}: process ${s.serve.proc.pid} \\(trellohook serve\\) has the store open; .*stop serve .*run this again`));
      }
      assert.equal(exportLines(s.env).raw, before, 'nothing changed');
      await s.serve.stop(); // the tests below rewrite the file; the retention test starts serve again
      assert.equal(th(s.env, ['migrate', '--vacuum']).code, 0);
    });

    test('migrate --vacuum: a new SQLite file is incremental already; PostgreSQL has nothing to do', () => {
      const r = th(s.env, ['migrate', '--vacuum']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, kind === 'sqlite' ? 'store (sqlite) auto-vacuum: incremental already\n'
        : 'store (postgresql) auto-vacuum: not SQLite (PostgreSQL reuses space itself)\n');
      assert.deepEqual(thJson(s.env, ['migrate', '--vacuum']),
        { store: kind, vacuumed: false, incremental: kind === 'sqlite' });
      assert.equal(th(s.env, ['migrate', '--vacuum', '--now']).code, 2);
    });

    test('migrate --repack: payloads an older trellohook stored raw are packed, read back the same, and the file shrinks', () => {
      const none = { store: kind, raw: 0, packed: 0, bytes_before: 0, bytes_after: 0, file_before: 0, file_after: 0 };
      assert.equal(th(s.env, ['migrate', '--repack', '--now']).code, 2);
      if (kind === 'postgresql') {
        assert.deepEqual(thJson(s.env, ['migrate', '--repack']), none);
        const r = th(s.env, ['migrate', '--repack']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'store (postgresql): nothing to pack (PostgreSQL compresses payloads itself)\n');
        return;
      }
      // 300 rows as a version before schema 12 wrote them: payload_codec 0, the bytes raw
      const file = s.env.DATABASE_URL.slice('sqlite:'.length);
      const body = readFileSync(path.join(root, 'tests/data/payloads/updateCard-moveList.json'));
      const sql = (q) => {
        const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', file, q], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.trim();
      };
      sql(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
        INSERT INTO events (id, webhook_id, action_id, action_type, action_date, summary, payload, received_at)
        SELECT 'oldraw' || printf('%014d', i), 'oldwebhook', printf('%024x', 1000000 + i), 'updateCard',
        '2026-01-01T00:00:00.000Z', 'stored by an older trellohook', X'${body.toString('hex')}', 1700000000000 + i FROM n`);
      assert.equal(sql("SELECT count(*) FROM events WHERE payload_codec = 0"), '300');
      const r = thJson(s.env, ['migrate', '--repack']);
      assert.equal(r.store, 'sqlite');
      assert.equal(r.raw, 300);
      assert.equal(r.packed, 300);
      assert.equal(r.bytes_before, 300 * body.length);
      assert.ok(r.bytes_after < r.bytes_before / 1.8, `packed to ${r.bytes_after} of ${r.bytes_before}`);
      assert.ok(r.file_after < r.file_before - r.bytes_before / 3, `the file: ${r.file_before} -> ${r.file_after}`);
      assert.equal(sql("SELECT count(*) FROM events WHERE payload_codec = 0"), '0');
      assert.equal(sql('PRAGMA integrity_check'), 'ok');
      // read back byte for byte, by id and by export
      const shown = thJson(s.env, ['events', 'show', 'oldraw00000000000123']);
      assert.equal(shown.payload, body.toString('utf8'));
      const exported = exportLines(s.env, ['--webhook', 'oldwebhook']).lines;
      assert.equal(exported.length, 300);
      for (const l of exported) assert.deepEqual(l.payload, JSON.parse(body));
      // again: nothing left to pack, and the text form says so
      const again = th(s.env, ['migrate', '--repack']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'store (sqlite): nothing to pack (0 payload(s) stored raw would not shrink)\n');
      assert.deepEqual(thJson(s.env, ['migrate', '--repack']), none);
      sql("DELETE FROM events WHERE webhook_id = 'oldwebhook'"); // the retention test counts the rest
    });

    test('TRELLOHOOK_RETENTION: serve prunes on its own, and says so in the log', async () => {
      await settle(s.env, ok, failing);
      await s.serve.stop();
      const env = { ...s.env, TRELLOHOOK_RETENTION: '1s' };
      await sleep(1100); // everything is now older than the retention
      const serve = await startServe(env, ['--listen', `127.0.0.1:${s.port}`]);
      s.serve = serve;
      let log = '';
      for (let i = 0; i < 100 && !/retention: pruned/.test(log); i++) {
        await sleep(100);
        log = serve.stderr();
      }
      assert.match(log, /pruned every hour|pruned hourly/);
      assert.match(log, /pruned 1 event\(s\) received before \S+ with 1 delivery\(ies\) in \d+ ms \(\d+ batch\(es\)\); kept 4 with a delivery not yet finished/);
      assert.equal(exportLines(env).lines.length, 4);
      const bad = th({ ...s.env, TRELLOHOOK_RETENTION: '10 days' }, ['events', 'ls']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /TRELLOHOOK_RETENTION: must be a duration from 1s to 36500d, or 0\/off to keep every event \('10 days'\), e\.g\. TRELLOHOOK_RETENTION=90d/);
    });
  });
}
