#!/usr/bin/env bash
# Starts a local clamd and rspamd for the filter package's integration
# tests. Idempotent: services already answering are left alone. Run as
# root. Prints the environment variables the tests read.
#
#   bash .ci/scanners.sh          start both (installing them if missing)
#   bash .ci/scanners.sh stop     stop both
#
# clamd gets a signature database holding only an EICAR signature (no
# freshclam download); rspamd gets its own local configuration with a
# resolver on an unused local port, so that DNS lookups fail fast.
set -euo pipefail

BASE=${OUTGUARD_CI_DIR:-/var/lib/outguard-ci}
RUN=$BASE/run
CLAM_DB=$BASE/clamav
CLAM_CONF=$BASE/clamd.conf
CLAM_PORT=${OUTGUARD_CLAMD_PORT:-3310}
CLAM_SOCK=$RUN/clamd.sock
RSPAMD_CONF=$BASE/rspamd-conf
RSPAMD_DB=$BASE/rspamd
RSPAMD_PORT=${OUTGUARD_RSPAMD_PORT:-11333}
LOGS=$BASE/log

log() { echo "scanners: $*" >&2; }

clamd_ping() {
	# zPING over TCP; clamd answers "PONG" terminated by NUL.
	local reply
	reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$CLAM_PORT; printf 'zPING\0' >&3; head -c 4 <&3" 2>/dev/null || true)
	[[ $reply == PONG ]]
}

rspamd_ping() {
	curl -fsS --max-time 3 "http://127.0.0.1:$RSPAMD_PORT/ping" 2>/dev/null | grep -q pong
}

stop_pidfile() {
	local f=$1
	if [[ -s $f ]]; then
		local pid
		pid=$(cat "$f")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		fi
		rm -f "$f"
	fi
}

if [[ ${1:-start} == stop ]]; then
	stop_pidfile "$RUN/clamd.pid"
	stop_pidfile "$RUN/rspamd.pid"
	log "stopped"
	exit 0
fi

install_missing() {
	local need=()
	command -v clamd >/dev/null || need+=(clamav-daemon)
	command -v rspamd >/dev/null || need+=(rspamd)
	command -v curl >/dev/null || need+=(curl)
	if ((${#need[@]})); then
		log "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	fi
	# The packages' own services (started by the package scripts where an
	# init system runs) are not ours; we run separate instances on our own
	# configuration.
}

mkdir -p "$RUN" "$CLAM_DB" "$RSPAMD_CONF/local.d" "$RSPAMD_CONF/override.d" "$RSPAMD_DB" "$LOGS"
install_missing

start_clamd() {
	if clamd_ping; then
		log "clamd already answers on 127.0.0.1:$CLAM_PORT"
		return
	fi
	# A body signature (.ndb, any file type, any offset) for the EICAR test
	# string, written as hex so that this script is not itself "infected".
	local eicar_hex
	eicar_hex=$(printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' | od -An -tx1 | tr -d ' \n')
	printf 'Outguard-Test.EICAR:0:*:%s\n' "$eicar_hex" >"$CLAM_DB/outguard-test.ndb"
	cat >"$CLAM_CONF" <<CONF
DatabaseDirectory $CLAM_DB
TCPSocket $CLAM_PORT
TCPAddr 127.0.0.1
LocalSocket $CLAM_SOCK
LocalSocketMode 666
PidFile $RUN/clamd.pid
LogFile $LOGS/clamd.log
LogTime yes
Foreground no
User root
StreamMaxLength 25M
MaxThreads 4
ScanMail yes
ScanArchive yes
CONF
	chmod 755 "$BASE" "$RUN"
	log "starting clamd"
	rm -f "$CLAM_SOCK"
	clamd --config-file="$CLAM_CONF"
	for _ in $(seq 120); do
		clamd_ping && { log "clamd answers PONG"; return; }
		sleep 0.5
	done
	log "clamd did not answer; see $LOGS/clamd.log"
	tail -20 "$LOGS/clamd.log" >&2 || true
	exit 1
}

start_rspamd() {
	if rspamd_ping; then
		log "rspamd already answers on 127.0.0.1:$RSPAMD_PORT"
		return
	fi
	# Our overrides: a resolver nobody listens on (lookups fail at once
	# instead of waiting for the network), loopback-only workers, no proxy.
	cat >"$RSPAMD_CONF/override.d/options.inc" <<'CONF'
dns {
    nameserver = ["127.0.0.1:5353"];
    timeout = 0.1s;
    retransmits = 0;
}
CONF
	cat >"$RSPAMD_CONF/override.d/worker-normal.inc" <<CONF
bind_socket = "127.0.0.1:$RSPAMD_PORT";
count = 1;
mime = true;
CONF
	cat >"$RSPAMD_CONF/override.d/worker-controller.inc" <<CONF
bind_socket = "127.0.0.1:$((RSPAMD_PORT + 1))";
count = 1;
password = "q1";
secure_ip = "127.0.0.1";
CONF
	cat >"$RSPAMD_CONF/override.d/worker-proxy.inc" <<'CONF'
count = -1;
CONF
	cat >"$RSPAMD_CONF/override.d/logging.inc" <<CONF
type = "file";
filename = "$LOGS/rspamd.log";
level = "warning";
CONF
	chown -R _rspamd:_rspamd "$RSPAMD_DB" "$LOGS" 2>/dev/null || true
	chmod 755 "$BASE" "$RSPAMD_CONF" "$RSPAMD_CONF/local.d" "$RSPAMD_CONF/override.d"
	chmod 777 "$RUN"
	log "starting rspamd (the first start compiles its rules, ~30 s)"
	rspamd -c /etc/rspamd/rspamd.conf -u _rspamd -g _rspamd -p "$RUN/rspamd.pid" \
		--var="LOCAL_CONFDIR=$RSPAMD_CONF" --var="DBDIR=$RSPAMD_DB" \
		--var="RUNDIR=$RUN" --var="LOGDIR=$LOGS"
	for _ in $(seq 240); do
		rspamd_ping && { log "rspamd answers /ping"; return; }
		sleep 0.5
	done
	log "rspamd did not answer; see $LOGS/rspamd.log"
	tail -20 "$LOGS/rspamd.log" >&2 || true
	exit 1
}

start_clamd
start_rspamd

echo "OUTGUARD_RSPAMD_URL=http://127.0.0.1:$RSPAMD_PORT"
echo "OUTGUARD_CLAMD_ADDR=tcp:127.0.0.1:$CLAM_PORT"
echo "OUTGUARD_CLAMD_SOCKET=unix:$CLAM_SOCK"
