#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What one SQLite group commit costs under ingest (issue 18): one serve, one
# saturated wrk run of distinct signed ~3 KB deliveries (as bench/ingest.sh),
# and from the run itself:
#   - events/s and latency, as wrk saw them;
#   - commits, events per commit, and how much of wrk's run (its own
#     duration) the writer spent committing (the sum of
#     trellohook_commit_latency_seconds, read just before and after: ~100%
#     means the writer was never idle, i.e. it is the bottleneck);
#   - bytes serve wrote per event (WAL and checkpoint, /proc/PID/io) and its
#     CPU per event;
#   - the WAL frames of one commit, by the b-tree each page belongs to: from a
#     copy of the -wal taken mid-run (frame headers name the page; commits
#     end at a frame with a database size) and the database's dbstat.
# usage: bench/commit_profile.sh   (BIN=build/trellohook DURATION=5 PER_THREAD=100000)
# Not a test: nothing here asserts a speed. Results go to bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/trellohook}
DURATION=${DURATION:-5}
PER_THREAD=${PER_THREAD:-100000}
scripts/deps.sh wrk sqlite3 bc nodejs >/dev/null
[ -x "$BIN" ] || make build >/dev/null

tmp=$(mktemp -d /tmp/th-commit.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
. bench/lib.sh

start_mock
port=$(free_port)
export TRELLO_API_URL="$mock_url" TRELLO_API_KEY="$key" TRELLO_API_SECRET="$secret" \
       CALLBACK_DOMAIN="http://127.0.0.1:$port" DATABASE_URL="sqlite:$tmp/bench.db" \
       TRELLOHOOK_LISTEN="127.0.0.1:$port" TRELLOHOOK_LOG_LEVEL=warn
"$BIN" serve >"$tmp/serve.out" 2>"$tmp/serve.log" &
pid=$!
pids+=($pid)
wait_http "http://127.0.0.1:$port/healthz"
board_id=$(mock_board)
callback=$("$BIN" webhook add --model "$board_id" --token "$token" --json |
           node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).callback_url))')
node bench/gen-payloads.mjs "$callback" "$secret" "$PER_THREAD" 2 "$tmp" 2>/dev/null
sync # the payload files' dirty pages, written back now rather than mid-run
sleep 1

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
written() { awk '/^wchar/ {s += $2} END {print s}' /proc/$pid/task/*/io; }
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
stored() { sqlite3 "$tmp/bench.db" 'SELECT count(*) FROM events'; }
c0=$(metric trellohook_store_commits_total); b0=$(metric trellohook_commit_latency_seconds_sum)
w0=$(written); t0=$(ticks); e0=$(stored)
(sleep "$(echo "$DURATION / 2" | bc -l)"; cp "$tmp/bench.db-wal" "$tmp/mid.wal") &
copier=$!
r=$(PAYLOAD_DIR="$tmp" wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/post.lua "$callback" 2>&1 | grep '^RESULT')
c1=$(metric trellohook_store_commits_total); b1=$(metric trellohook_commit_latency_seconds_sum)
w1=$(written); t1=$(ticks); e1=$(stored)
wait "$copier"

hz=$(getconf CLK_TCK)
events=$((e1 - e0)); commits=$((c1 - c0))
printf 'events/s %s  p50 %s ms  p99 %s ms  (%s)\n' "$(field rps "$r")" \
	"$(echo "$(field p50_us "$r") / 1000" | bc -l | cut -c1-5)" "$(echo "$(field p99_us "$r") / 1000" | bc -l | cut -c1-5)" "$BIN"
awk -v e="$events" -v c="$commits" -v b0="$b0" -v b1="$b1" -v d="$(echo "$(field duration_us "$r") / 1000000" | bc -l)" -v w="$((w1 - w0))" \
	-v t="$((t1 - t0))" -v hz="$hz" 'BEGIN {
	printf "commits %d, %.1f events each, %.2f ms each; the writer committed %.0f%% of the run\n", c, e / c, (b1 - b0) * 1000 / c, (b1 - b0) * 100 / d
	printf "serve wrote %.1f KB and used %.0f us of CPU per event\n", w / e / 1000, t * 1e6 / hz / e }'

# the frames of the mid-run WAL's commits, by b-tree
sqlite3 "$tmp/bench.db" 'SELECT pageno, name FROM dbstat' >"$tmp/pages.txt"
node - "$tmp/mid.wal" "$tmp/pages.txt" <<'NODE'
const fs = require('fs');
const [wal, pages] = process.argv.slice(2);
const b = fs.readFileSync(wal);
const owner = new Map(fs.readFileSync(pages, 'utf8').trim().split('\n').map((l) => {
  const i = l.indexOf('|');
  return [Number(l.slice(0, i)), l.slice(i + 1)];
}));
const psz = b.readUInt32BE(8), salt1 = b.readUInt32BE(16), salt2 = b.readUInt32BE(20);
const count = new Map();
let commits = 0, frames = 0, pending = [];
for (let off = 32; off + 24 + psz <= b.length; off += 24 + psz) {
  if (b.readUInt32BE(off + 8) !== salt1 || b.readUInt32BE(off + 12) !== salt2) break;
  const page = b.readUInt32BE(off);
  pending.push(page === 1 ? 'page 1' : owner.get(page) || 'pointer map / free');
  if (b.readUInt32BE(off + 4) !== 0) { // a commit's last frame carries the database size
    commits++; frames += pending.length;
    for (const o of pending) count.set(o, (count.get(o) || 0) + 1);
    pending = [];
  }
}
if (!commits) { console.log('no whole commit in the mid-run copy of the WAL'); process.exit(0); }
console.log(`WAL frames per commit: ${(frames / commits).toFixed(1)} (${commits} commits in the mid-run copy)`);
for (const [o, n] of [...count].sort((x, y) => y[1] - x[1]))
  console.log(`  ${(n / commits).toFixed(2).padStart(6)}  ${o}`);
NODE
