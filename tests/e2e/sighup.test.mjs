// SPDX-License-Identifier: MIT
// SIGHUP on `trellohook serve`: with TRELLOHOOK_LOG_FILE the log file is
// opened again (log rotation: the old file renamed away, lines go on in a
// new one), the handler set is read again and reported, and serve keeps
// serving; without a log file it only reloads; a log file that cannot be
// opened stops serve with a configuration error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { baseEnv, startServe, tempDir, th, thJson } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8') : '');

async function until(what, fn, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

test('SIGHUP reopens a rotated log file and reloads the handler set; serve keeps serving', async (t) => {
  const tmp = tempDir('th-hup-');
  t.after(() => tmp.cleanup());
  const log = path.join(tmp.dir, 'trellohook.log');
  const s = await startStack({ env: { TRELLOHOOK_LOG_FILE: log } });
  t.after(() => s.stop());
  s.addWebhook();
  assert.match(read(log), /serving on http:\/\/127\.0\.0\.1:\d+/);
  assert.doesNotMatch(s.serve.stderr(), /serving on/, 'serve logs to the file, not stderr');

  // rotate: rename the file away, then SIGHUP
  renameSync(log, `${log}.1`);
  s.serve.proc.kill('SIGHUP');
  await until('the new log file', () => /SIGHUP: log file reopened; handler set reloaded: 0 handlers, 0 enabled/.test(read(log)));
  assert.doesNotMatch(read(`${log}.1`), /SIGHUP/, 'nothing written to the rotated file after the signal');
  assert.equal(s.serve.proc.exitCode, null, 'SIGHUP does not stop serve');
  assert.equal((await fetch(`${s.serve.url}/healthz`)).status, 200);

  // a handler added meanwhile is in force, and the next SIGHUP reports it
  const out = path.join(tmp.dir, 'ran.txt');
  thJson(s.env, ['handler', 'add', '--exec', `echo "$TRELLO_ACTION_ID" >> '${out}'`]);
  const r = await s.act({ type: 'commentCard', idModel: s.board.cards[0].id, text: 'after the reload' });
  await until('the handler to run', () => read(out).includes(r.action.id));
  s.serve.proc.kill('SIGHUP');
  await until('the second reload line', () => /handler set reloaded: 1 handlers, 1 enabled/.test(read(log)));
  assert.equal(s.serve.proc.exitCode, null);
  // and SIGTERM still stops it cleanly
  const stopped = await s.serve.stop();
  assert.equal(stopped.code, 0);
  assert.match(read(log), /stopped cleanly/);
});

test('SIGHUP while logging to stderr only reloads', async (t) => {
  const tmp = tempDir('th-hup2-');
  t.after(() => tmp.cleanup());
  const srv = await startServe(baseEnv(tmp.dir));
  t.after(() => srv.stop());
  srv.proc.kill('SIGHUP');
  await until('the reload line', () => /SIGHUP: logging to stderr; handler set reloaded: 0 handlers/.test(srv.stderr()));
  srv.proc.kill('SIGHUP');
  srv.proc.kill('SIGHUP');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(srv.proc.exitCode, null);
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});

test('a log file that cannot be opened stops serve with exit 2, naming it', () => {
  const tmp = tempDir('th-hup3-');
  try {
    const env = baseEnv(tmp.dir, { TRELLOHOOK_LOG_FILE: path.join(tmp.dir, 'no-such-dir', 'th.log') });
    const r = th(env, ['serve', '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^trellohook: TRELLOHOOK_LOG_FILE: cannot open .*no-such-dir\/th\.log: No such file or directory/m);
  } finally {
    tmp.cleanup();
  }
});
