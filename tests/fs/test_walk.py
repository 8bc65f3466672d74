"""A file-manager stand-in: gio list, gio info and gio cat over the whole tree.

Every file is read to its end except `events` (a stream by design: it blocks
after its first read, like tail -f) and `vms/clone` (a read-only open answers
EACCES so that readers never create VMs). Nothing may hang, fail or be created.
"""
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("gio") is None, reason="gio (libglib2.0-bin) missing")

STREAMS = {"events"}


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


def test_gio_walks_everything(mnt):
    mnt.make_vm("created")
    mnt.started_vm("running")
    mnt.started_vm("paused")
    mnt.ctl("paused", "pause")
    mnt.started_vm("stopped")
    mnt.ctl("stopped", "stop")
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
        if name in STREAMS or path == mnt.p("vms", "clone"):
            continue
        r = gio("cat", uri)
        assert r.returncode == 0, (path, r.stderr)
        seen += 1
    assert seen >= 4 * 13
    assert sorted(os.listdir(mnt.p("vms"))) == before
    assert mnt.state("running") == "running"


def test_gio_cat_clone_creates_nothing(mnt):
    r = gio("cat", "file://" + mnt.p("vms", "clone"))
    assert r.returncode != 0
    assert os.listdir(mnt.p("vms")) == ["clone"]


def test_grep_r_without_events(mnt):
    mnt.started_vm("web")
    r = mnt.sh("grep -r --exclude=events --exclude=clone -l running .", timeout=20)
    assert r.returncode == 0
    assert "./vms/web/state" in r.stdout.split()
