#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang and
# -fsanitize=fuzzer,address,undefined (the core library too), then runs each for a
# bounded time from its committed seed corpus (tests/fuzz/corpus/TARGET, only read:
# new inputs go to a scratch corpus). Fails if any target finds a crash, a leak, a
# sanitizer report or a failed check; the input is kept in $FUZZ_OUT.
# Usage: tests/fuzz/run.sh [build|run] [TARGET...]   (default: build and run every target)
#   build: only build; run: only run (what an earlier build made)
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_BUILD    build directory (default build/fuzz)
#   FUZZ_OUT      scratch corpora, logs and crash inputs (default $FUZZ_BUILD/out)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${FUZZ_BUILD:-$top/build/fuzz}
secs=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-$build/out}
trap '[ -n "${scratch:-}" ] && rm -rf "$scratch"' EXIT
all=(fuzz_config fuzz_metadata fuzz_manifest fuzz_cilist fuzz_fcreply fuzz_ctl fuzz_agentproto)
mode=all
case "${1:-}" in build | run) mode=$1 && shift ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if [ $mode != run ]; then
	command -v clang >/dev/null || { echo "fuzz: clang is not installed" >&2; exit 2; }
	opts=(-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
	      "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined")
	if [ -f "$build/build.ninja" ]; then
		CC=clang meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
	else
		CC=clang meson setup "$build" "${opts[@]}" >/dev/null
	fi || exit 1
	ninja -C "$build" "${targets[@]/#/tests/fuzz/}" tests/emulator/fc-emulator || exit 1
	[ $mode = build ] && exit 0
fi

export SMARTVMFS_EMULATOR=$build/tests/emulator/fc-emulator
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$out"
failed=0
rows=()
for t in "${targets[@]}"; do
	seeds=$top/tests/fuzz/corpus/$t
	work=$out/$t.corpus
	log=$out/$t.log
	rm -rf "$work"
	mkdir -p "$work"
	echo "=== $t: ${secs}s from $(ls "$seeds" | wc -l) seeds"
	t0=$(date +%s)
	# short (the VMM's API socket lives under it) and removed after
	scratch=$(mktemp -d /tmp/svm-fuzz-run.XXXXXX) || exit 1
	TMPDIR=$scratch "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$out/$t-" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	rm -rf "$scratch"
	dt=$(($(date +%s) - t0))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	units=$(ls "$work" | wc -l)
	if [ $rc = 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
		status=ok
	else
		status="FAILED ($rc): see $log"
		failed=1
		grep -E 'ERROR:|runtime error:|fuzz check failed|^SUMMARY' "$log" | head -5
		ls "$out/$t-"* 2>/dev/null
	fi
	rows+=("$(printf '%-14s %4ss %10s execs %7s/s  cov %5s  corpus %4s+%-4s %s' "$t" "$dt" \
		"${execs:-?}" "${rate:-?}" "${cov:-?}" "$(ls "$seeds" | wc -l)" "$units" "$status")")
done
echo
echo "=== fuzz targets (seeds+new inputs)"
printf '%s\n' "${rows[@]}"
exit $failed
