#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the unit tests and the receive/dispatch e2e tests against a
# ThreadSanitizer build (make tsan sets one up in build-tsan/):
#   scripts/tsan.sh BUILD_DIR
# Every process writes its reports to BUILD_DIR/tsan-reports/ (log_path), so
# a race inside a server that an e2e test started counts as well; any report
# fails the run (halt_on_error also makes that process exit 66).
set -uo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:?usage: scripts/tsan.sh BUILD_DIR}" && pwd)
reports="$build/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
# die_after_fork=0: the store suite forks a child that opens its own store
# (a process that died holding a lease); TSan cannot follow threads started
# after a multi-threaded fork and would kill that child, which is not a race.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 die_after_fork=0 log_path=$reports/tsan suppressions=$PWD/scripts/tsan.supp"
failed=0
echo "== tsan: unit tests"
meson test -C "$build" --suite unit --print-errorlogs --timeout-multiplier 4 >"$build/tsan-unit.log" 2>&1 ||
	{ failed=1; grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$build/tsan-unit.log"; }
grep -E '^(Ok|Fail|Timeout):' "$build/tsan-unit.log" | tr '\n' ' '
echo
echo "== tsan: e2e receive + dispatch"
flags=(--test)
node --test-concurrency=1 -e 0 >/dev/null 2>&1 && flags+=(--test-concurrency=1)
TH_BUILD="$build" node "${flags[@]}" tests/e2e/receive.test.mjs tests/e2e/dispatch.test.mjs \
	>"$build/tsan-e2e.log" 2>&1 || { failed=1; grep -E '^not ok|^# (pass|fail)' "$build/tsan-e2e.log"; }
grep -E '^# (pass|fail) ' "$build/tsan-e2e.log" | tr '\n' ' '
echo
n=$(find "$reports" -type f | wc -l)
if [ "$n" -gt 0 ]; then
	echo "tsan: $n report file(s) in $reports:"
	for f in "$reports"/*; do
		echo "--- $f"
		grep -E '^WARNING: ThreadSanitizer|^SUMMARY' "$f" | head -4
	done
	failed=1
fi
if [ "$failed" -eq 0 ]; then
	echo "tsan: 0 reports"
else
	echo "tsan: FAILED"
fi
[ "$failed" -eq 0 ]
