#!/bin/bash
# The whole test suite: installs what is missing, builds smartvmfs twice (plain, and
# with ASan+UBSan), runs every suite in both, then each fuzz target for a bounded
# time (clang, ASan+UBSan) and the ThreadSanitizer stress run, and says how long
# each part took. It starts with what this host offers (smartvmfs --check) and ends
# with what it could not exercise here (every skip, grouped by its reason), so a
# green run on a host without KVM, TUN or iptables is never taken for a complete one
# (the check asks for what a real guest needs: the emulator would need no KVM).
# Usage: tests/run-all.sh   (as root; from any directory)
#   SMARTVMFS_FIRECRACKER=/path/to/firecracker adds the real-Firecracker runs.
#   FUZZ_SECONDS (60 per target) and STRESS_SECONDS (120) bound the last two.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
declare -a parts=()
failed=0
t_all=$(date +%s)

part() { # part NAME COMMAND...
	local name=$1
	shift
	local t0 rc
	t0=$(date +%s)
	echo "=== $name"
	"$@"
	rc=$?
	parts+=("$(printf '%-28s %5ss  %s' "$name" $(($(date +%s) - t0)) "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")")")
	[ $rc = 0 ] || failed=1
	return $rc
}

setup() { # setup DIR [meson options...]
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi && ninja -C "$dir"
}

part "install dependencies" assets/install-deps.sh --test || exit 1
mkdir -p build
export SMARTVMFS_SKIP_LOG=$top/build/skips.log
: >"$SMARTVMFS_SKIP_LOG"
: >build/host-check.txt
part "build (plain)" setup build/plain --buildtype=debugoptimized --werror &&
	echo "=== this host (smartvmfs --check)" &&
	{ build/plain/fs/smartvmfs --check ${SMARTVMFS_FIRECRACKER:+-o "firecracker=$SMARTVMFS_FIRECRACKER"} |
		tee build/host-check.txt || true; } &&
	SMARTVMFS_SKIP_LABEL=plain part "tests (plain)" meson test -C build/plain --print-errorlogs --num-processes 2
part "build (asan+ubsan)" setup build/asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false &&
	SMARTVMFS_SKIP_LABEL=asan part "tests (asan+ubsan)" meson test -C build/asan --print-errorlogs --num-processes 2
export FUZZ_BUILD=$top/build/fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-60}
part "build (fuzz: clang)" tests/fuzz/run.sh build &&
	part "fuzz (6 x ${FUZZ_SECONDS}s)" tests/fuzz/run.sh run
export STRESS_BUILD=$top/build/tsan STRESS_SECONDS=${STRESS_SECONDS:-120}
[ -x build/plain/tests/emulator/fc-emulator ] && export STRESS_EMULATOR=$top/build/plain/tests/emulator/fc-emulator
part "build (tsan)" tests/stress/run.sh build &&
	part "stress (tsan, ${STRESS_SECONDS}s)" tests/stress/run.sh run

echo
echo "=== what this host could not exercise"
python3=/usr/bin/python3
[ -x $python3 ] || python3=python3
$python3 tests/skipsummary.py "$SMARTVMFS_SKIP_LOG" build/host-check.txt
echo
echo "=== time per part"
printf '%s\n' "${parts[@]}"
echo "total: $(($(date +%s) - t_all))s"
exit $failed
