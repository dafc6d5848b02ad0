#!/usr/bin/env bash
# bench/behind-postfix.sh SIZE SESSIONS [MESSAGES] [ROUNDS]
#
# outguard in front of a real outbound MTA, as it is deployed:
# outguard-load -> outguard -> a private Postfix relay (bench_postfix_start
# in bench/lib.sh: smtpd -> queue -> smtp) -> postfix's smtp-sink.
# Postfix's smtpd offers PIPELINING and CHUNKING, so one outguard sends
# its messages with BDAT (next_hop.chunking, the default) and a second
# one, with next_hop.chunking off, with DATA. The two alternate for ROUNDS
# rounds (default 3); each leg ends when Postfix has delivered every
# message from its queue. Per leg it prints msgs/s end to end, the
# client's p50/p99 latency to outguard's final reply and the CPU time per
# message of outguard and of Postfix (its master, live and reaped
# children), then per mode the medians:
#   bdat: msgs/s N  p50 Nus p99 Nus  outguard cpu per msg Nus  postfix Nus
#
# Needs root and postfix (installed when missing). OUTGUARD_BIN,
# OUTGUARD_LOAD_BIN, OUTGUARD_BENCH_CONFIG_EXTRA and
# OUTGUARD_BENCH_LOG_LEVEL as in bench/relay.sh.
set -euo pipefail

SIZE=${1:?usage: bench/behind-postfix.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
SESSIONS=${2:?usage: bench/behind-postfix.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
MESSAGES=${3:-4000}
ROUNDS=${4:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PF_CONF=""
declare -A OG_PID
cleanup() {
	kill -INT "${OG_PID[@]}" 2>/dev/null || true
	if [ -n "$PF_CONF" ]; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
	sleep 1
	kill "${SINK_PID:-}" $(jobs -p) 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/behind-postfix.sh runs Postfix: it needs root" >&2; exit 2; }
if ! command -v smtp-sink >/dev/null || ! command -v postfix >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi

cd "$ROOT"

. "$ROOT/bench/lib.sh"
bench_binaries
SINK_PORT=$(free_port)
smtp-sink -u nobody -m 1000 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!
bench_postfix_start || { echo "postfix did not start (see $PF_DIR/maillog)" >&2; exit 1; }

declare -A OG_ADDR
for mode in bdat data; do
	extra=""
	[ "$mode" = data ] && extra=", chunking: false"
	OG_PORT=$(free_port)
	ADMIN_PORT=$(free_port)
	OG_CONFIG=$WORK/$mode.yaml OG_DATA=$WORK/data-$mode NEXTHOP_PORT=$PF_PORT NEXTHOP_EXTRA=$extra \
		bench_config "max_connections: 2000, max_connections_per_ip: 2000" "${OUTGUARD_BENCH_LOG_LEVEL:-warn}"
	"$WORK/outguard" serve --config "$WORK/$mode.yaml" 2>"$WORK/outguard-$mode.log" &
	OG_PID[$mode]=$!
	wait_ready 300
	kill -0 "${OG_PID[$mode]}" 2>/dev/null || { echo "outguard did not start:" >&2; cat "$WORK/outguard-$mode.log" >&2; exit 1; }
	OG_ADDR[$mode]=127.0.0.1:$OG_PORT
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
TICK=$(getconf CLK_TCK)
RESULTS=$WORK/results
for r in $(seq "$ROUNDS"); do
	for mode in bdat data; do
		o0=$(cpu "${OG_PID[$mode]}"); p0=$(pf_cpu); sent0=$(pf_sent)
		t0=$(date +%s.%N)
		out=$("$WORK/outguard-load" --addr "${OG_ADDR[$mode]}" -c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" --json --user bench --password trial-token)
		ok=$(echo "$out" | field ok)
		for _ in $(seq 6000); do
			[ $(( $(pf_sent) - sent0 )) -ge "$ok" ] && [ "$(pf_queued)" = 0 ] && break
			sleep 0.05
		done
		t1=$(date +%s.%N)
		o1=$(cpu "${OG_PID[$mode]}"); p1=$(pf_cpu)
		line=$(python3 -c "
ok, secs, tick = $ok, $t1 - $t0, $TICK
print(f'$mode {ok / secs:.1f} $(echo "$out" | field p50_us) $(echo "$out" | field p99_us) {1e6 * ($o1 - $o0) / tick / ok:.1f} {1e6 * ($p1 - $p0) / tick / ok:.1f} $(echo "$out" | field failed)')")
		echo "$line" >> "$RESULTS"
		set -- $line
		printf 'round %d %-4s %8s msgs/s end to end (p50 %sus p99 %sus, failed %s) outguard cpu per msg %sus, postfix %sus\n' "$r" "$1" "$2" "$3" "$4" "$7" "$5" "$6"
	done
done
python3 - "$SIZE" "$SESSIONS" "$MESSAGES" "$RESULTS" <<'PY'
import collections, statistics as st, sys
size, sessions, msgs, path = sys.argv[1:5]
rows = collections.defaultdict(list)
for line in open(path):
    f = line.split()
    rows[f[0]].append([float(x) for x in f[1:6]])
print(f"size {size} sessions {sessions} messages {msgs}: outguard -> Postfix -> smtp-sink, medians")
for mode in ("bdat", "data"):
    cols = list(zip(*rows[mode]))
    m = [st.median(c) for c in cols]
    print(f"{mode}: msgs/s {m[0]:.1f}  p50 {m[1]:.0f}us p99 {m[2]:.0f}us  outguard cpu per msg {m[3]:.1f}us  postfix {m[4]:.1f}us")
PY
