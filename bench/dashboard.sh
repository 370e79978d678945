#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dashboard benchmark (issue 19): how long the admin's chart pages take with
# a million stored events. Seeds a SQLite store of our schema quickly with
# SQL (EVENTS events over 30 days, spread over WEBHOOKS webhooks and 12
# action types, plus the hourly rollup the store keeps at ingest), starts
# `trellohook serve` on it, signs in, and times GET /admin/ (the dashboard:
# 24 hourly and 30 daily buckets) and GET /admin/webhooks (7 days of hours
# per webhook) REPS times each, printing p50/p95/max in ms.
#
# usage: bench/dashboard.sh   (EVENTS=1000000 WEBHOOKS=20 REPS=50 BIN=build/trellohook
#                              STORE=sqlite|postgresql)
# STORE=postgresql seeds the same rows with psql into a throwaway cluster
# (scripts/pg.sh) and times the queries with psql's \timing.
# BIN may be another build of trellohook (a base for an A/B); the seeding
# fills the per-webhook event counter (schema 9) only when the schema has it.
# Not a test: nothing here asserts a speed. Results go to bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
WEBHOOKS=${WEBHOOKS:-20}
REPS=${REPS:-50}
BIN=${BIN:-build/trellohook}
STORE=${STORE:-sqlite}
[ -x "$BIN" ] || make build >/dev/null
tmp=$(mktemp -d /tmp/th-bench-dash.XXXXXX)
pid= pgdir=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null || true
	[ -n "$pgdir" ] && scripts/pg.sh stop "$pgdir" >/dev/null 2>&1
	rm -rf "$tmp" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT
case $STORE in
sqlite) DATABASE_URL="sqlite:$tmp/th.db" ;;
postgresql) # the server's user must reach it: directly under /tmp
	pgdir=$(mktemp -d /tmp/th-bench-dash-pg.XXXXXX)
	DATABASE_URL=$(scripts/pg.sh start "$pgdir") ;;
*) echo "bench: STORE is sqlite or postgresql, not '$STORE'" >&2; exit 2 ;;
esac
export HOME=$tmp DATABASE_URL TRELLO_API_SECRET=bench-secret \
	TRELLOHOOK_LOG_LEVEL=warn CALLBACK_DOMAIN=http://127.0.0.1:1
printf 'bench password 1\n' | "$BIN" user add admin >/dev/null
t0=$(date +%s.%N)
now_ms=$(($(date +%s) * 1000))
seed_sqlite() {
	sqlite3 "$tmp/th.db" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO webhooks (id, id_model, model_type, model_name, callback_url, token, state, active,
                      created_at, last_event_at)
  WITH RECURSIVE w(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM w WHERE i < $WEBHOOKS)
  SELECT printf('benchwebhook%08d', i), printf('%024x', i), 'board', printf('Board %d', i),
         'http://127.0.0.1/callbacks/x', printf('plain-token-%d', i), 'active', 1, $now_ms, 0
  FROM w;
INSERT INTO events (id, webhook_id, action_id, action_type, summary, payload, received_at)
  WITH RECURSIVE e(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM e WHERE i < $EVENTS)
  SELECT printf('ev%018d', i), printf('benchwebhook%08d', 1 + i % $WEBHOOKS),
         printf('act%d', i),
         CASE i % 12 WHEN 0 THEN 'createCard' WHEN 1 THEN 'updateCard' WHEN 2 THEN 'commentCard'
           WHEN 3 THEN 'addMemberToCard' WHEN 4 THEN 'deleteCard' WHEN 5 THEN 'moveCardToBoard'
           WHEN 6 THEN 'createList' WHEN 7 THEN 'updateList' WHEN 8 THEN 'addLabelToCard'
           WHEN 9 THEN 'removeLabelFromCard' WHEN 10 THEN 'createCheckItem'
           ELSE 'updateCheckItemStateOnCard' END,
         printf('Bench card %d', i), x'7b7d',
         $now_ms - (i * 2592000000 / $EVENTS)
  FROM e;
INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)
  SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*) FROM events
  GROUP BY 1, 2, 3 ON CONFLICT (hour, webhook_id, action_type) DO UPDATE SET n = excluded.n;
