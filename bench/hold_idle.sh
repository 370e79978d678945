#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run trellohook with HOLD (default 800) kept-alive idle connections held
# against its serve (bench/hold_idle.mjs), to see what merely open connections
# cost every delivery (bench/RESULTS.md, session 14). Execs HOLD_BIN (default
# build/trellohook) with the arguments given, so the PID is serve's; for
# `serve`, the holder starts in the background and reads the address from
# TRELLOHOOK_LISTEN, as bench/ab.sh sets it. bench/ab.sh takes one executable
# per run, so wrap each setting:
#   printf '#!/bin/sh\nHOLD=200 exec %s/bench/hold_idle.sh "$@"\n' "$PWD" >/tmp/hold200
#   chmod +x /tmp/hold200; RUNS='base=build/trellohook@sqlite hold200=/tmp/hold200@sqlite' bench/ab.sh
# The holder's own line ("N open, N answered") goes to stderr. Not a test.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${HOLD_BIN:-$here/../build/trellohook}
if [ "${1:-}" = serve ]; then
	: "${TRELLOHOOK_LISTEN:?set TRELLOHOOK_LISTEN=HOST:PORT (bench/ab.sh does)}"
	(sleep 0.3; exec node "$here/hold_idle.mjs") &
fi
exec "$bin" "$@"
