// SPDX-License-Identifier: MIT
// Helpers for end-to-end tests that need trello-mock: start it as a real
// process, talk to its Trello and control APIs, and run real HTTP receivers
// on 127.0.0.1 (port 0) that record exactly what arrives.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exited as outputRead } from './serve.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const MOCK_BIN = path.resolve(ROOT, process.env.TH_BUILD ?? 'build', 'trello-mock');
// trello-mock's fixed demo credentials (used when --key / --secret are not given).
export const DEMO_KEY = '5f1d3c0b9a8e7d6c5b4a39281706f5e4';
export const DEMO_SECRET = '7d3c1b9a8f6e4d2c0b1a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19081726';

const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

// Spawn trello-mock with @args; resolves once its first stdout line (the base
// URL) arrived. Returns {url: 'http://H:P/1', base: 'http://H:P', proc, key,
// secret, stderr(), exited, stop()}. stop() sends SIGTERM and resolves with
// {code, signal}. Use t.after(() => m.stop()) so it is killed on test end.
export async function startMock(args = [], { timeoutMs = 10000 } = {}) {
  const proc = spawn(MOCK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 2e6) stderr = stderr.slice(-1e6);
  });
  const exited = outputRead(proc).then((r) => {
    running.delete(proc);
    return r;
  });
  const url = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout });
    const timer = setTimeout(() => reject(new Error(`trello-mock did not start:\n${stderr}`)), timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${MOCK_BIN}: ${e.message}`));
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`trello-mock exited with ${code} before printing its URL:\n${stderr}`));
    });
  });
  const keyIdx = args.indexOf('--key');
  const secretIdx = args.indexOf('--secret');
  return {
    url,
    base: url.replace(/\/1$/, ''),
    proc,
    key: keyIdx >= 0 ? args[keyIdx + 1] : DEMO_KEY,
    secret: secretIdx >= 0 ? args[secretIdx + 1] : DEMO_SECRET,
    stderr: () => stderr,
    exited,
    // SIGTERM, then resolve with {code, signal}. A non-zero exit (e.g. a
    // sanitizer report at exit) rejects, with the log, so the test fails.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      if (r.code !== 0) throw new Error(`trello-mock exited with ${r.code ?? r.signal}:\n${stderr.slice(-20000)}`);
      return r;
    },
  };
}

// Call the control API: JSON in, JSON out. Throws on a non-2xx answer unless
// {ok: false} is passed, in which case {status, body} is returned.
export async function control(m, method, route, body, { ok = true } = {}) {
  const res = await fetch(m.base + route, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (ok && !res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return ok ? parsed : { status: res.status, body: parsed };
}

// Call the Trello API with key/token in the query (unless auth: false).
// Returns {status, text, json (or undefined), headers}.
export async function api(m, method, route, { token, query = {}, body, headers = {}, auth = true } = {}) {
  const u = new URL(m.url + route);
  if (auth) {
    u.searchParams.set('key', m.key);
    if (token) u.searchParams.set('token', token);
  }
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  const init = { method, headers: { ...headers }, redirect: 'manual' };
  if (body !== undefined) {
    if (typeof body === 'string') init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers['content-type'] ??= 'application/json';
    }
  }
  const res = await fetch(u, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

// A board seeded by the mock (two lists, one card).
export async function newBoard(m, name = 'Roadmap 2027') {
  return control(m, 'POST', '/_mock/boards', { name });
}

// A new token from the mock ({expires_in}, {format: 'hex64'} optional).
export async function newToken(m, opts = {}) {
  return (await control(m, 'POST', '/_mock/tokens', opts)).token;
}

// A real HTTP receiver on 127.0.0.1:0. @answer(req, rawBody) returns the
// status to answer with (default 200); it may be async. Every request is
// recorded as {method, path, headers, body (Buffer)}.
export async function startReceiver(answer = () => 200) {
  const requests = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const rec = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(rec);
      for (const w of waiters.splice(0)) w();
      let status = 200;
      try {
        status = (await answer(req, rec.body, requests.length)) ?? 200;
      } catch {
        status = 500;
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(String(status));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    requests,
    posts: () => requests.filter((r) => r.method === 'POST'),
    // Resolve once @pred(requests) holds (or reject after @ms).
    async until(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!pred(requests)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met in ${ms} ms (${requests.length} requests)`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
export async function closedPort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll @fn (may be async) every 100 ms until it returns something truthy,
 * and return that; throw naming @what after @ms. */
export async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
