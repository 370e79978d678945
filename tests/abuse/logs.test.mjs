// SPDX-License-Identifier: MIT
// Log injection (issue 15, probe 6): %0d%0a in a path must not forge a text
// log line, %1b must not write a raw ESC, and JSON lines stay valid JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abuseStack, attackerAddr, goodClient, rawRequest, sleep } from './lib/abuse.mjs';

const FORGED = '2026-01-01T00:00:00.000Z error serve: FORGED';
const hostile = [
  `/callbacks/x%0d%0a${encodeURIComponent(FORGED)}%0d%0a`,
  '/callbacks/x%1b[2J%1b]0;pwned%07',
  '/admin/%0aFORGED-LF',
  '/healthz%c2%85NEL',
  '/callbacks/%ff%fe-not-utf8',
];

async function probe(s) {
  const good = goodClient(s);
  for (const p of hostile) {
    const r = await rawRequest(s.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`, { localAddress: attackerAddr(5), timeoutMs: 5000 });
    assert.ok(r.status !== null && r.ms < 1000, `${p}: ${r.status} after ${r.ms} ms`);
  }
  await good.assertHealthy('during log injection probes');
  await sleep(200); // the last lines reach stderr
  return s.serve.stderr();
}

test('text logs escape control bytes: no forged line, no raw ESC or C1', async () => {
  const s = await abuseStack();
  try {
    const log = await probe(s);
    assert.doesNotMatch(log, /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/u, 'a raw control character reached the log');
    assert.doesNotMatch(log, /\u0085/u);
    for (const line of log.split('\n').filter(Boolean))
      assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (debug|info |warn |error) /, `not a log line of ours: ${line}`);
    assert.ok(!log.split('\n').some((l) => l.startsWith(FORGED)), 'a forged line was written');
    assert.match(log, /\\r\\n2026-01-01T00:00:00\.000Z error serve: FORGED\\r\\n/, 'the escaped path is logged');
    assert.match(log, /\\x1b\[2J/);
  } finally {
    await s.stop();
  }
});

test('JSON logs stay one valid JSON object per line under the same probes', async () => {
  const s = await abuseStack({ env: { TRELLOHOOK_LOG_FORMAT: 'json' } });
  try {
    const log = await probe(s);
    const lines = log.split('\n').filter(Boolean);
    assert.ok(lines.length > 5);
    const docs = lines.map((l) => {
      try { return JSON.parse(l); } catch { assert.fail(`not JSON: ${l}`); }
      return null;
    });
    assert.ok(docs.some((d) => d.msg.includes(`\r\n${FORGED}\r\n`)), 'the hostile path is in a msg, escaped by JSON');
    assert.doesNotMatch(log, /[\x00-\x08\x0b-\x1f\x7f]/);
  } finally {
    await s.stop();
  }
});
