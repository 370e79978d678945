// SPDX-License-Identifier: MIT
// Helpers for the abuse suite: hostile raw-socket clients against a real
// `trellohook serve`, a well-behaved "Trello" posting signed deliveries from
// another address meanwhile, and the server's memory from /proc.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { root, trelloSignature } from '../../e2e/lib/serve.mjs';
import { startStack } from '../../e2e/lib/stack.mjs';

export { startStack, trelloSignature };

/** The loopback address attacker number @i connects from (127.0.0.2 and up:
 * the whole of 127/8 is local on Linux); the good client stays on 127.0.0.1. */
export const attackerAddr = (i) => `127.0.${Math.floor(i / 250)}.${2 + (i % 250)}`;

let counter = 0;
/** A fresh, valid Trello delivery body (a new action id each time). */
export function freshPayload(tag = '') {
  counter += 1;
  const doc = JSON.parse(readFileSync(path.join(root, 'tests/data/payloads/commentCard.json'), 'utf8'));
  doc.action.id = (0x7a00000000 + process.pid * 4096 + counter).toString(16).padStart(24, '0');
  doc.action.data.text = `abuse ${counter} ${tag}`;
  return { id: doc.action.id, body: JSON.stringify(doc) };
}

/** Start mock + serve and register one webhook. */
export async function abuseStack(opts = {}) {
  const s = await startStack(opts);
  s.wh = s.addWebhook();
  s.url = new URL(s.wh.callback_url);
  s.sign = (body) => trelloSignature(s.env.TRELLO_API_SECRET, body, s.wh.callback_url);
  return s;
}

/**
 * Where the first answer in @buf ends: null while its head is incomplete, -1
 * when the head has no Content-Length (the answer runs to the close), else
 * the byte offset past its body (which may not all be in @buf yet).
 */
function answerEnd(buf) {
  const t = buf.toString('latin1');
  const he = t.indexOf('\r\n\r\n');
  if (he <= 0) return null;
  const cl = t.slice(0, he).match(/\r\ncontent-length: *(\d+)/i);
  return cl ? he + 4 + Number(cl[1]) : -1;
}

/**
 * Open a raw TCP connection from @localAddress, write @head (and optionally
 * more later), and collect what comes back. Resolves the socket at once;
 * `result` resolves { status, headers, text, ms, closed } when the server
 * answers or closes.
 */
export function rawConn(port, { localAddress = '127.0.0.1', head = '', timeoutMs = 30000 } = {}) {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress });
  const started = Date.now();
  let data = Buffer.alloc(0);
  let closedAt = null;
  sock.on('error', () => {});
  const result = new Promise((resolve) => {
    const timer = setTimeout(() => { finish(); sock.destroy(); }, timeoutMs);
    function finish() {
      clearTimeout(timer);
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      const headEnd = text.indexOf('\r\n\r\n');
      resolve({
        status: m ? Number(m[1]) : null,
        headers: headEnd > 0 ? text.slice(0, headEnd) : text,
        text,
        ms: Date.now() - started,
        closed: closedAt !== null,
      });
    }
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      const end = answerEnd(data);
      if (end !== null && (end < 0 || data.length >= end)) { finish(); sock.destroy(); }
    });
    sock.on('close', () => { closedAt = Date.now(); finish(); });
  });
  if (head) sock.write(typeof head === 'string' ? Buffer.from(head, 'latin1') : head);
  return { sock, result, opened: new Promise((r) => sock.once('connect', r)) };
}

/** Send one whole raw request and wait for its answer. */
export async function rawRequest(port, request, opts = {}) {
  const c = rawConn(port, { ...opts, head: request });
  return c.result;
}

/** A raw POST to the webhook's callback with @headers (array of "Name: value"). */
export function rawPost(s, body, headers = []) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [`POST ${s.url.pathname} HTTP/1.1`, `Host: ${s.url.host}`, ...headers].join('\r\n');
  return Buffer.concat([Buffer.from(head + '\r\n\r\n', 'latin1'), b]);
}

