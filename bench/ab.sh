#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interleaved A/B of trellohook builds on ingest (issue 18), for a machine whose
# load and disk change from minute to minute: every round runs, in this order,
#   - nginx `return 200` (the machine's ceiling right now),
#   - bench/bare_writer.c on each store the runs use (the disk's ceiling right now),
#   - every entry of RUNS, each on a fresh copy of the same store,
# so each trellohook figure has the ceilings of the same minute beside it.
# Every run gets the same distinct signed ~3 KB deliveries (one webhook, made
# once in a template store and copied, so the payloads are generated once), a
# saturated wrk run (CONNS connections), then a paced one (each connection
# pausing PACE_MS after every answer) with deliveries the first did not send.
#
# usage: RUNS='base=/tmp/base/build/trellohook@sqlite new=build/trellohook@sqlite' bench/ab.sh
#        (ROUNDS=3 DURATION=5 CONNS=32 THREADS=2 PER_THREAD=60000 PACE_MS=5 BARE_BATCH=32
#         TEMPLATE_BIN=the oldest binary of RUNS when their schema versions differ)
#        an entry is LABEL=BINARY@STORE, STORE sqlite or pg (a cluster from scripts/pg.sh).
#        PG_STATS=DIR: the cluster also loads pg_stat_statements and logs checkpoints,
#        autovacuum, lock waits and statements over 20 ms; after each pg run DIR gets
#        ROUND-LABEL.txt: statements by server time (with their WAL), WAL and checkpoint
#        counters, the tables' inserts/updates (HOT)/autovacuums, what the backends waited
#        on (pg_stat_activity sampled every 20 ms) and the server log of the run. These
#        settings cost the server some CPU: compare runs of the same setting.
# Prints one markdown row per run: the 1-minute load average when it started, events/s,
# p50/p99, nginx and bare writer of the round and the ratios, the paced figures, stored
# vs answered 200, peak and idle RSS. Not a test: nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PER_THREAD=${PER_THREAD:-60000}
PACE_MS=${PACE_MS:-5}
BARE_BATCH=${BARE_BATCH:-32}
RUNS=${RUNS:?set RUNS, e.g. RUNS='a=/path/trellohook@sqlite b=build/trellohook@sqlite'}
scripts/deps.sh wrk nginx-light sqlite3 bc nodejs >/dev/null
[ -x build/trellohook ] || make build >/dev/null
want_pg=0
for e in $RUNS; do
	bin=${e#*=}; bin=${bin%@*}
	[ -x "$bin" ] || { echo "bench: $bin (in RUNS) is not an executable" >&2; exit 2; }
	case ${e##*@} in sqlite) ;; pg) want_pg=1 ;; *) echo "bench: store of '$e' is not sqlite or pg" >&2; exit 2 ;; esac
done

tmp=$(mktemp -d /tmp/th-ab.XXXXXX)
pgdir=$(mktemp -d /tmp/th-ab-pg.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "$want_pg" = 1 ] && scripts/pg.sh stop "$pgdir" >/dev/null 2>&1
	rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT
cc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE bench/bare_writer.c -o "$tmp/bare_writer" \
	$(pkg-config --cflags --libs sqlite3 liblz4 libpq) ||
	{ echo "bench: could not build bench/bare_writer.c (needs libsqlite3-dev, liblz4-dev, libpq-dev)" >&2; exit 1; }

. bench/lib.sh
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
ms() { echo "$1" | awk '{ printf "%.2f", $1 / 1000 }'; }
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.3f", $1 / $2; else print "-" }'; }
per_event() { echo "$1 $2 $hz" | awk '{ if ($2 > 0) printf "%.0f", $1 * 1e6 / $3 / $2; else print "-" }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

start_mock
board_id=$(mock_board)
th_port=$(free_port) # every serve listens here: the callback URL (signed over) stays the same
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" \
       TRELLOHOOK_LOG_LEVEL=warn CALLBACK_DOMAIN="http://127.0.0.1:$th_port" \
       TRELLOHOOK_LISTEN="127.0.0.1:$th_port"

serve_pid=
start_serve() { # binary DATABASE_URL log
	DATABASE_URL="$2" "$1" serve >/dev/null 2>"$3" &
	serve_pid=$!
	pids+=($serve_pid)
	wait_http "http://127.0.0.1:$th_port/healthz"
}
stop_serve() { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; }

# --- the template stores: one webhook (Trello's HEAD check needs a serve up) ---------------
pg_url=
if [ -n "${PG_STATS:-}" ]; then
	mkdir -p "$PG_STATS"
	export PG_SERVER_OPTS="${PG_SERVER_OPTS:-} -c shared_preload_libraries=pg_stat_statements -c log_checkpoints=on -c log_autovacuum_min_duration=0 -c log_lock_waits=on -c log_min_duration_statement=20 -c track_io_timing=on -c track_wal_io_timing=on -c pg_stat_statements.track_planning=on -c log_parameter_max_length=0"
fi
# A server that has run for a while recycles its old WAL segments; a fresh one
# creates (zero-fills and fsyncs) a 16 MB segment inside whichever COMMIT needs
# it, ~50 ms here, and the warm-up below alone does not keep them: its
# CHECKPOINT removes the segments beyond min_wal_size (80 MB by default), fewer
# than one round writes (~2.3 KB of WAL an event). That stall was the paced p99
# of every first PostgreSQL round (31-44 ms, the later rounds 2.6-4 ms); with
# the segments kept, round 1 is like the others (bench/RESULTS.md, session 11).
export PG_SERVER_OPTS="-c min_wal_size=2GB ${PG_SERVER_OPTS:-}"
[ "$want_pg" = 1 ] && pg_url=$(scripts/pg.sh start "$pgdir")
psqlq() { PGOPTIONS='-c client_min_messages=warning' psql "$pg_url" -qAt -c "$1" >/dev/null; }
[ -n "${PG_STATS:-}" ] && [ "$want_pg" = 1 ] && psqlq "CREATE EXTENSION pg_stat_statements"
# A fresh cluster has one WAL segment: every 16 MB of WAL the backend that needs the next
# one creates it (zero-fills and fsyncs it) inside a COMMIT, ~50 ms here, which made the
# first round's PostgreSQL p99 ~50 ms and the later ones 5-14 ms. A server that has run
# for a while recycles its old segments at each checkpoint instead, and its shared
# buffers are all touched (a fresh one page-faults them in as it goes). So: ~800 MB of
# WAL through shared buffers, then a checkpoint, which leaves those segments for reuse.
# A round writes ~520 MB before its paced run ends (the bare writer's 100k events, then
# serve's saturated and paced runs, ~2.3 KB each): with 400 MB the first round ran out
# and its paced p99 was 30-40 ms again (session 19).
if [ "$want_pg" = 1 ]; then
	psqlq "CREATE TABLE ab_warm (pad text)"
	psqlq "ALTER TABLE ab_warm ALTER pad SET STORAGE PLAIN" # not compressed: 2 KB of WAL a row
	psqlq "INSERT INTO ab_warm SELECT repeat('x', 2000) FROM generate_series(1, 400000)"
	psqlq "DROP TABLE ab_warm"
	psqlq "CHECKPOINT"
fi
pg_stats_reset() {
	psqlq "SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal'), pg_stat_reset_shared('bgwriter')"
	log_from=$(stat -c %s "$pgdir/server.log")
	# one session, so the sampling costs no connection per sample
	printf '%s \\watch 0.02\n' "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-'), left(regexp_replace(query, '\s+', ' ', 'g'), 40) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'" |
		psql "$pg_url" -qAt -F ' ' >"$tmp/activity.txt" 2>/dev/null &
	sampler=$!
}
pg_stats_dump() { # file, stored events, database url
	kill "$sampler"; wait "$sampler" 2>/dev/null || true
	{
		echo "## statements (stored: $2 events)"
		# the chunk statements (one per size of chunk) as one line
		psql "$pg_url" -qA -F ' | ' -c "WITH q AS (SELECT CASE WHEN query LIKE 'WITH ins AS (INSERT INTO events%' THEN 'WITH ins AS (INSERT INTO events ... (every size)' ELSE left(regexp_replace(query, '\s+', ' ', 'g'), 70) END AS kind, * FROM pg_stat_statements) SELECT sum(calls) AS calls, sum(plans) AS plans, round(sum(total_exec_time)::numeric, 1) AS total_ms, round((sum(total_exec_time) * 1000 / greatest($2, 1))::numeric, 1) AS us_per_event, round((sum(total_plan_time) * 1000 / greatest($2, 1))::numeric, 1) AS plan_us_per_event, round(max(max_exec_time)::numeric, 1) AS max_ms, sum(rows) AS rows, sum(wal_records) AS wal_records, sum(wal_fpi) AS wal_fpi, round(sum(wal_bytes)::numeric / greatest($2, 1)) AS wal_b_per_event, sum(shared_blks_hit) AS blks_hit, sum(shared_blks_read) AS blks_read, sum(shared_blks_dirtied) AS blks_dirtied, sum(shared_blks_written) AS blks_written, kind AS query FROM q GROUP BY kind ORDER BY 3 DESC LIMIT 12"
		echo "## WAL"
		psql "$pg_url" -qA -F ' | ' -c "SELECT wal_records, wal_fpi, wal_bytes, round(wal_bytes::numeric / greatest($2, 1)) AS bytes_per_event, wal_buffers_full, wal_write, wal_sync, round(wal_write_time::numeric, 1) AS write_ms, round(wal_sync_time::numeric, 1) AS sync_ms FROM pg_stat_wal"
		psql "$pg_url" -qA -F ' | ' -c "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend, buffers_backend_fsync FROM pg_stat_bgwriter"
		echo "## tables"
		psql "$3" -qA -F ' | ' -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count, autoanalyze_count, pg_size_pretty(pg_total_relation_size(relid)) AS size FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname"
		echo "## backends: active samples by wait (every 20 ms)"
		sort "$tmp/activity.txt" | uniq -c | sort -rn | head -20
		echo "## server log"
		tail -c +"$((log_from + 1))" "$pgdir/server.log"
	} >"$1" 2>&1
}
# CPU ticks (user + system) of a process, or (tree) of the PostgreSQL cluster:
# the postmaster, its live children and the backends it has reaped
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pg_ticks() {
	[ "$want_pg" = 1 ] || { echo 0; return; }
	local pm t c
	pm=$(head -1 "$pgdir/data/postmaster.pid")
	t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
	for c in $(ps --ppid "$pm" -o pid=); do t=$((t + $(ticks "$c" 2>/dev/null || echo 0))); done
	echo "$t"
}
hz=$(getconf CLK_TCK)
# The templates are made by TEMPLATE_BIN: with builds of different schema versions in RUNS,
# the oldest (a binary refuses a store newer than itself; a newer one migrates it at open).
TEMPLATE_BIN=${TEMPLATE_BIN:-build/trellohook}
add_webhook() { # DATABASE_URL -> callback URL
	start_serve "$TEMPLATE_BIN" "$1" "$tmp/template.log"
	DATABASE_URL="$1" "$TEMPLATE_BIN" webhook add --model "$board_id" --token "$token" --json |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))'
	stop_serve
}
callback=$(add_webhook "sqlite:$tmp/template.db")
sqlite3 "$tmp/template.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
if [ "$want_pg" = 1 ]; then
	psqlq "CREATE DATABASE ab_template"
	pg_cb=$(add_webhook "${pg_url%/*}/ab_template")
	# the same webhook id (and callback URL) as the SQLite template's, so one payload set serves both
	psql "${pg_url%/*}/ab_template" -qAt -v ON_ERROR_STOP=1 \
		-c "UPDATE webhooks SET id = '${callback##*/}', callback_url = '$callback' WHERE callback_url = '$pg_cb'" \
		>/dev/null
fi
node bench/gen-payloads.mjs "$callback" "$secret" "$PER_THREAD" "$THREADS" "$tmp" 2>/dev/null
sync # the payload files' dirty pages now, not in the middle of a run (see ingest.sh)
head -1 "$tmp/payloads-0.txt" | cut -f2- | tr -d '\n' >"$tmp/one.json"

# --- nginx ------------------------------------------------------------------------------
ng_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx;
  client_body_buffer_size 16k;
  server { listen 127.0.0.1:$ng_port; location / { return 200; } }
}
NGINX
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' &
pids+=($!)
wait_http "http://127.0.0.1:$ng_port/"

