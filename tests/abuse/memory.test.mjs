// SPDX-License-Identifier: MIT
// Memory flood (issue 15, probe 4): 1,000 connections each sending a body of
// 1 MB - 1 with a bad signature. The body budget answers 503 + Retry-After
// before reading what does not fit; peak RSS stays under 128 MiB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { abuseStack, assertBoundedRss, attackerAddr, goodClient, rawConn, serverMemory, sleep } from './lib/abuse.mjs';

let s;
before(async () => { s = await abuseStack(); });
after(async () => { await s?.stop(); });

test('1,000 bodies of 1 MB - 1 at once: 401 or 503 + Retry-After, peak RSS < 128 MiB', async () => {
  const before0 = serverMemory(s);
  const good = goodClient(s);
  const size = 1000000 - 1;
  const body = Buffer.alloc(size, 0x61);
  const head = `POST ${s.url.pathname} HTTP/1.1\r\nHost: ${s.url.host}\r\nContent-Type: application/json\r\n` +
    `X-Trello-Webhook: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nContent-Length: ${size}\r\n\r\n`;
  const conns = [];
  for (let i = 0; i < 1000; i++) {
    const c = rawConn(s.port, { localAddress: attackerAddr(i), head, timeoutMs: 60000 });
    c.sock.write(body);
    conns.push(c);
    if (i % 50 === 49) await sleep(10);
  }
  const results = await Promise.all(conns.map((c) => c.result));
  const by = {};
  for (const r of results) by[r.status] = (by[r.status] ?? 0) + 1;
  assert.equal(by[200], undefined, 'a body with a bad signature was accepted');
  assert.ok(Object.keys(by).every((k) => ['401', '503', 'null'].includes(k)), JSON.stringify(by));
  assert.ok((by[503] ?? 0) > 0, `the budget never refused (${JSON.stringify(by)})`);
  assert.ok((by[401] ?? 0) > 0, `no body was read at all (${JSON.stringify(by)})`);
  const refused = results.find((r) => r.status === 503);
  assert.match(refused.headers, /\r\nRetry-After: \d+/i);
  await good.assertHealthy('during the memory flood');
  const m = assertBoundedRss(s, 128, 'memory flood');
  console.log(`# statuses ${JSON.stringify(by)}; RSS ${before0.rss} kB before, peak ${m.hwm} kB`);
});
