#!/usr/bin/env bash
# bench/relay.sh SIZE SESSIONS [MESSAGES] [ROUNDS]
#
# Measures what outguard costs as a relay, on loopback. In one run it
# alternates (A B A B ...) for ROUNDS rounds (default 3):
#   A: outguard-load straight to postfix's smtp-sink
#   B: outguard-load -> outguard (the configured pipeline) -> the same sink
# and records throughput and each process's CPU time per message (from
# /proc/PID/stat). It ends with:
#   ratio outguard/direct msgs/s: 0.NN
#   cpu outguard/sink per msg: N.NN
#
# OUTGUARD_BENCH_PROTO chooses how the load tool hands messages to
# outguard: data (the default), bdat (CHUNKING, RFC 3030: one BDAT LAST
# per message, or chunks of OUTGUARD_BENCH_CHUNK bytes) or both (B runs
# twice per round, DATA then BDAT, each with its own figures). Leg A
# always uses DATA: smtp-sink does not offer CHUNKING.
# OUTGUARD_BENCH_CONFIG_EXTRA appends a file to the configuration (see
# bench/accept-all.yaml).
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
trap 'kill -INT $OG_PID 2>/dev/null; sleep 1; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

if ! command -v smtp-sink >/dev/null; then
	echo "installing postfix for smtp-sink" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi

cd "$ROOT"
go build -o "$WORK/outguard" ./cmd/outguard
go build -o "$WORK/outguard-load" ./cmd/outguard-load

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(free_port)
OG_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# smtp-sink: -c counts, -u nobody drops privileges when run as root.
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)
smtp-sink "${SINK_USER[@]}" -m 1000 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!

cat > "$WORK/bench.yaml" <<EOF
hostname: bench.localhost
data_dir: $WORK/data
log: {level: warn}
listeners:
  - {name: bench, address: "127.0.0.1:$OG_PORT", tls: none, allow_insecure_auth: true}
limits: {max_connections: 2000, max_connections_per_ip: 2000}
next_hop: {type: smtp, address: "127.0.0.1:$SINK_PORT", pool_size: 256}
domains:
  - name: out.example.net
    users:
      - name: bench
        password_hash: "\$2a\$10\$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"
admin: {address: "127.0.0.1:$ADMIN_PORT"}
EOF
if [ -n "${OUTGUARD_BENCH_CONFIG_EXTRA:-}" ]; then
	cat "$ROOT/$OUTGUARD_BENCH_CONFIG_EXTRA" >> "$WORK/bench.yaml" 2>/dev/null || cat "$OUTGUARD_BENCH_CONFIG_EXTRA" >> "$WORK/bench.yaml"
fi
"$WORK/outguard" serve --config "$WORK/bench.yaml" 2>"$WORK/outguard.log" &
OG_PID=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$ADMIN_PORT/-/ready" >/dev/null 2>&1 && break
	sleep 0.1
done

# cpu PID: user+system clock ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

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

declare -a D_RATE
declare -A O_RATE O_CPU S_CPU
for r in $(seq "$ROUNDS"); do
	s0=$(cpu $SINK_PID)
	d=$(run_load "127.0.0.1:$SINK_PORT")
	s1=$(cpu $SINK_PID)
	D_RATE+=("$(echo "$d" | field msgs_per_sec)")
	printf 'round %d: direct %8.1f msgs/s (p99 %sus, sink cpu %d ticks)\n' \
		"$r" "${D_RATE[-1]}" "$(echo "$d" | field p99_us)" "$(( s1 - s0 ))"
	for p in "${PROTOS[@]}"; do
		s0=$(cpu $SINK_PID); o0=$(cpu $OG_PID)
		# shellcheck disable=SC2046
		o=$(run_load "127.0.0.1:$OG_PORT" --user bench --password trial-token $(proto_args "$p"))
		s1=$(cpu $SINK_PID); o1=$(cpu $OG_PID)
		O_RATE[$p]+="$(echo "$o" | field msgs_per_sec) "
		O_CPU[$p]+="$(( o1 - o0 )) "
		S_CPU[$p]+="$(( s1 - s0 )) "
		printf '         outguard %-4s %8.1f msgs/s (p99 %sus, failed %s) outguard cpu %d ticks, sink cpu %d ticks\n' \
			"$p" "$(echo "$o" | field msgs_per_sec)" "$(echo "$o" | field p99_us)" "$(echo "$o" | field failed)" "$(( o1 - o0 ))" "$(( s1 - s0 ))"
	done
done

for p in "${PROTOS[@]}"; do
python3 - "$SIZE" "$SESSIONS" "$MESSAGES" "$TICK" "${D_RATE[*]}" "${O_RATE[$p]}" "${O_CPU[$p]}" "${S_CPU[$p]}" "$p" <<'EOF' | tee -a "$OUT/relay.txt"
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
EOF
done
