#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ingest benchmark (issue 4): wrk posts distinct, correctly signed ~3 KB Trello
# deliveries over 32 keep-alive connections to
#   - trellohook serve (SQLite, WAL, synchronous=FULL: every 200 is on disk),
#   - nginx answering `return 200` (the ceiling of this machine),
#   - webhook (adnanh/webhook), a peer that stores nothing,
# all in the same run, and prints events/s, p50/p99 latency, RSS and ratios.
#
# Beside them, the ceiling of this disk on this day: bench/bare_writer.c (built
# here, not by the product) inserts batches of 32 of the same ~3 KB events into
# a database of trellohook's schema, WAL + synchronous=FULL, for the same
# duration, with nothing else in the way; trellohook's rate is printed as a
# fraction of it beside the nginx ratio, so a slow-disk day is told apart from
# a slow trellohook.
#
# Then, below saturation, trellohook and nginx again with each connection
# pausing PACE_MS after every answer, and the RSS of trellohook's libraries
# alone (bench/rss_floor.c) as the floor under its idle RSS, and trellohook's
# own share of it mapping by mapping (bench/rss_share.mjs).
#
# usage: bench/ingest.sh  (DURATION=5 CONNS=32 THREADS=2 PER_THREAD=100000 PACE_MS=5 BARE_BATCH=32)
# Not a test: nothing here asserts a speed. Results go to bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PER_THREAD=${PER_THREAD:-100000}
scripts/deps.sh wrk nginx-light webhook sqlite3 bc nodejs >/dev/null
[ -x build/trellohook ] || make build >/dev/null

tmp=$(mktemp -d /tmp/th-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
BARE_BATCH=${BARE_BATCH:-32}
cc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE bench/bare_writer.c -o "$tmp/bare_writer" \
	$(pkg-config --cflags --libs sqlite3 liblz4 libpq) ||
	{ echo "bench: could not build bench/bare_writer.c (needs libsqlite3-dev, liblz4-dev, libpq-dev)" >&2; exit 1; }

. bench/lib.sh
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# --- trello-mock and trellohook --------------------------------------------------
start_mock
th_port=$(free_port)
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" \
       CALLBACK_DOMAIN="http://127.0.0.1:$th_port" DATABASE_URL="sqlite:$tmp/bench.db" \
       TRELLOHOOK_LISTEN="127.0.0.1:$th_port" TRELLOHOOK_LOG_LEVEL=warn
build/trellohook serve >"$tmp/serve.out" 2>"$tmp/serve.log" &
th_pid=$!
pids+=($th_pid)
wait_http "http://127.0.0.1:$th_port/healthz"
board_id=$(mock_board)
callback=$(build/trellohook webhook add --model "$board_id" --token "$token" --json |
           node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))')
node bench/gen-payloads.mjs "$callback" "$secret" "$PER_THREAD" "$THREADS" "$tmp"
# The payload files are ~500 MB of dirty page cache; without this the kernel
# writes them back ~30 s later, in the middle of a run, and every fdatasync
# waits behind it (seen as 130-190 ms commits).
sync
sleep 1
th_idle=$(rss_kb $th_pid)
cp "/proc/$th_pid/smaps" "$tmp/serve.smaps"

# --- nginx (return 200) and webhook --------------------------------------------------
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
ng_pid=$!
pids+=($ng_pid)
wh_port=$(free_port)
cat >"$tmp/hooks.json" <<HOOKS
[{"id": "trello", "execute-command": "/bin/true", "http-methods": ["POST"]}]
HOOKS
webhook -hooks "$tmp/hooks.json" -ip 127.0.0.1 -port "$wh_port" >"$tmp/webhook.log" 2>&1 &
wh_pid=$!
pids+=($wh_pid)
wait_http "http://127.0.0.1:$ng_port/"
sleep 0.5
ng_idle=$(rss_kb $ng_pid)
wh_idle=$(rss_kb $wh_pid)

run_wrk() { # url -> RESULT line
	PAYLOAD_DIR="$tmp" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/post.lua "$1" 2>&1 | grep '^RESULT'
}

echo "bench: wrk -t$THREADS -c$CONNS -d${DURATION}s, distinct signed payloads of ~3 KB" >&2
r_th=$(run_wrk "$callback")
r_ng=$(run_wrk "http://127.0.0.1:$ng_port/")
# the bare writer, same duration, same payload size, its own database of our schema
head -1 "$tmp/payloads-0.txt" | cut -f2- | tr -d '\n' >"$tmp/one.json"
DATABASE_URL="sqlite:$tmp/bare.db" build/trellohook migrate >/dev/null
r_bare=$("$tmp/bare_writer" "sqlite:$tmp/bare.db" "$tmp/one.json" "$DURATION" "$BARE_BATCH")
rm -f "$tmp"/bare.db*

