#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ingest A/B of the work done at ingest for the admin's charts (issue 19):
# "on" is this tree; "off" is the same tree built without the hourly event
# rollup upserts and the per-webhook event counter (migrations 7 and 9; the
# tables stay, nothing writes them). Both serve on SQLite (WAL,
# synchronous=FULL) behind the same trello-mock; wrk posts distinct signed
# ~3 KB deliveries to each, interleaved on, off, nginx, then off, on, nginx, ...
# ROUNDS times (alternating which goes first), each round with deliveries the earlier rounds did not send.
# Prints each run and the medians, with the load average before and after
# (the machine is shared: compare on/off within a round, and against nginx).
#
# usage: bench/rollup_ab.sh   (ROUNDS=3 DURATION=3 CONNS=32 THREADS=2 PER_THREAD=150000)
# Not a test: nothing here asserts a speed. Results go to bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PER_THREAD=${PER_THREAD:-150000}
scripts/deps.sh wrk nginx-light sqlite3 bc nodejs >/dev/null
[ -x build/trellohook ] || make build >/dev/null
tmp=$(mktemp -d /tmp/th-bench-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the "off" build: this tree without the ingest-time upserts -----------------------
mkdir -p "$tmp/off"
git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$tmp/off"
perl -0pi -e 's/if \(\(ret = add_rollups\(s, evs, results, n, err\)\) != 0\)/if ((ret = 0) != 0)/;
	s/,\s*\{Q_WEBHOOK_COUNT_ADD, "updating the webhook.s event count"\}\}/}/' \
	"$tmp/off/src/store/sqlite_events.c"
if grep -q 'add_rollups(s, evs' "$tmp/off/src/store/sqlite_events.c" ||
	grep -q '{Q_WEBHOOK_COUNT_ADD, "' "$tmp/off/src/store/sqlite_events.c"; then
	echo "bench: could not take the rollup writes out of the off build" >&2
	exit 1
fi
# (-Dwerror=false: add_rollups is now an unused static function)
(cd "$tmp/off" && meson setup build -Dtests=disabled -Dwerror=false >/dev/null &&
	ninja -C build trellohook >"$tmp/off-build.log" 2>&1) ||
	{ echo "bench: the off build failed:" >&2; tail -20 "$tmp/off-build.log" >&2; exit 1; }
bin_on=build/trellohook
bin_off=$tmp/off/build/trellohook

. bench/lib.sh

start_mock
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" TRELLOHOOK_LOG_LEVEL=warn

# start serve VARIANT BIN: its own port and database; sets callback_VARIANT
start() {
	local v=$1 bin=$2 port
	port=$(free_port)
	mkdir -p "$tmp/$v"
	CALLBACK_DOMAIN="http://127.0.0.1:$port" DATABASE_URL="sqlite:$tmp/$v/th.db" \
		"$bin" serve --listen "127.0.0.1:$port" >"$tmp/$v/serve.out" 2>"$tmp/$v/serve.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/healthz"
	local board_id cb
	board_id=$(mock_board)
	cb=$(CALLBACK_DOMAIN="http://127.0.0.1:$port" DATABASE_URL="sqlite:$tmp/$v/th.db" \
		"$bin" webhook add --model "$board_id" --token "$token" --json |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))')
	node bench/gen-payloads.mjs "$cb" "$secret" "$PER_THREAD" "$THREADS" "$tmp/$v"
	printf -v "callback_$v" '%s' "$cb"
}
start on "$bin_on"
start off "$bin_off"

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
sync
sleep 1

run_wrk() { # dir url start -> RESULT line
	PAYLOAD_DIR="$1" PAYLOAD_START="$3" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
		-s bench/post.lua "$2" 2>&1 | grep '^RESULT'
}
# Each variant's run starts past the furthest line its previous run reached
# in a thread's file (post.lua's last=): a run that re-sent payloads would be
# timed answering duplicates, which store nothing (with fixed chunks of
# PER_THREAD / ROUNDS, a fast day's round 1 ran into round 2's payloads, and
# rounds 2-3 read ~35% faster than round 1).
next_on=0 next_off=0 wrapped=0
on_rps=() off_rps=() ng_rps=()
printf '%-6s %-8s %10s %9s %9s %8s  %s\n' round variant 'req/s' 'p50 ms' 'p99 ms' non-2xx load
for r in $(seq 0 $((ROUNDS - 1))); do
	# ABBA: on first in odd rounds, off first in even ones (no order bias)
	order="on off nginx"
	[ $((r % 2)) = 1 ] && order="off on nginx"
	for v in $order; do
		if [ "$v" = nginx ]; then
			res=$(run_wrk "$tmp/on" "http://127.0.0.1:$ng_port/" 0)
		else
			cb_var="callback_$v" next_var="next_$v"
			res=$(run_wrk "$tmp/$v" "${!cb_var}" "${!next_var}")
			printf -v "$next_var" '%s' "$(($(field last "$res") + 1))"
			[ "$(field wrapped "$res")" = 0 ] || wrapped=1
		fi
		rps=$(field rps "$res")
		case $v in on) on_rps+=("$rps") ;; off) off_rps+=("$rps") ;; nginx) ng_rps+=("$rps") ;; esac
		printf '%-6s %-8s %10s %9.2f %9.2f %8s  %s\n' "$((r + 1))" "$v" "$rps" \
			"$(echo "$(field p50_us "$res") / 1000" | bc -l)" \
			"$(echo "$(field p99_us "$res") / 1000" | bc -l)" "$(field non2xx "$res")" \
			"$(cut -d' ' -f1 /proc/loadavg)"
	done
done
[ "$wrapped" = 0 ] ||
	echo "bench: a run ran out of fresh payloads and re-sent some (duplicates store nothing): raise PER_THREAD" >&2
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_on=$(median "${on_rps[@]}"); m_off=$(median "${off_rps[@]}"); m_ng=$(median "${ng_rps[@]}")
echo
printf 'median req/s: on %s, off %s, nginx %s; on / off = %.3f; on / nginx = %.3f, off / nginx = %.3f\n' \
	"$m_on" "$m_off" "$m_ng" "$(echo "$m_on / $m_off" | bc -l)" "$(echo "$m_on / $m_ng" | bc -l)" \
	"$(echo "$m_off / $m_ng" | bc -l)"
printf 'rounds where on >= off: '
w=0; for i in "${!on_rps[@]}"; do [ "$(echo "${on_rps[$i]} >= ${off_rps[$i]}" | bc)" = 1 ] && w=$((w + 1)); done
echo "$w of ${#on_rps[@]}"
for v in on off; do
	echo "$v: events $(sqlite3 "$tmp/$v/th.db" 'SELECT count(*) FROM events'), rollup cells" \
		"$(sqlite3 "$tmp/$v/th.db" 'SELECT count(*) FROM event_rollup_hour'), counter" \
		"$(sqlite3 "$tmp/$v/th.db" 'SELECT coalesce(sum(n), 0) FROM webhook_event_count')"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
