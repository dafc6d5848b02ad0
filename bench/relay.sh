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
#   cpu outguard/sink direct per msg: N.NN (sink cpu per msg: direct, behind outguard)
# The first divides by the sink's CPU in leg B, the second by the sink's
# CPU in leg A, where the load tool pipelines MAIL, RCPT and DATA to it:
# a fixed price for receiving a message, whatever outguard's own
# conversation with the sink costs the sink (fewer round trips make the
# first ratio rise while outguard's CPU falls).
#   added latency p50 Nus p99 Nus (outguard's median p50/p99 minus direct's)
#
# OUTGUARD_BENCH_PROTO chooses how the load tool hands messages to
# outguard: data (the default), bdat (CHUNKING, RFC 3030: one BDAT LAST
# per message, or chunks of OUTGUARD_BENCH_CHUNK bytes) or both (B runs
# twice per round, DATA then BDAT, each with its own figures). Leg A
# always uses DATA: smtp-sink does not offer CHUNKING.
# OUTGUARD_BENCH_CONFIG_EXTRA appends a file to the configuration (see
# bench/accept-all.yaml). OUTGUARD_BENCH_LOG_LEVEL sets log.level (default
# warn; info, the shipped level, logs a line per transaction to
# outguard's standard error, a file here). OUTGUARD_BIN runs that outguard binary instead
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
#
# The store: OUTGUARD_BENCH_STORE=bbolt (the default: one node, its own
# bbolt file) or postgres, with OUTGUARD_BENCH_NODES=1 or 2 nodes sharing
# one PostgreSQL database (store.backend: postgres; each node its own
# node_name, ports and data_dir). The database is made fresh for the run
# (and dropped after, unless OUTGUARD_BENCH_PG_KEEP=1) in the cluster of
# OUTGUARD_BENCH_PG_DSN (a superuser's DSN to a cluster on this machine
# that serves nothing else meanwhile), or else in a throwaway cluster
# started with .ci/postgres.sh, durable (fsync on) unless
# OUTGUARD_BENCH_PG_DURABLE=0, and stopped at the end. With two nodes the
# load tool's sessions take the nodes in turn (half each); outguard's CPU
# time is the sum of both. Leg B then also reports PostgreSQL's CPU time:
# the whole cluster's (postmaster, backends, background processes, reaped
# ones included), and the summary adds:
#   postgres cpu per msg Nus  outguard+postgres cpu per msg Nus
#   cpu (outguard+postgres)/sink per msg: N.NN
#   postgres bytes per msg: log N  counters N  all tables N (R records)
#   postgres per msg: transactions N  rows inserted N  updated N  deleted N
# (the growth of each table from the start of the run, pg_total_relation_size,
# and of the database's pg_stat_database counters, 11 s after the last
# leg, over the log records written).
# OUTGUARD_BENCH_IDLE=SECONDS first measures what the idle nodes (and
# the cluster) spend in that time, with no mail (their tickers, resyncs
# and outbox polls):
#   idle outguard Nus/s postgres Nus/s over S s
# OUTGUARD_BENCH_JSON=FILE appends one JSON object per protocol with the
# run's figures (for bench/fleet.sh).
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
	kill -INT "${OG_PID:-}" "${OG_PID2:-}" 2>/dev/null || true
	if [ -n "$PF_CONF" ]; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
	sleep 1
	for _ in $(seq 100); do
		kill -0 "${OG_PID:-}" 2>/dev/null || kill -0 "${OG_PID2:-}" 2>/dev/null || break
		sleep 0.1
	done
	kill "${SINK_PID:-}" $(jobs -p) 2>/dev/null || true
	bench_pg_stop 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v smtp-sink >/dev/null; then
	echo "installing postfix for smtp-sink" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi

cd "$ROOT"
# OUTGUARD_BIN and OUTGUARD_LOAD_BIN run those binaries instead of building
# this tree's (bench/fleet.sh builds once for all its runs).

. "$ROOT/bench/lib.sh"
bench_binaries
SINK_PORT=$(free_port)
OG_PORT=$(free_port)
ADMIN_PORT=$(free_port)

STORE=${OUTGUARD_BENCH_STORE:-bbolt}
NODES=${OUTGUARD_BENCH_NODES:-1}
case $STORE/$NODES in
bbolt/1 | postgres/1 | postgres/2) ;;
*) echo "OUTGUARD_BENCH_STORE must be bbolt (one node) or postgres (OUTGUARD_BENCH_NODES 1 or 2)" >&2; exit 2 ;;
esac
if [ "$STORE" = postgres ]; then
	bench_pg_start
	echo "store postgres, $NODES node(s), database $BENCH_PG_DB, postmaster $PG_MASTER" >&2
fi

# smtp-sink: -c counts, -u nobody drops privileges when run as root.
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
smtp-sink "${SINK_USER[@]}" -m 1000 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

