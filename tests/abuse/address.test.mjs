// SPDX-License-Identifier: MIT
// Real client addresses (issue 15, probe 2): the peer's address, and behind
// a proxy listed in TRELLOHOOK_TRUSTED_PROXIES the one X-Forwarded-For names;
// never a client's own X-Forwarded-For claim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseEnv, tempDir, th } from '../e2e/lib/serve.mjs';
import { abuseStack, rawPost, rawRequest, sleep } from './lib/abuse.mjs';

const refusedFrom = (log) => [...log.matchAll(/refused a POST from (\S+),/g)].map((m) => m[1]);

async function badPost(s, localAddress, xff) {
  const body = '{"action":{}}';
  const headers = ['X-Trello-Webhook: AAAAAAAAAAAAAAAAAAAAAAAAAAA=', `Content-Length: ${body.length}`];
  if (xff) headers.push(`X-Forwarded-For: ${xff}`);
  const r = await rawRequest(s.port, rawPost(s, body, headers), { localAddress, timeoutMs: 5000 });
  assert.equal(r.status, 401);
}

test('without trusted proxies the peer address is used and X-Forwarded-For ignored', async () => {
  const s = await abuseStack();
  try {
    await badPost(s, '127.0.0.3');
    await badPost(s, '127.0.0.4', '198.51.100.7');
    await sleep(200);
    assert.deepEqual(refusedFrom(s.serve.stderr()), ['127.0.0.3', '127.0.0.4']);
    assert.match(s.serve.stderr(), /-> 401, .* from 127\.0\.0\.4/);
  } finally {
    await s.stop();
  }
});

test('behind a trusted proxy the nearest untrusted X-Forwarded-For hop is the client', async () => {
  const s = await abuseStack({ env: { TRELLOHOOK_TRUSTED_PROXIES: '127.0.0.5, 10.0.0.0/8' } });
  try {
    await badPost(s, '127.0.0.5', '6.6.6.6, 198.51.100.7, 10.1.2.3'); // spoofed 6.6.6.6 ignored
    await badPost(s, '127.0.0.5', 'not-an-address');                 // malformed: the proxy
    await badPost(s, '127.0.0.6', '198.51.100.8');                   // not a trusted peer
    await badPost(s, '127.0.0.5');                                   // no header: the proxy
    await sleep(200);
    assert.deepEqual(refusedFrom(s.serve.stderr()), ['198.51.100.7', '127.0.0.5', '127.0.0.6', '127.0.0.5']);
  } finally {
    await s.stop();
  }
});

test('a malformed TRELLOHOOK_TRUSTED_PROXIES stops serve with exit 2 naming it', async () => {
  const tmp = tempDir();
  try {
    const r = th(baseEnv(tmp.dir, { TRELLOHOOK_TRUSTED_PROXIES: '10.0.0.0/40' }), ['serve', '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TRELLOHOOK_TRUSTED_PROXIES: .*prefix length/);
  } finally {
    tmp.cleanup();
  }
});
