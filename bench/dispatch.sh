#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dispatch benchmark (issue 6): deliveries per second of trellohook's outbox
# for an exec handler and a forward handler, beside `webhook` (adnanh/webhook)
# running the same command per request in its synchronous mode
# ("include-command-output-in-response": true), with the RSS of each.
#
# trellohook: N events are stored first while their handler rows have a kind
# this serve does not run (func), so N deliveries wait pending; then serve is
# restarted with the rows switched to exec (resp. forward) and we time how long
# the workers take to bring all N to `done` (counted in SQLite). Every
# delivery is claimed, run, and recorded in the WAL (claims and outcomes commit
# without an fsync of their own since issue 18: a power cut can only re-run one;
# see docs/DESIGN.md).
# webhook: wrk posts the same payload over CONNS connections for DURATION s;
# every request runs the command before its answer.
#
# Two exec commands: CMD (default `cat >/dev/null`: words and a plain file
# redirection, which trellohook runs without a shell, the redirection done by
# the spawn) and DIRECT_CMD (default `dd of=/dev/null status=none`: the same
# work in plain words; see docs/handlers.md). webhook runs each through
# /bin/sh, and DIRECT_CMD once more started directly (its program as
# execute-command, the other words as arguments), so that the same work is
# compared both ways. The issue's target is against webhook's CMD.
#
# webhook runs with CONNS connections and, when different, with WORKERS (the
# same concurrency as trellohook's): under outside load a tool with more
# processes in flight gets a larger share of the CPUs.
#
# A/B in one run: BASE_TH=path/to/another/trellohook (a build of an earlier
# commit) also runs both exec commands, interleaved with this build's runs, so
# both see the same machine load. The events are stored under BASE_TH's
# schema; then the store is copied (BASE_TH's runs use the copy) and this
# build migrates the original, so BASE_TH may be a schema behind. Each build's
# k-th run finds the same number of parked deliveries in front of its own.
# Each trellohook row also gives serve's CPU time (user + system, from
# /proc/PID/stat) per delivery.
#
# usage: bench/dispatch.sh     (N=5000 CONNS=32 DURATION=5 WORKERS=8 CMD='cat >/dev/null'
#                               DIRECT_CMD='dd of=/dev/null status=none' TH=build/trellohook BASE_TH=
#                               ROUNDS=1)
# ROUNDS repeats every exec run and webhook's, round after round: on a shared
# machine compare rows within a round.
# Prints a section for bench/RESULTS.md; APPEND=1 also appends it there (like the other
# benches, results go in by hand otherwise: a run made only to profile leaves no trace).
# Not a test: nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
CONNS=${CONNS:-32}
DURATION=${DURATION:-5}
WORKERS=${WORKERS:-8}
CMD=${CMD:-cat >/dev/null}
DIRECT_CMD=${DIRECT_CMD:-dd of=/dev/null status=none}
TH=${TH:-build/trellohook}
BASE_TH=${BASE_TH:-}
ROUNDS=${ROUNDS:-1}
[ -x scripts/deps.sh ] && scripts/deps.sh wrk webhook sqlite3 nodejs >/dev/null
[ "$TH" != build/trellohook ] || [ -x build/trellohook ] || make build >/dev/null
[ -x "$TH" ] || { echo "bench: no trellohook at $TH" >&2; exit 2; }
[ -z "$BASE_TH" ] || [ -x "$BASE_TH" ] || { echo "bench: no trellohook at BASE_TH=$BASE_TH" >&2; exit 2; }
load_before=$(uptime)

tmp=$(mktemp -d /tmp/th-bench-dispatch.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

. bench/lib.sh
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
db="$tmp/bench.db"
db_base="$tmp/bench-base.db"
q() { sqlite3 -cmd '.timeout 5000' "${qdb:-$db}" "$1"; }
# the oldest build here sets the schema until the events are stored
first_th=${BASE_TH:-$TH}

port=$(free_port)
export TRELLO_API_SECRET="$secret" CALLBACK_DOMAIN="http://127.0.0.1:$port" \
       DATABASE_URL="sqlite:$db" TRELLOHOOK_LISTEN="127.0.0.1:$port" TRELLOHOOK_LOG_LEVEL=warn \
       TRELLOHOOK_WORKERS="$WORKERS" TRELLOHOOK_HANDLER_CONCURRENCY="$WORKERS"
"$first_th" migrate >/dev/null
# HOOKS webhooks (boards): deliveries of one webhook to one handler run one
# after another (order), so parallelism comes from many boards, as in real use.
HOOKS=${HOOKS:-64}
for i in $(seq "$HOOKS"); do
	hid=$(printf 'BenchBenchBenchB%04d' "$i")
	q "INSERT INTO webhooks (id, id_model, model_type, callback_url, token, state, active, created_at)
	   VALUES ('$hid', printf('6123456789abcdef0123%04x', $i), 'board',
	           '$CALLBACK_DOMAIN/callbacks/$hid', 'tok$i', 'active', 1, 1)"
done

# a local receiver for forwards: answers 204 to everything
cat >"$tmp/receiver.mjs" <<'JS'
import http from 'node:http';
const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.statusCode = 204; res.end(); }); });
srv.keepAliveTimeout = 60000;
srv.listen(Number(process.argv[2]), '127.0.0.1');
JS
rport=$(free_port)
node "$tmp/receiver.mjs" "$rport" &
pids+=($!)
wait_http "http://127.0.0.1:$rport/"

