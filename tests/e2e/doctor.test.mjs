// SPDX-License-Identifier: MIT
// `trellohook doctor` against trello-mock and real serve processes: a good
// setup passes every check; CALLBACK_DOMAIN pointing at another server (a
// plain HTTP server answering 200 to everything, or a second trellohook with
// its own store) is caught by the signed one-time probe; an expired token and
// a stopped mock are reported with what to do; no secret is ever printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { closedPort, control } from './lib/mock.mjs';
import { baseEnv, root, startServe, tempDir, th, thAsync, trelloSignature } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

/** Run doctor without blocking the event loop (servers in this process answer meanwhile). */
async function doctor(env, json = false) {
  const r = await thAsync(env, ['doctor', ...(json ? ['--json'] : [])]);
  return { ...r, doc: json && r.stdout ? JSON.parse(r.stdout) : null };
}

function noSecrets(s, r) {
  for (const secret of [s.mock.key, s.mock.secret, s.token]) {
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `a secret was printed:\n${r.stdout}${r.stderr}`);
  }
}

const byName = (doc, name) => doc.checks.filter((c) => c.check === name || c.check.startsWith(`${name} `));

test('a good setup: every check passes, exit 0, one line each, JSON alike', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  const wh = s.addWebhook();
  const r = await doctor(s.env);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.pop(), 'all checks passed');
  for (const l of lines) assert.match(l, /^✓ [^:]+: /);
  for (const name of ['configuration', 'store', 'store writable', 'disk', 'CALLBACK_DOMAIN resolves',
    'callback HEAD', 'callback reaches this instance', 'API key']) {
    assert.ok(lines.some((l) => l.startsWith(`✓ ${name}: `)), `${name} in\n${r.stdout}`);
  }
  assert.ok(lines.some((l) => /^✓ token ATTA…[A-Za-z0-9]{4}: valid \(member \S+\), expires never$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => l.startsWith(`✓ webhook ${wh.id}: active on Trello`)), r.stdout);
  assert.ok(!lines.some((l) => l.startsWith('✓ store payloads')), 'nothing to repack in a new store');
  noSecrets(s, r);
  const j = await doctor(s.env, true);
  assert.equal(j.code, 0);
  assert.equal(j.doc.ok, true);
  assert.equal(j.doc.checks.length, lines.length);
  for (const c of j.doc.checks) assert.deepEqual(Object.keys(c), ['check', 'ok', 'detail', 'fix']);
  assert.ok(j.doc.checks.every((c) => c.ok && c.fix === null));
  noSecrets(s, j);
});

test('CALLBACK_DOMAIN at a plain HTTP server answering 200: HEAD passes, the probe fails, exit 1', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  const seen = [];
  const other = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise((res) => other.listen(0, '127.0.0.1', res));
  t.after(() => other.close());
  const env = { ...s.env, CALLBACK_DOMAIN: `http://127.0.0.1:${other.address().port}` };
  const r = await doctor(env, true);
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.doc.ok, false);
  assert.equal(byName(r.doc, 'callback HEAD')[0].ok, true, 'a plain 200 fools the HEAD check');
  const probe = byName(r.doc, 'callback reaches this instance')[0];
  assert.equal(probe.ok, false);
  assert.match(probe.detail, /reaches another server: the probe got 200 without proof of this store/);
  assert.match(probe.fix, /point CALLBACK_DOMAIN .* at this trellohook serve/);
  assert.ok(seen.some((l) => l === 'POST /callbacks/.probe'), seen.join('\n'));
  const text = await doctor(env);
  assert.match(text.stdout, /^✗ callback reaches this instance: .*\n {4}→ point CALLBACK_DOMAIN/m);
  assert.match(text.stdout, /some checks failed\n$/);
  noSecrets(s, text);
});

