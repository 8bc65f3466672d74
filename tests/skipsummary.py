#!/usr/bin/python3
"""Prints what this host could not exercise: the run's skips (tests/skipreport.py and
tests/unit/check.h wrote them), grouped by reason, with the builds and suites they
were skipped in, so that a green run is never mistaken for a complete one.

Usage: tests/skipsummary.py SKIP_LOG [CHECK_OUTPUT]
CHECK_OUTPUT: what `smartvmfs --check` said of this host; its problems come first.
"""
import collections
import sys


def host_problems(path):
    try:
        with open(path) as f:
            return [line.split(None, 1)[1].strip() for line in f if line.startswith("PROBLEM")]
    except (FileNotFoundError, IndexError):
        return []


def main(path, check_path=""):
    problems = host_problems(check_path) if check_path else []
    if problems:
        print("this host lacks (smartvmfs --check):")
        for p in problems:
            print(f"- {p}")
        print()
    try:
        with open(path) as f:
            rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except FileNotFoundError:
        rows = []
    rows = [r for r in rows if len(r) == 4]
    if not rows:
        print("nothing was skipped: every test ran on this host")
        return 0
    by_reason = collections.OrderedDict()
    for label, suite, test, reason in rows:
        g = by_reason.setdefault(reason, {"labels": set(), "suites": set(), "tests": set()})
        g["labels"].add(label)
        g["suites"].add(suite)
        g["tests"].add((suite, test))
    print(f"{len(rows)} skips, {len(by_reason)} reasons:")
    for reason, g in sorted(by_reason.items(), key=lambda kv: -len(kv[1]["tests"])):
        tests = sorted(g["tests"])
        example = tests[0][1] + (f" and {len(tests) - 1} more" if len(tests) > 1 else "")
        print(f"- {reason}")
        print(f"    {len(tests)} test(s) in {', '.join(sorted(g['suites']))}"
              f" [{', '.join(sorted(g['labels']))}]: {example}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
