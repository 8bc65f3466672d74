"""A file-manager stand-in: gio list, gio info and gio cat over the whole tree.

Every file is read to its end, `events` too (read-only it is the history and
ends), except `vms/clone` (a read-only open answers EACCES so that readers never
create VMs). Nothing may hang, fail or be created.
"""
import os
import shutil
import subprocess

import pytest

needs_gio = pytest.mark.skipif(shutil.which("gio") is None, reason="gio (libglib2.0-bin) missing")



def gio(*args, timeout=20):
    env = dict(os.environ, GIO_USE_VFS="local")
    r = subprocess.run(["gio", *args], capture_output=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return r


def walk(root):
    for d, dirs, files in os.walk(root):
        yield d, True
        for f in files:
            yield os.path.join(d, f), False


@needs_gio
@pytest.mark.daemon_output(r"firecracker ended unexpectedly \(exit 3\)")
def test_gio_walks_everything(mnt):
    vms_in_every_state(mnt)
    before = sorted(os.listdir(mnt.p("vms")))
    seen = 0
    for path, is_dir in walk(mnt.path):
        uri = "file://" + path
        r = gio("info", uri)
        assert r.returncode == 0, (path, r.stderr)
        if is_dir:
            r = gio("list", "-l", uri)
            assert r.returncode == 0, (path, r.stderr)
            continue
        name = os.path.basename(path)
        if path == mnt.p("vms", "clone"):
            continue
        r = gio("cat", uri)
        assert r.returncode == 0, (path, r.stderr)
        seen += 1
    assert seen >= 5 * 14
    assert sorted(os.listdir(mnt.p("vms"))) == before
    assert mnt.state("running") == "running"


@needs_gio
def test_gio_cat_clone_creates_nothing(mnt):
    r = gio("cat", "file://" + mnt.p("vms", "clone"))
    assert r.returncode != 0
    assert os.listdir(mnt.p("vms")) == ["clone"]


def vms_in_every_state(mnt):
    mnt.make_vm("created")
    mnt.started_vm("running")
    mnt.started_vm("paused")
    mnt.ctl("paused", "pause")
    mnt.started_vm("stopped")
    mnt.ctl("stopped", "stop")
    mnt.started_vm("failed", "emu.crash_ms=10 emu.crash_exit=3")
    mnt.wait_state("failed", "error")


@pytest.mark.daemon_output(r"firecracker ended unexpectedly \(exit 3\)")
def test_whole_tree_readers_never_wait(mnt, tmp_path):
    """grep -r, cp -r, tar, rsync, cat of every file: each ends, on every file of
    a mount with VMs in every state (events included: read-only, it ends)."""
    vms_in_every_state(mnt)
    # grep: the only complaint is vms/clone's EACCES (a reader never makes VMs)
    r = mnt.sh("grep -r -l running .", timeout=20)
    assert r.returncode == 2 and r.stderr.strip() == "grep: ./vms/clone: Permission denied", r.stderr
    assert "./vms/running/events" in r.stdout.split() and "./vms/running/state" in r.stdout.split()
    r = mnt.sh(f"cp -r vms/running {tmp_path}/copy", timeout=20)
    assert r.returncode == 0, r.stderr
    assert open(tmp_path / "copy" / "events").read().startswith("state created\nstate starting\n")
    r = mnt.sh(f"tar -cf {tmp_path}/all.tar --exclude=./vms/clone .", timeout=30)
    assert r.returncode == 0, r.stderr
    r = mnt.sh("for f in vms/*/*; do [ -f \"$f\" ] && cat \"$f\" >/dev/null; done; echo done",
               timeout=30)
    assert r.stdout.strip() == "done", r.stderr
    if shutil.which("rsync"):
        r = mnt.sh(f"rsync -a --exclude=clone vms/ {tmp_path}/rsynced/", timeout=30)
        assert r.returncode in (0, 23, 24), r.stderr  # 23: a file that vanished
    assert sorted(os.listdir(mnt.p("vms"))) == ["clone", "created", "failed", "paused", "running",
                                                  "stopped"]


def test_grep_r(mnt):
    mnt.started_vm("web")
    r = mnt.sh("grep -r --exclude=clone -l running .", timeout=20)
    assert r.returncode == 0
    assert "./vms/web/state" in r.stdout.split()