UPDATE webhooks SET last_event_at = (SELECT max(received_at) FROM events
  WHERE events.webhook_id = webhooks.id);
COMMIT;
SQL
	counted=
	if sqlite3 "$tmp/th.db" "SELECT 1 FROM sqlite_master WHERE name = 'webhook_event_count'" | grep -q 1; then
		sqlite3 "$tmp/th.db" "INSERT INTO webhook_event_count (webhook_id, n)
		  SELECT webhook_id, count(*) FROM events GROUP BY webhook_id
		  ON CONFLICT (webhook_id) DO UPDATE SET n = excluded.n"
		counted=1
	fi
}
seed_pg() {
	psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 <<SQL
BEGIN;
INSERT INTO webhooks (id, id_model, model_type, model_name, callback_url, token, state, active,
                      created_at, last_event_at)
  SELECT 'benchwebhook' || lpad(i::text, 8, '0'), lpad(to_hex(i), 24, '0'), 'board',
         'Board ' || i, 'http://127.0.0.1/callbacks/x', 'plain-token-' || i, 'active', true,
         $now_ms, 0
  FROM generate_series(1, $WEBHOOKS) i;
INSERT INTO events (id, webhook_id, action_id, action_type, summary, payload, received_at)
  SELECT 'ev' || lpad(i::text, 18, '0'), 'benchwebhook' || lpad((1 + i % $WEBHOOKS)::text, 8, '0'),
         'act' || i,
         (ARRAY['createCard', 'updateCard', 'commentCard', 'addMemberToCard', 'deleteCard',
                'moveCardToBoard', 'createList', 'updateList', 'addLabelToCard',
                'removeLabelFromCard', 'createCheckItem', 'updateCheckItemStateOnCard'])[1 + i % 12],
         'Bench card ' || i, '\\x7b7d'::bytea,
         $now_ms - (i::bigint * 2592000000 / $EVENTS)
  FROM generate_series(1, $EVENTS) i;
INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)
  SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*) FROM events
  GROUP BY 1, 2, 3 ON CONFLICT (hour, webhook_id, action_type) DO UPDATE SET n = excluded.n;
INSERT INTO webhook_event_count (webhook_id, n)
  SELECT webhook_id, count(*) FROM events GROUP BY webhook_id
  ON CONFLICT (webhook_id) DO UPDATE SET n = excluded.n;
UPDATE webhooks SET last_event_at = (SELECT max(received_at) FROM events
  WHERE events.webhook_id = webhooks.id);
COMMIT;
VACUUM ANALYZE;
SQL
}
if [ "$STORE" = sqlite ]; then
	seed_sqlite
	sql() { sqlite3 "$tmp/th.db"; }
else
	seed_pg
	counted=1
	sql() { psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1; }
