// SPDX-License-Identifier: MIT
// HTTP strictness (issue 15, probes 5, 7, 8): framing over every header, NUL
// and control bytes, transfer codings and argument floods are answered at
// once with the right status, store nothing, and never hold up a delivery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { thJson } from '../e2e/lib/serve.mjs';
import { abuseStack, attackerAddr, freshPayload, goodClient, rawPost, rawRequest } from './lib/abuse.mjs';

let s;
before(async () => { s = await abuseStack(); });
after(async () => { await s?.stop(); });

const stored = (actionId) =>
  thJson(s.env, ['events', 'ls', '--limit', '1000']).some((e) => e.action_id === actionId);
const filler = (n) => Array.from({ length: n }, (_, i) => `X-Filler-${i}: y`);

/** Send @raw from an attacker address; assert @status within 1 s. */
async function expectStatus(raw, status, what) {
  const r = await rawRequest(s.port, raw, { localAddress: attackerAddr(3), timeoutMs: 5000 });
  assert.equal(r.status, status, `${what}: got ${r.status} after ${r.ms} ms:\n${r.headers}`);
  assert.ok(r.ms < 1000, `${what}: answered after ${r.ms} ms`);
  return r;
}

function chunked(body) {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n0\r\n\r\n')]);
}

test('framing is checked over every header, also after 70 filler headers', async () => {
  const good = goodClient(s);
  for (const [what, extra, status] of [
    ['conflicting Content-Lengths', (n) => [`Content-Length: ${n}`, `Content-Length: ${n + 1}`], 400],
    ['Content-Length with chunked', (n) => [`Content-Length: ${n}`, 'Transfer-Encoding: chunked'], 400],
  ]) {
    const { id, body } = freshPayload(what);
    const raw = rawPost(s, body, [...filler(70), `X-Trello-Webhook: ${s.sign(body)}`, ...extra(body.length)]);
    await expectStatus(raw, status, what);
    assert.equal(stored(id), false, `${what}: stored`);
  }
  const { body } = freshPayload('many headers');
  await expectStatus(rawPost(s, body, [...filler(100), `Content-Length: ${body.length}`]), 431, '100 headers');
  await good.assertHealthy('during framing probes');
});

test('NUL and control bytes in the path, header values and names get 400 and store nothing', async () => {
  const good = goodClient(s);
  const cases = [
    ['%00 in the path', (body) => rawPost(s, body, [`X-Trello-Webhook: ${s.sign(body)}`, `Content-Length: ${body.length}`])
      .toString('latin1').replace(s.url.pathname, `${s.url.pathname}%00junk`)],
    ['%0a in the path', (body) => rawPost(s, body, [`X-Trello-Webhook: ${s.sign(body)}`, `Content-Length: ${body.length}`])
      .toString('latin1').replace(s.url.pathname, `${s.url.pathname}%0ajunk`)],
    ['signature <valid>\\0junk', (body) => rawPost(s, body, [`X-Trello-Webhook: ${s.sign(body)}\0junk`, `Content-Length: ${body.length}`])],
    ['signature <valid>\\0junk as the last header', (body) => rawPost(s, body, [`Content-Length: ${body.length}`, `X-Trello-Webhook: ${s.sign(body)}\0junk`])],
    ['ESC in a header value', (body) => rawPost(s, body, [`X-Trello-Webhook: ${s.sign(body)}`, 'X-Note: a\x1b[31mb', `Content-Length: ${body.length}`])],
    ['control byte in a header name', (body) => rawPost(s, body, [`X-Trello-Webhook: ${s.sign(body)}`, 'X-N\x01te: a', `Content-Length: ${body.length}`])],
  ];
  for (const [what, make] of cases) {
    const { id, body } = freshPayload(what);
    const raw = make(body);
    await expectStatus(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'), 400, what);
    assert.equal(stored(id), false, `${what}: stored`);
  }
  await good.assertHealthy('during NUL probes');
});

test('unknown or stacked transfer codings get 501/400 at once; "Chunked" works at once', async () => {
  const good = goodClient(s);
  for (const [te, status] of [['gzip, chunked', 501], ['chunked, chunked', 400], ['identity', 501],
    ['chunked, identity', 501], ['gzip', 501]]) {
    const { id, body } = freshPayload(te);
    const raw = Buffer.concat([rawPost(s, '', [`X-Trello-Webhook: ${s.sign(body)}`, `Transfer-Encoding: ${te}`]), chunked(body)]);
    await expectStatus(raw, status, `Transfer-Encoding: ${te}`);
    assert.equal(stored(id), false, `${te}: stored`);
  }
  for (const te of ['Chunked', 'CHUNKED', 'chunked']) {
    const { id, body } = freshPayload(te);
    const raw = Buffer.concat([rawPost(s, '', [`X-Trello-Webhook: ${s.sign(body)}`, `Transfer-Encoding: ${te}`]), chunked(body)]);
    await expectStatus(raw, 200, `Transfer-Encoding: ${te}`);
    assert.equal(stored(id), true, `${te}: not stored`);
  }
  await good.assertHealthy('during transfer-coding probes');
});

test('512 and more query arguments get 414 at once', async () => {
  const good = goodClient(s);
  for (const n of [65, 512, 600, 2000]) {
    const q = Array.from({ length: n }, (_, i) => `a${i}=1`).join('&');
    await expectStatus(`GET /healthz?${q} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, `${n} arguments`);
  }
  await expectStatus('GET /healthz?a=%00 HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'NUL in the query');
  await expectStatus('GET /healthz?a=1&b=2 HTTP/1.1\r\nHost: x\r\n\r\n', 200, 'two arguments');
  await good.assertHealthy('during argument floods');
});
