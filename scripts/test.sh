#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run every test suite against the build in $1 (default build/) and end with
# one line "N passed, N failed". Exits non-zero when anything failed.
#   unit:    cmocka binaries through `meson test` (one per module)
#   e2e:     Node's test runner over tests/e2e/*.test.mjs, with real processes
#            (trello-mock, trellohook serve) on 127.0.0.1
#   abuse:   tests/abuse/*.test.mjs, hostile clients against a real serve
#   browser: tests/browser/*.test.mjs (Chromium through playwright-core)
set -uo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
export TH_BUILD="$build"
logdir="$build/test-logs"
mkdir -p "$logdir"
passed=0
failed=0

echo "== unit tests (meson test)"
meson test -C "$build" --suite unit --print-errorlogs >"$logdir/unit.log" 2>&1
unit_rc=$?
grep -E '^ *[0-9]+/[0-9]+ ' "$logdir/unit.log" || true
ok=$(awk '/^Ok:/ {print $2}' "$logdir/unit.log")
bad=$(awk '/^Fail:/ {print $2}' "$logdir/unit.log")
to=$(awk '/^Timeout:/ {print $2}' "$logdir/unit.log")
passed=$((passed + ${ok:-0}))
failed=$((failed + ${bad:-0} + ${to:-0}))
# a cmocka test that skip()s leaves its binary OK: name each one, so a skip
# is never read as a pass
skips=$(grep -h '^\[  SKIPPED \] [a-z_]' "$build/meson-logs/testlog.txt" 2>/dev/null | sort -u)
if [ -n "$skips" ]; then
	echo "-- skipped inside the unit binaries above (why: $build/meson-logs/testlog.txt):"
	echo "$skips" | sed 's/^\[  SKIPPED \] /  skipped: /'
fi
if [ "$unit_rc" -ne 0 ] && [ "${bad:-0}" -eq 0 ] && [ "${to:-0}" -eq 0 ]; then
	echo "meson test failed to run:"; tail -30 "$logdir/unit.log"; failed=$((failed + 1))
elif [ "$unit_rc" -ne 0 ]; then
	sed -n '/^=* [0-9]*\/[0-9]* =*$/,/^==*$/p' "$logdir/unit.log" | tail -80
fi

# Node's test runner: Debian 12's own nodejs is 18.x, where some flags do not
# exist yet (an unknown flag makes node exit): use each only where it works.
node_flags=(--test --test-reporter=tap)
for flag in --test-concurrency=2 --test-timeout=300000; do
	node "$flag" -e 0 >/dev/null 2>&1 && node_flags+=("$flag")
done

failed_logs=() # "suite:tap log" of each node suite that failed, for the digest at the end
run_node_suite() { # name, directory
	local name=$1 dir=$2 files
	files=$(ls "$dir"/*.test.mjs 2>/dev/null) || return 0
	[ -n "$files" ] || return 0
	echo "== $name tests (node --test)"
	# shellcheck disable=SC2086
	node "${node_flags[@]}" $files >"$logdir/$name.tap" 2>&1
	local rc=$? p f
	grep -E '^(not ok|ok) ' "$logdir/$name.tap" | sed 's/^/  /'
	p=$(awk '/^# pass / {print $3}' "$logdir/$name.tap" | tail -1)
	f=$(awk '/^# fail / {print $3}' "$logdir/$name.tap" | tail -1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	[ "$rc" -ne 0 ] && failed_logs+=("$name:$logdir/$name.tap")
	if [ "$rc" -ne 0 ]; then
		[ "${f:-0}" -eq 0 ] && failed=$((failed + 1))
		echo "-- $name failures (full log: $logdir/$name.tap):"
		grep -n -B2 -A25 '^not ok\|^    not ok' "$logdir/$name.tap" | head -150
	fi
}
run_node_suite e2e tests/e2e
# hostile clients against a real serve (slow heads/bodies, floods, framing, NULs, logs)
run_node_suite abuse tests/abuse
# the browser suite needs playwright-core, which `make test` installs: say so
# rather than fail on a missing module
if [ -d tests/browser/node_modules/playwright-core ]; then
	run_node_suite browser tests/browser
else
	echo "== browser tests: playwright-core is not installed in tests/browser/node_modules"
	echo "   run 'make test' (or 'make browser-deps', then this script again)"
	failed=$((failed + 1))
fi

# Why each test failed, again at the very end: a CI log is often read from
# its tail, where the failures' details above are out of sight.
unit_failed=$(grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$logdir/unit.log" 2>/dev/null)
if [ "${#failed_logs[@]}" -gt 0 ] || [ -n "$unit_failed" ]; then
	echo
	echo "== what failed (the whole logs: $logdir)"
	[ -n "$unit_failed" ] && echo "$unit_failed" | sed 's/^ */  ✗ unit: /'
	for entry in "${failed_logs[@]}"; do
		awk -v suite="${entry%%:*}" -f scripts/tap-failures.awk "${entry#*:}"
	done
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
