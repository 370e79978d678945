#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run trellohook with some of serve's threads at another nice, for A/B runs of
# thread priorities without a rebuild (bench/RESULTS.md, session 13). Execs
# NICE_BIN (default build/trellohook) with the arguments given, so the PID is
# serve's; for `serve`, a background loop waits until every named thread
# exists and sets its nice (renice -n, absolute on util-linux >= 2.38; check
# /proc/PID/task/TID/stat field 19), twice, 0.5 s apart.
#   NICE_SPEC="th-writer:-10"   or   NICE_SPEC="MHD-worker:5 th-checkpoint:10"
# bench/ab.sh takes one executable per run, so wrap each spec:
#   printf '#!/bin/sh\nNICE_SPEC="th-writer:-10" exec %s/bench/renice_threads.sh "$@"\n' "$PWD" >/tmp/wr10
#   chmod +x /tmp/wr10; RUNS='base=build/trellohook@sqlite wr10=/tmp/wr10@sqlite' bench/ab.sh
# A negative nice needs root or RLIMIT_NICE (ulimit -e). Not a test.
set -u
spec=${NICE_SPEC:?set NICE_SPEC, e.g. NICE_SPEC="th-writer:-10"}
bin=${NICE_BIN:-$(dirname "$0")/../build/trellohook}
me=$$
apply() { # 0 when every named thread was found (and reniced)
	local s name n t all=0 found
	for s in $spec; do
		name=${s%%:*} n=${s##*:} found=0
		for t in /proc/"$me"/task/*; do
			[ "$(cat "$t/comm" 2>/dev/null)" = "$name" ] || continue
			found=1
			renice -n "$n" -p "${t##*/}" >/dev/null || echo "renice_threads: cannot set $name to $n" >&2
		done
		[ "$found" = 1 ] || all=1
	done
	return "$all"
}
if [ "${1:-}" = serve ]; then
	(
		for _ in $(seq 1 200); do
			sleep 0.05
			if apply; then
				sleep 0.5; apply; echo "renice_threads: $spec" >&2; exit 0
			fi
		done
		echo "renice_threads: not every thread of '$spec' appeared within 10 s" >&2
	) &
fi
exec "$bin" "$@"
