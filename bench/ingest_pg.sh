#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ingest benchmark on PostgreSQL beside SQLite (issue 8): wrk posts distinct,
# correctly signed ~3 KB Trello deliveries (bench/gen-payloads.mjs +
# bench/post.lua) to
#   1. one trellohook serve on SQLite (WAL, synchronous=FULL),
#   2. one trellohook serve on PostgreSQL (fsync on, group commit),
#   3. two trellohook serve on the same PostgreSQL database, each loaded by its
#      own wrk with half the connections (what a load balancer would do),
# and prints events/s, p50/p99 and how many events were stored. Every run gets
# a fresh database and webhook, so no payload is a duplicate.
# Beside runs 1 and 2, the ceiling of the same store on this day:
# bench/bare_writer.c (built here, not by the product) inserts batches of 32
# of the same ~3 KB events into a fresh database of trellohook's schema with
# the same durability (SQLite WAL + synchronous=FULL; PostgreSQL with fsync
# and synchronous_commit on) for the same duration; trellohook's rate is
# printed as a fraction of it.
#
# usage: bench/ingest_pg.sh          (DURATION=5 CONNS=32 PER_THREAD=60000)
#        bench/ingest_pg.sh --append (also append the table to bench/RESULTS.md)
#        BARE_BATCH=32 (events per batch of the bare writer)
# Not a test: nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
PER_THREAD=${PER_THREAD:-60000}
APPEND=0
[ "${1:-}" = "--append" ] && APPEND=1
scripts/deps.sh wrk sqlite3 bc nodejs postgresql >/dev/null
[ -x build/trellohook ] || make build >/dev/null

tmp=$(mktemp -d /tmp/th-benchpg.XXXXXX)
pgdir=$(mktemp -d /tmp/th-benchpg-db.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
BARE_BATCH=${BARE_BATCH:-32}
cc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE bench/bare_writer.c -o "$tmp/bare_writer" \
	$(pkg-config --cflags --libs sqlite3 liblz4 libpq) ||
	{ echo "bench: could not build bench/bare_writer.c (needs libsqlite3-dev, liblz4-dev, libpq-dev)" >&2; exit 1; }

. bench/lib.sh

# min_wal_size: a fresh server creates (zero-fills, fsyncs) each new 16 MB WAL
# segment inside a COMMIT, ~50 ms here; one that has run a while recycles old
# ones, and keeping them is what makes this one behave so (see bench/ab.sh)
pg_url=$(PG_SERVER_OPTS="-c min_wal_size=2GB ${PG_SERVER_OPTS:-}" scripts/pg.sh start "$pgdir")
pg_db() { # name -> URL of a fresh database
	psql "$pg_url" -qAt -c "CREATE DATABASE $1" >/dev/null
	echo "${pg_url%/*}/$1"
}

start_mock
board_id=$(mock_board)
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" \
       TRELLOHOOK_LOG_LEVEL=warn

# start_serves NAME DATABASE_URL COUNT: COUNT instances on one store; the first
# one's port is the CALLBACK_DOMAIN (Trello signs over that URL; every
# instance verifies against it, whichever port the request reached).
# Sets: ports[], callback, run_dir.
start_serves() {
	local name=$1 url=$2 count=$3 i port
	run_dir="$tmp/$name"
	mkdir -p "$run_dir"
	ports=()
	for ((i = 0; i < count; i++)); do ports+=("$(free_port)"); done
	export DATABASE_URL="$url" CALLBACK_DOMAIN="http://127.0.0.1:${ports[0]}"
	for port in "${ports[@]}"; do
		TRELLOHOOK_LISTEN="127.0.0.1:$port" build/trellohook serve \
			>"$run_dir/serve-$port.out" 2>"$run_dir/serve-$port.log" &
		pids+=($!)
		wait_http "http://127.0.0.1:$port/healthz"
	done
	callback=$(build/trellohook webhook add --model "$board_id" --token "$token" --json |
	           node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))')
	node bench/gen-payloads.mjs "$callback" "$secret" "$PER_THREAD" 2 "$run_dir" 2>/dev/null
	sync # flush the payload files now, not in the middle of a run (see ingest.sh)
}

# run_wrk DIR URL THREADS CONNS -> RESULT line (uses DIR/payloads-<t>.txt)
run_wrk() {
	PAYLOAD_DIR="$1" wrk -t"$3" -c"$4" -d"${DURATION}s" --latency -s bench/post.lua "$2" 2>&1 | grep '^RESULT'
}

rows=()
row() { # label result-lines... (summed) stored
	local label=$1 stored=$2; shift 2
	local rps=0 p50=0 p99=0 non=0 n=0 r
	for r in "$@"; do
		rps=$(echo "$rps + $(field rps "$r")" | bc)
		p50=$(echo "if ($(field p50_us "$r") > $p50) $(field p50_us "$r") else $p50" | bc)
		p99=$(echo "if ($(field p99_us "$r") > $p99) $(field p99_us "$r") else $p99" | bc)
		non=$((non + $(field non2xx "$r")))
		n=$((n + 1))
	done
	rows+=("$(printf '| %-34s | %8s | %7.2f | %7.2f | %6s | %8s |' "$label" "$rps" \
		"$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)" "$non" "$stored")")
}

