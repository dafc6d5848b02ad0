#!/usr/bin/env bash
# bench/syscalls.sh SIZE SESSIONS [MESSAGES]
#
# Counts outguard's system calls per relayed message: outguard runs under
# `strace -f -c` while outguard-load sends MESSAGES messages of SIZE bytes
# over SESSIONS sessions (pipelined MAIL, RCPT, DATA) to it, and it relays
# them to postfix's smtp-sink. Start-up and shutdown are counted too: run
# enough messages (default 2000) for them not to matter, or compare two
# builds at the same count. Prints strace's table and the calls per
# message of the I/O ones.
#
# OUTGUARD_BIN runs that outguard binary instead of building this tree's
# (to compare with an older commit). OUTGUARD_BENCH_CONFIG_EXTRA and
# OUTGUARD_BENCH_PROTO=bdat as in bench/relay.sh. OUTGUARD_BENCH_LOG_LEVEL
# sets log.level (default warn; info logs a line per transaction).
set -euo pipefail

SIZE=${1:?usage: bench/syscalls.sh SIZE SESSIONS [MESSAGES]}
SESSIONS=${2:?usage: bench/syscalls.sh SIZE SESSIONS [MESSAGES]}
MESSAGES=${3:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
	kill -INT "${OG_PID:-}" 2>/dev/null || true
	sleep 1
	kill "${SINK_PID:-}" $(jobs -p) 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null
if ! command -v smtp-sink >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi

cd "$ROOT"

. "$ROOT/bench/lib.sh"
bench_binaries
SINK_PORT=$(free_port)
OG_PORT=$(free_port)
ADMIN_PORT=$(free_port)

SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
smtp-sink "${SINK_USER[@]}" -m 1000 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

bench_config "max_connections: 2000, max_connections_per_ip: 2000" "${OUTGUARD_BENCH_LOG_LEVEL:-warn}"
strace -f -c -o "$WORK/strace.txt" "$WORK/outguard" serve --config "$WORK/bench.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
wait_ready 300
PROTO_ARGS=()
[ "${OUTGUARD_BENCH_PROTO:-data}" = bdat ] && PROTO_ARGS=(--bdat)
"$WORK/outguard-load" --addr "127.0.0.1:$OG_PORT" --user bench --password trial-token \
	-c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" "${PROTO_ARGS[@]}"
# strace writes its summary when outguard exits: stop outguard (strace's
# child), not strace.
kill -INT "$(pgrep -P "$OG_PID")"
wait "$OG_PID" || true
OG_PID=""
cat "$WORK/strace.txt"
python3 - "$WORK/strace.txt" "$MESSAGES" <<'EOF'
import sys
msgs = int(sys.argv[2])
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        # seconds usecs/call calls [errors] syscall
        calls[f[-1]] = int(f[3])
total = sum(calls.values())
io = ["read", "write", "writev", "sendmsg", "recvfrom", "sendto", "epoll_pwait", "epoll_wait", "futex", "nanosleep", "setsockopt", "getsockopt", "fsync", "fdatasync", "pwrite64", "pread64", "openat", "close", "unlinkat"]
print(f"messages {msgs}: {total} syscalls, {total/msgs:.1f} per message")
print("per message: " + ", ".join(f"{k} {calls[k]/msgs:.1f}" for k in io if k in calls))
EOF
