#!/usr/bin/env bash
# Unpacks Debian's Exim next to the installed Postfix, for the real-MTA
# identity recipe tests (app/mta_test.go, docs/identity-recipes.md).
# exim4 conflicts with postfix as an installed package, so its packages are
# only downloaded and unpacked with dpkg -x; the libraries it needs that do
# not conflict are installed normally, and the user its binary runs deliveries
# as (Debian-exim, compiled in) is created. Idempotent. Run as root.
# Prints the environment variable the tests read:
#
#   export $(bash .ci/exim.sh)     # OUTGUARD_EXIM=/path/to/exim4
set -euo pipefail

# Not under /var/lib: the tests mount a tmpfs there (Exim reads its
# default configuration file from /var/lib/exim4).
BASE=${OUTGUARD_CI_DIR:-/opt/outguard-ci}
ROOT=$BASE/exim
BIN=$ROOT/usr/sbin/exim4
export DEBIAN_FRONTEND=noninteractive

log() { echo "exim: $*" >&2; }

if [[ ! -x $BIN ]]; then
	dl=$(mktemp -d)
	trap 'rm -rf "$dl"' EXIT
	log "downloading exim4-daemon-light"
	(cd "$dl" && apt-get download exim4-daemon-light >/dev/null 2>&1) || {
		apt-get update -qq
		(cd "$dl" && apt-get download exim4-daemon-light >/dev/null)
	}
	mkdir -p "$ROOT"
	dpkg -x "$dl"/exim4-daemon-light_*.deb "$ROOT"
fi
# The tests run the binary (set-uid root, as packaged) as user nobody.
chmod a+rx "$BASE" "$ROOT"

# The shared libraries of the binary that are missing: install their
# packages (none of them conflicts with postfix).
missing=$(ldd "$BIN" | awk '/not found/ {print $1}')
if [[ -n $missing ]]; then
	pkgs=()
	for lib in $missing; do
		case $lib in
		libidn.so.12) pkgs+=(libidn12) ;;
		*)
			log "no package known for $lib"
			exit 1
			;;
		esac
	done
	log "installing ${pkgs[*]}"
	apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1 || {
		apt-get update -qq
		apt-get install -y -qq "${pkgs[@]}" >/dev/null
	}
fi

if ! getent passwd Debian-exim >/dev/null; then
	log "creating user Debian-exim"
	getent group Debian-exim >/dev/null || groupadd --system Debian-exim
	useradd --system --gid Debian-exim --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin Debian-exim
fi

printf 'exim4 -bV: ' >&2
cfg=$(mktemp)
echo "spool_directory = /tmp" >"$cfg"
"$BIN" -C "$cfg" -bV 2>&1 | sed -n 's/^\(Exim version [^ ]*\).*/\1/p' >&2
rm -f "$cfg"
echo "OUTGUARD_EXIM=$BIN"
