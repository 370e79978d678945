#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# History benchmark (issue 17), two parts:
#
#  1. `events export` memory: a store filled with SMALL and LARGE numbers of
#     ~3 KB events (inserted with sqlite3 / psql straight into trellohook's
#     schema, received a year ago), exported to a file under /usr/bin/time -v:
#     max RSS must stay flat from SMALL to LARGE (pages of 200 rows, never a
#     list of everything). PostgreSQL too when scripts/pg.sh finds a server.
#  2. `events prune` during ingest: serve on SQLite with LARGE old events;
#     wrk posts distinct signed ~3 KB deliveries over CONNS connections, each
#     pausing PACE_MS after every answer (as bench/ingest.sh's paced run),
#     once alone and once while `events prune --older-than 30d` deletes every
#     old event in batches of 500: p50/p99 of both runs, the prune's time,
#     and the file's pages before and after.
#
# usage: bench/history.sh  (SMALL=20000 LARGE=200000 DURATION=10 CONNS=8 PACE_MS=5 PER_THREAD=30000
#                           PARTS=export,prune)
# Not a test: nothing here asserts. Results go to bench/RESULTS.md by hand,
# with the load average this prints (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-20000}
LARGE=${LARGE:-200000}
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}
THREADS=2
PACE_MS=${PACE_MS:-5}
PER_THREAD=${PER_THREAD:-30000}
PARTS=${PARTS:-export,prune} # which parts to run
scripts/deps.sh wrk sqlite3 bc nodejs time >/dev/null
[ -x build/trellohook ] || make build >/dev/null

tmp=$(mktemp -d /tmp/th-hbench.XXXXXX)
pids=()
pgdir=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "$pgdir" ] && scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

# One ~3 KB body, as SQL text (quotes doubled).
node -e '
const t = JSON.parse(require("fs").readFileSync("tests/data/payloads/updateCard-moveList.json"));
t.model.desc = "Roadmap for 2027: " + "ship small, ship often. ".repeat(40);
process.stdout.write(JSON.stringify(t).replace(/\x27/g, "\x27\x27"));' >"$tmp/body.sql"
body=$(cat "$tmp/body.sql")
old_ms=$(( ($(date +%s) - 365 * 86400) * 1000 ))

# fill_sqlite DB N: N events of webhook "wbench" received a year ago
fill_sqlite() {
	DATABASE_URL="sqlite:$1" build/trellohook migrate >/dev/null
	sqlite3 "$1" >/dev/null <<SQL
PRAGMA journal_mode = WAL; -- (prints "wal")
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO events (id, webhook_id, action_id, action_type, action_date, summary, payload, received_at)
SELECT 'ev' || i, 'wbench', printf('%024x', i), 'updateCard', '2026-11-20T00:00:00.000Z',
       'moved a card', CAST('$body' AS BLOB), $old_ms + i FROM n;
SQL
}
fill_pg() { # URL N
	psql "$1" -qAt -c "
INSERT INTO events (id, webhook_id, action_id, action_type, action_date, summary, payload, received_at)
SELECT 'ev' || i, 'wbench', lpad(to_hex(i), 24, '0'), 'updateCard', '2026-11-20T00:00:00.000Z',
       'moved a card', convert_to('$body', 'UTF8'), $old_ms + i FROM generate_series(1, $2) i;" >/dev/null
}
export_rss() { # DATABASE_URL -> "maxrss_kB seconds lines"
	/usr/bin/time -v env DATABASE_URL="$1" build/trellohook events export --format jsonl \
		--output "$tmp/out.jsonl" 2>"$tmp/time.txt" >/dev/null
	printf '%s %s %s\n' "$(awk -F': ' '/Maximum resident/ {print $2}' "$tmp/time.txt")" \
		"$(awk -F': ' '/Elapsed/ {print $2}' "$tmp/time.txt")" "$(wc -l <"$tmp/out.jsonl")"
	rm -f "$tmp/out.jsonl"
}