# --- latency below saturation -------------------------------------------------------------
# Above, every server is driven as fast as it goes, so latency there is mostly
# queueing behind 32 busy connections on a machine whose two CPUs also run wrk.
# Here each connection waits PACE_MS after every answer (at most 32/PACE_MS
# requests per ms offered), with deliveries the first run did not send: from
# past the furthest line a thread of that run reached in its file (a fast
# day's first run went past a fixed 60%, and the paced run then re-sent
# some: 200s for duplicates, which store nothing).
PACE_MS=${PACE_MS:-5}
sent_per_thread=$(field last "$r_th")
paced() { PACE_MS=$PACE_MS PAYLOAD_START=$sent_per_thread run_wrk "$1"; }
p_th=$(paced "$callback")
p_ng=$(paced "http://127.0.0.1:$ng_port/")
# webhook last: it goes on running queued commands after wrk stops
r_wh=$(run_wrk "http://127.0.0.1:$wh_port/hooks/trello")
th_peak=$(hwm_kb $th_pid)
stored=$(sqlite3 "$tmp/bench.db" 'SELECT count(*) FROM events')

printf '%-22s %10s %9s %9s %10s %10s %8s\n' server 'req/s' 'p50 ms' 'p99 ms' 'idle RSS' 'peak RSS' non-2xx
line() { printf '%-22s %10s %9.2f %9.2f %8s K %8s K %8s\n' "$1" "$(field rps "$2")" \
	"$(echo "$(field p50_us "$2") / 1000" | bc -l)" "$(echo "$(field p99_us "$2") / 1000" | bc -l)" "$3" "$4" "$(field non2xx "$2")"; }
line "trellohook (SQLite)" "$r_th" "$th_idle" "$th_peak"
line "nginx return 200" "$r_ng" "$ng_idle" "$(hwm_kb $ng_pid)"
line "webhook (adnanh)" "$r_wh" "$wh_idle" "$(hwm_kb $wh_pid)"
th_rps=$(field rps "$r_th"); ng_rps=$(field rps "$r_ng"); wh_rps=$(field rps "$r_wh")
th_ok=$(($(field requests "$r_th") - $(field non2xx "$r_th") + $(field requests "$p_th") - $(field non2xx "$p_th")))
echo
bare_rps=$(field rate "$r_bare")
printf 'trellohook / nginx   = %.3f    trellohook / bare SQLite writer = %.3f\n' \
	"$(echo "$th_rps / $ng_rps" | bc -l)" "$(echo "$th_rps / $bare_rps" | bc -l)"
printf 'bare SQLite writer (bench/bare_writer.c, WAL, synchronous=FULL, batches of %s): %s events/s, batch p50 %s ms, p99 %s ms\n' \
	"$BARE_BATCH" "$bare_rps" "$(field batch_p50_ms "$r_bare")" "$(field batch_p99_ms "$r_bare")"
printf 'trellohook / webhook = %.3f\n' "$(echo "$th_rps / $wh_rps" | bc -l)"
echo "events stored: $stored; answered 200 (both trellohook runs): $th_ok (distinct payloads available: $((PER_THREAD * THREADS)))"
if [ "$(field wrapped "$r_th")" != 0 ] || [ "$(field wrapped "$p_th")" != 0 ]; then
	echo "bench: the paced run ran out of fresh payloads and re-sent some (raise PER_THREAD): stored and answered cannot be compared" >&2
elif [ "$stored" -lt "$th_ok" ]; then
	echo "bench: $th_ok answered 200 but only $stored stored" >&2
else
	# requests in flight when wrk stopped are stored, their answers not counted
	echo "every 200 was stored ($((stored - th_ok)) more stored: requests in flight when wrk stopped)"
fi

echo
echo "paced: each of $CONNS connections waits ${PACE_MS} ms after every answer"
printf '%-22s %10s %9s %9s %8s\n' server 'req/s' 'p50 ms' 'p99 ms' non-2xx
pline() { printf '%-22s %10s %9.2f %9.2f %8s\n' "$1" "$(field rps "$2")" \
	"$(echo "$(field p50_us "$2") / 1000" | bc -l)" "$(echo "$(field p99_us "$2") / 1000" | bc -l)" "$(field non2xx "$2")"; }
pline "trellohook (SQLite)" "$p_th"
pline "nginx return 200" "$p_ng"

# --- the floor under serve's idle RSS: its libraries, initialised as serve does, no trellohook code
if gcc -std=c17 -O2 -D_GNU_SOURCE bench/rss_floor.c -o "$tmp/rss_floor" \
	$(pkg-config --cflags --libs libmicrohttpd libcurl jansson libcrypto libsodium sqlite3 liblz4 libpq) \
	-lpthread 2>"$tmp/rss_floor.log"; then
	floor=$(RSS_FLOOR_SMAPS="$tmp/floor.smaps" "$tmp/rss_floor" "$tmp" | awk 'END {print $(NF-1)}')
	printf 'idle RSS: trellohook %s K, its libraries alone (bench/rss_floor.c) %s K\n' "$th_idle" "$floor"
	node bench/rss_share.mjs "$tmp/serve.smaps" "$tmp/floor.smaps"
else
	echo "bench: could not build bench/rss_floor.c: $(head -3 "$tmp/rss_floor.log")" >&2
fi
