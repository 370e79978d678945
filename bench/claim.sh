#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Claim cost against backlog: bench/claim_cost.c (see it for the set-up: a
# backlog of BACKLOG deliveries that cannot be claimed — behind a failed
# head, of a disabled handler, or of a kind not run — in front of 64 healthy
# webhooks; CLAIMS claims of LIMIT rows) on a fresh store per run, for each
# BACKLOG and MODE, with this tree's build and, when BASE is set, with
# another tree's (a checkout with its own build: BASE=/path/to/tree,
# BASE_BUILD=$BASE/build), interleaved so both see the same machine load.
# PG=1 also runs on a throwaway PostgreSQL cluster (scripts/pg.sh).
#
# usage: bench/claim.sh   (BACKLOGS='1000 10000 100000' MODES='failed disabled func'
#                          CLAIMS=200 LIMIT=8 BUILD=build BASE= BASE_BUILD=$BASE/build PG=0)
# Prints one line per run and the load average; writes nothing else. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOGS=${BACKLOGS:-1000 10000 100000}
MODES=${MODES:-failed disabled func}
CLAIMS=${CLAIMS:-200}
LIMIT=${LIMIT:-8}
BUILD=${BUILD:-build}
BASE=${BASE:-}
BASE_BUILD=${BASE_BUILD:-${BASE:+$BASE/build}}
PG=${PG:-0}
[ -f "$BUILD/libtrellohook.a" ] || { echo "bench: no $BUILD/libtrellohook.a (make build)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/th-bench-claim.XXXXXX)
pgdir=
cleanup() { [ -z "$pgdir" ] || scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
libs=$(pkg-config --libs libmicrohttpd libcurl jansson libcrypto libsodium sqlite3 liblz4 libpq)
# build TREE BUILD_DIR OUT: claim_cost.c against that tree's headers and library
build() {
	# shellcheck disable=SC2086
	cc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE -I"$1/src" -I"$1/include" \
		$(pkg-config --cflags libpq) bench/claim_cost.c \
		"$2/libtrellohook.a" $libs -lpthread -lm -o "$3"
}
build . "$BUILD" "$tmp/claim_cost"
bins=("$tmp/claim_cost")
names=(this)
if [ -n "$BASE" ]; then
	build "$BASE" "$BASE_BUILD" "$tmp/claim_cost_base"
	bins=("$tmp/claim_cost_base" "$tmp/claim_cost")
	names=(base this)
fi
if [ "$PG" = 1 ]; then
	pgdir=$(mktemp -u /tmp/th-bench-claim-pg.XXXXXX) # the postgres user must reach it
	pgurl=$(scripts/pg.sh start "$pgdir")
fi
echo "load before: $(uptime)"
n=0
for b in $BACKLOGS; do
	for m in $MODES; do
		for i in "${!bins[@]}"; do
			n=$((n + 1))
			printf '%s ' "${names[$i]}"
			"${bins[$i]}" "sqlite:$tmp/s$n.db" "$b" "$m" "$CLAIMS" "$LIMIT"
			rm -f "$tmp/s$n.db"*
			if [ "$PG" = 1 ]; then
				db="claim$n"
				psql -q "$pgurl" -c "CREATE DATABASE $db"
				printf '%s ' "${names[$i]}"
				"${bins[$i]}" "${pgurl%/*}/$db" "$b" "$m" "$CLAIMS" "$LIMIT"
				psql -q "$pgurl" -c "DROP DATABASE $db"
			fi
		done
	done
done
echo "load after: $(uptime)"