run_wrk() { # url [extra env] -> RESULT line
	env PAYLOAD_DIR="$tmp" "${@:2}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
		-s bench/post.lua "$1" 2>&1 | grep '^RESULT'
}
# the paced run starts past the furthest line a thread of the saturated run
# reached in its file (post.lua's last=): threads send unevenly, and a fixed
# start re-sent deliveries on a fast day (duplicates: 200s that store nothing)
paced_env() { echo PACE_MS="$PACE_MS" PAYLOAD_START="$(field last "$1")"; }

bare() { # store -> rate
	local url r
	if [ "$1" = sqlite ]; then
		rm -f "$tmp"/bare.db*
		url="sqlite:$tmp/bare.db"
	else
		psqlq "DROP DATABASE IF EXISTS ab_bare"
		psqlq "CREATE DATABASE ab_bare"
		url="${pg_url%/*}/ab_bare"
	fi
	DATABASE_URL="$url" build/trellohook migrate >/dev/null
	r=$("$tmp/bare_writer" "$url" "$tmp/one.json" "$DURATION" "$BARE_BATCH")
	field rate "$r"
}

echo "bench: rounds=$ROUNDS wrk -t$THREADS -c$CONNS -d${DURATION}s, paced ${PACE_MS} ms; load at start: $(cat /proc/loadavg)" >&2
echo "| round | run | store | load | events/s | p50 ms | p99 ms | nginx | /nginx | bare | /bare | paced/s | paced p50 | paced p99 | nginx paced p99 | stored / 200s | peak RSS MiB | idle RSS MiB | serve CPU µs/event | PG CPU µs/event |"
echo "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
	r_ng=$(run_wrk "http://127.0.0.1:$ng_port/")
	p_ng=$(run_wrk "http://127.0.0.1:$ng_port/" PACE_MS="$PACE_MS")
	ng=$(field rps "$r_ng")
	declare -A bare_rate=()
	for s in sqlite pg; do
		[ "$s" = pg ] && [ "$want_pg" = 0 ] && continue
		grep -q "@$s" <<<"$RUNS" && bare_rate[$s]=$(bare "$s")
	done
	for e in $RUNS; do
		label=${e%%=*}; bin=${e#*=}; bin=${bin%@*}; store=${e##*@}
		if [ "$store" = sqlite ]; then
			rm -f "$tmp"/run.db*
			sqlite3 "$tmp/template.db" ".backup '$tmp/run.db'"
			url="sqlite:$tmp/run.db"
		else
			psqlq "DROP DATABASE IF EXISTS ab_run"
			psqlq "CREATE DATABASE ab_run TEMPLATE ab_template"
			url="${pg_url%/*}/ab_run"
		fi
		ld=$(load1)
		[ -n "${PG_STATS:-}" ] && [ "$store" = pg ] && pg_stats_reset
		pg0=$(pg_ticks)
		start_serve "$bin" "$url" "$tmp/serve-$label.log"
		sleep 1
		idle=$(rss_kb "$serve_pid")
		r=$(run_wrk "$callback")
		# shellcheck disable=SC2046
		p=$(run_wrk "$callback" $(paced_env "$r"))
		peak=$(hwm_kb "$serve_pid")
		cpu=$(ticks "$serve_pid")
		stop_serve
		sleep 0.3 # the backends exit and are reaped
		pgcpu=$(($(pg_ticks) - pg0))
		if [ "$store" = sqlite ]; then
			stored=$(sqlite3 "$tmp/run.db" 'SELECT count(*) FROM events')
		else
			stored=$(psql "$url" -qAt -c 'SELECT count(*) FROM events')
		fi
		[ -n "${PG_STATS:-}" ] && [ "$store" = pg ] && pg_stats_dump "$PG_STATS/$round-$label.txt" "$stored" "$url"
		ok=$(($(field requests "$r") - $(field non2xx "$r") + $(field requests "$p") - $(field non2xx "$p")))
		rps=$(field rps "$r")
		# more 200s than stored events: wrk ran out of distinct deliveries and sent
		# some again (answered 200 as duplicates), so events/s overstates stores
		[ "$ok" -le "$stored" ] || echo "bench: $label@$store answered $((ok - stored)) more 200s than it stored: the distinct deliveries ran out and wrk resent some (duplicates); raise PER_THREAD (now $PER_THREAD)" >&2
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %.1f | %.2f | %s | %s |\n' \
			"$round" "$label" "$store" "$ld" "$rps" "$(ms "$(field p50_us "$r")")" "$(ms "$(field p99_us "$r")")" \
			"$ng" "$(ratio "$rps" "$ng")" "${bare_rate[$store]}" "$(ratio "$rps" "${bare_rate[$store]}")" \
			"$(field rps "$p")" "$(ms "$(field p50_us "$p")")" "$(ms "$(field p99_us "$p")")" \
			"$(ms "$(field p99_us "$p_ng")")" "$stored" "$ok" \
			"$(echo "$peak / 1024" | bc -l)" "$(echo "$idle / 1024" | bc -l)" \
			"$(per_event "$cpu" "$stored")" "$([ "$store" = pg ] && per_event "$pgcpu" "$stored" || echo -)"
	done
done
echo "bench: load at the end: $(cat /proc/loadavg)" >&2