# one handler per (round, build, command): each gets its own N deliveries at ingest
add_handler() { "$first_th" handler add "$@" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))'; }
# the exec runners, in the order they run within a round (builds interleaved)
if [ -n "$BASE_TH" ]; then
	r_bin=("$BASE_TH" "$TH" "$BASE_TH" "$TH")
	r_cmd=("$CMD" "$CMD" "$DIRECT_CMD" "$DIRECT_CMD")
else
	r_bin=("$TH" "$TH")
	r_cmd=("$CMD" "$DIRECT_CMD")
fi
declare -A hid rate rss lost cpu
for ((r = 1; r <= ROUNDS; r++)); do
	for i in "${!r_cmd[@]}"; do hid[$r,$i]=$(add_handler --exec "${r_cmd[$i]}"); done
done
fwd_id=$(add_handler --forward "http://127.0.0.1:$rport/hook")
q "UPDATE handlers SET kind = 'func'"   # parked: a plain serve runs no C functions

# --- ingest N events (deliveries stay pending) ---------------------------------------
# N distinct signed payloads, round-robin over the webhooks: "URL<TAB>SIG<TAB>BODY"
node -e '
const { createHmac } = require("crypto"); const fs = require("fs");
const [n, hooks, domain, secret, out, tpl] = process.argv.slice(1);
const t = JSON.parse(fs.readFileSync(tpl)); const lines = [];
for (let i = 0; i < Number(n); i++) {
  const h = "BenchBenchBenchB" + String(1 + (i % Number(hooks))).padStart(4, "0");
  const url = domain + "/callbacks/" + h;
  t.action.id = (0x7000000000 + i).toString(16).padStart(24, "0");
  const body = JSON.stringify(t);
  lines.push(url + "\t" + createHmac("sha1", secret).update(body + url).digest("base64") + "\t" + body);
}
fs.writeFileSync(out, lines.join("\n") + "\n");
' "$N" "$HOOKS" "$CALLBACK_DOMAIN" "$secret" "$tmp/payloads.txt" tests/data/payloads/updateCard-moveList.json
"$first_th" serve >"$tmp/serve.out" 2>"$tmp/serve.log" &
pid=$!
pids+=($pid)
wait_http "http://127.0.0.1:$port/healthz"
node -e '
const fs = require("fs");
const [file] = process.argv.slice(1);
const lines = fs.readFileSync(file, "utf8").split("\n").filter(Boolean);
let i = 0, bad = 0;
async function worker() {
  while (i < lines.length) {
    const [url, sig, body] = lines[i++].split("\t");
    const r = await fetch(url, { method: "POST", body, headers: { "X-Trello-Webhook": sig } });
    await r.arrayBuffer(); if (r.status !== 200) bad++;
  }
}
Promise.all(Array.from({ length: 32 }, worker)).then(() => { if (bad) { console.error(bad + " posts failed"); process.exit(1); } });
' "$tmp/payloads.txt"
kill "$pid"; wait "$pid" 2>/dev/null || true
stored=$(q "SELECT count(*) FROM events")
[ "$stored" -eq "$N" ] || { echo "bench: only $stored of $N events stored" >&2; exit 1; }
if [ -n "$BASE_TH" ]; then
	sqlite3 "$db" ".backup '$db_base'"
	"$TH" migrate >/dev/null
fi

