#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the libFuzzer targets of a fuzz build (see fuzz/README.md):
#   scripts/fuzz.sh BUILD_DIR [TARGET...]      (default: every fuzz/fuzz_*.c)
# For each target: first replay the committed crash inputs
# (fuzz/regressions/TARGET/) and the seed corpus once, then fuzz for
# $FUZZ_SECONDS (default 60) under ASan + UBSan. New inputs go to
# BUILD_DIR/fuzz-corpus/TARGET (never into the tracked seeds); a crash,
# leak, timeout or sanitizer report is saved to BUILD_DIR/fuzz-artifacts/
# and makes the script fail. Runs at nice 10 (the machine may be shared).
# FUZZ_CPU_SECONDS (optional) stops a target once it has used that much CPU
# time (a long run on a busy machine: FUZZ_SECONDS is then only an upper
# bound in wall-clock time).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [TARGET...]}
shift
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		[ "$t" = fuzz_common ] || targets+=("$t")
	done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in "${targets[@]}"; do
	bin="$build/fuzz/$t"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin is missing (configure with -Dfuzz=enabled, see fuzz/README.md)" >&2
		exit 2
	fi
	work="$build/fuzz-corpus/$t"
	art="$build/fuzz-artifacts/$t"
	log="$build/fuzz-logs/$t.log"
	mkdir -p "$work" "$art" "$(dirname "$log")"
	replay=()
	[ -d "fuzz/regressions/$t" ] && replay+=("fuzz/regressions/$t"/*)
	[ -d "fuzz/corpus/$t" ] && replay+=("fuzz/corpus/$t"/*)
	if [ ${#replay[@]} -gt 0 ] &&
		! nice -n 10 "$bin" -timeout=20 "${replay[@]}" >"$log.replay" 2>&1; then
		echo "fuzz: $t FAILED replaying the committed inputs (log: $log.replay)"
		grep -E 'ERROR|SUMMARY|Running:' "$log.replay" | tail -5
		failed=$((failed + 1))
		continue
	fi
	seeds=()
	[ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
	nice -n 10 "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
		-artifact_prefix="$art/" -print_final_stats=1 "$work" "${seeds[@]}" >"$log" 2>&1 &
	pid=$!
	stopped=0
	cpu=
	if [ -n "${FUZZ_CPU_SECONDS:-}" ]; then
		tick=$(getconf CLK_TCK)
		while kill -0 "$pid" 2>/dev/null; do
			sleep 5
			# utime + stime of every thread (fields 14 and 15 of /proc/PID/stat)
			cpu=$(awk -v t="$tick" '{print int(($14 + $15) / t)}' "/proc/$pid/stat" 2>/dev/null) || break
			if [ "${cpu:-0}" -ge "$FUZZ_CPU_SECONDS" ]; then
				kill -INT "$pid"
				stopped=1
				break
			fi
		done
	fi
	wait "$pid"
	rc=$?
	# libFuzzer exits 72 when interrupted: that is our own stop, not a finding
	[ "$stopped" -eq 1 ] && [ "$rc" -eq 72 ] && rc=0
	last=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $rc; log: $log; input saved under $art/)"
		grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5
		failed=$((failed + 1))
	else
		echo "fuzz: $t ok ($(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs${cpu:+, ${cpu}s CPU}): $last"
	fi
done
[ "$failed" -eq 0 ]
