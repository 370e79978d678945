// SPDX-License-Identifier: MIT
// examples/print_summaries: a C program that embeds libtrellohook through the
// public header, connects a function to callback_received (twice, with one
// dispatch_uid) and serves. Real process, real signed POSTs, real SQLite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { baseEnv, buildDir, exited, startServe, tempDir, th, thJson, trelloSignature, TEST_SECRET } from './lib/serve.mjs';

const exampleBin = path.join(buildDir, 'examples', 'print_summaries');
const BOARD = '6123456789abcdef01234567';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitFor(fn, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Start the example on a port of ours; ready once /healthz answers. */
async function startExample(env) {
  const port = await freePort();
  const proc = spawn(exampleBin, ['--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`example exited ${proc.exitCode}: ${err}`);
    try { return (await fetch(`${url}/healthz`)).status === 200; } catch { return false; }
  }, 10000, 'the example to serve');
  return {
    url, proc, stdout: () => out, stderr: () => err,
    stop: () => { const end = exited(proc).then(({ code, signal }) => ({ code, sig: signal })); proc.kill('SIGTERM'); return end; },
  };
}

function comment(text) {
  return JSON.stringify({
    model: { id: BOARD, name: 'Roadmap 2027' },
    action: {
      id: randomBytes(12).toString('hex'), type: 'commentCard', date: '2026-11-20T10:41:34.244Z',
      data: { text, board: { id: BOARD, name: 'Roadmap 2027' }, card: { id: '6123456789abcdef0000cc07', name: 'Ship it' } },
      memberCreator: { id: '5e3b1c9f8a7d6e5f4a3b2c1d', fullName: 'Zoë Ångström', username: 'zoe' },
    },
  });
}

test('the example C program prints each event summary once (dispatch_uid dedupes); C functions run where connected', { skip: !existsSync(exampleBin) && 'example not built' }, async () => {
  const tmp = tempDir('th-example-');
  const env = baseEnv(tmp.dir, { TRELLOHOOK_LOG_LEVEL: 'warn' });
  let ex;
  let srv;
  try {
    assert.equal(th(env, ['migrate']).code, 0);
    const id = randomBytes(15).toString('base64url');
    const cb = `http://127.0.0.1:1/callbacks/${id}`;
    const ins = spawnSync('sqlite3', [path.join(tmp.dir, 'th.db'),
      `INSERT INTO webhooks (id, id_model, model_type, callback_url, token, state, active, created_at)
       VALUES ('${id}', '${BOARD}', 'board', '${cb}', 'tok', 'active', 1, 1)`], { encoding: 'utf8' });
    assert.equal(ins.status, 0, ins.stderr);
    const post = async (base, body) => {
      const r = await fetch(`${base}/callbacks/${id}`, {
        method: 'POST', body, headers: { 'X-Trello-Webhook': trelloSignature(TEST_SECRET, body, cb) },
      });
      return r.status;
    };

    ex = await startExample(env);
    // connected twice with one dispatch_uid: one handler row
    const funcs = thJson(env, ['handler', 'ls']).filter((h) => h.kind === 'func');
    assert.equal(funcs.length, 1);
    assert.equal(funcs[0].target, 'print-summaries');
    for (const t of ['first', 'second', 'third']) assert.equal(await post(ex.url, comment(t)), 200);
    await waitFor(() => ex.stdout().split('\n').filter(Boolean).length >= 3, 10000, 'three summaries');
    await sleep(300); // a duplicate would show up by now
    const lines = ex.stdout().split('\n').filter(Boolean);
    assert.equal(lines.length, 3, lines.join('\n'));
    ['first', 'second', 'third'].forEach((t, i) => {
      assert.match(lines[i], /^commentCard .*Zoë Ångström/);
      assert.ok(lines[i].includes(t), `${lines[i]} lacks ${t}`);
    });
    assert.equal((await ex.stop()).code, 0);
    ex = null;

    // a plain `trellohook serve` has no such function: it leaves those deliveries pending
    srv = await startServe(env);
    assert.equal(await post(srv.url, comment('while away')), 200);
    await sleep(700);
    const pending = thJson(env, ['deliveries', 'ls', '--status', 'pending']);
    assert.equal(pending.length, 1);
    assert.equal(pending[0].handler_id, funcs[0].id);
    await srv.stop();
    srv = null;

    // the program comes back: it delivers the missed event, and registers no second row
    ex = await startExample(env);
    await waitFor(() => ex.stdout().includes('while away'), 10000, 'the missed event');
    assert.equal(thJson(env, ['handler', 'ls']).filter((h) => h.kind === 'func').length, 1);
    const all = thJson(env, ['deliveries', 'ls']);
    assert.equal(all.length, 4);
    assert.ok(all.every((d) => d.status === 'done'), JSON.stringify(all));
  } finally {
    if (ex) await ex.stop();
    if (srv) await srv.stop();
    tmp.cleanup();
  }
});

test('the example refuses a malformed flag with exit 2', { skip: !existsSync(exampleBin) && 'example not built' }, () => {
  const tmp = tempDir('th-example-');
  try {
    const r = spawnSync(exampleBin, ['--listen', 'not-an-address'], { env: baseEnv(tmp.dir), encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^print_summaries: /);
  } finally { tmp.cleanup(); }
});
