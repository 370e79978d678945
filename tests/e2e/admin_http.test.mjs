// SPDX-License-Identifier: MIT
// The admin over real sockets: every route needs a session, form posts need
// the CSRF token, wrong passwords are throttled, ?next= never leaves the
// admin, `user add` refuses bad passwords, pages carry the security headers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, control } from './lib/mock.mjs';
import { baseEnv, startServe, tempDir, th, thJson } from './lib/serve.mjs';
import { startStack } from './lib/stack.mjs';

const PASSWORD = 'hunter2hunter2';
let serve, env, tmp, url;

before(async () => {
  tmp = tempDir('th-admin-');
  env = baseEnv(tmp.dir, { TRELLOHOOK_LOG_LEVEL: 'warn' });
  for (const name of ['alice', 'bob', 'carol']) {
    const r = th(env, ['user', 'add', name], `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  serve = await startServe(env);
  url = serve.url;
});

after(async () => {
  await serve?.stop();
  tmp?.cleanup();
});

/** GET and form POST against the admin at @base (no redirects followed). */
const client = (base) => ({
  get: (path, headers = {}) => fetch(base + path, { redirect: 'manual', headers }),
  post: (path, form, headers = {}) =>
    fetch(base + path, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
    }),
});
const get = (...a) => client(url).get(...a);
const post = (...a) => client(url).post(...a);

function cookieOf(res, name) {
  for (const c of res.headers.getSetCookie()) {
    const m = c.match(new RegExp(`^${name}=([^;]*)`));
    if (m) return { value: m[1], raw: c };
  }
  return null;
}

/** Sign in as @user; returns { cookie, csrf, res }. */
async function signIn(user, password = PASSWORD, extra = {}, { get, post } = client(url)) {
  const page = await get('/admin/login');
  const lt = cookieOf(page, 'trellohook_login').value;
  const res = await post('/admin/login', { login_token: lt, user, password, ...extra },
    { cookie: `trellohook_login=${lt}` });
  const s = cookieOf(res, 'trellohook_session');
  if (!s) return { res };
  const cookie = `trellohook_session=${s.value}`;
  const dash = await (await get('/admin/', { cookie })).text();
  const csrf = dash.match(/name=csrf value="([^"]+)"/)[1];
  return { res, cookie, csrf, raw: s.raw };
}

const ROUTES = ['/admin/', '/admin/events', '/admin/events/abc', '/admin/deliveries',
  '/admin/webhooks', '/admin/webhooks/x/delete', '/admin/webhooks/x/edit', '/admin/tokens', '/admin/tokens/return',
  '/admin/sync', '/admin/no-such-page'];
const POSTS = ['/admin/logout', '/admin/webhooks/add', '/admin/webhooks/boards',
  '/admin/webhooks/x/delete', '/admin/webhooks/x/backfill', '/admin/webhooks/x/edit', '/admin/tokens/add',
  '/admin/tokens/check', '/admin/tokens/remove',
  '/admin/events/abc/replay', '/admin/deliveries/abc/retry', '/admin/sync'];

test('every admin route without a session redirects to the sign-in page', async () => {
  for (const p of ROUTES) {
    const r = await get(p);
    assert.equal(r.status, 303, p);
    assert.match(r.headers.get('location'), /^\/admin\/login(\?next=%2Fadmin%2F.*)?$/, p);
    // A forged or malformed cookie is no session either.
    const f = await get(p, { cookie: 'trellohook_session=' + 'A'.repeat(43) });
    assert.equal(f.status, 303, p);
    const g = await get(p, { cookie: 'trellohook_session=<script>; x=y' });
    assert.equal(g.status, 303, p);
  }
  for (const p of POSTS) {
    const r = await post(p, { csrf: 'x' });
    assert.equal(r.status, 303, p);
    assert.equal(r.headers.get('location'), '/admin/login', p);
  }
  assert.equal((await get('/admin')).headers.get('location'), '/admin/');
});

test('sign-in sets a hardened session cookie and pages carry security headers', async () => {
  const login = await get('/admin/login');
  assert.equal(login.status, 200);
  for (const [h, v] of [['x-frame-options', 'DENY'], ['x-content-type-options', 'nosniff'],
    ['referrer-policy', 'no-referrer'], ['cache-control', 'no-store']])
    assert.equal(login.headers.get(h), v, h);
  assert.match(login.headers.get('content-security-policy'), /default-src 'self'; script-src 'self'/);
  const s = await signIn('alice');
  assert.equal(s.res.status, 303);
  assert.equal(s.res.headers.get('location'), '/admin/');
  assert.match(s.raw, /; Path=\/admin; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
  const css = await get('/admin/static/admin.css');
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type'), /^text\/css/);
  assert.match(css.headers.get('cache-control'), /max-age/);
  const nf = await get('/admin/no-such-page', { cookie: s.cookie });
  assert.equal(nf.status, 404);
  assert.match(await nf.text(), /Not found/);
});

test('form posts without or with a wrong CSRF token get 403', async () => {
  const s = await signIn('bob');
  const cookie = s.cookie;
  for (const p of POSTS) {
    assert.equal((await post(p, {}, { cookie })).status, 403, `${p} without`);
    assert.equal((await post(p, { csrf: s.csrf.slice(0, -1) + (s.csrf.endsWith('A') ? 'B' : 'A') },
      { cookie })).status, 403, `${p} wrong`);
    assert.equal((await post(p, { csrf: '' }, { cookie })).status, 403, `${p} empty`);
  }
  // A JSON body is not a form: no token, 403.
  const j = await fetch(url + '/admin/logout', {
    method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ csrf: s.csrf }),
  });
  assert.equal(j.status, 403);
  // Malformed form bodies are refused before anything else.
  for (const body of ['csrf=%zz', 'csrf=%0', 'a=%00', 'a=%ff%fe']) {
    assert.equal((await post('/admin/logout', body, { cookie })).status, 400, body);
  }
  // The right token signs out; the session is then gone.
  const out = await post('/admin/logout', { csrf: s.csrf }, { cookie });
  assert.equal(out.status, 303);
  assert.equal(out.headers.get('location'), '/admin/login');
  assert.equal((await get('/admin/', { cookie })).status, 303);
});

test('a sign-in form not from this site is refused (login CSRF)', async () => {
  const r = await post('/admin/login', { user: 'carol', password: PASSWORD });
  assert.equal(r.status, 403);
  const page = await get('/admin/login');
  const lt = cookieOf(page, 'trellohook_login').value;
  const w = await post('/admin/login', { login_token: lt.slice(1) + 'x', user: 'carol', password: PASSWORD },
    { cookie: `trellohook_login=${lt}` });
  assert.equal(w.status, 403);
});

test('?next= never leads outside the admin', async () => {
  for (const next of ['https://evil.example/', '//evil.example/admin/', '/\\evil.example',
    '/admin/\\evil', 'javascript:alert(1)', '/admin//evil.example', '/admin/%0d%0aX: y']) {
    const s = await signIn('carol', PASSWORD, { next });
    assert.equal(s.res.status, 303, next);
    assert.equal(s.res.headers.get('location'), '/admin/', next);
  }
  const ok = await signIn('carol', PASSWORD, { next: '/admin/events' });
  assert.equal(ok.res.headers.get('location'), '/admin/events');
  // The login page reflects next only escaped, inside an attribute.
  const page = await (await get('/admin/login?next=' + encodeURIComponent('/admin/"><script>x</script>'))).text();
  assert.doesNotMatch(page, /<script>x/);
});

test('repeated wrong passwords are throttled with 429', async () => {
  const statuses = [];
  for (let i = 0; i < 7; i++) statuses.push((await signIn('dave-' + (i < 6 ? 'x' : 'y'), 'wrong-password')).res.status);
  // Unknown user name: 401 five times, then 429 for the name and the address.
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
  assert.equal(statuses[5], 429);
  assert.equal(statuses[6], 429, 'the address is throttled too');
  const s = await signIn('alice');
  assert.equal(s.res.status, 429, 'even the right password waits');
  assert.match(await s.res.text(), /Too many attempts; try again in \d+ minutes?/);
  assert.match(s.res.headers.get('retry-after'), /^\d+$/);
});

test('user add refuses empty and short passwords and bad names', () => {
  assert.equal(th(env, ['user', 'add', 'erin'], '\n').code, 2);
  assert.equal(th(env, ['user', 'add', 'erin'], '').code, 2);
  assert.equal(th(env, ['user', 'add', 'erin'], 'short\n').code, 2);
  assert.equal(th(env, ['user', 'add', 'bad name'], `${PASSWORD}\n`).code, 2);
  assert.equal(th(env, ['user', 'add'], `${PASSWORD}\n`).code, 2);
  const ok = th(env, ['user', 'add', 'erin', '--json'], `${PASSWORD}\r\nignored\n`);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { user: 'erin' });
  assert.doesNotMatch(ok.stdout + ok.stderr, new RegExp(PASSWORD));
});

test('a webhook is edited, paused and resumed from the admin (Trello first); bad input is refused', async () => {
  const st = await startStack({ env: { TRELLOHOOK_HEALTH_INTERVAL: '0', TRELLOHOOK_LOG_LEVEL: 'warn' } });
  try {
    assert.equal(th(st.env, ['user', 'add', 'dave'], `${PASSWORD}\n`).code, 0);
    const wh = st.addWebhook(st.board.id, ['--description', 'before']);
    const c = client(st.serve.url);
    const s = await signIn('dave', PASSWORD, {}, c);
    const cookie = s.cookie;
    const editPath = `/admin/webhooks/${wh.id}/edit`;
    const onTrello = async () => (await control(st.mock, 'GET', '/_mock/webhooks')).find((x) => x.id === wh.trello_id);
    const local = () => thJson(st.env, ['webhook', 'show', wh.id]);

    assert.match(await (await c.get('/admin/webhooks', { cookie })).text(), new RegExp(`href="${editPath}"`));
    const page = await (await c.get(editPath, { cookie })).text();
    assert.match(page, /name=description maxlength=1000 value="before"/);
    assert.match(page, /<button type=submit class=secondary>Pause deliveries<\/button>/);

    // the description, with markup and non-ASCII: on Trello and here, shown as text
    const desc = 'Roadmap <b>watch</b> “ü” 🚀';
    let r = await c.post(editPath, { csrf: s.csrf, description: desc }, { cookie });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/admin/webhooks?done=webhook-updated');
    assert.equal((await onTrello()).description, desc);
    assert.equal(local().description, desc);
    assert.match(await (await c.get('/admin/webhooks?done=webhook-updated', { cookie })).text(),
      /Roadmap &lt;b&gt;watch&lt;\/b&gt;/);

    // pause, then resume
    r = await c.post(editPath, { csrf: s.csrf, active: 'false' }, { cookie });
    assert.equal(r.headers.get('location'), '/admin/webhooks?done=webhook-paused');
    assert.equal((await onTrello()).active, false);
    assert.equal(local().active, false);
    assert.equal(local().state, 'disabled');
    assert.match(await (await c.get(editPath, { cookie })).text(), />Resume deliveries</);
    r = await c.post(editPath, { csrf: s.csrf, active: 'true' }, { cookie });
    assert.equal(r.headers.get('location'), '/admin/webhooks?done=webhook-resumed');
    assert.equal((await onTrello()).active, true);
    assert.equal(local().state, 'active');

    // hostile input: a clear 400, nothing changed on Trello or here (the
    // backfill passes that resuming and serve's start run may still note
    // their time meanwhile: that part of the row is theirs, not the edit's)
    const settled = () => { const w = local(); delete w.backfill; return w; };
    const before = settled();
    const trelloBefore = await onTrello();
    const bad = [
      [{ csrf: s.csrf, description: 'x'.repeat(1001) }, /too long: at most 1000 bytes/],
      [{ csrf: s.csrf, description: 'two\nlines' }, /control characters/],
      [{ csrf: s.csrf, active: 'maybe' }, /must be true or false/],
      [{ csrf: s.csrf }, /Nothing to change/],
      [`csrf=${encodeURIComponent(s.csrf)}&description=%ff%fe`, /URL-encoded UTF-8/],
      [`csrf=${encodeURIComponent(s.csrf)}&description=${'%41'.repeat(200000)}`, /too long/],
    ];
    for (const [form, why] of bad) {
      const res = await c.post(editPath, form, { cookie });
      assert.equal(res.status, 400, String(why));
      assert.match(await res.text(), why);
    }
    assert.deepEqual(settled(), before);
    assert.deepEqual(await onTrello(), trelloBefore);

    // Trello's refusal (it no longer has the webhook): its message, nothing changed here
    const del = await api(st.mock, 'DELETE', `/webhooks/${wh.trello_id}`, { token: st.token });
    assert.equal(del.status, 200);
    r = await c.post(editPath, { csrf: s.csrf, description: 'refused' }, { cookie });
    assert.equal(r.status, 409);
    assert.match(await r.text(), /Trello refused the change \(nothing changed here\)/);
    assert.deepEqual(settled(), before);

    // no such webhook; and a removing one cannot be changed
    assert.equal((await c.get('/admin/webhooks/NoSuchWebhook0000000/edit', { cookie })).status, 404);
    const rm = th({ ...st.env, TRELLO_API_URL: 'http://127.0.0.1:9/1' }, ['webhook', 'rm', wh.id]);
    assert.equal(rm.code, 1);
    assert.match(await (await c.get(editPath, { cookie })).text(), /cannot be changed while it is removing/);
    r = await c.post(editPath, { csrf: s.csrf, active: 'false' }, { cookie });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /cannot be changed while it is removing/);
  } finally {
    await st.stop();
  }
});
