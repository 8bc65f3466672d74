#!/bin/bash
# Runs a command on this host as it would run on a host that lacks some of what
# smartvmfs can use: /dev/kvm, /dev/net/tun, iptables (and nft). The command runs in
# a private mount namespace where those are gone (ENOENT, as on a host without the
# module or the package); nothing outside it changes, and it ends with the command.
# The test suite must give the same verdict there, saying what it could not exercise.
#
# Usage: tests/host-without.sh [kvm] [tun] [iptables] -- COMMAND [ARG...]   (as root)
# Example: tests/host-without.sh kvm tun -- tests/run-all.sh
set -euo pipefail

usage() {
	echo "usage: $0 [kvm] [tun] [iptables] -- COMMAND [ARG...]" >&2
	exit 2
}

if [ "${1:-}" != "--inside" ]; then
	[ "$(id -u)" = 0 ] || { echo "$0: needs root (a private mount namespace)" >&2; exit 1; }
	command -v unshare >/dev/null || { echo "$0: unshare (util-linux) is missing" >&2; exit 1; }
	exec unshare -m --propagation private -- "$0" --inside "$@"
fi
shift

hide_kvm=0 hide_tun=0 hide_fw=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	case "$1" in
	kvm) hide_kvm=1 ;;
	tun) hide_tun=1 ;;
	iptables) hide_fw=1 ;;
	*) usage ;;
	esac
	shift
done
[ "${1:-}" = "--" ] && [ $# -ge 2 ] || usage
shift

# A device node cannot be removed from devtmpfs without removing it for the whole
# host, so a new /dev is built: a tmpfs holding the same nodes (mknod through cp -a)
# but the hidden ones, with the host's /dev/shm, /dev/pts and /dev/mqueue bound in.
if [ $hide_kvm = 1 ] || [ $hide_tun = 1 ]; then
	newdev=$(mktemp -d /tmp/host-without-dev.XXXXXX)
	mount -t tmpfs -o mode=755 host-without-dev "$newdev"
	rmdir_later=$newdev
	for entry in /dev/* /dev/.[!.]*; do
		[ -e "$entry" ] || [ -L "$entry" ] || continue
		name=${entry#/dev/}
		[ $hide_kvm = 1 ] && [ "$name" = kvm ] && continue
		if mountpoint -q "$entry"; then
			mkdir -p "$newdev/$name"
			mount --rbind "$entry" "$newdev/$name"
		else
			cp -a "$entry" "$newdev/$name"
		fi
	done
	[ $hide_tun = 1 ] && rm -f "$newdev/net/tun"
	mount --move "$newdev" /dev
	rmdir "$rmdir_later" 2>/dev/null || true
fi

# A binary cannot be unlinked for this namespace only; /dev/null bound over it is
# not executable, which is what `access(X_OK)` and the core's lookup see as missing.
if [ $hide_fw = 1 ]; then
	for dir in /usr/sbin /sbin /usr/bin /bin /usr/local/sbin /usr/local/bin; do
		for prog in iptables nft; do
			p=$dir/$prog
			[ -e "$p" ] && ! [ -L "$dir" ] && mount --bind /dev/null "$p"
		done
	done
	hash -r
fi

exec "$@"