/**
 * One HTTP/1.1 connection from 127.0.0.1 kept open across requests, as
 * Trello's client keeps it: post(body) sends a signed delivery to @s's
 * callback and resolves its status (null once the server closed it);
 * write(text) sends raw bytes on the same socket.
 */
export function keepAlive(s) {
  const sock = net.connect({ host: '127.0.0.1', port: s.port });
  let isClosed = false;
  let buf = Buffer.alloc(0);
  let waiting = null;
  sock.on('error', () => {});
  sock.on('close', () => { isClosed = true; waiting?.(null); });
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const end = answerEnd(buf);
    if (end === null || end < 0 || buf.length < end) return;
    const status = Number(buf.toString('latin1').match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
    buf = buf.subarray(end);
    waiting?.(status);
  });
  return {
    closed: () => isClosed,
    end: () => sock.destroy(),
    write: (text) => sock.write(Buffer.from(text, 'latin1')),
    post(body) {
      const request = rawPost(s, body, ['Content-Type: application/json',
        `X-Trello-Webhook: ${s.sign(body)}`, `Content-Length: ${Buffer.byteLength(body)}`]);
      return new Promise((resolve) => {
        waiting = (status) => { waiting = null; resolve(status); };
        if (isClosed) waiting(null);
        else sock.write(request);
      });
    },
  };
}

/**
 * The good client: a signed delivery from 127.0.0.1 every @everyMs while the
 * probe runs. stop() resolves the list of { status, ms }; assertHealthy()
 * checks every one got 200 within 1 s.
 */
export function goodClient(s, { everyMs = 500 } = {}) {
  const results = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { body } = freshPayload('good');
      const t0 = Date.now();
      let status = null;
      try {
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), 5000);
        const r = await fetch(s.wh.callback_url, {
          method: 'POST', body, signal: ac.signal,
          headers: { 'content-type': 'application/json', 'x-trello-webhook': s.sign(body) },
        });
        await r.text();
        clearTimeout(timer);
        status = r.status;
      } catch (e) {
        status = `error: ${e.cause?.code ?? e.name}`;
      }
      results.push({ status, ms: Date.now() - t0 });
      const wait = everyMs - (Date.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    results,
    async stop() { stopped = true; await loop; return results; },
    async assertHealthy(what) {
      stopped = true;
      await loop;
      assert.ok(results.length >= 1, `${what}: the good client made no delivery`);
      const bad = results.filter((r) => r.status !== 200 || r.ms > 1000);
      assert.deepEqual(bad, [], `${what}: a signed delivery from another client did not get 200 within 1 s ` +
        `(${results.length} tried): ${JSON.stringify(bad.slice(0, 5))}`);
    },
  };
}

/** The server's memory in KiB: { rss, hwm } (VmRSS and its peak, VmHWM). */
export function serverMemory(s) {
  const st = readFileSync(`/proc/${s.serve.proc.pid}/status`, 'utf8');
  const kb = (k) => Number(st.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Assert the server's peak RSS stayed under @mib MiB. */
export function assertBoundedRss(s, mib, what) {
  const m = serverMemory(s);
  assert.ok(m.hwm < mib * 1024, `${what}: peak RSS ${Math.round(m.hwm / 1024)} MiB, over ${mib} MiB`);
  return m;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Open @n connections from @addr(i), each writing @head; resolves when all are connected. */
export async function openMany(port, n, { addr = attackerAddr, head = '' } = {}) {
  const conns = [];
  for (let i = 0; i < n; i++) {
    conns.push(rawConn(port, { localAddress: addr(i), head, timeoutMs: 120000 }));
    if (i % 100 === 99) await sleep(5); // let the event loop breathe
  }
  await Promise.all(conns.map((c) => Promise.race([c.opened, c.result])));
  return conns;
}

export function closeAll(conns) {
  for (const c of conns) c.sock.destroy();
}
