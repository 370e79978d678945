// SPDX-License-Identifier: MIT
// Slow and idle clients (issue 15, probe 1): trickled heads and bodies are
// closed on their deadlines, an idle flood never keeps a real delivery out,
// one address cannot take every connection, and memory stays bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  abuseStack, assertBoundedRss, attackerAddr, closeAll, freshPayload, goodClient, keepAlive, openMany, rawConn, sleep,
} from './lib/abuse.mjs';

let s;
before(async () => { s = await abuseStack(); });
after(async () => { await s?.stop(); });

test('a request head trickled at 1 byte/s is closed after ~10 s; 1,100 of them keep no delivery out', async () => {
  const good = goodClient(s);
  const head = `POST ${s.url.pathname} HTTP/1.1\r\nHost: ${s.url.host}\r\n`;
  const conns = await openMany(s.port, 1100, { head });
  const opened = Date.now();
  const timer = setInterval(() => {
    for (const c of conns) if (!c.sock.destroyed) c.sock.write('X');
  }, 1000);
  try {
    const cap = sleep(15000).then(() => ({ closed: false, status: null, ms: Date.now() - opened }));
    const results = await Promise.all(conns.map((c) => Promise.race([c.result, cap])));
    const open = results.filter((r) => !r.closed).length;
    assert.equal(open, 0, `${open} of 1,100 tricklers were still open after 15 s (deadline 10 s)`);
    assert.ok(results.every((r) => r.status === null), 'a trickler got an answer');
  } finally {
    clearInterval(timer);
    closeAll(conns);
  }
  await good.assertHealthy('during 1,100 trickled heads');
  assertBoundedRss(s, 128, 'trickled heads');
});

test('a body trickled at 10 bytes/s is closed after ~10 s, never answered 200', async () => {
  const good = goodClient(s);
  const head = `POST ${s.url.pathname} HTTP/1.1\r\nHost: ${s.url.host}\r\n` +
    'Content-Type: application/json\r\nX-Trello-Webhook: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nContent-Length: 1000\r\n\r\n';
  const c = rawConn(s.port, { localAddress: attackerAddr(7), head });
  const timer = setInterval(() => { if (!c.sock.destroyed) c.sock.write('xxxxxxxxxx'); }, 1000);
  const r = await Promise.race([c.result, sleep(20000).then(() => ({ closed: false, ms: 20000 }))]);
  clearInterval(timer);
  c.sock.destroy();
  assert.equal(r.closed, true);
  assert.notEqual(r.status, 200);
  assert.ok(r.ms >= 9000 && r.ms < 14000, `closed after ${r.ms} ms (deadline 10 s + 1000 B at 16 KiB/s)`);
  await good.assertHealthy('during a trickled body');
});

test('2,000 idle connections: the oldest are closed to make room, deliveries still get 200 at once', async () => {
  const conns = await openMany(s.port, 2000);
  const good = goodClient(s);
  await sleep(3000);
  await good.assertHealthy('during 2,000 idle connections');
  const closed = (await Promise.all(conns.map((c) => Promise.race([c.result, sleep(50).then(() => null)]))))
    .filter((r) => r?.closed).length;
  assert.ok(closed >= 2000 - 1024, `only ${closed} of 2,000 idle connections were closed (limit 1,024)`);
  closeAll(conns);
  assertBoundedRss(s, 128, 'idle flood');
});

test('an idle flood closes connections without a request head before a client idle after an answer', async () => {
  // Trello keeps its connection open between deliveries. When a flood of idle
  // connections forces the guard to make room, closing that connection first
  // would race with the next delivery on it (the client sees a reset).
  const trello = keepAlive(s);
  const first = freshPayload('keep-alive 1');
  assert.equal(await trello.post(first.body), 200, 'the first delivery on the kept-alive connection');
  // one answer buys no shelter for the next head: this one is answered, then trickles
  const trickler = keepAlive(s);
  assert.equal(await trickler.post(freshPayload('keep-alive trickler').body), 200);
  trickler.write(`POST ${s.url.pathname} HTTP/1.1\r\nHost: ${s.url.host}\r\n`);
  await sleep(50); // the flood is younger than both
  const conns = await openMany(s.port, 1100);
  await sleep(1000);
  const closed = (await Promise.all(conns.map((c) => Promise.race([c.result, sleep(20).then(() => null)]))))
    .filter((r) => r?.closed).length;
  assert.ok(closed >= 1100 - 1024, `only ${closed} of 1,100 idle connections were closed (limit 1,024)`);
  assert.equal(trickler.closed(), true, 'the answered client trickling its next head was kept (deadline 10 s)');
  assert.equal(trello.closed(), false, 'the guard closed the answered client\'s idle connection');
  const second = freshPayload('keep-alive 2');
  assert.equal(await trello.post(second.body), 200, 'the second delivery on the same connection');
  trello.end();
  trickler.end();
  closeAll(conns);
});

test('one address gets at most 128 connections; the rest are refused at once', async () => {
  const conns = await openMany(s.port, 200, { addr: () => '127.0.0.9' });
  await sleep(500);
  const good = goodClient(s);
  await sleep(1200);
  const states = await Promise.all(conns.map((c) => Promise.race([c.result, sleep(20).then(() => null)])));
  const open = states.filter((r) => r === null).length;
  assert.ok(open <= 128, `${open} connections from one address stayed open (cap 128)`);
  assert.ok(open >= 100, `only ${open} connections from one address stayed open`);
  closeAll(conns);
  await good.assertHealthy('during a single-address flood');
});
