// SPDX-License-Identifier: MIT
// What the CLI prints for people: list commands with a header row and
// aligned, escaped columns (--no-header, --json unchanged); sync's progress
// line on a terminal's stderr and nothing on a pipe; events tail in colour on
// a terminal, never with NO_COLOR, on a pipe or with --json. A terminal is a
// real pseudo-terminal made by script(1).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { newToken, sleep } from './lib/mock.mjs';
import { startStack } from './lib/stack.mjs';
import { exited, th, thJson, trellohookBin } from './lib/serve.mjs';

const ESC = '\x1b';
const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/** Run trellohook ARGS on a pseudo-terminal (stdin, stdout and stderr all on
 * it) until it exits or @untilFn(output) is true; then SIGTERM. Resolves with
 * everything the terminal showed; .seen() is the output so far. */
function onTerminal(env, args, { untilFn = null, timeoutMs = 20000 } = {}) {
  const cmd = [trellohookBin, ...args].map(quote).join(' ');
  let out = '';
  const done = new Promise((resolve, reject) => {
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`timed out; saw:\n${out}`)); }, timeoutMs);
    p.stdout.on('data', (d) => {
      out += d;
      if (untilFn && untilFn(out)) p.kill('SIGTERM');
    });
    exited(p).then(({ code }) => { clearTimeout(timer); resolve({ code, out }); });
  });
  done.seen = () => out;
  return done;
}

