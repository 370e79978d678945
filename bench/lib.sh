# SPDX-License-Identifier: MIT
# bench/lib.sh — what the benchmarks share; sourced, from the repository's top
# directory, by a script that has a scratch directory in $tmp and an array
# `pids` of the processes its exit trap stops.
#
# The credentials trello-mock accepts and serve signs with: the same in every
# benchmark, so their payloads and results compare.
token="ATTA$(printf 'ab%.0s' {1..32})ABCDEF12"
key=0123456789abcdef0123456789abcdef
secret=bench-secret-0123456789abcdef0123456789

# A TCP port free on 127.0.0.1 right now.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# Wait up to 10 s for URL to answer anything; else say so and exit 1.
wait_http() {
	for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
	echo "bench: $1 did not come up" >&2
	exit 1
}

# The number after NAME= in a RESULT/BARE line (post.lua, bare_writer.c).
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Start trello-mock on a free port, its output in $tmp/mock.{out,log}; sets
# mock_url (its API root, …/1).
start_mock() {
	build/trello-mock --listen 127.0.0.1:0 --key "$key" --secret "$secret" --token "$token" \
		>"$tmp/mock.out" 2>"$tmp/mock.log" &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$tmp/mock.out" ] && break; sleep 0.05; done
	mock_url=$(head -1 "$tmp/mock.out")
	[ -n "$mock_url" ] || { echo "bench: trello-mock did not start: $(head -3 "$tmp/mock.log")" >&2; exit 1; }
}

# Make a board on the mock; prints its id.
mock_board() {
	local board
	board=$(curl -s -X POST -H 'content-type: application/json' -d '{"name":"Bench"}' "${mock_url%/1}/_mock/boards")
	node -e 'console.log(JSON.parse(process.argv[1]).id)' "$board"
}
