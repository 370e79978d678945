#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The architecture's rules, checked on the tree (make check-layers; CI runs it):
#  1. a folder of src/ includes only folders of a lower rank, and itself:
#       util 0 · model, http, config 1 · store, trello 2 · service 3 ·
#       dispatch, server 4 · app 5 · cli 6
#     mock/ (a separate program) includes only util, http and model;
#  2. only store/, service/ and dispatch/ call the store's function table
#     (store_<op>() wrappers, or st->ops-> inside store/);
#  3. no .c file over 1,000 lines, no function over 120 lines.
# Prints each broken rule with its place; exits 1 when any.
set -uo pipefail
cd "$(dirname "$0")/.."

declare -A rank=([util]=0 [model]=1 [http]=1 [config]=1 [store]=2 [trello]=2 [service]=3
	[dispatch]=4 [server]=4 [app]=5 [cli]=6)
status=0
fail() { echo "check-layers: $*"; status=1; }

# --- 1. includes by folder rank ---------------------------------------------------
while IFS= read -r f; do
	dir=${f#src/}
	dir=${dir%%/*}
	while IFS=: read -r line inc; do
		[ -n "$inc" ] || continue
		to=${inc%%/*}
		[ "$to" = "$dir" ] && continue
		if [ "$dir" = mock ]; then
			case "$to" in util | http | model) ;; *) fail "$f:$line: mock/ includes $inc (only util, http, model)" ;; esac
			continue
		fi
		[ -n "${rank[$dir]:-}" ] || { fail "$f: folder src/$dir/ has no rank"; break; }
		if [ -z "${rank[$to]:-}" ]; then
			fail "$f:$line: includes $inc from a folder with no rank"
		elif [ "${rank[$to]}" -ge "${rank[$dir]}" ]; then
			fail "$f:$line: $dir/ (rank ${rank[$dir]}) includes $inc (rank ${rank[$to]})"
		fi
	done < <(grep -nE '^#include "[a-z_]+/' "$f" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done < <(git ls-files 'src/*.c' 'src/*.h')

# --- 2. who calls the store's function table --------------------------------------
ops=$(sed -n '/^struct store_ops {/,/^};/p' src/store/store.h |
	grep -oE '\(\*[a-z_]+\)' | tr -d '(*)' | grep -v '^close$' | paste -sd'|')
while IFS= read -r hit; do
	fail "$hit: the store is called from outside store/, service/ and dispatch/"
done < <(git grep -nE "\bstore_($ops|name)\(|->ops->" -- 'src/*.c' 'src/*.h' |
	grep -vE '^src/(store|service|dispatch)/' | cut -d: -f1,2)

# --- 3. file and function lengths -------------------------------------------------
while IFS= read -r f; do
	n=$(wc -l <"$f")
	[ "$n" -le 1000 ] || fail "$f: $n lines (at most 1,000)"
	# clang-format puts a function's braces in column 0: count from '{' to '}'
	awk -v f="$f" '
		/^[A-Za-z_].*\(/ { sig = $0; sigline = NR }
		/^\{/ { start = NR; name = sig }
		/^\}/ && start {
			len = NR - start - 1
			if (len > 120) {
				sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
				printf "check-layers: %s:%d: function %s has %d lines (at most 120)\n", f, sigline, name, len
				bad = 1
			}
			start = 0
		}
		END { exit bad }' "$f" || status=1
done < <(git ls-files 'src/*.c')

[ $status -eq 0 ] && echo "check-layers: ok"
exit $status