/** Run trellohook ARGS with stdout and stderr on pipes, in the background. */
function inBackground(env, args) {
  const p = spawn(trellohookBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const got = { out: '', err: '' };
  p.stdout.on('data', (d) => { got.out += d; });
  p.stderr.on('data', (d) => { got.err += d; });
  return { p, got, stop: () => { const end = exited(p); p.kill('SIGTERM'); return end; } };
}

async function waitFor(fn, ms, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The column starts of a header line: where each word begins. */
const starts = (line) => [...line.matchAll(/\S+/g)].map((m) => m.index);

describe('cli output', () => {
  let s, hook, card;
  const hostile = `evil${ESC}[31m red\nline 漢字 ${'x'.repeat(80)}`;
  before(async () => {
    s = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0' } });
    hook = s.addWebhook(s.board.id, ['--description', hostile]);
    card = s.board.cards[0];
    thJson(s.env, ['handler', 'add', '--exec', 'cat >/dev/null', '--on', 'commentCard']);
    await s.act({ type: 'commentCard', idModel: card.id, text: `hi ${ESC}]0;pwned${ESC}\\ there` });
    await waitFor(() => thJson(s.env, ['deliveries', 'ls', '--status', 'done']).length === 1, 10000, 'delivery');
  });
  after(async () => { await s?.stop(); });

  test('every list command: a header, then aligned rows; --no-header; --json unchanged', () => {
    const lists = [
      [['webhook', 'ls'], ['ID', 'STATE', 'TYPE', 'MODEL', 'NAME', 'TOKEN', 'EVENTS', 'DESCRIPTION']],
      [['token', 'ls'], ['TOKEN', 'STATE', 'MEMBER', 'EXPIRES', 'WEBHOOKS', 'NOTE']],
      [['events', 'ls'], ['ID', 'RECEIVED', 'TYPE', 'SUMMARY']],
      [['deliveries', 'ls'], ['ID', 'STATUS', 'EVENT', 'HANDLER', 'ATTEMPTS', 'NEXT', 'ERROR']],
      [['handler', 'ls'], ['ID', 'KIND', 'STATE', 'ON', 'MODEL', 'SECRET', 'TARGET']],
    ];
    for (const [args, header] of lists) {
      const r = th(s.env, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(!r.stdout.includes(ESC), `${args.join(' ')}: a raw escape reached the terminal`);
      const lines = r.stdout.split('\n').filter(Boolean);
      assert.deepEqual(lines[0].split(/\s+/), header, `${args.join(' ')} header`);
      const json = thJson(s.env, args);
      assert.equal(lines.length, json.length + 1, `${args.join(' ')}: one row per item`);
      for (const l of lines) assert.equal(l, l.trimEnd(), 'no trailing blanks');
      // the first column's values are ids: the second column starts where its header does
      const col2 = starts(lines[0])[1];
      for (const l of lines.slice(1)) {
        assert.equal(l[col2 - 1], ' ', `${args.join(' ')}: column 2 misaligned in ${JSON.stringify(l)}`);
        assert.notEqual(l[col2], ' ', `${args.join(' ')}: column 2 misaligned in ${JSON.stringify(l)}`);
      }
      const bare = th(s.env, [...args, '--no-header']);
      assert.equal(bare.code, 0);
      assert.deepEqual(bare.stdout.split('\n').filter(Boolean), lines.slice(1), `${args.join(' ')} --no-header`);
      // --json has no header and is the same document with --no-header
      assert.deepEqual(thJson(s.env, [...args, '--no-header']), json);
    }
  });

  test('hostile values are escaped and cut, never raw', () => {
    const r = th(s.env, ['webhook', 'ls', '--no-header']);
    const row = r.stdout.split('\n').filter(Boolean).find((l) => l.startsWith(hook.id));
    assert.ok(row, r.stdout);
    assert.match(row, /evil\\x1b\[31m red\\nline 漢字 x+…$/);
    // the description column is capped at 40 display columns (漢字 count two each)
    const desc = row.slice(row.indexOf('evil'));
    assert.equal([...desc].length + 2, 40);
    // JSON keeps the value exactly
    assert.equal(thJson(s.env, ['webhook', 'ls']).find((w) => w.id === hook.id).description, hostile);
    const ev = th(s.env, ['events', 'ls', '--no-header']).stdout;
    assert.ok(!ev.includes(ESC));
    // (the summary drops control characters before it is stored)
    assert.match(ev, /: hi \]0;pwned\\ there$/m);
  });

  test('sync: progress on a terminal, nothing on a pipe', async () => {
    // several tokens: one listing each, in one batch
    for (let i = 0; i < 3; i++) assert.equal(th(s.env, ['token', 'add', await newToken(s.mock)]).code, 0);
    const t = await onTerminal(s.env, ['sync', '--dry-run']);
    assert.equal(t.code, 0, t.out);
    assert.match(t.out, /\rsync \(dry run\): Trello calls [0-3]\/4 +\d+%/);
    // erased when the batch is over, before the report
    assert.match(t.out, /Trello calls [0-3]\/4 +\d+%[^\r\n]*\x1b\[K\r\x1b\[K[^\r]/);
    assert.match(t.out, /^sync plan \(dry run/m);
    const p = th(s.env, ['sync', '--dry-run']);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(!p.stderr.includes('Trello calls') && !p.stderr.includes('\r'), `progress on a pipe: ${p.stderr}`);
    assert.ok(!p.stdout.includes('Trello calls'));
    assert.match(p.stdout, /^0 action\(s\)/m);
  });

  test('sync on a terminal against a Trello that never answers: the waiting notice gets its own line', async () => {
    const sockets = new Set();
    const hang = net.createServer((sock) => { sockets.add(sock); sock.on('data', () => {}); sock.on('error', () => {}); });
    await new Promise((r) => hang.listen(0, '127.0.0.1', r));
    try {
      const env = { ...s.env, TRELLO_API_URL: `http://127.0.0.1:${hang.address().port}/1` };
      const t = await onTerminal(env, ['sync', '--dry-run'], { timeoutMs: 40000 });
      assert.equal(t.code, 1, t.out);
      // the progress line is erased before the notice, then drawn again below it
      assert.match(t.out, /Trello calls 0\/\d+ +0%\x1b\[K\r\x1b\[Ktrellohook: waiting for Trello at /);
      // nothing else was drawn over the notice's line
      assert.match(t.out, /waiting for Trello at [^\r]*; giving up after 20 s\r?\n/);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => hang.close(r));
    }
  });

  test('events tail: colours on a terminal; NO_COLOR, a pipe and --json have none', async () => {
    const comment = (text) => s.act({ type: 'commentCard', idModel: card.id, text });
    // a terminal: the type in its colour (commentCard: cyan), the summary bold
    let n = 0;
    const seen = onTerminal(s.env, ['events', 'tail'], { untilFn: (o) => o.includes('colour one') });
    await waitFor(() => seen.seen().includes('following new events'), 10000, 'tail to start');
    await comment(`colour one ${ESC}[2J`);
    const t = await seen;
    assert.match(t.out, new RegExp(`${ESC}\\[36mcommentCard${ESC}\\[0m +${ESC}\\[1m[^\\n]*colour one `));
    // our colours are the only escapes on the line
    assert.ok(!t.out.replace(/\x1b\[(0|1|3[0-7])m/g, '').includes(ESC), JSON.stringify(t.out));
    // NO_COLOR, set to anything (also empty): no escape at all
    for (const v of ['1', '']) {
      const text = `plain ${v}-${++n}`;
      const nc = onTerminal({ ...s.env, NO_COLOR: v }, ['events', 'tail'], { untilFn: (o) => o.includes(text) });
      await waitFor(() => nc.seen().includes('following new events'), 10000, 'tail to start');
      await comment(text);
      const r = await nc;
      assert.ok(r.out.includes(text), r.out);
      assert.ok(!r.out.includes(ESC), `NO_COLOR=${JSON.stringify(v)} still coloured: ${JSON.stringify(r.out)}`);
    }
    // --json on a terminal: plain JSON lines
    const js = onTerminal(s.env, ['events', 'tail', '--json'], { untilFn: (o) => o.includes('as json') });
    await waitFor(() => js.seen().includes('following new events'), 10000, 'tail to start');
    await comment('as json');
    const jr = await js;
    assert.ok(!jr.out.includes(ESC), JSON.stringify(jr.out));
    const line = jr.out.split(/\r?\n/).find((l) => l.includes('as json'));
    assert.equal(JSON.parse(line).action_type, 'commentCard');
    // a pipe: no colour
    const bg = inBackground(s.env, ['events', 'tail']);
    await waitFor(() => bg.got.err.includes('following new events'), 10000, 'tail to start');
    await comment('through a pipe');
    await waitFor(() => bg.got.out.includes('through a pipe'), 10000, 'tail on a pipe');
    await bg.stop();
    assert.ok(!bg.got.out.includes(ESC), JSON.stringify(bg.got.out));
    assert.match(bg.got.out, /commentCard +\S/);
  });
});