# --- time the workers on one handler kind ----------------------------------------------
# run_kind KIND HANDLER_ID [TRELLOHOOK]: prints "deliveries/s peak_rss_kib lost serve_cpu_us_per_delivery"
run_kind() {
	local kind=$1 hid=$2 bin=${3:-$TH} t0 t1 done_n=0 peak=0 r ticks=0 qdb=$db
	[ -n "$BASE_TH" ] && [ "$bin" = "$BASE_TH" ] && [ "$BASE_TH" != "$TH" ] && qdb=$db_base
	q "UPDATE handlers SET kind = '$kind' WHERE id = '$hid'"
	t0=$(now_ms)
	DATABASE_URL="sqlite:$qdb" "$bin" serve >>"$tmp/serve.out" 2>>"$tmp/serve.log" &
	pid=$!
	pids+=($pid)
	while :; do
		done_n=$(q "SELECT count(*) FROM deliveries WHERE handler_id = '$hid' AND status = 'done'")
		r=$(hwm_kb "$pid" 2>/dev/null || echo 0)
		[ "$r" -gt "$peak" ] && peak=$r
		[ "$done_n" -ge "$N" ] && break
		[ $(( $(now_ms) - t0 )) -gt 600000 ] && break
		# every poll spawns sqlite3, awk, date and sleep: at 50 ms that took most
		# of a CPU from the server under test; 0.5 s costs ~2% (+-0.5 s on ~20 s runs)
		sleep 0.5
	done
	# the end is when the last outcome was recorded (its updated_at, ms), not when
	# the 0.5 s poll noticed: on a run of a few seconds the poll alone cost ~6%
	t1=$(q "SELECT max(updated_at) FROM deliveries WHERE handler_id = '$hid' AND status = 'done'")
	[ -n "$t1" ] && [ "$t1" -gt "$t0" ] || t1=$(now_ms)
	# utime + stime (clock ticks; comm is "trellohook", no spaces)
	ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	q "UPDATE handlers SET kind = 'func' WHERE id = '$hid'"
	local bad
	bad=$(q "SELECT count(*) FROM deliveries WHERE handler_id = '$hid' AND status <> 'done'")
	echo "$(( N * 1000 / (t1 - t0) )) $peak $bad $(( ticks * 1000000 / $(getconf CLK_TCK) / N ))"
}
# --- webhook (adnanh/webhook), synchronous mode, same command per request ----------------
body=$(head -1 "$tmp/payloads.txt" | cut -f3-)
printf '%s' "$body" >"$tmp/body.json"
cat >"$tmp/post.lua" <<LUA
local f = io.open("$tmp/body.json", "r"); local b = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = b; wrk.headers["Content-Type"] = "application/json"
LUA
# how trellohook starts a command (the main part of docs/handlers.md's rule)
via() { case "$1" in *[\$\`\|\&\;\<\>\(\)\{\}\*\?\[\]~#]*) echo '/bin/sh -c' ;; *) echo 'direct' ;; esac; }
# trellohook also starts plain file redirections itself (<F, >F, >>F, N>&M): drop those whose file is
# made of plain characters, then the same rule (a label only; src/dispatch/exec_split.c decides)
th_via() { via "$(sed -E 's/(^|[[:blank:]])[0-2]?>&[0-2]([[:blank:]]|$)/ /g; s/(^|[[:blank:]]|[[:alnum:]_.\/-])[0-2]?(>>|>|<)[[:blank:]]*[[:alnum:]_.\/@%+=:,-]+([[:blank:]]|$)/\1 /g' <<<"$1")"; }
# run_webhook COMMAND CONNECTIONS [direct]: prints "requests/s non2xx peak_rss_kib".
# With "direct", webhook starts a command of plain words itself, as trellohook
# does (execute-command = its program, the other words as arguments), else
# through /bin/sh.
run_webhook() {
	local wport wpid rate non2xx rss exe args w
	wport=$(free_port)
	printf '%s\n' "$1" >"$tmp/cmd.sh"
	chmod +x "$tmp/cmd.sh"
	exe=/bin/sh args="{\"source\": \"string\", \"name\": \"$tmp/cmd.sh\"}"
	if [ "${3:-}" = direct ]; then
		read -r -a w <<<"$1"
		exe=$(command -v "${w[0]}") args=
		for a in "${w[@]:1}"; do args+="${args:+, }{\"source\": \"string\", \"name\": \"$a\"}"; done
	fi
	cat >"$tmp/hooks.json" <<JSON
[{"id": "run", "execute-command": "$exe", "pass-arguments-to-command": [$args],
  "include-command-output-in-response": true, "response-message": ""}]
JSON
	webhook -hooks "$tmp/hooks.json" -ip 127.0.0.1 -port "$wport" >>"$tmp/webhook.log" 2>&1 &
	wpid=$!
	pids+=($wpid)
	wait_http "http://127.0.0.1:$wport/hooks/run" >&2
	wrk -t2 -c"$2" -d"${DURATION}s" -s "$tmp/post.lua" "http://127.0.0.1:$wport/hooks/run" >"$tmp/wrk.txt" 2>&1
	rate=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$tmp/wrk.txt")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt")
	rss=$(hwm_kb "$wpid")
	kill "$wpid"; wait "$wpid" 2>/dev/null || true
	echo "$rate ${non2xx:-0} $rss"
}
# webhook with CONNS connections (as before) and with WORKERS (trellohook's concurrency)
wh_conns=("$CONNS")
[ "$WORKERS" = "$CONNS" ] || wh_conns+=("$WORKERS")
wh_cmd=("$CMD" "$DIRECT_CMD")
wh_how=(sh sh)
# and the plain-words command started directly by webhook too, for the same work on both sides
[ "$(via "$DIRECT_CMD")" = direct ] && wh_cmd+=("$DIRECT_CMD") && wh_how+=(direct)
declare -A wh_rate wh_non2xx wh_rss
# Each round runs every exec runner, then webhook, so that a change of the
# machine's load (it is shared) hits all of them alike within a round.
for ((r = 1; r <= ROUNDS; r++)); do
	for i in "${!r_cmd[@]}"; do
		read -r "rate[$r,$i]" "rss[$r,$i]" "lost[$r,$i]" "cpu[$r,$i]" < <(run_kind exec "${hid[$r,$i]}" "${r_bin[$i]}")
	done
	for c in "${wh_conns[@]}"; do
		for j in "${!wh_cmd[@]}"; do
			read -r "wh_rate[$r,$c,$j]" "wh_non2xx[$r,$c,$j]" "wh_rss[$r,$c,$j]" < <(run_webhook "${wh_cmd[$j]}" "$c" "${wh_how[$j]}")
		done
	done
done
read -r fwd_rate fwd_rss fwd_lost fwd_cpu < <(run_kind forward "$fwd_id")
load_after=$(uptime)

cpus=$(nproc)
# x.yz: $1 / $2
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
head_cols="| runner | started by |"
head_rule="| --- | --- |"
for ((r = 1; r <= ROUNDS; r++)); do
	head_cols+=" round $r: /s (× webhook), serve CPU/delivery |"
	head_rule+=" ---: |"
done
table="$head_cols peak RSS | not delivered / non-2xx |"$'\n'"$head_rule ---: | ---: |"
for i in "${!r_cmd[@]}"; do
	# how the command's syntax is started since exec_split.c (the earliest
	# builds, and so a BASE_TH from before it, ran every command through /bin/sh)
	how=$(th_via "${r_cmd[$i]}")
	line="| trellohook (${r_bin[$i]}) exec \`${r_cmd[$i]}\` | $how |"
	peak=0 bad=0
	for ((r = 1; r <= ROUNDS; r++)); do
		line+=" ${rate[$r,$i]} ($(ratio "${rate[$r,$i]}" "${wh_rate[$r,$CONNS,0]}")), ${cpu[$r,$i]} µs |"
		[ "${rss[$r,$i]}" -gt "$peak" ] && peak=${rss[$r,$i]}
		bad=$((bad + lost[$r,$i]))
	done
	table+=$'\n'"$line $((peak / 1024)) MiB | $bad |"
done
for c in "${wh_conns[@]}"; do
	for j in "${!wh_cmd[@]}"; do
		how=/bin/sh
		[ "${wh_how[$j]}" = direct ] && how=direct
		line="| webhook exec \`${wh_cmd[$j]}\` (sync, $c connections) | $how |"
		peak=0 bad=0
		for ((r = 1; r <= ROUNDS; r++)); do
			line+=" ${wh_rate[$r,$c,$j]} ($(ratio "${wh_rate[$r,$c,$j]}" "${wh_rate[$r,$CONNS,0]}")) |"
			[ "${wh_rss[$r,$c,$j]}" -gt "$peak" ] && peak=${wh_rss[$r,$c,$j]}
			bad=$((bad + wh_non2xx[$r,$c,$j]))
		done
		table+=$'\n'"$line $((peak / 1024)) MiB | $bad |"
	done
done
report=$(cat <<MD

## Dispatch — $(date -u +%Y-%m-%d)
\`N=$N HOOKS=$HOOKS CONNS=$CONNS DURATION=$DURATION WORKERS=$WORKERS ROUNDS=$ROUNDS CMD='$CMD' DIRECT_CMD='$DIRECT_CMD' TH=$TH BASE_TH=$BASE_TH bench/dispatch.sh\` on $cpus CPUs.
trellohook: $N stored events over $HOOKS webhooks, each delivered to one handler by $WORKERS workers (claim, run,
record on disk); timed from serve start until all $N are \`done\`. webhook 2.8: wrk, ${DURATION}s, the command run per
request in synchronous mode (through /bin/sh, and the plain-words command also started directly). Each round runs every row once, in the order of the table's
trellohook rows, then webhook; "× webhook" is against webhook's \`$CMD\` with $CONNS connections in the same round.
Load before: \`$load_before\`; after: \`$load_after\`.

$table

Forward (loopback node:http answering 204), once after the rounds: $fwd_rate deliveries/s, serve CPU $fwd_cpu µs per delivery, peak RSS $((fwd_rss / 1024)) MiB, $fwd_lost not delivered.
MD
)
echo "$report"
if [ "${APPEND:-0}" = 1 ]; then
	[ -f bench/RESULTS.md ] || printf '# Benchmarks\n' >bench/RESULTS.md
	printf '%s\n' "$report" >>bench/RESULTS.md
fi
