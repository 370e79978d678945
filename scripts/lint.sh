#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Static checks of the tree, run by `make lint` (and CI):
#  - every C file is formatted by the committed .clang-format;
#  - no banned C functions (see the shared STYLE.md): strcpy, strcat, sprintf,
#    gets, atoi, strtok.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files '*.c' '*.h')
if command -v clang-format >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	if ! clang-format --dry-run -Werror $files 2>/tmp/th-format.$$; then
		echo "lint: files not formatted by .clang-format (run: clang-format -i \$(git ls-files '*.c' '*.h')):" >&2
		grep -o '^[^:]*\.[ch]' /tmp/th-format.$$ | sort -u | sed 's/^/  /' >&2
		status=1
	fi
	rm -f /tmp/th-format.$$
else
	echo "lint: clang-format is not installed; skipping the format check" >&2
fi
# shellcheck disable=SC2086
banned=$(grep -nE '(^|[^a-zA-Z0-9_])(strcpy|strcat|sprintf|gets|atoi|strtok)[[:space:]]*\(' $files || true)
if [ -n "$banned" ]; then
	echo "lint: banned C functions (use str_copy, buf_printf, str_printf, num_parse_i64):" >&2
	echo "$banned" >&2
	status=1
fi
[ $status -eq 0 ] && echo "lint: ok ($(echo "$files" | wc -l) files)"
exit $status
