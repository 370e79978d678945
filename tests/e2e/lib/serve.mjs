// SPDX-License-Identifier: MIT
// Helpers to run real trellohook processes in end-to-end tests.
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..', '..');
export const buildDir = path.resolve(root, process.env.TH_BUILD ?? 'build');
export const trellohookBin = path.join(buildDir, 'trellohook');

export const TEST_SECRET = 'e2e-test-secret-0123456789abcdef';

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'th-e2e-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** base64(HMAC-SHA1(secret, body ++ callbackURL)) — Trello's X-Trello-Webhook. */
export function trelloSignature(secret, body, callbackURL) {
  return createHmac('sha1', secret).update(Buffer.concat([Buffer.from(body), Buffer.from(callbackURL)])).digest('base64');
}

/** The environment every trellohook process of a test shares. */
export function baseEnv(dir, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    DATABASE_URL: `sqlite:${path.join(dir, 'th.db')}`,
    TRELLO_API_SECRET: TEST_SECRET,
    CALLBACK_DOMAIN: 'http://127.0.0.1:1',
    TRELLOHOOK_LOG_LEVEL: 'info',
    // a sanitizer build's settings (make tsan) must reach the processes too
    ...(process.env.TSAN_OPTIONS ? { TSAN_OPTIONS: process.env.TSAN_OPTIONS } : {}),
    ...extra,
  };
}

/**
 * Resolves with { code, signal } once @proc has exited AND its stdout and
 * stderr pipes are closed, so that everything it printed has been read.
 * ('exit' alone can come before the last lines do: it lost the final error
 * line of a command in CI.) A process that leaves a child holding the pipes
 * open is waited for at most @graceMs after it exited.
 */
export function exited(proc, graceMs = 2000) {
  return new Promise((resolve) => {
    let timer = null;
    const done = () => {
      clearTimeout(timer);
      resolve({ code: proc.exitCode, signal: proc.signalCode });
    };
    const pipesClosed = [proc.stdout, proc.stderr].every((st) => !st || st.closed);
    if (proc.exitCode !== null || proc.signalCode !== null) timer = setTimeout(done, pipesClosed ? 0 : graceMs);
    else proc.once('exit', () => { timer = setTimeout(done, graceMs); });
    proc.once('close', done);
  });
}

/**
 * Start `trellohook serve` on a free port. Resolves once it prints
 * "serving URL". Returns { url, proc, stderr(), stop(signal) }.
 */
export function startServe(env, args = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(trellohookBin, ['serve', '--listen', '127.0.0.1:0', ...args], {
      env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`serve did not start in 10 s:\n${err}`)), 10000);
    function finish(e, value) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) { proc.kill('SIGKILL'); reject(e); } else resolve(value);
    }
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^serving (http:\/\/\S+)/m);
      if (m) {
        finish(null, {
          url: m[1],
          proc,
          stderr: () => err,
          stop: (signal = 'SIGTERM') => {
            const end = exited(proc);
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return end;
          },
        });
      }
    });
    proc.on('exit', (code) => finish(new Error(`serve exited with ${code} before it was ready:\n${err}`)));
  });
}

/** Run `trellohook ARGS` to completion: { code, stdout, stderr }. */
export function th(env, args, input) {
  const r = spawnSync(trellohookBin, args, { env, input, encoding: 'utf8', timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run `trellohook ARGS` without blocking the event loop (servers in this
 *  process answer meanwhile): { code, stdout, stderr, ms }. */
export function thAsync(env, args) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(trellohookBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    exited(p).then(({ code }) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

/** Run `trellohook ARGS --json` and parse stdout (throws with stderr on failure). */
export function thJson(env, args) {
  const r = th(env, [...args, '--json']);
  if (r.code !== 0) throw new Error(`trellohook ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