fi
t1=$(date +%s.%N)
rows=$(echo 'SELECT count(*) FROM events;' | sql)
rollup=$(echo 'SELECT count(*) FROM event_rollup_hour;' | sql)
echo "seeded ($STORE): $rows events, $rollup rollup rows in $(echo "$t1 - $t0" | bc) s"
# The queries behind the pages, alone (sqlite3's .timer, psql's \timing):
# the event rollup read per webhook (what the dashboard ran before) and by
# type (what it runs now; on SQLite a read of the cells in key order that
# the store sums in C, timed here without that loop) for 24 h and 30 days; the webhooks page's 7 days
# of hours per webhook; the webhook listing from its counter (schema 9); the
# dashboard's 10 recent events. Then each query's plan, for the record.
h=$((now_ms / 3600000))
roll() { # FROM TO BUCKET PER_WEBHOOK
	if [ "$4" = 1 ]; then
		echo "SELECT webhook_id, action_type, hour - hour % $3 AS b, sum(n) FROM event_rollup_hour WHERE hour >= $1 AND hour < $2 GROUP BY b, webhook_id, action_type ORDER BY b, webhook_id, action_type LIMIT 100000;"
	elif [ "$STORE" = sqlite ]; then # the cells in key order; the store sums them in C
		echo "SELECT hour, action_type, n FROM event_rollup_hour WHERE hour >= $1 AND hour < $2 ORDER BY hour;"
	else
		echo "SELECT '', action_type, hour - hour % $3 AS b, sum(n) FROM event_rollup_hour WHERE hour >= $1 AND hour < $2 GROUP BY b, action_type ORDER BY b, action_type LIMIT 100000;"
	fi
}
queries=$(
	roll $((h - 23)) $((h + 1)) 1 1
	roll $((h - 23)) $((h + 1)) 1 0
	roll $((h - h % 24 - 696)) $((h - h % 24 + 24)) 24 1
	roll $((h - h % 24 - 696)) $((h - h % 24 + 24)) 24 0
	roll $((h - 167)) $((h + 1)) 1 1
	[ -n "$counted" ] && echo "SELECT w.id, coalesce((SELECT n FROM webhook_event_count c WHERE c.webhook_id = w.id), 0) FROM webhooks w ORDER BY created_at, id;"
	echo "SELECT seq, id, webhook_id, action_type, summary, received_at FROM events ORDER BY seq DESC LIMIT 10;"
)
names='rollup 24 h, per webhook (before)|rollup 24 h, by type (now)|rollup 30 days, per webhook (before)|rollup 30 days, by type (now)|rollup 7 days of hours, per webhook (webhooks page)|webhook list from the counter (schema 9)|10 recent events'
if [ "$STORE" = sqlite ]; then
	printf '.timer on\n.output /dev/null\n%s\n' "$queries" | sql |
		awk -v names="$names" 'BEGIN {split(names, name, "|")} /Run Time/ {printf "  %s: %.1f ms\n", name[++i], $4 * 1000}'
	echo "plans:"
	echo "$queries" | sed 's/^/EXPLAIN QUERY PLAN /' | sql | sed 's/^/  /'
else
	printf '\\timing on\n\\o /dev/null\n%s\n' "$queries" | sql |
		awk -v names="$names" 'BEGIN {split(names, name, "|")} /^Time:/ {printf "  %s: %.1f ms\n", name[++i], $2}'
	echo "plans:"
	echo "$queries" | sed 's/^/EXPLAIN (ANALYZE, COSTS OFF) /' | sql | grep -v '^ *$' | sed 's/^/  /'
fi
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$BIN" serve --listen "127.0.0.1:$port" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q serving "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q serving "$tmp/serve.out" || { echo "bench: serve did not start:" >&2; cat "$tmp/serve.err" >&2; exit 1; }
BASE="http://127.0.0.1:$port" REPS=$REPS node --input-type=module <<'JS'
const base = process.env.BASE, reps = Number(process.env.REPS);
const cookieOf = (res, name) => {
  for (const c of res.headers.getSetCookie()) {
    const m = c.match(new RegExp(`^${name}=([^;]*)`));
    if (m) return m[1];
  }
  return null;
};
const page = await fetch(`${base}/admin/login`);
const lt = cookieOf(page, 'trellohook_login');
const res = await fetch(`${base}/admin/login`, {
  method: 'POST', redirect: 'manual',
  headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `trellohook_login=${lt}` },
  body: new URLSearchParams({ login_token: lt, user: 'admin', password: 'bench password 1' }),
});
const sess = cookieOf(res, 'trellohook_session');
if (!sess) throw new Error(`sign-in failed: ${res.status}`);
for (const p of ['/admin/', '/admin/webhooks']) {
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const r = await fetch(base + p, { headers: { cookie: `trellohook_session=${sess}` } });
    const body = await r.text();
    ms.push(performance.now() - t);
    if (r.status !== 200 || !body.includes('<svg')) throw new Error(`${p}: ${r.status}`);
    bytes = body.length;
  }
  ms.sort((a, b) => a - b);
  const q = (f) => ms[Math.min(ms.length - 1, Math.floor(f * ms.length))].toFixed(1);
  console.log(`GET ${p}: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${q(1)} ms (${bytes} bytes, ${reps} requests)`);
}
JS
