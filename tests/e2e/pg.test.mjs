// SPDX-License-Identifier: MIT
// PostgreSQL end to end: a throwaway cluster (scripts/pg.sh), real
// `trellohook serve` processes with DATABASE_URL=postgresql://..., trello-mock
// delivering through a small round-robin load balancer to two instances.
// Checks: the receive path stores each event exactly once on PostgreSQL,
// deliveries spread over both instances, every event is stored once, killing
// one instance with SIGKILL loses nothing, and (when handlers and the
// dispatcher exist) every handler delivery runs exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { closedPort, control, newBoard, startMock, startReceiver, sleep } from './lib/mock.mjs';
import { baseEnv, root, startServe, tempDir, th, thAsync, thJson, trelloSignature } from './lib/serve.mjs';
import { TOKEN } from './lib/stack.mjs';
import { needPg, pgAvailable, pgSkip } from './lib/pg_optional.mjs';

const PG = path.join(root, 'scripts', 'pg.sh');
const available = pgAvailable; // else each test fails, or is skipped with TH_SKIP_PG=1

let clusterDir;
let dbUrl;

before(() => {
  if (!available) return;
  clusterDir = mkdtempSync('/tmp/th-pge2e-');
  const r = spawnSync(PG, ['start', clusterDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pg.sh start failed: ${r.stderr}`);
  dbUrl = r.stdout.trim();
});

after(() => {
  if (clusterDir) spawnSync(PG, ['stop', clusterDir]);
});

/** A fresh database on the cluster for one test. */
let dbCounter = 0;
function freshDb() {
  dbCounter += 1;
  const name = `th_e2e_${process.pid}_${dbCounter}`;
  const r = spawnSync('psql', [dbUrl, '-qAt', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`createdb: ${r.stderr}`);
  return dbUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`);
}

/** One value from psql. */
function sql(url, query) {
  const r = spawnSync('psql', [url, '-qAt', '-c', query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * A round-robin HTTP load balancer on @port: each request goes to the next
 * upstream; an upstream that refuses the connection is skipped (as a load
 * balancer's health check would). Counts what each upstream answered.
 */
async function startBalancer(port, upstreams) {
  const served = upstreams.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const tryUpstream = (tries) => {
        if (tries >= upstreams.length) {
          res.writeHead(502);
          res.end();
          return;
        }
        const i = next % upstreams.length;
        next += 1;
        const u = new URL(upstreams[i]());
        const p = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.url,
          headers: req.headers }, (up) => {
          served[i] += 1;
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        });
        p.on('error', () => tryUpstream(tries + 1));
        p.end(body);
      };
      tryUpstream(0);
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    served,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

/** Mock + N serve instances on one database, behind a balancer on CALLBACK_DOMAIN's port. */
async function startCluster(instances, extraEnv = {}) {
  const tmp = tempDir();
  const url = freshDb();
  const mock = await startMock(['--listen', '127.0.0.1:0', '--token', TOKEN]);
  const lbPort = await closedPort();
  const env = baseEnv(tmp.dir, {
    DATABASE_URL: url,
    CALLBACK_DOMAIN: `http://127.0.0.1:${lbPort}`,
    TRELLO_API_URL: mock.url,
    TRELLO_API_KEY: mock.key,
    TRELLO_API_SECRET: mock.secret,
    ...extraEnv,
  });
  // the balancer binds first; each instance takes a port only once the
  // previous one is listening (so no two can be handed the same free port)
  const serves = [];
  const ports = [];
  const lb = await startBalancer(lbPort, Array.from({ length: instances }, (_, i) => () => `http://127.0.0.1:${ports[i]}`));
  for (let i = 0; i < instances; i++) {
    ports.push(await closedPort());
    serves.push(await startServe(env, ['--listen', `127.0.0.1:${ports[i]}`]));
  }
  const board = await newBoard(mock);
  return {
    tmp, url, mock, env, serves, ports, lb, board,
    async stop() {
      await lb.close();
      for (const s of serves) await s.stop('SIGKILL');
      await mock.stop();
      tmp.cleanup();
    },
  };
}

/** Register a webhook: the real `webhook add` when it exists, else a row by psql. */
async function addWebhook(c) {
  const r = await thAsync(c.env, ['webhook', 'add', '--model', c.board.id, '--token', TOKEN, '--json']);
  if (r.code === 0) return JSON.parse(r.stdout);
  console.error(`pg.test: webhook add failed (${r.code}): ${r.stderr}; inserting the row with psql`);
  const id = 'pgE2eWebhook00000001';
  const cb = `${c.env.CALLBACK_DOMAIN}/callbacks/${id}`;
  sql(c.url, `INSERT INTO webhooks (id, id_model, callback_url, token, state, active, created_at)
    VALUES ('${id}', '${c.board.id}', '${cb}', '${TOKEN}', 'active', true, 1)`);
  return { id, callback_url: cb, registered_with_trello: false };
}

test('receive path on PostgreSQL: signed deliveries stored exactly once, byte for byte', { skip: pgSkip }, async () => {
  needPg();
  const c = await startCluster(1);
  try {
    const wh = await addWebhook(c);
    assert.ok(wh.callback_url.startsWith(c.env.CALLBACK_DOMAIN));
    // a signed POST, then the very same body again: 200 twice, one row
    const body = JSON.stringify({
      model: { id: c.board.id, name: c.board.name },
      action: { id: '6a00000000000000000000a1', type: 'commentCard', date: '2026-11-20T10:41:34.244Z',
        data: { board: { id: c.board.id, name: 'Röadmap ✓' }, card: { id: '6a00000000000000000000c1', name: 'Ship <it>' }, text: 'hi \\ there 🚀 <b>' },
        memberCreator: { id: '5e3b1c9f8a7d6e5f4a3b2c1d', fullName: 'Zoë Ångström', username: 'zoe' } },
    });
    const sig = trelloSignature(c.env.TRELLO_API_SECRET, body, wh.callback_url);
    for (let i = 0; i < 2; i++) {
      const r = await fetch(wh.callback_url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-trello-webhook': sig } });
      assert.equal(r.status, 200, await r.text());
    }
    // a bad signature is refused and not stored
    const bad = await fetch(wh.callback_url, { method: 'POST', body: body.replace('hi', 'ho'), headers: { 'x-trello-webhook': sig } });
    assert.equal(bad.status, 401);
    assert.equal(sql(c.url, `SELECT count(*) FROM events WHERE action_id = '6a00000000000000000000a1'`), '1');
    assert.equal(sql(c.url, 'SELECT count(*) FROM events'), '1');
    // the payload is the body exactly as received
    const hex = sql(c.url, `SELECT encode(payload, 'hex') FROM events WHERE action_id = '6a00000000000000000000a1'`);
    assert.equal(Buffer.from(hex, 'hex').toString('utf8'), body);
    // and the CLI reads it back through the PostgreSQL store
    const ls = thJson(c.env, ['events', 'ls', '--limit', '10']);
    assert.equal(ls.length, 1);
    assert.equal(ls[0].action_id, '6a00000000000000000000a1');
    const shown = thJson(c.env, ['events', 'show', ls[0].id]);
    assert.equal(shown.payload, body);
  } finally {
    await c.stop();
  }
});

test('two instances on one PostgreSQL: after webhook rm neither stores a POST (410/404 at once)', { skip: pgSkip }, async () => {
  needPg();
  // no health pass: it would finish the pending removal itself (then 404)
  const c = await startCluster(2, { TRELLOHOOK_HEALTH_INTERVAL: '0' });
  try {
    const wh = await addWebhook(c);
    let n = 0;
    /** A fresh signed delivery straight to instance @i (not through the balancer). */
    const postTo = async (i) => {
      n += 1;
      const actionId = (0x6b0000000000 + n).toString(16).padStart(24, '0');
      const body = JSON.stringify({ model: { id: c.board.id }, action: { id: actionId, type: 'commentCard', data: { text: `n${n}` } } });
      const url = wh.callback_url.replace(c.env.CALLBACK_DOMAIN, `http://127.0.0.1:${c.ports[i]}`);
      const r = await fetch(url, { method: 'POST', body, headers: { 'x-trello-webhook': trelloSignature(c.env.TRELLO_API_SECRET, body, wh.callback_url) } });
      return { status: r.status, stored: () => sql(c.url, `SELECT count(*) FROM events WHERE action_id = '${actionId}'`) };
    };
    // both instances have it cached as active
    for (const i of [0, 1]) assert.equal((await postTo(i)).status, 200);
    // rm from a third process while Trello is unreachable: marked removing
    const down = await thAsync({ ...c.env, TRELLO_API_URL: 'http://127.0.0.1:9/1' }, ['webhook', 'rm', wh.id]);
    assert.equal(down.code, 1, down.stderr);
    assert.equal(sql(c.url, `SELECT state FROM webhooks WHERE id = '${wh.id}'`), 'removing');
    for (const i of [0, 1]) {
      const r = await postTo(i);
      assert.equal(r.status, 410, `instance ${i}`);
      assert.equal(r.stored(), '0', `instance ${i} stored an event after rm`);
    }
    // Trello reachable again: rm finishes, the row is gone
    const rm = await thAsync(c.env, ['webhook', 'rm', wh.id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(sql(c.url, `SELECT count(*) FROM webhooks WHERE id = '${wh.id}'`), '0');
    for (const i of [0, 1]) {
      const r = await postTo(i);
      assert.ok([404, 410].includes(r.status), `instance ${i}: ${r.status}`);
      assert.equal(r.stored(), '0', `instance ${i} stored an event after rm`);
    }
    assert.equal(sql(c.url, `SELECT count(*) FROM events WHERE webhook_id = '${wh.id}'`), '2');
  } finally {
    await c.stop();
  }
});

test('two instances on one PostgreSQL: spread, stored once, SIGKILL loses nothing', { skip: pgSkip }, async () => {
  needPg();
  const recv = await startReceiver(() => 200);
  const c = await startCluster(2, { TRELLOHOOK_HANDLER_TIMEOUT: '2s' });
  try {
    const wh = await addWebhook(c);
    // a forward handler, when handlers exist: then every event must be forwarded exactly once
    const h = await thAsync(c.env, ['handler', 'add', '--forward', `${recv.base}/hook`, '--json']);
    const haveHandlers = h.code === 0;
    const card = c.board.cards?.[0];
    const idModel = card ? card.id : c.board.id;
    const acted = [];
    const act = async (text) => {
      const r = await control(c.mock, 'POST', '/_mock/actions', { wait: true, type: 'commentCard', idModel, text });
      assert.equal(r.deliveries, 1, 'trello-mock delivered the action');
      acted.push(r.action.id);
      return r;
    };
    for (let i = 0; i < 20; i++) await act(`before ${i}`);
    // both instances took deliveries
    assert.ok(c.lb.served[0] > 0 && c.lb.served[1] > 0, `spread: ${c.lb.served}`);
    // the same body straight to both instances: still one row
    const dupBody = JSON.stringify({ model: { id: c.board.id }, action: { id: '6b00000000000000000000d1', type: 'commentCard', data: { board: { id: c.board.id } } } });
    const sig = trelloSignature(c.env.TRELLO_API_SECRET, dupBody, wh.callback_url);
    const cbPath = new URL(wh.callback_url).pathname;
    const answers = await Promise.all(c.ports.map((p) => fetch(`http://127.0.0.1:${p}${cbPath}`, { method: 'POST', body: dupBody, headers: { 'x-trello-webhook': sig } })));
    assert.deepEqual(answers.map((a) => a.status), [200, 200]);
    acted.push('6b00000000000000000000d1');

    // let the dispatchers drain, so no delivery is in flight when one instance dies
    // (a delivery running at the kill would run again after its lease: at least once)
    if (haveHandlers) {
      await recv.until((reqs) => reqs.filter((q) => q.method === 'POST').length >= acted.length, 30000);
      for (let i = 0; i < 100 && sql(c.url, "SELECT count(*) FROM deliveries WHERE status <> 'done'") !== '0'; i++) await sleep(100);
    }
    // kill one instance hard; the balancer skips it; nothing is lost
    await c.serves[0].stop('SIGKILL');
    for (let i = 0; i < 10; i++) await act(`after ${i}`);
    const deliveries = await control(c.mock, 'GET', '/_mock/deliveries');
    const failed = deliveries.filter((d) => acted.includes(d.action_id) && d.status !== 200);
    assert.deepEqual(failed, [], 'every delivery answered 200');

    const rows = sql(c.url, 'SELECT action_id, count(*) FROM events GROUP BY action_id ORDER BY 1').split('\n').filter(Boolean);
    assert.equal(rows.length, acted.length, 'every acted event stored');
    for (const row of rows) assert.match(row, /\|1$/, `stored once: ${row}`);
    assert.deepEqual(rows.map((r) => r.split('|')[0]).sort(), [...acted].sort());

    if (haveHandlers) {
      // the surviving instance (and the killed one before it died) forward each event once
      await recv.until((reqs) => reqs.filter((q) => q.method === 'POST').length >= acted.length, 30000);
      await sleep(500);
      const bodies = recv.posts().map((q) => q.body.toString());
      assert.equal(bodies.length, acted.length, 'each event forwarded once');
      for (const id of acted) assert.equal(bodies.filter((b) => b.includes(id)).length, 1, `forwarded once: ${id}`);
      assert.equal(sql(c.url, "SELECT count(*) FROM deliveries WHERE status <> 'done'"), '0');
      assert.equal(sql(c.url, 'SELECT count(*) FROM deliveries WHERE attempts > 1'), '0');
    } else {
      console.error('pg.test: `trellohook handler add` is not available yet; the dispatch half of the two-instance test did not run');
    }
  } finally {
    await c.stop();
    await recv.close();
  }
});
