#!/usr/bin/env bash
# bench/abtest.sh OLD.test NEW.test PKGDIR BENCH [ROUNDS] [BENCHTIME]
#
# Runs two test binaries of one package (go test -c, before and after a
# change) alternately, ROUNDS times each (default 3), on the benchmarks
# matching BENCH, and prints per benchmark the range of ns/op and of
# cpu-ns/op (the process's CPU time per op, where the benchmark reports
# it: steadier than wall time on a shared machine) and the B/op and
# allocs/op of each binary. Run it from anywhere; PKGDIR is where the
# package's testdata is found.
set -euo pipefail
OLD=${1:?usage}; NEW=${2:?usage}; DIR=${3:?usage}; BENCH=${4:?usage}
ROUNDS=${5:-3}; BT=${6:-1s}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
cd "$DIR"
for _ in $(seq "$ROUNDS"); do
	for v in old new; do
		bin=$OLD; [ $v = new ] && bin=$NEW
		"$bin" -test.run '^$' -test.bench "$BENCH" -test.benchmem -test.benchtime "$BT" | grep '^Benchmark' | sed "s/^/$v /" >>"$OUT"
	done
done
python3 - "$OUT" <<'PY'
import collections, re, sys
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    v, name = f[0], re.sub(r'-\d+$', '', f[1])
    for val, unit in zip(f[3::2], f[4::2]):
        rows[name][(v, unit)].append(float(val))
def rng(xs, scale):
    if not xs: return '-'
    lo, hi = min(xs)/scale, max(xs)/scale
    return f'{lo:.0f}' if round(lo) == round(hi) else f'{lo:.0f}–{hi:.0f}'
print('| benchmark | ns/op old | ns/op new | cpu-µs/op old | cpu-µs/op new | B/op old → new | allocs/op old → new |')
print('|---|---|---|---|---|---|---|')
for name, d in rows.items():
    print(f"| {name.removeprefix('Benchmark')} | {rng(d[('old','ns/op')],1e3)} µs | {rng(d[('new','ns/op')],1e3)} µs | "
          f"{rng(d[('old','cpu-ns/op')],1e3)} | {rng(d[('new','cpu-ns/op')],1e3)} | "
          f"{rng(d[('old','B/op')],1)} → {rng(d[('new','B/op')],1)} | {rng(d[('old','allocs/op')],1)} → {rng(d[('new','allocs/op')],1)} |")
PY
