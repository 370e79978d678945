// SPDX-License-Identifier: MIT
// Secrets from files: `serve` takes TRELLO_API_SECRET from TRELLO_API_SECRET_FILE
// or a systemd credential, and verifies real deliveries from trello-mock with it;
// a file open to others stops it with exit 2 naming the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { control, DEMO_SECRET } from './lib/mock.mjs';
import { baseEnv, tempDir, th } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const secretsDir = tempDir('th-secrets-');

/** A stack whose serve reads TRELLO_API_SECRET through @envFor(dir); checks a delivery. */
async function deliveryVerified(envFor) {
  // The mock signs with DEMO_SECRET unless told otherwise (--secret).
  const s = await startStack({ env: { TRELLO_API_SECRET: '', ...envFor(secretsDir.dir) } });
  try {
    assert.equal(s.mock.secret, DEMO_SECRET);
    const wh = s.addWebhook();
    const card = s.board.cards[0];
    const r = await s.act({ type: 'commentCard', idModel: card.id, text: 'signed with the file' });
    const attempts = (await control(s.mock, 'GET', '/_mock/deliveries'))
      .filter((d) => d.action_id === r.action.id);
    assert.deepEqual(attempts.map((d) => d.status), [200]);
    const ev = JSON.parse(th(s.env, ['events', 'ls', '--json']).stdout)
      .find((e) => e.action_id === r.action.id);
    assert.ok(ev, 'the delivery was stored');
    assert.equal(ev.webhook_id, wh.id);
    assert.ok(!s.serve.stderr().includes(DEMO_SECRET), 'the secret is not logged');
  } finally {
    await s.stop();
  }
}

test('serve starts with TRELLO_API_SECRET_FILE and verifies deliveries with it', async () => {
  const file = path.join(secretsDir.dir, 'trello_api_secret');
  writeFileSync(file, `${DEMO_SECRET}\n`, { mode: 0o600 });
  await deliveryVerified(() => ({ TRELLO_API_SECRET_FILE: file }));
});

test('serve reads $CREDENTIALS_DIRECTORY/trellohook.trello_api_secret', async () => {
  const dir = path.join(secretsDir.dir, 'credentials');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(path.join(dir, 'trellohook.trello_api_secret'), DEMO_SECRET, { mode: 0o400 });
  await deliveryVerified(() => ({ CREDENTIALS_DIRECTORY: dir }));
});

test('a secret file open to others, or both NAME and NAME_FILE, stop serve with exit 2', () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'open-secret');
    writeFileSync(file, `${DEMO_SECRET}\n`, { mode: 0o644 });
    const { TRELLO_API_SECRET, ...env } = baseEnv(tmp.dir);
    let r = th({ ...env, TRELLO_API_SECRET_FILE: file }, ['serve', '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^trellohook: TRELLO_API_SECRET_FILE: .*open-secret .*chmod 600/m);
    assert.ok(!r.stderr.includes(DEMO_SECRET));
    r = th({ ...env, TRELLO_API_SECRET, TRELLO_API_SECRET_FILE: file }, ['serve', '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TRELLO_API_SECRET and TRELLO_API_SECRET_FILE are both set/);
  } finally {
    tmp.cleanup();
  }
});

after(() => secretsDir.cleanup());
