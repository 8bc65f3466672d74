"""The README's tour, literally: every command of its console block is typed into one
bash session in a mount of the emulator, and what it prints is compared with what
the README shows, so the README cannot drift from the program.

Only what differs from run to run is let go: numbers (pids, sizes, times), dates, the
mount point and the kernel path, and how bash names its line ("bash: line 3:"). `ls`
is compared as a set of names (the README shows a terminal's columns).
"""
import importlib.util
import os
import re
import subprocess

import pytest

SRC = os.environ.get("SMARTVMFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
_spec = importlib.util.spec_from_file_location("fs_conftest", os.path.join(SRC, "tests", "fs", "conftest.py"))
fsc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fsc)

pytestmark = pytest.mark.skipif(
    not (fsc.BIN and os.path.exists(fsc.BIN) and fsc.EMULATOR and os.path.exists(fsc.EMULATOR)),
    reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)")

MARK = "__readme_step_done__"


def tour():
    """[(command, [expected output lines])] of the README's first console block."""
    text = open(os.path.join(SRC, "README.md"), encoding="utf-8").read()
    block = text.split("## A 30-second tour", 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        if line.startswith("# "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return steps


def words(lines, mnt, kernel):
    out = []
    for line in lines:
        line = line.replace(mnt, "/mnt/smartvm").replace(kernel, "KERNEL")
        line = re.sub(r"^bash: line \d+: ", "bash: ", line)
        line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "DATE", line)
        line = re.sub(r"\d+(\.\d+)?", "N", line)
        out.append(line.split())
    return out


class Session:
    """One bash, as a user types into it: each command's output (stdout and stderr)."""

    def __init__(self, cwd):
        self.p = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  bufsize=1)

    def run(self, cmd):
        self.p.stdin.write(cmd + "\n" + f"echo {MARK}\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, f"bash ended during {cmd!r}"
            if line.rstrip("\n") == MARK:
                return lines
            lines.append(line.rstrip("\n"))

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def test_readme_tour_as_printed(tmp_path):
    kernel = fsc.GUEST_KERNEL if fsc.GUEST_KERNEL and os.path.exists(fsc.GUEST_KERNEL) else None
    if not kernel:
        pytest.skip("the tiny guest is not built (nasm missing?): the tour boots it")
    m = fsc.start_daemon(str(tmp_path), fsc.EMULATOR, kernel)
    sh = Session(SRC)
    try:
        for cmd, want in tour():
            typed = cmd.replace("$PWD/build/plain/assets/guest/smartvm-guest.elf", kernel)
            typed = typed.replace("/mnt/smartvm", m.path)
            got = sh.run(typed)
            g, w = words(got, m.path, kernel), words(want, m.path, kernel)
            if re.match(r"ls( |$)", cmd):
                assert sorted(x for ws in g for x in ws) == sorted(x for ws in w for x in ws), \
                    f"{cmd!r} printed {got}, the README shows {want}"
            else:
                assert g == w, f"{cmd!r} printed:\n" + "\n".join(got) + "\nthe README shows:\n" + \
                    "\n".join(want)
    finally:
        sh.close()
        fsc.stop_daemon(m)
    fsc.check_output(m, [])