test('CALLBACK_DOMAIN at a second trellohook with its own store is caught', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  const tmp = tempDir('th-doctor-other-');
  t.after(() => tmp.cleanup());
  // the same secret, its own store, and CALLBACK_DOMAIN naming itself: it
  // accepts the probe's signature but cannot prove it holds our store
  const port = await closedPort();
  const env2 = baseEnv(tmp.dir, { TRELLO_API_SECRET: s.env.TRELLO_API_SECRET, CALLBACK_DOMAIN: `http://127.0.0.1:${port}` });
  const srv2 = await startServe(env2, ['--listen', `127.0.0.1:${port}`]);
  t.after(() => srv2.stop());
  const r = await doctor({ ...s.env, CALLBACK_DOMAIN: srv2.url }, true);
  assert.equal(r.code, 1);
  const probe = byName(r.doc, 'callback reaches this instance')[0];
  assert.equal(probe.ok, false);
  assert.match(probe.detail, /reaches a trellohook that uses another store/);
  // and the probe route itself: signature checked before anything else
  const url = `${srv2.url}/callbacks/.probe`;
  const nonce = 'ab'.repeat(32);
  const post = (body, sig) => fetch(url, { method: 'POST', body, headers: sig ? { 'x-trellohook-probe': sig } : {} });
  assert.equal((await post(nonce)).status, 401);
  assert.equal((await post(nonce, trelloSignature('wrong secret', nonce, url))).status, 401);
  assert.equal((await post('zz'.repeat(32), trelloSignature(env2.TRELLO_API_SECRET, 'zz'.repeat(32), url))).status, 400);
  assert.equal((await post(nonce + 'ab', 'x')).status, 400);
  assert.equal((await post(nonce.slice(0, 63), trelloSignature(env2.TRELLO_API_SECRET, nonce.slice(0, 63), url))).status, 400);
  // 2 MB: answered 400/413, or, when the answer and close beat the upload, the
  // connection is reset under the client's feet (fetch then fails): refused either way
  const big = await post('a'.repeat(2 << 20), 'x').then((r) => r.status, (e) => e.cause?.code ?? String(e));
  assert.ok([400, 413, 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'].includes(big), `2 MB probe: ${big}`);
  assert.equal((await post(Buffer.from([0xff, 0xfe, 0, 1]), 'x')).status, 400);
  assert.equal((await fetch(url)).status, 405);
  const ok = await post(nonce, trelloSignature(env2.TRELLO_API_SECRET, nonce, url));
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /^trellohook-probe-v1 [A-Za-z0-9+/]{27}=\n$/);
});

test('an expired token: its line fails with what to do, and its webhook is reported', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  const wh = s.addWebhook();
  await control(s.mock, 'POST', `/_mock/tokens/${s.token}/expire`);
  const r = await doctor(s.env, true);
  assert.equal(r.code, 1);
  const tok = byName(r.doc, 'token')[0];
  assert.equal(tok.ok, false);
  assert.match(tok.detail, /^expired: Trello refuses it/);
  assert.match(tok.fix, /token add .*sync/);
  const w = byName(r.doc, `webhook ${wh.id}`)[0];
  assert.equal(w.ok, false, JSON.stringify(r.doc));
  assert.equal(byName(r.doc, 'callback reaches this instance')[0].ok, true);
  noSecrets(s, r);
});

test('payloads an older trellohook stored raw: doctor suggests migrate --repack, until it ran', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  const file = s.env.DATABASE_URL.slice('sqlite:'.length);
  const body = readFileSync(path.join(root, 'tests/data/payloads/updateCard-moveList.json'));
  // 50 rows as a version before schema 12 wrote them (payload_codec 0, the bytes raw)
  const r0 = spawnSync('sqlite3', ['-cmd', '.timeout 5000', file, `WITH RECURSIVE n(i) AS
    (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
    INSERT INTO events (id, webhook_id, action_id, action_type, summary, payload, received_at)
    SELECT 'oldraw' || printf('%014d', i), 'oldwebhook', printf('%024x', i), 'updateCard', 's',
    X'${body.toString('hex')}', 1700000000000 + i FROM n`], { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  const r = await doctor(s.env, true);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const line = byName(r.doc, 'store payloads');
  assert.equal(line.length, 1, JSON.stringify(r.doc.checks));
  assert.equal(line[0].ok, true, 'advice, not a failure');
  assert.match(line[0].detail, /^events stored by an older trellohook \(before schema 12\) keep their payloads raw, .*stop serve and run trellohook migrate --repack once$/);
  await s.serve.stop();
  const repack = th(s.env, ['migrate', '--repack', '--json']);
  assert.equal(repack.code, 0, repack.stderr);
  assert.equal(JSON.parse(repack.stdout).packed, 50);
  const after = await doctor(s.env, true);
  assert.equal(byName(after.doc, 'store payloads').length, 0, JSON.stringify(after.doc.checks));
});

test('a store other users can read fails "store access", unless its directory keeps them out', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  const file = s.env.DATABASE_URL.slice('sqlite:'.length);
  const dir = path.dirname(file);
  const access = async () => {
    const r = await doctor(s.env, true);
    const line = byName(r.doc, 'store access');
    assert.equal(line.length, 1, JSON.stringify(r.doc.checks));
    return { code: r.code, ...line[0] };
  };
  // as serve created it: 0600, inside mkdtemp's 0700 directory
  let a = await access();
  assert.equal(a.ok, true);
  assert.equal(a.detail, `other users cannot read the store (${file} is mode 0600)`);
  // as a store made by an older trellohook under umask 022, in an open directory
  chmodSync(dir, 0o755);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o644);
  a = await access();
  assert.equal(a.code, 1);
  assert.equal(a.ok, false);
  assert.match(a.detail, new RegExp(`^every local user can read the store \\(${file}(-wal|-shm)? is mode 0644\\); it holds every event's payload and, without TRELLOHOOK_SECRET_KEY, the tokens$`));
  assert.match(a.fix, new RegExp(`^chmod 600 ${file} .*or close its directory to other users: chmod o-rwx ${dir}$`));
  const text = await doctor(s.env);
  assert.match(text.stdout, /^✗ store access: every local user can read the store .*\n {4}→ chmod 600 /m);
  // its directory closed: out of reach, so no failure
  chmodSync(dir, 0o750);
  a = await access();
  assert.equal(a.ok, true);
  assert.match(a.detail, new RegExp(`^${file}(-wal|-shm)? is mode 0644, but other users cannot reach it: ${dir} is mode 0750$`));
  // the fix as doctor gave it
  chmodSync(dir, 0o755);
  const fix = spawnSync('sh', ['-c', (await access()).fix.split(' (')[0]], { encoding: 'utf8' });
  assert.equal(fix.status, 0, fix.stderr);
  a = await access();
  assert.equal(a.ok, true, a.detail);
  assert.equal(a.code, 0);
});

