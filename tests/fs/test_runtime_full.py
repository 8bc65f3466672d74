"""The runtime dir's tmpfs full while a start stages a drive (issue 23, point 3): the
start fails with ENOSPC, its `error` line says so, and no copy, whole or partial, is
left in the tmpfs (its space is free again); the VM is as it was, no VMM runs.

The runtime dir is a small tmpfs of its own (`-o runtimedir=` on a `mount -t tmpfs
-o size=4m`), unmounted at the end.
"""
import errno
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import (BIN, EMULATOR, _processes_mentioning, check_output, start_daemon,
                      stop_daemon)

pytestmark = [
    pytest.mark.skipif(not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
                       reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

MIB = 1024 * 1024
TMPFS_MIB = 4


@pytest.fixture
def small_rt(tmp_path, kernel_file):
    """A daemon whose runtime dir is a tmpfs of TMPFS_MIB MiB."""
    rt = tmp_path / "rt"  # where start_daemon puts the runtime dir
    rt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m,mode=0700",
                        "svm-test-rt", str(rt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    m = None
    try:
        m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
        yield m
    finally:
        try:
            if m:
                stop_daemon(m)
        finally:
            # also when the daemon's end failed: the tmpfs must not outlive the test
            subprocess.run(["umount", "-l", str(rt)], capture_output=True)
    check_output(m, [r"staging drives failed", r"start failed"])


def _drive_vm(m, tmp_path, name, size, data):
    """A VM with a writable drive of `size` bytes whose first `data` bytes are data
    (the rest a hole)."""
    src = tmp_path / f"{name}.img"
    with open(src, "wb") as f:
        f.write(os.urandom(data))
        f.truncate(size)
    m.make_vm(name, drives=[{"driveId": "rootfs", "pathOnHost": str(src),
                             "isRootDevice": True, "isReadOnly": False}])
    return src


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _nothing_left(m, name, free_before):
    assert m.state(name) == "created"
    rundir = m.read("vms", name, "runtime").strip()
    # nothing: no FIFO, socket or staged copy, and no state file (no VMM ran)
    assert sorted(os.listdir(rundir)) == [], os.listdir(rundir)
    tag = f"/{os.path.basename(rundir)}/"
    assert not [c for _, c in _processes_mentioning(m.runtime) if "--api-sock" in c and tag in c]
    # the space of the copy is back (tmpfs frees a file's pages at its unlink)
    assert _free(m.runtime) >= free_before, (_free(m.runtime), free_before)


def test_drive_larger_than_the_tmpfs(small_rt, tmp_path):
    """Refused before a byte is copied: the free space is checked first."""
    m = small_rt
    _drive_vm(m, tmp_path, "big", 6 * MIB, 6 * MIB)
    free = _free(m.runtime)
    with pytest.raises(OSError) as e:
        m.ctl("big", "start")
    assert e.value.errno == errno.ENOSPC
    line = m.read("vms", "big", "error").splitlines()[-1]
    assert "staging drives needs 6.0 MiB in" in line and line.endswith("(NO_SPACE)"), line
    assert "-o noephemeral" in line  # the way out
    _nothing_left(m, "big", free)
    # a drive that fits starts in the same tmpfs
    _drive_vm(m, tmp_path, "small", 2 * MIB, 1 * MIB)
    m.ctl("small", "start")
    assert m.state("small") == "running"


def test_tmpfs_fills_during_the_copy(small_rt, tmp_path):
    """The check passes (the source holds 1 MiB of data), then, before the copy, the
    source's holes are filled with 6 MiB: the copy runs into the tmpfs's end, a real
    ENOSPC in the middle of a copy, and the partial copy is removed. The daemon is
    held between its check and the copy with strace (a delay on the check's statfs)."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (Debian package strace): cannot hold the "
                    "daemon between the space check and the copy")
    from test_faults import Injector
    m = small_rt
    src = _drive_vm(m, tmp_path, "web", 6 * MIB, 1 * MIB)
    free = _free(m.runtime)
    rundir = m.read("vms", "web", "runtime").strip()
    staged = os.path.join(rundir, "drive-rootfs.img")
    result = {}

    def start():
        try:
            m.ctl("web", "start")
            result["errno"] = 0
        except OSError as e:
            result["errno"] = e.errno

    inj = Injector(m.proc.pid, "statfs", "delay_exit=700ms", str(tmp_path / "strace.log"))
    try:
        t = threading.Thread(target=start)
        t.start()
        # the copy is created (before the check), the check is held: now the
        # source grows to 6 MiB of data
        deadline = time.monotonic() + 5
        while not os.path.exists(staged):
            assert time.monotonic() < deadline and t.is_alive(), result
            time.sleep(0.002)
        with open(src, "r+b") as f:
            f.seek(1 * MIB)
            f.write(os.urandom(5 * MIB))
        t.join(timeout=20)
    finally:
        inj.close()
    assert result.get("errno") == errno.ENOSPC, result
    line = m.read("vms", "web", "error").splitlines()[-1]
    assert "drive rootfs: cannot copy to" in line and "No space left on device" in line, line
    assert line.endswith("(NO_SPACE)"), line
    assert "staging drives failed" in m.read("log")
    _nothing_left(m, "web", free)
