"""What ordinary tools see of the growing and live files, after an earlier read.

Each test reads the file first (as a user's `cat` would), changes it, then asks the
tools: `tail -n`, `wc -c <`, `stat -c %s`, `tail -f` (which polls st_size), `less +F`
is `tail -f`'s cousin and reads the same way. Nothing may answer with the value as it
was at the earlier read.

Growing files (root log and error, /images/error, a VM's log, error and console) are
streams with absolute offsets: st_size is every byte written. Live files (info, stat,
metrics, balloon) are asked of the core at each open: the open's value is the one
every tool that opens, stats and reads it sees.
"""
import contextlib
import json
import os
import select
import subprocess
import time

import pytest


def tools(m, rel):
    """What tail -n 1, wc -c <, stat and cat say of the file, through the shell."""
    r = m.sh(f"tail -n 1 {rel}; echo '--'; wc -c < {rel}; stat -c %s {rel}; echo '--'; cat {rel}")
    assert r.returncode == 0, r.stderr
    tail_line, counts, whole = r.stdout.split("--\n")
    wc, size = counts.split()
    return tail_line, int(wc), int(size), whole


def assert_tools_agree(m, rel, must_end_with, wrapped=False):
    """tail -n 1 is cat's last line; wc -c < and stat say st_size, which is every byte
    the stream was ever given: what cat returns, or, once the stream dropped its
    oldest bytes (wrapped), more than that (docs/smartvmfs.5.md)."""
    tail_line, wc, size, whole = tools(m, rel)
    assert whole.endswith(must_end_with), f"{rel}: cat does not end with {must_end_with!r}: {whole[-300:]!r}"
    assert tail_line == whole.splitlines(keepends=True)[-1], f"{rel}: tail -n 1 {tail_line!r}"
    assert wc == size, f"{rel}: wc -c {wc}, stat {size}"
    if wrapped:
        assert size > len(whole.encode()), f"{rel}: st_size {size}, cat {len(whole.encode())}"
    else:
        assert size == len(whole.encode()), f"{rel}: st_size {size}, cat {len(whole.encode())}"


