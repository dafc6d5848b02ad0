#!/bin/sh
# Prints the package version: git describe without the leading v for a
# tagged build (v1.2.0 -> 1.2.0), else 0.0.0~git<commit date>.<commit>.
# Debian versions must start with a digit.
d=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
case "$d" in
v[0-9]*.*) echo "${d#v}" ;;
[0-9]*.[0-9]*) echo "$d" ;;
*) echo "0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d).$d" ;;
esac
