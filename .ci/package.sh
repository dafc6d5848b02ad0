#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine, checks what it
# installed, upgrades it, and removes and purges it (docs/install.md).
# Run as root by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package: $*" >&2; exit 1; }

out=$(mktemp -d /tmp/outguard-deb.XXXXXX)
trap 'rm -rf "$out"' EXIT
DEB_OUT="$out/1" make -s deb >/dev/null
deb=$(ls "$out"/1/outguard_*.deb)
version=$(dpkg-deb -f "$deb" Version)
echo "package: built $(basename "$deb")"

# A clean slate: an earlier run's leftovers must not hide a missing step.
dpkg --purge outguard >/dev/null 2>&1 || true

dpkg -i "$deb" >/dev/null
for f in /usr/bin/outguard /usr/bin/outguard-load /etc/outguard/outguard.yaml \
	/lib/systemd/system/outguard.service /lib/systemd/system/outguard.socket /usr/share/man/man8/outguard.8.gz \
	/usr/share/outguard/prometheus/outguard-rules.yml /usr/share/outguard/grafana/outguard.json \
	/usr/share/doc/outguard/outguard.example.yaml; do
	[ -f "$f" ] || fail "$f not installed"
done
getent passwd outguard >/dev/null || fail "no outguard user"
getent group outguard >/dev/null || fail "no outguard group"
[ "$(getent passwd outguard | cut -d: -f7)" = /usr/sbin/nologin ] || fail "outguard user has a login shell"
[ "$(stat -c '%U:%G %a' /var/lib/outguard)" = "outguard:outguard 750" ] || fail "/var/lib/outguard is $(stat -c '%U:%G %a' /var/lib/outguard)"
[ "$(stat -c '%U:%G %a' /etc/outguard/outguard.yaml)" = "root:outguard 640" ] || fail "config is $(stat -c '%U:%G %a' /etc/outguard/outguard.yaml)"
dpkg-query -W -f='${Conffiles}\n' outguard | grep '/etc/outguard/outguard.yaml' >/dev/null || fail "the config is not a conffile"
/usr/bin/outguard version | grep -F "outguard $version " >/dev/null || fail "outguard version does not say $version: $(/usr/bin/outguard version)"
zcat /usr/share/man/man8/outguard.8.gz | grep '^\.SS outguard serve' >/dev/null || fail "the man page has no serve section"

# The packaged config refuses to start until users and tokens are set.
if msg=$(/usr/bin/outguard check-config /etc/outguard/outguard.yaml 2>&1); then
	fail "check-config accepted the packaged config"
fi
grep -q "set users and tokens" <<<"$msg" || fail "check-config said: $msg"

# The unit: syntax, and its exposure score ("OK" or better: at most 2.0).
systemd-analyze verify /lib/systemd/system/outguard.service /lib/systemd/system/outguard.socket
systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/outguard.service | tail -1

# An upgrade keeps the admin's config edits and the database.
echo "# edited by the admin" >>/etc/outguard/outguard.yaml
echo "database" >/var/lib/outguard/outguard.db
DEB_OUT="$out/2" VERSION="$version+upgrade" make -s deb >/dev/null
dpkg -i "$out"/2/outguard_*.deb >/dev/null
/usr/bin/outguard version | grep -F "$version+upgrade" >/dev/null || fail "the upgrade did not replace the binary"
grep -q "edited by the admin" /etc/outguard/outguard.yaml || fail "the upgrade replaced the edited config"
[ -f /var/lib/outguard/outguard.db ] || fail "the upgrade lost the database"

# Remove keeps the config (a conffile) and the data; purge removes both.
dpkg -r outguard >/dev/null
[ ! -e /usr/bin/outguard ] || fail "remove left the binary"
[ -f /etc/outguard/outguard.yaml ] || fail "remove deleted the conffile"
dpkg --purge outguard >/dev/null
[ ! -e /etc/outguard ] || fail "purge left /etc/outguard"
[ ! -e /var/lib/outguard ] || fail "purge left /var/lib/outguard"
echo "package: install, upgrade, remove and purge OK"
