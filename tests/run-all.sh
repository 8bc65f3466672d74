#!/bin/bash
# The whole test suite: installs what is missing, builds smartvmfs twice (plain, and
# with ASan+UBSan), runs every suite in both, and says how long each part took.
# Usage: tests/run-all.sh   (as root; from any directory)
#   SMARTVMFS_FIRECRACKER=/path/to/firecracker adds the real-Firecracker runs.
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
part "build (plain)" setup build/plain --buildtype=debugoptimized --werror &&
	part "tests (plain)" meson test -C build/plain --print-errorlogs --num-processes 2
part "build (asan+ubsan)" setup build/asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false &&
	part "tests (asan+ubsan)" meson test -C build/asan --print-errorlogs --num-processes 2

echo
echo "=== time per part"
printf '%s\n' "${parts[@]}"
echo "total: $(($(date +%s) - t_all))s"
exit $failed
