// SPDX-License-Identifier: MIT
// `trellohook demo` (what `make run` starts without Trello variables), run
// for real: trello-mock and serve as its children, the printed admin login,
// the webhook on the mock, the demo's actions stored and handled, `trigger`
// for every listed type against the running demo, the printed curl, Ctrl-C
// (SIGTERM) stopping everything, a second run reusing the state, and no
// orphans when the demo itself is killed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { closedPort, sleep } from './lib/mock.mjs';
import { exited as outputRead, tempDir, th, thJson, trellohookBin } from './lib/serve.mjs';

const READY = /^demo ready: admin (http:\/\/127\.0\.0\.1:(\d+))\/admin\/ user (\S+) password (\S+)$/m;

// A clean environment: no Trello variables, nothing of the caller's store.
const cleanEnv = (dir, extra = {}) => ({ PATH: process.env.PATH, HOME: dir, TRELLOHOOK_LOG_LEVEL: 'warn', ...extra });

/** Start the demo; resolves once the ready line (and the try-next block) arrived. */
function startDemo(dir, port, args = [], env = cleanEnv(dir)) {
  const proc = spawn(trellohookBin, ['demo', '--data-dir', dir, '--listen', `127.0.0.1:${port}`,
    '--mock-listen', '127.0.0.1:0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = outputRead(proc);
  proc.stderr.on('data', (d) => { err += d; });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not ready in 60 s:\n${out}\n${err}`)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (READY.test(out) && /Ctrl-C stops everything/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      if (!READY.test(out)) reject(new Error(`demo exited ${code} before it was ready:\n${out}\n${err}`));
    });
  });
  return {
    proc, exited, ready,
    out: () => out,
    err: () => err,
    parsed() {
      const m = out.match(READY);
      const mock = out.match(/curl -s -X POST (http:\/\/127\.0\.0\.1:\d+)\/_mock\/actions/);
      const secret = out.match(/TRELLO_API_SECRET=(\S+) /);
      const db = out.match(/DATABASE_URL=(sqlite:\S+) /);
      const move = out.match(/-d '(\{"type":"updateCard"[^']+\})'/);
      return { url: m[1], port: Number(m[2]), user: m[3], password: m[4], mock: mock?.[1], secret: secret?.[1],
        db: db?.[1], move: move && JSON.parse(move[1]) };
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Run the demo with --exit-after-setup to completion. */
function runDemoOnce(dir, port, extraEnv = {}, args = ['--exit-after-setup']) {
  const r = spawnSync(trellohookBin, ['demo', '--data-dir', dir, '--listen', `127.0.0.1:${port}`,
    '--mock-listen', '127.0.0.1:0', ...args], { env: cleanEnv(dir, extraEnv), encoding: 'utf8', timeout: 90000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cookieOf = (res, name) => {
  for (const c of res.headers.getSetCookie()) {
    const m = c.match(new RegExp(`^${name}=([^;]*)`));
    if (m) return m[1];
  }
  return null;
};

/** Sign in to the admin; returns the session cookie or null. */
async function signIn(url, user, password) {
  const page = await fetch(`${url}/admin/login`, { redirect: 'manual' });
  assert.equal(page.status, 200);
  const lt = cookieOf(page, 'trellohook_login');
  assert.ok(lt, 'login token cookie');
  const res = await fetch(`${url}/admin/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${lt}` },
    body: new URLSearchParams({ login_token: lt, user, password }).toString(),
  });
  const s = cookieOf(res, 'trellohook_session');
  return s ? `trellohook_session=${s}` : null;
}

/** Does anything accept TCP connections on 127.0.0.1:@port? */
const listening = (port) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`not met in ${ms} ms: ${what}`);
    await sleep(100);
  }
}

const storeEnv = (dir, p) => ({ PATH: process.env.PATH, HOME: dir, DATABASE_URL: p.db, TRELLO_API_SECRET: p.secret });

describe('demo, live', () => {
  let tmp, port, demo, p;
  before(async () => {
    tmp = tempDir('th-demo-');
    port = await closedPort();
    demo = startDemo(path.join(tmp.dir, 'data'), port);
    await demo.ready;
    p = demo.parsed();
  });
  after(async () => {
    await demo?.stop('SIGKILL');
    tmp?.cleanup();
  });

  test('prints exactly one ready line, then what to try next', () => {
    const out = demo.out();
    assert.equal(out.match(/^demo ready: /gm).length, 1);
    assert.equal(p.port, port);
    assert.equal(p.user, 'admin');
    assert.match(p.password, /^[A-Za-z0-9]{20}$/);
    assert.match(out, /DATABASE_URL=sqlite:\S+\/trellohook\.db \S*trellohook events ls/);
    assert.match(out, /TRELLO_API_SECRET=\S+ \S*trellohook trigger commentCard/);
    assert.ok(p.mock && p.move && p.db && p.secret, out);
    assert.ok(!demo.err().includes(p.password), 'the password is printed once, on stdout');
  });

  test('the printed admin login works (and a wrong password does not)', async () => {
    const cookie = await signIn(p.url, p.user, p.password);
    assert.ok(cookie, 'signed in');
    const dash = await fetch(`${p.url}/admin/webhooks`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(dash.status, 200);
    assert.match(await dash.text(), /Demo board/);
    assert.equal(await signIn(p.url, p.user, p.password + 'x'), null);
  });

  test('the demo board\'s webhook exists on the mock and here, through the add path', async () => {
    const state = JSON.parse(readFileSync(path.join(tmp.dir, 'data', 'demo.json'), 'utf8'));
    const onMock = await (await fetch(`${p.mock}/_mock/webhooks`)).json();
    assert.equal(onMock.length, 1);
    assert.equal(onMock[0].idModel, state.board_id);
    assert.equal(onMock[0].active, true);
    const local = thJson(storeEnv(tmp.dir, p), ['webhook', 'ls']);
    assert.equal(local.length, 1);
    assert.equal(local[0].trello_id, onMock[0].id);
    assert.equal(local[0].callback_url, onMock[0].callbackURL);
    assert.equal(local[0].callback_url, `${p.url}/callbacks/${local[0].id}`);
    assert.equal(local[0].model_name, 'Demo board');
    assert.equal(local[0].state, 'active');
    // the board has lists and cards
    const board = await (await fetch(`${p.mock}/1/boards/${state.board_id}?key=5f1d3c0b9a8e7d6c5b4a39281706f5e4&token=${state.token}&lists=open&cards=open`)).json();
    assert.deepEqual(board.lists.map((l) => l.name), ['To do', 'Doing', 'Done']);
    assert.ok(board.cards.length >= 4);
  });

  test('the performed actions are stored and were handled by the example handler', () => {
    const env = storeEnv(tmp.dir, p);
    const events = thJson(env, ['events', 'ls']);
    assert.deepEqual(events.map((e) => e.action_type).sort(), ['addLabelToCard', 'commentCard', 'createCard', 'updateCard']);
    const handlers = thJson(env, ['handler', 'ls']);
    assert.equal(handlers.length, 1);
    assert.equal(handlers[0].kind, 'exec');
    const done = thJson(env, ['deliveries', 'ls', '--status', 'done']);
    assert.equal(done.length, 4);
    for (const e of events) {
      assert.ok(e.summary.length > 10);
      const d = done.find((x) => x.event_id === e.id);
      assert.ok(d, `delivery of ${e.action_type}`);
      assert.equal(d.last_error, `[handler] ${e.summary}\n`);
      assert.ok(demo.out().includes(`[handler] ${e.summary}\n`), 'the handler output is shown');
    }
    assert.ok(events.some((e) => /moved "Demo card #1" from To do to Doing on Demo board/.test(e.summary)));
  });

  test('trigger for every listed type is accepted, stored, summarised and handled', async () => {
    const env = storeEnv(tmp.dir, p);
    const types = thJson(env, ['trigger', '--list']);
    assert.ok(types.length >= 20);
    for (const t of types) {
      const r = thJson(env, ['trigger', t.type]);
      assert.equal(r.status, 200, `${t.type}: ${r.answer}`);
      assert.ok(r.event_id, `${t.type} stored`);
      assert.ok(r.summary && r.summary.length > 10, `${t.type} summarised`);
      assert.equal(thJson(env, ['events', 'show', r.event_id]).action_type, t.action_type);
    }
    const c = thJson(env, ['trigger', 'commentCard', '--set', 'action.data.text=hello from the demo test']);
    assert.match(c.summary, /commented on "[^"]+": hello from the demo test/);
    await until(() => demo.out().includes(`[handler] ${c.summary}`), 15000, 'handler echoed the trigger');
  });

  test('the printed curl moves a card: stored and handled', async () => {
    const res = await fetch(`${p.mock}/_mock/actions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p.move),
    });
    assert.equal(res.status, 200);
    await until(() => /\[handler\] .* moved "Demo card #1" from Doing to Done on Demo board/.test(demo.out()),
      15000, 'the move reached the handler');
  });

  test('Ctrl-C (SIGINT) stops serve and the mock, exit 0', async () => {
    assert.equal(await listening(p.port), true);
    const mockPort = Number(new URL(p.mock).port);
    assert.equal(await listening(mockPort), true);
    const r = await demo.stop('SIGINT');
    assert.deepEqual(r, { code: 0, signal: null }, demo.err());
    assert.equal(await listening(p.port), false);
    assert.equal(await listening(mockPort), false);
    assert.match(demo.err(), /demo: stopping \(serve, then trello-mock\)/);
    assert.doesNotMatch(demo.err(), /did not stop/);
  });
});

