#!/bin/sh
# Runs every smartvmfs benchmark and writes build/bench/results.md, results.json
# and start-latency.svg (tests/bench/README.md).
#
#   tests/bench/run.sh [--real /path/to/firecracker] [--quick] [--only 2,3,...]
#
# As root (figure 8 uses a private network namespace; figure 1 needs /dev/kvm).
# Builds a release tree in build/bench-release (SMARTVMFS_BENCH_BUILD overrides).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${SMARTVMFS_BENCH_BUILD:-$root/build/bench-release}
out=$root/build/bench
"$root/assets/install-deps.sh" --bench
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
exec /usr/bin/python3 "$here/bench.py" --build "$build" --out "$out" "$@"
