// SPDX-License-Identifier: MIT
// The sign-in form's anti-CSRF token is bound to a server key (issue 15):
// a cookie and a form field that agree on a value we did not make are
// refused, as are an expired token, a token with a later time pasted on, and
// two of ours swapped; with TRELLOHOOK_SECRET_KEY set, the key is derived
// from it, so a form opened before a restart still signs in after it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHmac, randomBytes } from 'node:crypto';

import { baseEnv, startServe, tempDir, th } from './lib/serve.mjs';

const PASSWORD = 'hunter2hunter2';
const SECRET_KEY = Buffer.alloc(32, 11);
let serve, env, tmp, url;

before(async () => {
  tmp = tempDir('th-login-');
  env = baseEnv(tmp.dir, { TRELLOHOOK_LOG_LEVEL: 'warn', TRELLOHOOK_SECRET_KEY: SECRET_KEY.toString('base64') });
  const r = th(env, ['user', 'add', 'dora'], `${PASSWORD}\n`);
  assert.equal(r.code, 0, r.stderr);
  serve = await startServe(env);
  url = serve.url;
});

after(async () => {
  await serve?.stop();
  tmp?.cleanup();
});

const b64url = (b) => b.toString('base64url');
/** A token as the server makes them (login_token.h), under the key derived from @secret. */
function token(secret, issued, nonce = b64url(randomBytes(16))) {
  const key = createHmac('sha256', secret).update('trellohook admin login token v1').digest();
  const mac = createHmac('sha256', key).update(`login.${issued}.${nonce}`).digest();
  return `${issued}.${nonce}.${b64url(mac)}`;
}

async function signIn(cookieToken, formToken = cookieToken) {
  const r = await fetch(`${url}/admin/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${cookieToken}` },
    body: new URLSearchParams({ login_token: formToken, user: 'dora', password: PASSWORD }).toString(),
  });
  await r.text();
  return r.status;
}

async function pageToken() {
  const r = await fetch(`${url}/admin/login`);
  await r.text();
  const c = r.headers.getSetCookie().find((v) => v.startsWith('trellohook_login='));
  return c.slice('trellohook_login='.length).split(';')[0];
}

test('the page issues signed tokens that sign in', async () => {
  const lt = await pageToken();
  assert.match(lt, /^\d{10}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
  assert.equal(await signIn(lt), 303);
  // made here with the same derivation: well-formed, so it is accepted too
  assert.equal(await signIn(token(SECRET_KEY, Math.floor(Date.now() / 1000))), 303);
});

test('forged, expired, extended and swapped tokens are refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  const forged = [
    'A'.repeat(43), // any value of the old form's length
    `${now}.${'A'.repeat(22)}.${'A'.repeat(43)}`, // our shape, a made-up mac
    token(Buffer.alloc(32, 12), now), // another server's key
    token(SECRET_KEY, now - 3601), // expired (an hour old)
    token(SECRET_KEY, now + 3600), // from the future
  ];
  for (const t of forged) assert.equal(await signIn(t), 403, t);
  // a valid mac with a later issue time pasted on (extending its life)
  const good = await pageToken();
  const extended = `${now + 3000}${good.slice(good.indexOf('.'))}`;
  assert.equal(await signIn(extended), 403);
  // two of ours swapped between cookie and form
  assert.equal(await signIn(await pageToken(), await pageToken()), 403);
  // hostile bytes
  for (const t of ['', '%00', `${good}\r\nX: y`, `${good}\u00ff`]) assert.equal(await signIn(good, t), 403, t);
});

test('with TRELLOHOOK_SECRET_KEY a form from before a restart still signs in', async () => {
  const lt = await pageToken();
  await serve.stop();
  serve = await startServe(env);
  url = serve.url;
  assert.equal(await signIn(lt), 303);
});