describe('demo, state and exits', () => {
  let tmp;
  before(() => { tmp = tempDir('th-demo2-'); });
  after(() => tmp?.cleanup());

  test('--exit-after-setup; a second run reuses the state; a new address replaces the webhook', async () => {
    const dir = path.join(tmp.dir, 'd');
    const port = await closedPort();
    const one = runDemoOnce(dir, port);
    assert.equal(one.code, 0, one.stderr);
    const m1 = one.stdout.match(READY);
    assert.ok(m1, one.stdout);
    const state1 = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    const env = { PATH: process.env.PATH, HOME: tmp.dir, DATABASE_URL: `sqlite:${dir}/trellohook.db` };
    const hooks1 = thJson(env, ['webhook', 'ls']);
    assert.equal(hooks1.length, 1);
    assert.equal(thJson(env, ['deliveries', 'ls', '--status', 'done']).length, 4, 'handled before the ready line');

    // again, through the variable instead of the flag: same board, same webhook, new password
    const two = runDemoOnce(dir, port, { TRELLOHOOK_DEMO_EXIT: '1' }, []);
    assert.equal(two.code, 0, two.stderr);
    const m2 = two.stdout.match(READY);
    assert.ok(m2);
    assert.notEqual(m2[4], m1[4], 'a fresh password each run');
    const state2 = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    assert.equal(state2.board_id, state1.board_id);
    assert.equal(state2.token, state1.token);
    assert.equal(state2.runs, 2);
    const hooks2 = thJson(env, ['webhook', 'ls']);
    assert.deepEqual(hooks2.map((h) => h.id), hooks1.map((h) => h.id));
    assert.equal(thJson(env, ['handler', 'ls']).length, 1);
    assert.equal(thJson(env, ['events', 'ls']).length, 8);
    assert.match(two.stdout, /\[handler\] .*created "Demo card #2"/);
    const mockState = JSON.parse(readFileSync(path.join(dir, 'mock.json'), 'utf8'));
    assert.equal(mockState.boards.length, 1);
    assert.equal(mockState.webhooks.length, 1);

    // a different port: the old webhook is removed (here and on the mock), a new one added
    const port3 = await closedPort();
    const three = runDemoOnce(dir, port3);
    assert.equal(three.code, 0, three.stderr);
    const hooks3 = thJson(env, ['webhook', 'ls']);
    assert.equal(hooks3.length, 1);
    assert.notEqual(hooks3[0].id, hooks1[0].id);
    assert.equal(hooks3[0].callback_url, `http://127.0.0.1:${port3}/callbacks/${hooks3[0].id}`);
    const mockState3 = JSON.parse(readFileSync(path.join(dir, 'mock.json'), 'utf8'));
    assert.deepEqual(mockState3.webhooks.map((w) => w.callbackURL), [hooks3[0].callback_url]);
    assert.equal(thJson(env, ['deliveries', 'ls', '--status', 'done']).length, 12);

    // the mock lost its state: a new board is seeded, the webhook on the lost one goes
    rmSync(path.join(dir, 'mock.json'));
    const four = runDemoOnce(dir, port3);
    assert.equal(four.code, 0, four.stderr);
    assert.match(four.stderr, /no longer has the demo board/);
    assert.ok(!four.stderr.includes(state1.token), 'the token is not printed');
    const state4 = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    assert.notEqual(state4.board_id, state1.board_id);
    const hooks4 = thJson(env, ['webhook', 'ls']);
    assert.deepEqual(hooks4.map((h) => h.id_model), [state4.board_id]);
  });

  test('SIGTERM: exit 0, both children stopped', async () => {
    const port = await closedPort();
    const d = startDemo(path.join(tmp.dir, 't'), port);
    await d.ready;
    const mockPort = Number(new URL(d.parsed().mock).port);
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null }, d.err());
    assert.equal(await listening(port), false);
    assert.equal(await listening(mockPort), false);
  });

  test('killing the demo with SIGKILL leaves no orphans', async () => {
    const port = await closedPort();
    const d = startDemo(path.join(tmp.dir, 'k'), port);
    await d.ready;
    const p = d.parsed();
    const mockPort = Number(new URL(p.mock).port);
    await d.stop('SIGKILL');
    await until(async () => !(await listening(port)) && !(await listening(mockPort)), 10000, 'children gone');
  });

  test('serve cannot start (port taken): exit 1 naming the log, the mock is stopped', async () => {
    const blocker = net.createServer();
    await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address();
    try {
      const r = runDemoOnce(path.join(tmp.dir, 'busy'), port);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^trellohook: demo: serve did not start \(see .*serve\.log\)$/m);
      assert.doesNotMatch(r.stdout, /demo ready/);
      const mockUrl = readFileSync(path.join(tmp.dir, 'busy', 'mock.log'), 'utf8');
      assert.ok(mockUrl.length > 0);
    } finally {
      blocker.close();
    }
  });

  test('usage errors exit 2', () => {
    const dir = path.join(tmp.dir, 'u');
    for (const args of [['--bogus'], ['--mock-listen', 'nonsense'], ['--data-dir'], ['--data-dir', '']]) {
      const r = th(cleanEnv(dir), ['demo', ...args]);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, /^trellohook: /);
    }
    const help = th(cleanEnv(dir), ['demo', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--exit-after-setup/);
  });
});
