#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/sync.sh — how close does `trellohook sync` come to what Trello's rate
# limits allow?
#
# Setup: trello-mock with Trello's default limits (300 requests / 10 s per key,
# 100 / 10 s per token), a real `trellohook serve` (the mock's HEAD checks hit
# it), 2 tokens × N (default 200) webhooks stored locally but not on Trello.
# Then `trellohook sync` registers all of them: per token 1 listing + N
# creates. The rate limits allow at best requests / limit per token (the
# tokens run in parallel, the key limit of 300 / 10 s is not the binding one
# for 2 tokens). Prints both times and their ratio.
#
#   bench/sync.sh            (BUILD=build N=200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-200}
TOKEN_LIMIT=100   # per token per window (Trello's default, also the mock's)
KEY_LIMIT=300     # per key per window
WINDOW_S=10

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

KEY=$(openssl rand -hex 16)
SECRET=$(openssl rand -hex 32)
T1="ATTA$(openssl rand -hex 32)$(openssl rand -hex 4 | tr a-f A-F)"
T2="ATTA$(openssl rand -hex 32)$(openssl rand -hex 4 | tr a-f A-F)"

"$BUILD/trello-mock" --key "$KEY" --secret "$SECRET" --token "$T1" --token "$T2" \
	--log-level warn >"$tmp/mock.out" 2>"$tmp/mock.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/mock.out" ] && break; sleep 0.05; done
MOCK=$(head -1 "$tmp/mock.out")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

export DATABASE_URL="sqlite:$tmp/th.db" TRELLO_API_URL="$MOCK" TRELLO_API_KEY="$KEY" \
	TRELLO_API_SECRET="$SECRET" CALLBACK_DOMAIN="http://127.0.0.1:$PORT" \
	TRELLOHOOK_HEALTH_INTERVAL=0 TRELLOHOOK_LOG_LEVEL=warn
"$BUILD/trellohook" serve --listen "127.0.0.1:$PORT" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^serving' "$tmp/serve.out" 2>/dev/null && break; sleep 0.05; done

# N boards on the mock (its control API is not rate limited)
for i in $(seq "$N"); do
	curl -sf -X POST "${MOCK%/1}/_mock/boards" -d "{\"name\":\"bench $i\"}"
	echo
done | python3 -c 'import json,sys; [print(json.loads(l)["id"]) for l in sys.stdin if l.strip()]' >"$tmp/boards"

# 2 × N local webhooks that Trello does not have yet (as after a restore)
"$BUILD/trellohook" migrate >/dev/null
python3 - "$tmp/th.db" "$tmp/boards" "$T1" "$T2" "$CALLBACK_DOMAIN" <<'EOF'
import secrets, sqlite3, sys
db, boards, t1, t2, domain = sys.argv[1:]
con = sqlite3.connect(db)
ids = [l.strip() for l in open(boards) if l.strip()]
for tok in (t1, t2):
    con.execute("INSERT INTO tokens (token, member, expires_at, state, checked_at, created_at)"
                " VALUES (?, NULL, 0, 'unchecked', 0, 1)", (tok,))
    for b in ids:
        wid = secrets.token_urlsafe(15)
        con.execute("INSERT INTO webhooks (id, trello_id, id_model, model_type, model_name,"
                    " description, callback_url, token, state, active, consecutive_failures,"
                    " first_consecutive_fail_at, created_at, last_event_at)"
                    " VALUES (?, NULL, ?, 'board', 'bench', NULL, ?, ?, 'active', 0, 0, 0, 1, 0)",
                    (wid, b, f"{domain}/callbacks/{wid}", tok))
con.commit()
EOF

start=$(date +%s.%N)
"$BUILD/trellohook" sync --json >"$tmp/sync.json" 2>"$tmp/sync.err" || {
	echo "sync failed:"; tail -5 "$tmp/sync.err"; exit 1; }
end=$(date +%s.%N)

python3 - "$tmp/sync.json" "$start" "$end" "$N" "$TOKEN_LIMIT" "$KEY_LIMIT" "$WINDOW_S" \
	"${MOCK%/1}/_mock/webhooks" <<'EOF'
import json, sys, urllib.request
report, start, end, n, tl, kl, w, mock = sys.argv[1:]
n, tl, kl, w = int(n), int(tl), int(kl), float(w)
r = json.load(open(report))
done = sum(1 for a in r["actions"] if a["action"] == "register" and a["result"] == "done")
on_mock = len(json.load(urllib.request.urlopen(mock)))
per_token = n + 1                      # one listing + n creates
total = 2 * per_token
floor = max(per_token / tl * w, total / kl * w)
took = float(end) - float(start)
print(f"tokens: 2, webhooks per token: {n}, registered: {done}, on the mock: {on_mock}")
print(f"requests: {total} ({per_token} per token); limits {tl}/token and {kl}/key per {w:g} s")
print(f"sync took:          {took:.2f} s")
print(f"rate limits allow:  {floor:.2f} s (requests / limit)")
print(f"ratio:              {took / floor:.2f}")
assert done == 2 * n and on_mock == 2 * n, "not every webhook was registered"
EOF
