#!/bin/sh
# Installs the Debian packages smartvmfs needs to build, run and test, if missing.
# Usage: assets/install-deps.sh [--test|--bench]   (run as root)
set -eu
pkgs="meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3 libcurl4-openssl-dev
libjansson-dev libssl-dev libnl-3-dev libnl-route-3-dev nasm libmicrohttpd-dev iptables e2fsprogs
lowdown tar gzip"
case "${1:-}" in
--test) pkgs="$pkgs python3 python3-pytest libglib2.0-bin procps iproute2 util-linux clang libclang-rt-14-dev
		systemd man-db" ;;
--bench) pkgs="$pkgs python3 procps iproute2 util-linux gnuplot-nox" ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "assets/install-deps.sh: run as root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
