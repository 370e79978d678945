// SPDX-License-Identifier: MIT
// A Trello that accepts connections and never answers: every command that
// calls Trello gives up within a bounded time (CLI_TRELLO_BUDGET_MS, 20 s),
// says once on stderr, after about 3 s, what it is waiting for, and ends with
// one error line; `webhook show --trello` prints "Trello's view: unavailable:"
// with the reason, without repeating itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startStack, TOKEN } from './lib/stack.mjs';
import { exited, trellohookBin } from './lib/serve.mjs';

let s;
let hang;
const sockets = new Set();
let accepted = 0;

before(async () => {
  s = await startStack();
  // accepts, reads whatever comes, never writes a byte
  hang = net.createServer((sock) => {
    accepted += 1;
    sockets.add(sock);
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const sock of sockets) sock.destroy();
  await new Promise((r) => hang.close(r));
  await s.stop();
});

/** Run trellohook against the hanging Trello; note when each stderr line arrived. */
function run(args) {
  const env = { ...s.env, TRELLO_API_URL: `http://127.0.0.1:${hang.address().port}/1` };
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(trellohookBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines = [];
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => {
      stderr += d;
      for (const l of String(d).split('\n').filter(Boolean)) lines.push({ at: Date.now() - t0, l });
    });
    const killer = setTimeout(() => p.kill('SIGKILL'), 60000);
    exited(p).then(({ code }) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, lines, took: Date.now() - t0 });
    });
  });
}

test('commands against a Trello that never answers give up in ~20 s, saying once what they wait for', async () => {
  const w = s.addWebhook();
  const runs = await Promise.all([
    run(['webhook', 'show', w.id, '--trello']),
    run(['token', 'check', TOKEN]),
    run(['webhook', 'add', '--model', s.board.id, '--token', TOKEN, '--description', 'again']),
    run(['sync', '--dry-run']),
  ]);
  assert.ok(accepted >= 4, `the hanging server saw ${accepted} connections`);
  for (const r of runs) {
    const what = `${r.stderr}\n${r.stdout}`;
    assert.equal(r.code, 1, what);
    assert.ok(r.took < 26000, `took ${r.took} ms: ${what}`);
    assert.ok(r.took >= 3000, `gave up after ${r.took} ms already: ${what}`);
    const waits = r.lines.filter((x) => /waiting for Trello at http:\/\/127\.0\.0\.1:\d+\/1 \(/.test(x.l));
    assert.equal(waits.length, 1, `one waiting notice, not a spinner: ${what}`);
    assert.ok(waits[0].at >= 2500 && waits[0].at < 10000, `notice at ${waits[0].at} ms`);
    assert.match(waits[0].l, /; giving up after 20 s$/);
    // the reason, where each command reports it (an error line; show's view
    // line and sync's report go to stdout)
    assert.match(what, /did not answer .* within 20 s; is TRELLO_API_URL right/, what);
    assert.ok(!r.stderr.includes(TOKEN) && !r.stdout.includes(TOKEN), 'a full token was printed');
  }
  const show = runs[0];
  assert.match(show.stdout, /Trello's view: unavailable: \S/);
  assert.doesNotMatch(show.stdout, /Trello's view: unavailable: Trello's view/);
});
