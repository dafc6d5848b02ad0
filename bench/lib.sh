# Shared by bench/relay.sh, bench/memory.sh, bench/syscalls.sh and
# bench/behind-postfix.sh (sourced, after WORK and ROOT are set): free
# ports, outguard's benchmark configuration, the wait for it to be ready,
# the PostgreSQL store of bench/relay.sh (a database per run, its CPU time
# and sizes) and the private Postfix relay.

# bench_binaries puts outguard and outguard-load in $WORK: copies of
# OUTGUARD_BIN and OUTGUARD_LOAD_BIN when set (another commit's build, or
# one build for several runs), else this tree's, built. Run from the
# repository root.
bench_binaries() {
	if [ -n "${OUTGUARD_BIN:-}" ]; then cp "$OUTGUARD_BIN" "$WORK/outguard"; else go build -o "$WORK/outguard" ./cmd/outguard; fi
	if [ -n "${OUTGUARD_LOAD_BIN:-}" ]; then cp "$OUTGUARD_LOAD_BIN" "$WORK/outguard-load"; else go build -o "$WORK/outguard-load" ./cmd/outguard-load; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench_config LIMITS [LEVEL] writes $WORK/bench.yaml: a listener on
# OG_PORT, the next hop smtp-sink on SINK_PORT, the user bench, the admin
# listener on ADMIN_PORT, limits LIMITS (a YAML flow mapping's inside),
# log level LEVEL (default warn), then OUTGUARD_BENCH_CONFIG_EXTRA if set
# (a path from the repository root, or any path). NEXTHOP_PORT replaces
# the next hop's port, NEXTHOP_EXTRA is added inside its mapping (e.g.
# ", chunking: false"). OG_CONFIG and OG_DATA
# change the file and the data_dir (a second node); with BENCH_PG_DSN set
# (bench_pg_start) the store is that PostgreSQL database and the node is
# named OG_NODE (default bench1).
bench_config() {
	local conf=${OG_CONFIG:-$WORK/bench.yaml}
	cat > "$conf" <<EOF
hostname: bench.localhost
data_dir: ${OG_DATA:-$WORK/data}
log: {level: ${2:-warn}}
listeners:
  - {name: bench, address: "127.0.0.1:$OG_PORT", tls: none, allow_insecure_auth: true}
limits: {$1}
next_hop: {type: smtp, address: "127.0.0.1:${NEXTHOP_PORT:-$SINK_PORT}", pool_size: 256${NEXTHOP_EXTRA:-}}
domains:
  - name: out.example.net
    users:
      - name: bench
        password_hash: "\$2a\$10\$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"
admin: {address: "127.0.0.1:$ADMIN_PORT"}
EOF
	if [ -n "${BENCH_PG_DSN:-}" ]; then
		cat >> "$conf" <<EOF
node_name: ${OG_NODE:-bench1}
store:
  backend: postgres
  postgres: {dsn: "$BENCH_PG_DSN"}
EOF
	fi
	if [ -n "${OUTGUARD_BENCH_CONFIG_EXTRA:-}" ]; then
		cat "$ROOT/$OUTGUARD_BENCH_CONFIG_EXTRA" >> "$conf" 2>/dev/null || cat "$OUTGUARD_BENCH_CONFIG_EXTRA" >> "$conf"
	fi
}

# bench_pg_start makes a fresh database for one run and sets BENCH_PG_DSN
# to it, BENCH_PG_ADMIN to the DSN it was made from and PG_MASTER to the
# cluster's postmaster. The cluster is OUTGUARD_BENCH_PG_DSN's (a
# superuser's DSN to a cluster on this machine, which should serve nothing
# else meanwhile: its CPU time is counted whole), or else a throwaway one
# from .ci/postgres.sh, durable (fsync on) unless
# OUTGUARD_BENCH_PG_DURABLE=0, stopped by bench_pg_stop. Needs psql.
bench_pg_start() {
	if [ -n "${OUTGUARD_BENCH_PG_DSN:-}" ]; then
		BENCH_PG_ADMIN=$OUTGUARD_BENCH_PG_DSN
	else
		OUTGUARD_PG_DURABLE=${OUTGUARD_BENCH_PG_DURABLE:-1} bash "$ROOT/.ci/postgres.sh" > "$WORK/pgenv"
		BENCH_PG_ADMIN=$(sed -n 's/^OUTGUARD_TEST_PG_DSN=//p' "$WORK/pgenv")
		BENCH_PG_DIR=$(sed -n 's/^OUTGUARD_TEST_PG_DIR=//p' "$WORK/pgenv")
	fi
	BENCH_PG_DB=outguard_bench_$$_$(date +%s)
	psql -q "$BENCH_PG_ADMIN" -c "CREATE DATABASE $BENCH_PG_DB" >/dev/null
	BENCH_PG_DSN=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$BENCH_PG_ADMIN" "$BENCH_PG_DB")
	# The postmaster is the checkpointer's parent.
	local ck
	ck=$(psql -Atq "$BENCH_PG_ADMIN" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
	PG_MASTER=$(awk '/^PPid:/ {print $2}' "/proc/$ck/status")
}

# bench_pg_stop drops the run's database (OUTGUARD_BENCH_PG_KEEP=1 keeps
# it) and stops the cluster bench_pg_start started.
bench_pg_stop() {
	if [ -n "${BENCH_PG_DB:-}" ] && [ "${OUTGUARD_BENCH_PG_KEEP:-0}" != 1 ]; then
		psql -q "$BENCH_PG_ADMIN" -c "DROP DATABASE IF EXISTS $BENCH_PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	if [ -n "${BENCH_PG_DIR:-}" ]; then
		bash "$ROOT/.ci/postgres.sh" stop "$BENCH_PG_DIR" 2>/dev/null || true
	fi
}

# tree_cpu PID: clock ticks of process PID, its live children and its
# reaped ones (fields 16 and 17 of /proc/PID/stat): a server that forks
# (the PostgreSQL postmaster, the Postfix master) with its workers.
tree_cpu() {
	local t c
	t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat")
	for c in $(pgrep -P "$1"); do
		t=$(( t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0) ))
	done
	echo "$t"
}

# pg_cpu: clock ticks of the whole cluster so far: the postmaster, its
# backends and background workers, the exited ones included.
pg_cpu() { tree_cpu "$PG_MASTER"; }

# pg_sizes prints, as JSON, the log records in the run's database, the
# bytes (pg_total_relation_size: table, indexes and TOAST, the partitions
# of a partitioned table summed) of each of its tables, and the database's
# counters of pg_stat_database (transactions, rows; backends report them
# up to 10 s late when idle).
pg_sizes() {
	psql -Atq "$BENCH_PG_DSN" <<'EOF'
SELECT json_build_object(
  'records', (SELECT count(*) FROM quarantine_log),
  'stats', (SELECT json_build_object('xact_commit', xact_commit, 'xact_rollback', xact_rollback,
      'tup_inserted', tup_inserted, 'tup_updated', tup_updated, 'tup_deleted', tup_deleted)
    FROM pg_stat_database WHERE datname = current_database()),
  'tables', (SELECT json_object_agg(relname, bytes) FROM (
    SELECT c.relname,
      CASE WHEN c.relkind = 'p'
        THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
        ELSE pg_total_relation_size(c.oid) END AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition) s));
EOF
}

# wait_ready [TRIES] polls /-/ready on ADMIN_PORT every 0.1 s, TRIES
# times (default 100).
wait_ready() {
	for _ in $(seq "${1:-100}"); do
		curl -fs "http://127.0.0.1:$ADMIN_PORT/-/ready" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
}

# bench_postfix_start starts a private Postfix instance as a plain relay
# (smtpd -> queue -> smtp, no filter) to the sink on SINK_PORT, with its
# own configuration, queue and log under $WORK/postfix (relay.sh's leg C,
# and the next hop of behind-postfix.sh). It sets PF_PORT (its smtpd),
# PF_DIR, PF_CONF and PF_MASTER, and fails if Postfix does not start. It
# needs root (Postfix's daemons run as the postfix user). Stop it with
# postfix -c "$PF_CONF" stop.
bench_postfix_start() {
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
	postfix -c "$PF_CONF" start >/dev/null 2>&1 || return 1
	for _ in $(seq 100); do
		[ -s "$PF_DIR/queue/pid/master.pid" ] && break
		sleep 0.1
	done
	[ -s "$PF_DIR/queue/pid/master.pid" ] || return 1
	PF_MASTER=$(tr -d ' ' < "$PF_DIR/queue/pid/master.pid")
}

# pf_cpu: clock ticks of the Postfix master, its live children and its
# reaped ones.
pf_cpu() { tree_cpu "$PF_MASTER"; }
# pf_sent: messages Postfix delivered so far; pf_queued: messages in its
# queue.
pf_sent() {
	if [ -f "$PF_DIR/maillog" ]; then grep -c 'status=sent' "$PF_DIR/maillog" || true; else echo 0; fi
}
pf_queued() { find "$PF_DIR/queue/incoming" "$PF_DIR/queue/active" "$PF_DIR/queue/deferred" "$PF_DIR/queue/maildrop" -type f 2>/dev/null | wc -l; }
