#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests of the postgres store
# (internal/pgdb/pgtest): initdb as the postgres user in a temporary folder,
# on a free local port, trust authentication on the Unix socket and on
# 127.0.0.1 only. Run as root. Prints the environment variable the tests
# read:
#
#   export $(bash .ci/postgres.sh)          start (installing postgresql if missing)
#   bash .ci/postgres.sh stop DIR           stop the cluster in DIR
#
# The cluster is for tests only: every test creates and drops its own
# database in it. It runs without fsync; OUTGUARD_PG_DURABLE=1 keeps
# PostgreSQL's durable defaults (fsync, synchronous_commit, full page
# writes), as bench/relay.sh does to compare it with bbolt's fsync.
set -euo pipefail

log() { echo "postgres: $*" >&2; }

if [[ ${1:-start} == stop ]]; then
	dir=${2:?usage: postgres.sh stop DIR}
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -m fast -w stop" >&2 || true
	rm -rf "$dir"
	exit 0
fi

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
	log "installing postgresql"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# A free port: ask the kernel for one.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/outguard-pg.XXXXXX)
chown postgres "$dir"
su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
# Small and fast: no durability is needed for test data.
fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[[ ${OUTGUARD_PG_DURABLE:-0} == 1 ]] && fast=""
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -l '$dir/server.log' -w \
	-o \"-p $port -k $dir -c listen_addresses=127.0.0.1 $fast -c max_connections=300\" start" >&2 ||
	{ cat "$dir/server.log" >&2; exit 1; }
log "cluster in $dir on 127.0.0.1:$port (stop: bash .ci/postgres.sh stop $dir)"
echo "OUTGUARD_TEST_PG_DSN=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "OUTGUARD_TEST_PG_DIR=$dir"
