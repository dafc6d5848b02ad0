#!/usr/bin/env bash
# bench/fleet.sh SIZE SESSIONS [MESSAGES] [ROUNDS]
#
# One node on bbolt against one and two nodes on PostgreSQL: runs
# bench/relay.sh once per setup and round, the setups alternating
# (bbolt, postgres 1 node, postgres 2 nodes, bbolt, ...) for ROUNDS
# rounds (default 3), each run with its own direct leg to smtp-sink, its
# own outguard processes and (on PostgreSQL) a fresh database in one
# cluster: OUTGUARD_BENCH_PG_DSN's, or a throwaway durable one from
# .ci/postgres.sh (OUTGUARD_BENCH_PG_DURABLE=0: fsync off), stopped at the
# end. OUTGUARD_BENCH_SETUPS changes the setups (default
# "bbolt postgres/1 postgres/2"); the other OUTGUARD_BENCH_* knobs of
# relay.sh apply (its Postfix leg is off). It ends with a Markdown table,
# also appended to bench/out/fleet.txt: per setup, msgs/s (median, range,
# and against the direct leg of the same run), CPU per message of outguard
# (both nodes summed) and of PostgreSQL (the whole cluster), their sum
# against smtp-sink's, PostgreSQL's bytes per logged message, and the load
# average at the end of the runs (the machine's other work). Each run
# first measures its idle nodes for OUTGUARD_BENCH_IDLE seconds (default
# 10; 0 skips it): the table adds their CPU per second, and the CPU per
# message less that idle rate over the leg's time ("net of idle").
set -euo pipefail

