#!/usr/bin/env python3
"""Records what a real jailer does in every scenario (scenarios.py) into a
table the test double is held to. As root, on a host with cgroup v1:

    tests/jailer/record.py /path/to/jailer PROBE OUT.json

PROBE is the static probe named to contain "firecracker" (meson builds it as
tests/jailer/firecracker-probe); a copy without that word is made beside it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenarios import SCENARIOS, run  # noqa: E402


def main():
    jailer, probe, out = sys.argv[1:4]
    version = subprocess.run([jailer, "--version"], capture_output=True, text=True).stdout.strip()
    base = tempfile.mkdtemp(prefix="jailrec-")
    os.chmod(base, 0o755)
    plain = os.path.join(base, "probe")
    shutil.copy(probe, plain)
    table = {"jailer": version.splitlines()[0] if version else "?", "scenarios": {}}
    for name in SCENARIOS:
        table["scenarios"][name] = run(jailer, name, probe, plain, base)
        print(name, table["scenarios"][name]["exit"], table["scenarios"][name]["error"])
    shutil.rmtree(base, ignore_errors=True)
    with open(out, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
