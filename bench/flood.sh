#!/usr/bin/env bash
# bench/flood.sh auth|rcpt [REV]
#
# Measures what hostile clients cost outguard before authentication
# (docs/config-smtp.md, "Resource limits"), on loopback:
#   auth: 200 parallel AUTH PLAIN with a wrong password from 127.0.0.1
#         against a user with an argon2id hash (64 MiB, as `outguard
#         hash-password` makes them), while another client (127.0.0.2)
#         authenticates and relays; then the median time of a wrong
#         password and of an unknown user.
#   rcpt: 120,000 pipelined RCPTs on the feedback listener, all refused
#         but the first, then DATA if the session is still open (so that
#         the transaction is recorded). FLOOD_PAD sets the length of the
#         refused addresses' local parts (default 200).
# It builds outguard from REV (any git revision, e.g. 4829f1a) or, without
# REV, from the working tree, runs it with a capture next hop, and prints
# the client's view (JSON from bench/flood) and the server's peak RSS
# (VmHWM) and CPU time. FLOOD_N overrides the number of AUTHs or RCPTs.
set -euo pipefail

MODE=${1:?usage: bench/flood.sh auth|rcpt [REV]}
REV=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
OG_PID=
cleanup() {
	[ -n "$OG_PID" ] && kill "$OG_PID" 2>/dev/null && wait "$OG_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

SRC=$ROOT
if [ -n "$REV" ]; then
	mkdir "$WORK/src"
	git -C "$ROOT" archive "$REV" | tar -x -C "$WORK/src"
	SRC=$WORK/src
fi
(cd "$SRC" && go build -o "$WORK/outguard" ./cmd/outguard)
(cd "$ROOT" && go build -o "$WORK/flood" ./bench/flood)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SUB_PORT=$(free_port)
FBL_PORT=$(free_port)
ADMIN_PORT=$(free_port)
HASH=$(printf '%s\n' trial-password | "$WORK/outguard" hash-password)

# Only keys that every revision knows, so that before and after run the
# same configuration with each revision's defaults.
cat > "$WORK/flood.yaml" <<YAML
hostname: outguard.localhost
data_dir: $WORK/data
log: {level: warn}
listeners:
  - {name: submission, address: "127.0.0.1:$SUB_PORT", tls: none, allow_insecure_auth: true}
  - {name: feedback, address: "127.0.0.1:$FBL_PORT", tls: none, feedback: true}
limits: {max_connections: 1000, max_connections_per_ip: 500}
next_hop: {type: capture, capture_dir: $WORK/data/capture}
domains:
  - name: out.example.net
    users:
      - {name: trial, password_hash: "$HASH"}
arf: {feedback_address: fbl@outguard.localhost}
admin: {address: "127.0.0.1:$ADMIN_PORT"}
YAML
"$WORK/outguard" serve --config "$WORK/flood.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$ADMIN_PORT/-/ready" >/dev/null 2>&1 && break
	sleep 0.1
done

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$OG_PID/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$OG_PID/stat"; }
RSS0=$(kib VmRSS)
CPU0=$(cpu)
case $MODE in
auth) OUT=$("$WORK/flood" auth --addr "127.0.0.1:$SUB_PORT" -n "${FLOOD_N:-200}") ;;
rcpt) OUT=$("$WORK/flood" rcpt --addr "127.0.0.1:$FBL_PORT" --to fbl@outguard.localhost -n "${FLOOD_N:-120000}" --pad "${FLOOD_PAD:-200}") ;;
*) echo "usage: bench/flood.sh auth|rcpt [REV]" >&2; exit 2 ;;
esac
CPU1=$(cpu)
PEAK=$(kib VmHWM)
echo "revision: ${REV:-working tree}"
echo "client: $OUT"
printf 'server: rss before %d MiB, peak rss %d MiB, cpu %.2f s\n' $((RSS0 / 1024)) $((PEAK / 1024)) \
	"$(echo "($CPU1 - $CPU0) / $(getconf CLK_TCK)" | bc -l)"
