# Shared by bench/relay.sh, bench/memory.sh and bench/syscalls.sh (sourced,
# after WORK and ROOT are set): free ports, outguard's benchmark
# configuration, and the wait for it to be ready.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench_config LIMITS [LEVEL] writes $WORK/bench.yaml: a listener on
# OG_PORT, the next hop smtp-sink on SINK_PORT, the user bench, the admin
# listener on ADMIN_PORT, limits LIMITS (a YAML flow mapping's inside),
# log level LEVEL (default warn), then OUTGUARD_BENCH_CONFIG_EXTRA if set
# (a path from the repository root, or any path).
bench_config() {
	cat > "$WORK/bench.yaml" <<EOF
hostname: bench.localhost
data_dir: $WORK/data
log: {level: ${2:-warn}}
listeners:
  - {name: bench, address: "127.0.0.1:$OG_PORT", tls: none, allow_insecure_auth: true}
limits: {$1}
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
}

# wait_ready [TRIES] polls /-/ready every 0.1 s, TRIES times (default 100).
wait_ready() {
	for _ in $(seq "${1:-100}"); do
		curl -fs "http://127.0.0.1:$ADMIN_PORT/-/ready" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
}