class Follow:
    """tail -f from the end, in the mount (it polls st_size: FUSE has no inotify)."""

    def __init__(self, m, rel):
        self.p = subprocess.Popen(["tail", "-f", "-n", "0", "-s", "0.1", rel], cwd=m.path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        time.sleep(0.5)

    def output(self, until, timeout=10.0):
        """What tail -f printed, once the line holding `until` is in it whole (or the
        timeout passed): tail may print a line in two writes, and a read between
        them would see half of it."""
        deadline = time.monotonic() + timeout
        mark = until.encode()

        def whole():
            at = self.out.find(mark)
            return at >= 0 and self.out.find(b"\n", at) >= 0

        while not whole() and time.monotonic() < deadline:
            ready, _, _ = select.select([self.p.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.out += chunk
        return self.out.decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        _, err = self.p.communicate(timeout=10)
        assert not err.strip() or b"Killed" in err, f"tail -f said: {err!r}"


@contextlib.contextmanager
def following(m, rel):
    f = Follow(m, rel)
    try:
        yield f
    finally:
        f.stop()  # an open file would hold the mount busy


@pytest.mark.parametrize("rel", ["log", "vms/web/log"])
def test_logs_after_an_earlier_read(mnt, rel):
    mnt.started_vm("web")
    mnt.read(rel)  # the earlier read: tools must not be held to its length
    mnt.sh("cat " + rel + " >/dev/null")
    with following(mnt, rel) as f:
        check_logs(mnt, rel, f)


def check_logs(mnt, rel, f):
    mnt.ctl("web", "pause")
    mnt.ctl("web", "resume")
    os.mkdir(mnt.p("vms", "other"))
    mnt.write(mnt.vm("other", "config.json"), mnt.read("vms", "web", "config.json"))
    mnt.ctl("other", "start")
    mnt.ctl("other", "stop")
    if rel == "log":
        # the daemon log says the second VM stopped, in its last line: asked of
        # the tools before anything else reads the file again
        # (the stop's line follows its reply by a moment: the tools are asked
        # again, never the file another way, until it is there)
        deadline = time.monotonic() + 5
        tail_line, wc, size, whole = tools(mnt, rel)
        while "vm other: stopped" not in tail_line and time.monotonic() < deadline:
            time.sleep(0.05)
            tail_line, wc, size, whole = tools(mnt, rel)
        assert "vm other: stopped" in tail_line, tail_line
        assert tail_line == whole.splitlines(keepends=True)[-1]
        assert wc == size == len(whole.encode()), (wc, size, len(whole.encode()))
        followed = f.output(until="vm other: stopped")
        assert "vm other: running" in followed and "vm other: stopped" in followed, followed
    else:
        whole = mnt.read(rel)
        assert_tools_agree(mnt, rel, whole.splitlines(keepends=True)[-1] if whole else "")


@pytest.mark.parametrize("rel,bad", [("error", "ctl"), ("vms/web/error", "vms/web/ctl"),
                                     ("images/error", "images/ctl")])
def test_error_files_after_an_earlier_read(mnt, rel, bad):
    os.mkdir(mnt.p("vms", "web"))
    mnt.read(rel)
    with following(mnt, rel) as f:
        check_errors(mnt, rel, bad, f)


def check_errors(mnt, rel, bad, f):
    # more failures than the error ring keeps (16 KiB), at a pace a poll every
    # 0.1 s follows: the offsets must hold when the oldest lines are dropped
    n = 160
    for i in range(n):
        r = mnt.sh(f"echo 'frobnicate {i} {'x' * 100}' > {bad}")
        assert r.returncode != 0
        time.sleep(0.01)
    assert os.stat(mnt.p(rel)).st_size > 16384
    whole = mnt.read(rel)
    # the oldest were dropped; cat reads what is kept once (no line twice)
    assert len(whole.encode()) <= 16384 and whole.count("\n") < n
    assert len(set(whole.splitlines()[1:])) == whole.count("\n") - 1
    assert whole.splitlines()[-1].endswith(f'"frobnicate {n - 1} {"x" * 100}" (INVALID_ARGUMENT)'), \
        whole[-300:]
    assert_tools_agree(mnt, rel, whole.splitlines(keepends=True)[-1], wrapped=True)
    followed = f.output(until=f'"frobnicate {n - 1} ').splitlines()
    # tail -f printed each failure once, in order, whole
    numbers = [int(line.split('"frobnicate ')[1].split()[0]) for line in followed]
    assert numbers == list(range(n)), followed[:3] + followed[-3:]
    assert all(line.endswith('x" (INVALID_ARGUMENT)') for line in followed), followed


def test_console_after_an_earlier_read(mnt):
    mnt.started_vm("web")
    mnt.read("vms", "web", "console")
    with following(mnt, "vms/web/console") as f:
        check_console(mnt, f)


def check_console(mnt, f):
    for i in range(20):
        mnt.write(mnt.vm("web", "console"), f"line {i}\n")
    deadline = time.monotonic() + 5
    while "line 19\n" not in mnt.read("vms", "web", "console") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_tools_agree(mnt, "vms/web/console", "line 19\n")
    followed = f.output(until="line 19\n")
    assert all(f"line {i}\n" in followed for i in range(20)), followed


@pytest.mark.parametrize("name", ["info", "stat", "metrics", "balloon"])
def test_live_values_after_an_earlier_read(mnt, name):
    mnt.started_vm("web", balloon={"amountMib": 16, "deflateOnOom": True,
                                   "statsPollingIntervalS": 1})
    mnt.read("vms", "web", name)
    mnt.ctl("web", "pause")  # info's state, stat's times and metrics all change
    time.sleep(0.05)
    for _ in range(3):
        tail_line, wc, size, whole = tools(mnt, f"vms/web/{name}")
        # each tool opened the file anew and saw one whole value of its own: tail's
        # last line is the last line of a value (a metrics line has a newer
        # timestamp at every open), never a cut one
        last = whole.splitlines(keepends=True)[-1]
        assert whole.endswith("\n") and tail_line.endswith("\n"), (tail_line, whole)
        if len(whole.splitlines()) == 1:
            json.loads(tail_line)
        else:
            assert tail_line.split()[0] == last.split()[0], (tail_line, last)
        if name == "stat":
            assert all(len(line.split()) == 2 for line in whole.splitlines()), whole
        else:
            json.loads(whole)
        # in one process: the size fstat gives after the open is what read returns
        with open(mnt.vm("web", name), "rb") as f:
            told = os.fstat(f.fileno()).st_size
            data = f.read()
        assert told == len(data), f"{name}: fstat said {told}, read gave {len(data)}"
    if name == "info":
        assert json.loads(whole)["state"] == "Paused"