bench_config "max_connections: 2000, max_connections_per_ip: 2000" "${OUTGUARD_BENCH_LOG_LEVEL:-warn}"
"$WORK/outguard" serve --config "$WORK/bench.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
wait_ready 300
OG_ADDR=127.0.0.1:$OG_PORT
OG_PIDS=$OG_PID
if [ "$NODES" = 2 ]; then
	OG_PORT2=$(free_port)
	ADMIN_PORT2=$(free_port)
	OG_PORT=$OG_PORT2 ADMIN_PORT=$ADMIN_PORT2 OG_CONFIG=$WORK/bench2.yaml OG_DATA=$WORK/data2 OG_NODE=bench2 \
		bench_config "max_connections: 2000, max_connections_per_ip: 2000" "${OUTGUARD_BENCH_LOG_LEVEL:-warn}"
	"$WORK/outguard" serve --config "$WORK/bench2.yaml" 2>"$WORK/outguard2.log" &
	OG_PID2=$!
	ADMIN_PORT=$ADMIN_PORT2 wait_ready 300
	OG_ADDR=$OG_ADDR,127.0.0.1:$OG_PORT2
	OG_PIDS="$OG_PIDS $OG_PID2"
fi
for p in $OG_PIDS; do
	kill -0 "$p" 2>/dev/null || { echo "outguard did not start:" >&2; cat "$WORK"/outguard*.log >&2; exit 1; }
done
PG_SIZES0='{}'
[ "$STORE" = postgres ] && PG_SIZES0=$(pg_sizes)

# cpu PID: user+system clock ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# og_cpu: the same, summed over the outguard nodes.
og_cpu() {
	local t=0 p
	for p in $OG_PIDS; do t=$(( t + $(cpu "$p") )); done
	echo "$t"
}
# store_cpu: the PostgreSQL cluster's ticks, 0 on bbolt.
store_cpu() { if [ "$STORE" = postgres ]; then pg_cpu; else echo 0; fi; }
TICK=$(getconf CLK_TCK)

IDLE=${OUTGUARD_BENCH_IDLE:-0}
IDLE_O=0 IDLE_G=0
if [ "$IDLE" != 0 ]; then
	o0=$(og_cpu); g0=$(store_cpu)
	sleep "$IDLE"
	IDLE_O=$(( $(og_cpu) - o0 )); IDLE_G=$(( $(store_cpu) - g0 ))
	printf 'idle outguard %dus/s postgres %dus/s over %s s\n' \
		"$(( IDLE_O * 1000000 / TICK / IDLE ))" "$(( IDLE_G * 1000000 / TICK / IDLE ))" "$IDLE"
fi

# Leg C: a private Postfix relay.
PF=${OUTGUARD_BENCH_POSTFIX:-1}
if [ "$PF" = 1 ] && { ! command -v postfix >/dev/null || [ "$(id -u)" != 0 ]; }; then
	echo "no postfix leg: it needs postfix and root" >&2
	PF=0
fi
if [ "$PF" = 1 ] && ! bench_postfix_start; then
	echo "postfix did not start (see $PF_DIR/maillog); no postfix leg" >&2
	PF=0
fi

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

declare -a D_RATE D_SCPU D_P50 D_P99 PF_RATE PF_CPU PF_SCPU
declare -A O_RATE O_CPU S_CPU O_P50 O_P99 G_CPU O_SECS
for r in $(seq "$ROUNDS"); do
	s0=$(cpu $SINK_PID)
	d=$(run_load "127.0.0.1:$SINK_PORT")
	s1=$(cpu $SINK_PID)
	D_SCPU+=("$(( s1 - s0 ))")
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
		s0=$(cpu $SINK_PID); o0=$(og_cpu); g0=$(store_cpu)
		# shellcheck disable=SC2046
		o=$(run_load "$OG_ADDR" --user bench --password trial-token $(proto_args "$p"))
		s1=$(cpu $SINK_PID); o1=$(og_cpu); g1=$(store_cpu)
		O_RATE[$p]+="$(echo "$o" | field msgs_per_sec) "
		O_P50[$p]+="$(echo "$o" | field p50_us) "
		O_P99[$p]+="$(echo "$o" | field p99_us) "
		O_CPU[$p]+="$(( o1 - o0 )) "
		S_CPU[$p]+="$(( s1 - s0 )) "
		G_CPU[$p]+="$(( g1 - g0 )) "
		O_SECS[$p]+="$(echo "$o" | field seconds) "
		printf '         outguard %-4s %8.1f msgs/s (p50 %sus p99 %sus, failed %s) outguard cpu %d ticks, sink cpu %d ticks' \
			"$p" "$(echo "$o" | field msgs_per_sec)" "$(echo "$o" | field p50_us)" "$(echo "$o" | field p99_us)" "$(echo "$o" | field failed)" "$(( o1 - o0 ))" "$(( s1 - s0 ))"
		if [ "$STORE" = postgres ]; then
			printf ', postgres cpu %d ticks (%s)' "$(( g1 - g0 ))" "$(echo "$o" | python3 -c 'import json,sys; print(" ".join(f"{k}: {v}" for k, v in json.load(sys.stdin)["per_addr"].items()))')"
		fi
		printf '\n'
	done