test('a stopped mock: Trello cannot be asked (exit 1), within the timeouts', async (t) => {
  const s = await startStack();
  t.after(() => s.stop());
  s.addWebhook();
  await s.mock.stop();
  const r = await doctor(s.env, true);
  assert.equal(r.code, 1);
  const tok = byName(r.doc, 'token')[0];
  assert.equal(tok.ok, false);
  assert.match(tok.detail, /Trello could not be asked/);
  assert.match(tok.fix, /TRELLO_API_URL/);
  assert.equal(byName(r.doc, 'store')[0].ok, true);
  assert.equal(byName(r.doc, 'API key')[0].ok, false);
  assert.match(byName(r.doc, 'webhooks')[0].detail, /not checked on Trello/);
  assert.ok(r.ms < 30000, `doctor took ${r.ms} ms`);
});

test('missing configuration is reported per variable; a stopped serve fails the HEAD check', async () => {
  const tmp = tempDir('th-doctor-bare-');
  try {
    const env = baseEnv(tmp.dir, { CALLBACK_DOMAIN: 'http://127.0.0.1:1' });
    delete env.TRELLO_API_SECRET;
    const r = await doctor(env, true);
    assert.equal(r.code, 1);
    const names = r.doc.checks.filter((c) => !c.ok).map((c) => c.check);
    assert.ok(names.includes('configuration: TRELLO_API_KEY'), names.join());
    assert.ok(names.includes('configuration: TRELLO_API_SECRET'), names.join());
    assert.ok(names.includes('callback HEAD'), names.join());
    assert.ok(names.includes('store'), names.join());
    assert.match(r.doc.checks.find((c) => c.check === 'store').detail, /^no store at .*th\.db$/);
    assert.ok(!existsSync(path.join(tmp.dir, 'th.db')), 'doctor never creates a store');
    assert.match(r.doc.checks.find((c) => c.check === 'configuration: TRELLO_API_KEY').fix, /set TRELLO_API_KEY \(or TRELLO_API_KEY_FILE\)/);
    const bad = await doctor({ ...env, TRELLOHOOK_LOG_LEVEL: 'loud' });
    assert.equal(bad.code, 2, 'a malformed variable is a configuration error');
  } finally {
    tmp.cleanup();
  }
});

test('a CALLBACK_DOMAIN that does not resolve is named as such, and nothing more is tried', async () => {
  const tmp = tempDir('th-doctor-dns-');
  try {
    // .invalid never resolves (RFC 2606), with or without a resolver at hand.
    const r = await doctor(baseEnv(tmp.dir, { CALLBACK_DOMAIN: 'http://doctor-check.invalid' }), true);
    assert.equal(r.code, 1);
    const dns = r.doc.checks.find((c) => c.check === 'CALLBACK_DOMAIN resolves');
    assert.equal(dns.ok, false);
    assert.match(dns.detail, /^the host of http:\/\/doctor-check\.invalid does not resolve: \S/);
    assert.match(dns.fix, /DNS record/);
    assert.ok(!r.doc.checks.some((c) => c.check === 'callback HEAD'), 'no HEAD check without a host');
  } finally {
    tmp.cleanup();
  }
});
