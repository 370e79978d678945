// SPDX-License-Identifier: MIT
// `trellohook serve` over real sockets: routes that need no webhook, HTTP
// framing and size limits, configuration errors, clean shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { baseEnv, startServe, tempDir, th } from './lib/serve.mjs';

let tmp;
let srv;
let env;

before(async () => {
  tmp = tempDir();
  env = baseEnv(tmp.dir, { TRELLOHOOK_MAX_BODY: '2048' });
  srv = await startServe(env);
});

after(async () => {
  if (srv) await srv.stop();
  tmp.cleanup();
});

/** Send raw bytes, return the raw answer (until the server closes or 2 s pass). */
function raw(url, bytes) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.end(bytes));
    let data = '';
    sock.setTimeout(2000, () => sock.destroy());
    sock.on('data', (d) => { data += d; });
    sock.on('close', () => resolve(data));
    sock.on('error', reject);
  });
}

const ID = 'AbCdEfGhIjKlMnOpQrSt';

test('GET /healthz answers ok while the store answers', async () => {
  const r = await fetch(`${srv.url}/healthz`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'ok\n');
  assert.ok(r.headers.get('x-request-id'));
});

test('HEAD /callbacks/{id} answers 200 with an empty body for any well-formed id', async () => {
  const r = await fetch(`${srv.url}/callbacks/${ID}`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '');
});

test('malformed callback ids get 404, HEAD included', async () => {
  for (const id of ['short', 'has%20space%20in%20it%20xx', 'AbCdEfGhIjKlMnOpQrSt/extra', '']) {
    const r = await fetch(`${srv.url}/callbacks/${id}`, { method: 'HEAD' });
    assert.equal(r.status, 404, id);
  }
});

test('POST to an unknown webhook gets 404', async () => {
  const r = await fetch(`${srv.url}/callbacks/${ID}`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 404);
});

test('other methods on /callbacks/{id} get 405 with Allow: HEAD, POST', async () => {
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
    const r = await fetch(`${srv.url}/callbacks/${ID}`, { method });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get('allow'), 'HEAD, POST');
  }
});

test('a body over TRELLOHOOK_MAX_BODY gets 413 (Content-Length and chunked)', async () => {
  const big = 'x'.repeat(4096);
  const r = await fetch(`${srv.url}/callbacks/${ID}`, { method: 'POST', body: big });
  assert.equal(r.status, 413);
  const chunked = await raw(srv.url,
    `POST /callbacks/${ID} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `1000\r\n${big}\r\n0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 413 /);
});

test('conflicting Content-Length headers, or Content-Length with chunked, get 400', async () => {
  const two = await raw(srv.url,
    `POST /callbacks/${ID} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x`);
  assert.match(two, /^HTTP\/1\.1 400 /);
  const both = await raw(srv.url,
    `POST /callbacks/${ID} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`);
  assert.match(both, /^HTTP\/1\.1 400 /);
  // the server is still fine afterwards
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});

test('oversized request headers are refused, the server keeps serving', async () => {
  const answer = await raw(srv.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  assert.match(answer, /^HTTP\/1\.1 (431|413|400) /);
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});

test('garbage on the socket does not hurt the server', async () => {
  await raw(srv.url, '\x00\xff\xfe garbage \r\n\r\n');
  await raw(srv.url, 'POST /callbacks/x HTTP/1.1\r\nContent-Length: 99\r\n\r\n{"trunc');
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});

test('a connection that never finishes its request head is closed by the guard after 10 s', async () => {
  // MHD's own idle timeout is 30 s: a close at ~10 s is the guard's reaper
  const { hostname, port } = new URL(srv.url);
  const t0 = Date.now();
  const closed = await new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    sock.setTimeout(20000, () => { sock.destroy(); resolve(false); });
    sock.on('data', () => {});
    sock.on('close', () => resolve(true));
    sock.on('error', reject);
  });
  const took = Date.now() - t0;
  assert.ok(closed, 'closed within 20 s');
  assert.ok(took >= 9500 && took < 14000, `closed after ${took} ms`);
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});