SIZE=${1:?usage: bench/fleet.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
SESSIONS=${2:?usage: bench/fleet.sh SIZE SESSIONS [MESSAGES] [ROUNDS]}
MESSAGES=${3:-$(( SESSIONS * 200 > 4000 ? SESSIONS * 200 : 4000 ))}
ROUNDS=${4:-3}
SETUPS=${OUTGUARD_BENCH_SETUPS:-bbolt postgres/1 postgres/2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
WORK=$(mktemp -d)
cleanup() {
	if [ -n "${PG_DIR:-}" ]; then bash "$ROOT/.ci/postgres.sh" stop "$PG_DIR" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
go build -o "$WORK/outguard" ./cmd/outguard
go build -o "$WORK/outguard-load" ./cmd/outguard-load

PG_DSN=${OUTGUARD_BENCH_PG_DSN:-}
if [ -z "$PG_DSN" ] && [[ " $SETUPS " == *" postgres/"* ]]; then
	OUTGUARD_PG_DURABLE=${OUTGUARD_BENCH_PG_DURABLE:-1} bash .ci/postgres.sh > "$WORK/pgenv"
	PG_DSN=$(sed -n 's/^OUTGUARD_TEST_PG_DSN=//p' "$WORK/pgenv")
	PG_DIR=$(sed -n 's/^OUTGUARD_TEST_PG_DIR=//p' "$WORK/pgenv")
fi
if [ -n "$PG_DSN" ]; then
	echo "postgres: $(psql -Atq "$PG_DSN" -c "SELECT version()" | cut -d, -f1), fsync $(psql -Atq "$PG_DSN" -c "SHOW fsync"), synchronous_commit $(psql -Atq "$PG_DSN" -c "SHOW synchronous_commit")"
fi

for r in $(seq "$ROUNDS"); do
	for setup in $SETUPS; do
		store=${setup%%/*}
		nodes=1
		[ "$store" != "$setup" ] && nodes=${setup#*/}
		echo "== round $r: $store, $nodes node(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
		OUTGUARD_BIN=$WORK/outguard OUTGUARD_LOAD_BIN=$WORK/outguard-load \
			OUTGUARD_BENCH_STORE=$store OUTGUARD_BENCH_NODES=$nodes OUTGUARD_BENCH_PG_DSN=$PG_DSN \
			OUTGUARD_BENCH_POSTFIX=0 OUTGUARD_BENCH_JSON=$WORK/runs.jsonl OUTGUARD_BENCH_IDLE=${OUTGUARD_BENCH_IDLE:-10} \
			bash bench/relay.sh "$SIZE" "$SESSIONS" "$MESSAGES" 1
	done
done

python3 - "$WORK/runs.jsonl" "$SETUPS" <<'EOF' | tee -a "$OUT/fleet.txt"
import json, sys, statistics as st
runs = [json.loads(l) for l in open(sys.argv[1])]
first = runs[0]
print(f"\nsize {first['size']} sessions {first['sessions']} messages {first['messages']} per run, client to outguard: {first['proto'].upper()}")
print("| setup | runs | msgs/s median (range) | vs direct (median) | outguard µs/msg | postgres µs/msg | outguard+postgres µs/msg | vs smtp-sink | idle CPU outguard, postgres (ms/s) | net of idle: outguard, postgres µs/msg | PostgreSQL bytes/msg: log, counters, all tables | load average (1 min) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for setup in sys.argv[2].split():
    store, _, nodes = setup.partition("/")
    nodes = int(nodes or 1)
    rs = [x for x in runs if x["store"] == store and x["nodes"] == nodes]
    if not rs:
        continue
    per = lambda key, x: 1e6 * sum(x[key]) / x["tick"] / (x["messages"] * len(x[key]))
    o = [x["outguard_msgs_per_sec"][0] for x in rs]
    ratio = [x["outguard_msgs_per_sec"][0] / x["direct_msgs_per_sec"][0] for x in rs]
    oc = [per("outguard_ticks", x) for x in rs]
    gc = [per("postgres_ticks", x) for x in rs]
    sc = [per("sink_ticks", x) for x in rs]
    tot = [a + b for a, b in zip(oc, gc)]
    vs = sum(tot) / max(1e-9, sum(sc))
    rng = lambda v: f"{st.mean(v):,.0f} ({min(v):,.0f}–{max(v):,.0f})"
    name = "bbolt, 1 node" if store == "bbolt" else f"PostgreSQL, {nodes} node{'s' if nodes > 1 else ''}"
    pg = "–" if store == "bbolt" else rng(gc)
    if store == "bbolt":
        size = "–"
    else:
        b = [x["postgres_bytes_per_msg"] for x in rs]
        size = f"{st.mean(y['log'] for y in b):,.0f}, {st.mean(y['counters'] for y in b):,.0f}, {st.mean(y['all'] for y in b):,.0f}"
    la = [float(x["loadavg"][0]) for x in rs]
    if all("idle_seconds" in x for x in rs):
        # Idle rate in ticks per second, times the leg's seconds, off the leg's ticks.
        irate = lambda key, x: x[key] / x["idle_seconds"]
        net = lambda key, ikey, x: 1e6 * (sum(x[key]) - irate(ikey, x) * sum(x["outguard_seconds"])) / x["tick"] / (x["messages"] * len(x[key]))
        idle = f"{st.mean(1e3 * irate('idle_outguard_ticks', x) / x['tick'] for x in rs):.1f}, {st.mean(1e3 * irate('idle_postgres_ticks', x) / x['tick'] for x in rs):.1f}"
        no = st.mean(net("outguard_ticks", "idle_outguard_ticks", x) for x in rs)
        ng = st.mean(net("postgres_ticks", "idle_postgres_ticks", x) for x in rs)
        netc = f"{no:,.0f}, " + ("–" if store == "bbolt" else f"{ng:,.0f}")
    else:
        idle = netc = "–"
    print(f"| {name} | {len(rs)} | {st.median(o):,.1f} ({min(o):,.1f}–{max(o):,.1f}) | {st.median(ratio):.2f}× | {rng(oc)} | {pg} | {rng(tot)} | {vs:.2f}× | {idle} | {netc} | {size} | {min(la):.1f}–{max(la):.1f} |")
print("CPU per message: mean over the runs (range of the runs); smtp-sink's is per message relayed.")
pg = [s for s in sys.argv[2].split() if s.startswith("postgres")]
if pg:
    print("\n| setup | PostgreSQL transactions per message | rows inserted per message | rows updated per message |")
    print("|---|---|---|---|")
    for setup in pg:
        nodes = int(setup.partition("/")[2] or 1)
        rs = [x for x in runs if x["store"] == "postgres" and x["nodes"] == nodes and "postgres_stats_per_msg" in x]
        if rs:
            m = lambda k: st.mean(x["postgres_stats_per_msg"][k] for x in rs)
            print(f"| PostgreSQL, {nodes} node{'s' if nodes > 1 else ''} | {m('xact_commit'):.3f} | {m('tup_inserted'):.2f} | {m('tup_updated'):.2f} |")
EOF