if [[ ,$PARTS, == *,export,* ]]; then
echo
echo "== events export --format jsonl --output FILE: max RSS (/usr/bin/time -v)"
printf '%-12s %9s %12s %10s %10s\n' store events 'max RSS kB' elapsed lines
for n in "$SMALL" "$LARGE"; do
	fill_sqlite "$tmp/e$n.db" "$n"
	read -r rss el lines <<<"$(export_rss "sqlite:$tmp/e$n.db")"
	printf '%-12s %9s %12s %10s %10s\n' sqlite "$n" "$rss" "$el" "$lines"
	rm -f "$tmp/e$n.db"*
done
if scripts/pg.sh available >/dev/null 2>&1; then
	pgdir=$(mktemp -d /tmp/th-hbench-pg.XXXXXX)
	pgurl=$(scripts/pg.sh start "$pgdir")
	for n in "$SMALL" "$LARGE"; do
		db="th_hbench_$n"
		psql "$pgurl" -qAt -c "CREATE DATABASE $db" >/dev/null
		u=$(sed "s#/[^/?]*\(?\|\$\)#/$db\1#" <<<"$pgurl")
		DATABASE_URL="$u" build/trellohook migrate >/dev/null
		fill_pg "$u" "$n"
		read -r rss el lines <<<"$(export_rss "$u")"
		printf '%-12s %9s %12s %10s %10s\n' postgresql "$n" "$rss" "$el" "$lines"
	done
fi
fi
[[ ,$PARTS, == *,prune,* ]] || exit 0

echo
echo "== events prune during ingest (SQLite, $LARGE old events, wrk -t$THREADS -c$CONNS, ${PACE_MS} ms pause per connection, ${DURATION}s)"
db="$tmp/ingest.db"
fill_sqlite "$db" "$LARGE"
start_mock
th_port=$(free_port)
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" \
       CALLBACK_DOMAIN="http://127.0.0.1:$th_port" DATABASE_URL="sqlite:$db" \
       TRELLOHOOK_LISTEN="127.0.0.1:$th_port" TRELLOHOOK_LOG_LEVEL=warn TRELLOHOOK_HEALTH_INTERVAL=0
build/trellohook serve >"$tmp/serve.out" 2>"$tmp/serve.log" &
pids+=($!)
wait_http "http://127.0.0.1:$th_port/healthz"
board_id=$(mock_board)
callback=$(build/trellohook webhook add --model "$board_id" --token "$token" --json |
           node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))')
node bench/gen-payloads.mjs "$callback" "$secret" "$PER_THREAD" "$THREADS" "$tmp"
sync
sleep 1
run_wrk() { # PAYLOAD_START -> RESULT line
	PAYLOAD_DIR="$tmp" PACE_MS=$PACE_MS PAYLOAD_START=$1 wrk -t$THREADS -c"$CONNS" -d"${DURATION}s" \
		--latency -s bench/post.lua "$callback" 2>&1 | grep '^RESULT'
}
pages() { sqlite3 "$db" 'PRAGMA page_count'; }
alone=$(run_wrk 0)
p_before=$(pages)
# the prune starts a second into the second run and goes on beside it
( sleep 1; /usr/bin/time -f '%e s %M kB' build/trellohook events prune --older-than 30d --json \
	>"$tmp/prune.json" 2>"$tmp/prune.time" ) &
prune_pid=$!
with=$(run_wrk $((PER_THREAD / 2)))
wait "$prune_pid" || echo "bench: the prune failed: $(cat "$tmp/prune.time")"
p_after=$(pages)
printf '%-26s %9s %9s %9s %8s\n' run 'req/s' 'p50 ms' 'p99 ms' non-2xx
pline() { printf '%-26s %9s %9.2f %9.2f %8s\n' "$1" "$(field rps "$2")" \
	"$(echo "$(field p50_us "$2") / 1000" | bc -l)" "$(echo "$(field p99_us "$2") / 1000" | bc -l)" "$(field non2xx "$2")"; }
pline "ingest alone" "$alone"
pline "ingest while pruning" "$with"
echo "prune: $(cat "$tmp/prune.json") in $(tail -1 "$tmp/prune.time")"
echo "SQLite pages: $p_before before the prune, $p_after after (4 KiB each)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