test('GET /metrics is Prometheus text with the documented series', async () => {
  const r = await fetch(`${srv.url}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  for (const series of ['trellohook_events_received_total', 'trellohook_events_stored_total',
    'trellohook_events_duplicate_total', 'trellohook_events_rejected_total{reason="unknown_webhook"}',
    'trellohook_callback_latency_seconds_bucket', 'trellohook_deliveries{status="pending"}']) {
    assert.ok(text.includes(series), series);
  }
  assert.match(text, /trellohook_head_checks_total [1-9]/);
});

test('serve without its mandatory variables exits 2 naming the variable and an example', () => {
  const { TRELLO_API_SECRET, ...noSecret } = env;
  let r = th(noSecret, ['serve', '--listen', '127.0.0.1:0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trellohook: TRELLO_API_SECRET.*e\.g\. TRELLO_API_SECRET=/m);
  const { CALLBACK_DOMAIN, ...noDomain } = env;
  r = th(noDomain, ['serve', '--listen', '127.0.0.1:0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /CALLBACK_DOMAIN/);
  r = th({ ...env, TRELLOHOOK_LISTEN: 'nonsense' }, ['serve']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TRELLOHOOK_LISTEN.*e\.g\. TRELLOHOOK_LISTEN=127\.0\.0\.1:8000/);
  r = th(env, ['serve', '--listen', '127.0.0.1:0', '--database-url', 'mysql://x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /DATABASE_URL/);
});

test('the CLI: version, --help everywhere, exit codes for usage errors', () => {
  let r = th(env, ['version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^trellohook \d+\.\d+\.\d+/);
  r = th(env, ['version', '--json']);
  assert.match(JSON.parse(r.stdout).version, /^\d+\.\d+\.\d+/);
  r = th(env, ['--help']);
  assert.equal(r.code, 0);
  for (const word of ['serve', 'migrate', 'events ls', 'TRELLOHOOK_LISTEN']) assert.ok(r.stdout.includes(word), word);
  const help = th(env, ['--help']).stdout;
  const commands = [...help.matchAll(/^  ([a-z]+(?: [a-z]+)?)  /gm)].map((m) => m[1].split(' '));
  assert.ok(commands.length >= 5);
  for (const words of commands) {
    r = th(env, [...words, '--help']);
    assert.equal(r.code, 0, words.join(' '));
    assert.match(r.stdout, /^Usage: trellohook /, words.join(' '));
  }
  r = th(env, ['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trellohook: unknown command 'frobnicate'/);
  r = th(env, ['events', 'nope']);
  assert.equal(r.code, 2);
  r = th(env, ['events', 'ls', '--limit', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--limit/);
  r = th(env, ['events', 'show', 'doesnotexist123456789']);
  assert.equal(r.code, 1);
  r = th(env, []);
  assert.equal(r.code, 2);
});

test('migrate creates the store and is idempotent', () => {
  const r1 = th(env, ['migrate', '--json']);
  assert.equal(r1.code, 0, r1.stderr);
  const r2 = th(env, ['migrate', '--json']);
  assert.deepEqual(JSON.parse(r1.stdout), JSON.parse(r2.stdout));
  assert.equal(JSON.parse(r1.stdout).store, 'sqlite');
});

test('serve names its threads, so top -H, ps -L and perf tell them apart', async () => {
  const names = fs.readdirSync(`/proc/${srv.proc.pid}/task`)
    .map((t) => fs.readFileSync(`/proc/${srv.proc.pid}/task/${t}/comm`, 'utf8').trim());
  const count = (n) => names.filter((x) => x === n).length;
  // the main thread keeps the program's name; libmicrohttpd names its own
  assert.equal(count('trellohook'), 1, names.join(' '));
  assert.ok(count('MHD-worker') >= 1, names.join(' '));
  assert.equal(count('th-writer'), 1, names.join(' '));
  assert.equal(count('th-checkpoint'), 1, names.join(' '));
  assert.equal(count('th-claimer'), 1, names.join(' '));
  assert.ok(count('th-worker') >= 1, names.join(' '));
  // the health and retention runners start only when there is work for them
  for (const n of ['th-reaper', 'th-heartbeat'])
    assert.equal(count(n), 1, `${n} in: ${names.join(' ')}`);
});

test('SIGTERM stops serve cleanly with exit 0', async () => {
  const other = await startServe(env);
  const { code } = await other.stop('SIGTERM');
  assert.equal(code, 0);
  assert.match(other.stderr(), /stopped cleanly/);
});
