#!/usr/bin/env bash
# bench/relay.sh SIZE SESSIONS [MESSAGES] [ROUNDS]
#
# Measures what outguard costs as a relay, on loopback. In one run it
# alternates (A B A B ...) for ROUNDS rounds (default 3):
#   A: outguard-load straight to postfix's smtp-sink
#   B: outguard-load -> outguard (the configured pipeline) -> the same sink
# and records throughput, the latency of each message from MAIL to the
# final reply (p50 and p99, as outguard-load measures it) and each
# process's CPU time per message (from /proc/PID/stat). It ends with:
#   ratio outguard/direct msgs/s: 0.NN
#   cpu outguard/sink per msg: N.NN
#   added latency p50 Nus p99 Nus (outguard's median p50/p99 minus direct's)
#
# OUTGUARD_BENCH_PROTO chooses how the load tool hands messages to
# outguard: data (the default), bdat (CHUNKING, RFC 3030: one BDAT LAST
# per message, or chunks of OUTGUARD_BENCH_CHUNK bytes) or both (B runs
# twice per round, DATA then BDAT, each with its own figures). Leg A
# always uses DATA: smtp-sink does not offer CHUNKING.
# OUTGUARD_BENCH_CONFIG_EXTRA appends a file to the configuration (see
# bench/accept-all.yaml). OUTGUARD_BIN runs that outguard binary instead
# of building this tree's (to compare with another commit).
#
# A third leg, C, runs when postfix is installed and the script runs as
# root (OUTGUARD_BENCH_POSTFIX=0 turns it off): a private Postfix instance
# as a plain relay (smtpd -> queue -> smtp, no filter; its own
# configuration, queue and log in the work folder) to the same sink,
# driven by the same load tool over DATA, measured end to end: from the
# first connection until every message is delivered from its queue. Its
# CPU time is the master's and its children's, the exited ones included.
# Needs smtp-sink (Debian package postfix; installed when missing).
set -euo pipefail

SIZE=${1:?usage: bench/relay.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
SESSIONS=${2:?usage: bench/relay.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
MESSAGES=${3:-$(( SESSIONS * 200 > 4000 ? SESSIONS * 200 : 4000 ))}
ROUNDS=${4:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
WORK=$(mktemp -d)
PF_CONF=""
cleanup() {
	kill -INT "${OG_PID:-}" 2>/dev/null || true
	if [ -n "$PF_CONF" ]; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
	sleep 1
	kill "${SINK_PID:-}" $(jobs -p) 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v smtp-sink >/dev/null; then
	echo "installing postfix for smtp-sink" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi

cd "$ROOT"
if [ -n "${OUTGUARD_BIN:-}" ]; then
	cp "$OUTGUARD_BIN" "$WORK/outguard"
else
	go build -o "$WORK/outguard" ./cmd/outguard
fi
go build -o "$WORK/outguard-load" ./cmd/outguard-load

. "$ROOT/bench/lib.sh"
SINK_PORT=$(free_port)
OG_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# smtp-sink: -c counts, -u nobody drops privileges when run as root.
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
smtp-sink "${SINK_USER[@]}" -m 1000 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

bench_config "max_connections: 2000, max_connections_per_ip: 2000"
"$WORK/outguard" serve --config "$WORK/bench.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
wait_ready

# cpu PID: user+system clock ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# Leg C: a private Postfix relay.
PF=${OUTGUARD_BENCH_POSTFIX:-1}
if [ "$PF" = 1 ] && { ! command -v postfix >/dev/null || [ "$(id -u)" != 0 ]; }; then
	echo "no postfix leg: it needs postfix and root" >&2
	PF=0
fi
if [ "$PF" = 1 ]; then
	PF_PORT=$(free_port)
	PF_DIR=$WORK/postfix
	mkdir -p "$PF_DIR/conf" "$PF_DIR/queue" "$PF_DIR/data"
	# Postfix's daemons run as the postfix user: they must reach the queue.
	chmod 755 "$WORK"
	chown postfix "$PF_DIR/data"
	cat > "$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
mail_owner = postfix
myhostname = postfix.bench.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtp_host_lookup = native
local_transport = error:local delivery is off
alias_maps =
alias_database =
default_process_limit = 300
smtp_destination_concurrency_limit = 64
maillog_file_prefixes = $PF_DIR
maillog_file = $PF_DIR/maillog
EOF
	cat > "$PF_DIR/conf/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
showq     unix  n - n -  - showq
EOF
	PF_CONF=$PF_DIR/conf
	postfix -c "$PF_CONF" check >/dev/null 2>&1 || true
	if ! postfix -c "$PF_CONF" start >/dev/null 2>&1; then
		echo "postfix did not start (see $PF_DIR/maillog); no postfix leg" >&2
		PF=0
	fi
	for _ in $(seq 100); do
		[ "$PF" = 1 ] || break
		[ -s "$PF_DIR/queue/pid/master.pid" ] && break
		sleep 0.1
	done
	[ "$PF" = 1 ] && PF_MASTER=$(tr -d ' ' < "$PF_DIR/queue/pid/master.pid")
fi
# pf_cpu: clock ticks of the Postfix master, its live children and its
# reaped ones.
pf_cpu() {
	local t
	t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PF_MASTER/stat")
	for c in $(pgrep -P "$PF_MASTER"); do
		t=$(( t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0) ))
	done
	echo "$t"
}
pf_sent() {
	if [ -f "$PF_DIR/maillog" ]; then grep -c 'status=sent' "$PF_DIR/maillog" || true; else echo 0; fi
}
pf_queued() { find "$PF_DIR/queue/incoming" "$PF_DIR/queue/active" "$PF_DIR/queue/deferred" "$PF_DIR/queue/maildrop" -type f 2>/dev/null | wc -l; }

PROTO=${OUTGUARD_BENCH_PROTO:-data}
case $PROTO in
data) PROTOS=(data) ;;
bdat) PROTOS=(bdat) ;;
both) PROTOS=(data bdat) ;;
*) echo "OUTGUARD_BENCH_PROTO must be data, bdat or both" >&2; exit 2 ;;
esac