# bare_row LABEL DATABASE_URL: run the bare writer on a fresh database of our
# schema; adds a row and sets bare_rate
bare_row() {
	local r
	head -1 "$run_dir/payloads-0.txt" | cut -f2- | tr -d '\n' >"$tmp/one.json"
	DATABASE_URL="$2" build/trellohook migrate >/dev/null
	r=$("$tmp/bare_writer" "$2" "$tmp/one.json" "$DURATION" "$BARE_BATCH")
	rows+=("$(printf '| %-34s | %8s | %7s | %7s | %6s | %8s |' "$1" "$(field rate "$r")" \
		"$(field batch_p50_ms "$r")" "$(field batch_p99_ms "$r")" - "$(field events "$r")")")
	bare_rate=$(field rate "$r")
}
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.3f", $1 / $2; else print "-" }'; }

echo "bench: wrk, $CONNS connections in all, ${DURATION}s per run, distinct signed ~3 KB payloads" >&2

# 1. SQLite, one instance
start_serves sqlite "sqlite:$tmp/bench.db" 1
r=$(run_wrk "$run_dir" "$callback" 2 "$CONNS")
row "trellohook, SQLite, 1 instance" "$(sqlite3 "$tmp/bench.db" 'SELECT count(*) FROM events')" "$r"
th_sqlite=$(field rps "$r")
bare_row "bare writer, SQLite (ceiling)" "sqlite:$tmp/bare.db"
bare_sqlite=$bare_rate
rm -f "$tmp"/bare.db*

# 2. PostgreSQL, one instance
url=$(pg_db bench_one)
start_serves pg1 "$url" 1
r=$(run_wrk "$run_dir" "$callback" 2 "$CONNS")
row "trellohook, PostgreSQL, 1 instance" "$(psql "$url" -qAt -c 'SELECT count(*) FROM events')" "$r"
th_pg=$(field rps "$r")
bare_row "bare writer, PostgreSQL (ceiling)" "$(pg_db bench_bare)"
bare_pg=$bare_rate

# 3. PostgreSQL, two instances on one database, half the connections each
url=$(pg_db bench_two)
start_serves pg2 "$url" 2
path=${callback#http://127.0.0.1:*/}
mkdir -p "$run_dir/a" "$run_dir/b"
mv "$run_dir/payloads-0.txt" "$run_dir/a/payloads-0.txt"
mv "$run_dir/payloads-1.txt" "$run_dir/b/payloads-0.txt"
run_wrk "$run_dir/a" "http://127.0.0.1:${ports[0]}/$path" 1 $((CONNS / 2)) >"$run_dir/a.res" &
wa=$!
run_wrk "$run_dir/b" "http://127.0.0.1:${ports[1]}/$path" 1 $((CONNS / 2)) >"$run_dir/b.res" &
wb=$!
wait $wa $wb
row "trellohook, PostgreSQL, 2 instances" "$(psql "$url" -qAt -c 'SELECT count(*) FROM events')" \
	"$(cat "$run_dir/a.res")" "$(cat "$run_dir/b.res")"

table=$(
	echo "| setup                              | events/s | p50 ms  | p99 ms  | non-2xx | stored   |"
	echo "|------------------------------------|---------:|--------:|--------:|-------:|---------:|"
	printf '%s\n' "${rows[@]}"
)
ratios="trellohook / bare writer: SQLite $(ratio "$th_sqlite" "$bare_sqlite"), PostgreSQL $(ratio "$th_pg" "$bare_pg"); trellohook PostgreSQL / SQLite $(ratio "$th_pg" "$th_sqlite") (bare writer rows: p50/p99 are per batch of $BARE_BATCH)"
echo "$table"
echo "$ratios"
if [ "$APPEND" = 1 ]; then
	{
		echo
		echo "## Ingest on PostgreSQL beside SQLite ($(date -u +%Y-%m-%d), $(nproc) CPUs)"
		echo
		echo "Command: \`DURATION=$DURATION CONNS=$CONNS bench/ingest_pg.sh --append\` — wrk with"
		echo "bench/post.lua posting distinct signed ~3 KB deliveries; PostgreSQL $(psql "$pg_url" -qAt -c 'SHOW server_version')"
		echo "from scripts/pg.sh (fsync on, synchronous_commit on); SQLite in WAL with synchronous=FULL."
		echo "Two instances: two serve processes on one database, each loaded by its own wrk with half"
		echo "the connections. Every 200 is on disk; \"stored\" counts the rows afterwards."
		echo
		echo "$table"
		echo
		echo "$ratios"
	} >>bench/RESULTS.md
	echo "appended to bench/RESULTS.md" >&2
fi