done

PG_SIZES1='{}'
if [ "$STORE" = postgres ]; then
	# Idle backends report their statistics within 10 s.
	sleep 11
	PG_SIZES1=$(pg_sizes)
fi
for p in "${PROTOS[@]}"; do
BENCH_D_SCPU="${D_SCPU[*]}" BENCH_STORE=$STORE BENCH_NODES=$NODES BENCH_G_CPU=${G_CPU[$p]} BENCH_O_SECS=${O_SECS[$p]} BENCH_IDLE="$IDLE $IDLE_O $IDLE_G" BENCH_PG_SIZES0=$PG_SIZES0 BENCH_PG_SIZES1=$PG_SIZES1 \
python3 - "$SIZE" "$SESSIONS" "$MESSAGES" "$TICK" "${D_RATE[*]}" "${O_RATE[$p]}" "${O_CPU[$p]}" "${S_CPU[$p]}" "$p" "${D_P50[*]}" "${D_P99[*]}" "${O_P50[$p]}" "${O_P99[$p]}" <<'EOF' | tee -a "$OUT/relay.txt"
import json, os, sys, statistics as st
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
dsc = [int(x) for x in os.environ["BENCH_D_SCPU"].split()]
print(f"cpu outguard/sink direct per msg: {sum(oc)/max(1,sum(dsc)):.2f}  (sink cpu per msg: direct {1e6*sum(dsc)/tick/(msgs*len(dsc)):.1f}us, behind outguard {1e6*sum(sc)/tick/(msgs*len(sc)):.1f}us)")
dp50, dp99, op50, op99 = ([int(x) for x in a.split()] for a in sys.argv[10:14])
print(f"latency p50/p99 median: direct {st.median(dp50):.0f}/{st.median(dp99):.0f}us  outguard {st.median(op50):.0f}/{st.median(op99):.0f}us")
print(f"added latency p50 {st.median(op50)-st.median(dp50):.0f}us p99 {st.median(op99)-st.median(dp99):.0f}us")
store, nodes = os.environ["BENCH_STORE"], int(os.environ["BENCH_NODES"])
gc = [int(x) for x in os.environ["BENCH_G_CPU"].split()]
res = {"store": store, "nodes": nodes, "size": int(size), "sessions": int(sessions), "messages": msgs,
       "proto": sys.argv[9], "tick": tick, "direct_msgs_per_sec": d, "outguard_msgs_per_sec": o,
       "outguard_ticks": oc, "sink_ticks": sc, "direct_sink_ticks": dsc, "postgres_ticks": gc,
       "direct_p50_us": dp50, "direct_p99_us": dp99, "outguard_p50_us": op50, "outguard_p99_us": op99,
       "outguard_seconds": [float(x) for x in os.environ["BENCH_O_SECS"].split()],
       "loadavg": open("/proc/loadavg").read().split()[:3]}
idle = os.environ["BENCH_IDLE"].split()
if float(idle[0]) > 0:
    res["idle_seconds"], res["idle_outguard_ticks"], res["idle_postgres_ticks"] = float(idle[0]), int(idle[1]), int(idle[2])
if store == "postgres":
    pc = 1e6*sum(gc)/tick/(msgs*len(gc))
    print(f"store postgres nodes {nodes}")
    print(f"postgres cpu per msg {pc:.1f}us  outguard+postgres cpu per msg {1e6*sum(oc)/tick/(msgs*len(oc)) + pc:.1f}us")
    print(f"cpu (outguard+postgres)/sink per msg: {(sum(oc)+sum(gc))/max(1,sum(sc)):.2f}")
    s0, s1 = json.loads(os.environ["BENCH_PG_SIZES0"]), json.loads(os.environ["BENCH_PG_SIZES1"])
    t0, t1 = s0.get("tables") or {}, s1.get("tables") or {}
    grow = {k: v - t0.get(k, 0) for k, v in t1.items()}
    n = max(1, s1["records"] - s0["records"])
    b = {"log": grow.get("quarantine_log", 0)/n, "counters": grow.get("quarantine_counts", 0)/n, "all": sum(grow.values())/n}
    print(f"postgres bytes per msg: log {b['log']:.0f}  counters {b['counters']:.0f}  all tables {b['all']:.0f} ({n} records)")
    st0, st1 = s0.get("stats") or {}, s1.get("stats") or {}
    per = {k: (st1[k] - st0.get(k, 0)) / n for k in st1}
    print(f"postgres per msg: transactions {per['xact_commit']:.3f}  rows inserted {per['tup_inserted']:.2f}  updated {per['tup_updated']:.2f}  deleted {per['tup_deleted']:.2f}")
    res["postgres_stats_per_msg"] = per
    res["postgres_records"] = n
    res["postgres_bytes_per_msg"] = b
    res["postgres_growth"] = {k: v for k, v in grow.items() if v}
if os.environ.get("OUTGUARD_BENCH_JSON"):
    with open(os.environ["OUTGUARD_BENCH_JSON"], "a") as f:
        f.write(json.dumps(res) + "\n")
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
