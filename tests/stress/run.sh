#!/bin/bash
# The ThreadSanitizer stress run: builds smartvmfs (daemon and core) with
# -fsanitize=thread, mounts it on the Firecracker emulator and runs stress.py:
# 8 threads of mixed operations over 100 emulated VMs for a bounded time, with a
# watchdog (10 s per operation) and a consistency check of the final state.
# Any ThreadSanitizer report fails the run (tsan.supp: libfuse/libcurl internals only).
# A second, shorter run (a quarter, at least 15 s) does the same with the daemon's
# RLIMIT_NOFILE at 120: past the limit and back.
# Usage: tests/stress/run.sh [build|run] [stress.py options...]   (as root: it mounts FUSE)
#   build: only build; run: only run (what an earlier build made); default both
#   STRESS_SECONDS  duration of the load (default 120)
#   STRESS_BUILD    build directory (default build/tsan)
#   STRESS_EMULATOR fc-emulator to use (default: the one built in STRESS_BUILD)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${STRESS_BUILD:-$top/build/tsan}
mode=all
case "${1:-}" in build | run) mode=$1 && shift ;; esac
if [ $mode != run ]; then
	opts=(-Db_sanitize=thread -Db_lundef=false --buildtype=debugoptimized)
	if [ -f "$build/build.ninja" ]; then
		meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
	else
		meson setup "$build" "${opts[@]}" >/dev/null
	fi || exit 1
	targets=(fs/smartvmfs)
	[ -n "${STRESS_EMULATOR:-}" ] || targets+=(tests/emulator/fc-emulator)
	ninja -C "$build" "${targets[@]}" || exit 1
	[ $mode = build ] && exit 0
fi
emulator=${STRESS_EMULATOR:-$build/tests/emulator/fc-emulator}
seconds=${STRESS_SECONDS:-120}
python3 "$top/tests/stress/stress.py" --daemon "$build/fs/smartvmfs" --emulator "$emulator" \
	--vms 100 --threads 8 --seconds "$seconds" --watchdog 10 "$@" || exit 1
# then past the descriptor limit and back: 120 descriptors hold about 30 running
# VMs, so with 100 the starts beyond are refused (ENOSPC) while VMs stop and start
# again; the same consistency check at the end
python3 "$top/tests/stress/stress.py" --daemon "$build/fs/smartvmfs" --emulator "$emulator" \
	--vms 100 --threads 8 --seconds $(( seconds / 4 > 15 ? seconds / 4 : 15 )) --watchdog 10 \
	--nofile 120 "$@"
