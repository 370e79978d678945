#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: serve against the real Trello when its three variables are set,
# otherwise start the local demo (trello-mock + trellohook, no account needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/trellohook
if [ -n "${TRELLO_API_KEY:-}" ] && [ -n "${TRELLO_API_SECRET:-}" ] && [ -n "${CALLBACK_DOMAIN:-}" ]; then
	echo "run: TRELLO_API_KEY, TRELLO_API_SECRET and CALLBACK_DOMAIN are set: serving against Trello" >&2
	exec "$bin" serve
fi
if "$bin" demo --help >/dev/null 2>&1; then
	echo "run: no Trello variables set: starting the local demo (see README)" >&2
	exec "$bin" demo
fi
missing=()
for v in TRELLO_API_KEY TRELLO_API_SECRET CALLBACK_DOMAIN; do [ -n "${!v:-}" ] || missing+=("$v"); done
echo "run: set ${missing[*]} to serve against Trello, e.g." >&2
echo "  TRELLO_API_KEY=0123456789abcdef0123456789abcdef TRELLO_API_SECRET=... CALLBACK_DOMAIN=https://hooks.example.com make run" >&2
echo "run: serving with a local demo secret on http://127.0.0.1:8000 meanwhile (GET /healthz)" >&2
TRELLO_API_SECRET=${TRELLO_API_SECRET:-local-demo-secret} CALLBACK_DOMAIN=${CALLBACK_DOMAIN:-http://127.0.0.1:8000} exec "$bin" serve