run_load() { # ADDR [ARGS...]
	"$WORK/outguard-load" --addr "$1" -c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" --json "${@:2}"
}
proto_args() { # PROTO
	if [ "$1" = bdat ]; then echo --bdat --chunk "${OUTGUARD_BENCH_CHUNK:-0}"; fi
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

declare -a D_RATE D_P50 D_P99 PF_RATE PF_CPU PF_SCPU
declare -A O_RATE O_CPU S_CPU O_P50 O_P99
for r in $(seq "$ROUNDS"); do
	s0=$(cpu $SINK_PID)
	d=$(run_load "127.0.0.1:$SINK_PORT")
	s1=$(cpu $SINK_PID)
	D_RATE+=("$(echo "$d" | field msgs_per_sec)")
	D_P50+=("$(echo "$d" | field p50_us)")
	D_P99+=("$(echo "$d" | field p99_us)")
	printf 'round %d: direct %8.1f msgs/s (p50 %sus p99 %sus, sink cpu %d ticks)\n' \
		"$r" "${D_RATE[-1]}" "${D_P50[-1]}" "${D_P99[-1]}" "$(( s1 - s0 ))"
	if [ "$PF" = 1 ]; then
		s0=$(cpu $SINK_PID); p0=$(pf_cpu); sent0=$(pf_sent)
		t0=$(date +%s.%N)
		pl=$(run_load "127.0.0.1:$PF_PORT")
		# End to end: every message delivered from the queue.
		for _ in $(seq 6000); do
			[ $(( $(pf_sent) - sent0 )) -ge "$(echo "$pl" | field ok)" ] && [ "$(pf_queued)" = 0 ] && break
			sleep 0.05
		done
		t1=$(date +%s.%N)
		s1=$(cpu $SINK_PID); p1=$(pf_cpu)
		PF_RATE+=("$(python3 -c "print($(echo "$pl" | field ok) / ($t1 - $t0))")")
		PF_CPU+=("$(( p1 - p0 ))")
		PF_SCPU+=("$(( s1 - s0 ))")
		printf '         postfix   %8.1f msgs/s end to end (accepted %s msgs/s, failed %s) postfix cpu %d ticks, sink cpu %d ticks\n' \
			"${PF_RATE[-1]}" "$(echo "$pl" | field msgs_per_sec)" "$(echo "$pl" | field failed)" "${PF_CPU[-1]}" "${PF_SCPU[-1]}"
	fi
	for p in "${PROTOS[@]}"; do
		s0=$(cpu $SINK_PID); o0=$(cpu $OG_PID)
		# shellcheck disable=SC2046
		o=$(run_load "127.0.0.1:$OG_PORT" --user bench --password trial-token $(proto_args "$p"))
		s1=$(cpu $SINK_PID); o1=$(cpu $OG_PID)
		O_RATE[$p]+="$(echo "$o" | field msgs_per_sec) "
		O_P50[$p]+="$(echo "$o" | field p50_us) "
		O_P99[$p]+="$(echo "$o" | field p99_us) "
		O_CPU[$p]+="$(( o1 - o0 )) "
		S_CPU[$p]+="$(( s1 - s0 )) "
		printf '         outguard %-4s %8.1f msgs/s (p50 %sus p99 %sus, failed %s) outguard cpu %d ticks, sink cpu %d ticks\n' \
			"$p" "$(echo "$o" | field msgs_per_sec)" "$(echo "$o" | field p50_us)" "$(echo "$o" | field p99_us)" "$(echo "$o" | field failed)" "$(( o1 - o0 ))" "$(( s1 - s0 ))"
	done
done

for p in "${PROTOS[@]}"; do
python3 - "$SIZE" "$SESSIONS" "$MESSAGES" "$TICK" "${D_RATE[*]}" "${O_RATE[$p]}" "${O_CPU[$p]}" "${S_CPU[$p]}" "$p" "${D_P50[*]}" "${D_P99[*]}" "${O_P50[$p]}" "${O_P99[$p]}" <<'EOF' | tee -a "$OUT/relay.txt"
import sys, statistics as st
size, sessions, msgs, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = [float(x) for x in sys.argv[5].split()]
o = [float(x) for x in sys.argv[6].split()]
oc = [int(x) for x in sys.argv[7].split()]
sc = [int(x) for x in sys.argv[8].split()]
print(f"size {size} sessions {sessions} messages {msgs} rounds {len(d)} client to outguard: {sys.argv[9].upper()}")
print(f"direct msgs/s median {st.median(d):.1f}  outguard msgs/s median {st.median(o):.1f}")
print(f"outguard cpu per msg {1e6*sum(oc)/tick/(msgs*len(oc)):.1f}us  sink cpu per msg {1e6*sum(sc)/tick/(msgs*len(sc)):.1f}us")
print(f"ratio outguard/direct msgs/s: {st.median(o)/st.median(d):.2f}")
print(f"cpu outguard/sink per msg: {sum(oc)/max(1,sum(sc)):.2f}")
dp50, dp99, op50, op99 = ([int(x) for x in a.split()] for a in sys.argv[10:14])
print(f"latency p50/p99 median: direct {st.median(dp50):.0f}/{st.median(dp99):.0f}us  outguard {st.median(op50):.0f}/{st.median(op99):.0f}us")
print(f"added latency p50 {st.median(op50)-st.median(dp50):.0f}us p99 {st.median(op99)-st.median(dp99):.0f}us")
EOF
done
if [ "$PF" = 1 ]; then
python3 - "$SIZE" "$SESSIONS" "$MESSAGES" "$TICK" "${D_RATE[*]}" "${PF_RATE[*]}" "${PF_CPU[*]}" "${PF_SCPU[*]}" "${O_RATE[${PROTOS[0]}]}" <<'EOF' | tee -a "$OUT/relay.txt"
import sys, statistics as st
size, sessions, msgs, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = [float(x) for x in sys.argv[5].split()]
p = [float(x) for x in sys.argv[6].split()]
pc = [int(x) for x in sys.argv[7].split()]
sc = [int(x) for x in sys.argv[8].split()]
o = [float(x) for x in sys.argv[9].split()]
print(f"size {size} sessions {sessions} messages {msgs} rounds {len(d)} postfix relay, end to end")
print(f"postfix msgs/s median {st.median(p):.1f} (range {min(p):.1f}-{max(p):.1f})")
print(f"postfix cpu per msg {1e6*sum(pc)/tick/(msgs*len(pc)):.1f}us  sink cpu per msg {1e6*sum(sc)/tick/(msgs*len(sc)):.1f}us")
print(f"cpu postfix/sink per msg: {sum(pc)/max(1,sum(sc)):.2f}")
print(f"ratio outguard/postfix msgs/s: {st.median(o)/st.median(p):.2f}")
EOF
fi
