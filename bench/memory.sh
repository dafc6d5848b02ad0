#!/usr/bin/env bash
# bench/memory.sh SESSIONS SIZE [HOLD]
#
# Measures outguard's memory with SESSIONS concurrent sessions, on
# loopback, relaying to postfix's smtp-sink. outguard-load connects and
# authenticates every session first (--hold), keeps them idle for HOLD
# (default 3s), then each session sends one message of SIZE bytes, all at
# the same time. It prints outguard's resident memory (from
# /proc/PID/status):
#   start:  after start-up, before any connection
#   idle:   VmRSS with SESSIONS authenticated sessions idle
#   peak:   VmHWM, the high-water mark, after every message was relayed
# and the same per session. OUTGUARD_BENCH_CONFIG_EXTRA appends a file to
# the configuration (bench/accept-all.yaml: classification off), as in
# bench/relay.sh; OUTGUARD_BENCH_PROTO=bdat sends with BDAT;
# OUTGUARD_BENCH_MESSAGE_MEMORY sets limits.message_memory_bytes.
# OUTGUARD_BIN and OUTGUARD_LOAD_BIN run those binaries instead of
# building this tree's (bench/lib.sh, bench_binaries).
set -euo pipefail

SESSIONS=${1:?usage: bench/memory.sh SESSIONS SIZE [HOLD]}
SIZE=${2:?usage: bench/memory.sh SESSIONS SIZE [HOLD]}
HOLD=${3:-3s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
	kill -INT "${OG_PID:-}" 2>/dev/null || true
	sleep 1
	kill "${SINK_PID:-}" $(jobs -p) 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v smtp-sink >/dev/null; then
	echo "installing postfix for smtp-sink" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
# Each session holds two descriptors in outguard and one in the load tool.
ulimit -n $(( SESSIONS * 4 + 1024 )) 2>/dev/null || true

cd "$ROOT"

. "$ROOT/bench/lib.sh"
bench_binaries
SINK_PORT=$(free_port)
OG_PORT=$(free_port)
ADMIN_PORT=$(free_port)

SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
# -t: a next-hop connection waits idle while its client sends a large
# message; under load that takes longer than smtp-sink's 100 s default.
smtp-sink "${SINK_USER[@]}" -t 900 -m $(( SESSIONS + 100 )) 127.0.0.1:"$SINK_PORT" 4096 &
SINK_PID=$!

bench_config "max_connections: $(( SESSIONS + 100 )), max_connections_per_ip: $(( SESSIONS + 100 ))${OUTGUARD_BENCH_MESSAGE_MEMORY:+, message_memory_bytes: $OUTGUARD_BENCH_MESSAGE_MEMORY}"
"$WORK/outguard" serve --config "$WORK/bench.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
wait_ready

kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
START=$(kb "$OG_PID" VmRSS)

PROTO_ARGS=()
[ "${OUTGUARD_BENCH_PROTO:-data}" = bdat ] && PROTO_ARGS=(--bdat)
mkfifo "$WORK/load.err"
"$WORK/outguard-load" --addr "127.0.0.1:$OG_PORT" --user bench --password trial-token \
	-c "$SESSIONS" -m "$SESSIONS" -s "$SIZE" --hold "$HOLD" --timeout 300s --json "${PROTO_ARGS[@]}" \
	>"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!
IDLE=""
while IFS= read -r line; do
	case $line in
	connected*)
		# Let the last sessions settle, then sample.
		sleep 1
		IDLE=$(kb "$OG_PID" VmRSS)
		;;
	*) echo "$line" >&2 ;;
	esac
done <"$WORK/load.err"
wait "$LOAD_PID" || true
PEAK=$(kb "$OG_PID" VmHWM)
python3 - "$SESSIONS" "$SIZE" "$START" "${IDLE:-0}" "$PEAK" "$WORK/load.json" <<'EOF'
import json, sys
n, size, start, idle, peak = (int(x) for x in sys.argv[1:6])
r = json.load(open(sys.argv[6]))
print(f"sessions {n} size {size}: ok {r['ok']} failed {r['failed']} p50 {r['p50_us']}us p99 {r['p99_us']}us")
if r.get('first_error'): print(f"first error: {r['first_error']}")
print(f"outguard rss start {start/1024:.0f} MB, idle {idle/1024:.0f} MB ({(idle-start)/n:.0f} KB per session)")
print(f"outguard peak rss (VmHWM) {peak/1024:.0f} MB ({(peak-start)/n:.0f} KB per session)")
EOF
