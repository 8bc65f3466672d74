"""Mounting, options, signals, dead mounts, and allow_other."""
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (BIN, EMULATOR, _processes_mentioning, check_output, start_daemon,
                      stop_daemon, vm_config)

NOBODY = 65534

pytestmark = pytest.mark.skipif(
    not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
    reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)")


def _signal_ends_everything(tmp_path, kernel_file, sig):
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        m.started_vm("a")
        m.started_vm("b")
        m.ctl("b", "pause")
        pids = [int(m.read("vms", n, "pid")) for n in ("a", "b")]
        m.proc.send_signal(sig)
        assert m.proc.wait(timeout=30) == 0
        for pid in pids:
            assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_sigterm_stops_and_cleans(tmp_path, kernel_file):
    _signal_ends_everything(tmp_path, kernel_file, signal.SIGTERM)


def test_sigint_stops_and_cleans(tmp_path, kernel_file):
    _signal_ends_everything(tmp_path, kernel_file, signal.SIGINT)


def test_mount_options_of_fstab(tmp_path, kernel_file):
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, extra_opts=[
        "rw", "nosuid", "nodev", "noauto", "_netdev", "x-systemd.automount",
        "consolesize=4096", "noephemeral", "maximages=3", "bridge=svtest0",
        "subnet=172.31.0.0/24", "fcversion=v1.14.2"], checks=False)
    try:
        assert "bridge svtest0" in m.read("ctl")
        m.started_vm("web")
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_runtime_dir_too_long(tmp_path, kernel_file):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    rt = str(tmp_path / ("r" * 100))
    r = subprocess.run([BIN, "-f", "-o", f"firecracker={EMULATOR},runtimedir={rt}", str(mnt)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "NAME_TOO_LONG" in r.stderr or "too long" in r.stderr
    assert not os.path.ismount(mnt)


def test_missing_mountpoint(tmp_path):
    r = subprocess.run([BIN, "-f", "-o", f"firecracker={EMULATOR}"], capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0


def test_dead_mount_is_cleared(tmp_path, kernel_file):
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    m.started_vm("web")
    vmm = int(m.read("vms", "web", "pid"))
    m.proc.kill()
    m.proc.wait()
    try:
        with pytest.raises(OSError) as e:
            os.statvfs(m.path)
        assert e.value.errno == errno.ENOTCONN
    finally:
        # the VMM of the killed daemon is an orphan now: not the new daemon's
        try:
            os.kill(vmm, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(m.runtime, ignore_errors=True)
    m2 = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        assert "dead mount" in m2.daemon_output(), m2.read("log")
        assert "dead mount" in m2.read("log")
        assert os.listdir(m2.p("vms")) == ["clone"]
    finally:
        stop_daemon(m2)


def test_without_allow_other_others_are_out(mnt):
    r = subprocess.run(["ls", mnt.path], user=NOBODY, capture_output=True, text=True)
    assert r.returncode != 0


@pytest.fixture
def shared_mnt(request, kernel_file):
    """allow_other, in a directory every user can reach; -o paths is pub/ (a
    kernel every user may read), outside/ is not under it."""
    tmp = tempfile.mkdtemp(prefix="svmfs-shared-")
    os.chmod(tmp, 0o755)
    pub = os.path.join(tmp, "pub")
    os.makedirs(pub, mode=0o755)
    kernel = os.path.join(pub, "vmlinux")
    shutil.copy(kernel_file, kernel)
    os.chmod(kernel, 0o644)
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside, mode=0o755)
    shutil.copy(kernel_file, os.path.join(outside, "vmlinux"))
    m = start_daemon(tmp, EMULATOR, kernel, extra_opts=["allow_other", f"paths={pub}"],
                     checks=False)
    m.pub = pub
    try:
        yield m
    finally:
        stop_daemon(m)
        check_output(m, [])
        shutil.rmtree(tmp, ignore_errors=True)


def as_nobody(m, cmd):
    return subprocess.run(cmd, shell=True, executable="/bin/bash", cwd=m.path, user=NOBODY,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_allow_other_ownership(shared_mnt):
    m = shared_mnt
    m.started_vm("roots")
    assert as_nobody(m, "cat vms/roots/state").stdout == "running\n"
    r = as_nobody(m, "echo stop > vms/roots/ctl")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert as_nobody(m, "cat vms/roots/metadata").returncode != 0  # 0600: secrets
    assert as_nobody(m, "rmdir vms/roots").returncode != 0
    assert m.state("roots") == "running"
    # nobody makes a VM of its own, and drives it
    r = as_nobody(m, "mkdir vms/mine && stat -c %u vms/mine vms/mine/ctl")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(NOBODY)] * 2
    cfg = json.dumps(vm_config(m.kernel))
    r = as_nobody(m, f"echo '{cfg}' > vms/mine/config.json && echo start > vms/mine/ctl && cat vms/mine/state")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "running\n"
    assert as_nobody(m, "echo kill > vms/mine/ctl && rmdir vms/mine").returncode == 0


def test_allow_other_host_paths(shared_mnt):
    m = shared_mnt
    assert as_nobody(m, "mkdir vms/mine").returncode == 0
    outside = os.path.join(os.path.dirname(m.path), "outside", "vmlinux")
    cfg = json.dumps(vm_config(outside))
    r = as_nobody(m, f"echo '{cfg}' > vms/mine/config.json")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert "not under -o paths" in m.read("vms", "mine", "error")
    r = as_nobody(m, f"echo 'restore {os.path.dirname(outside)}' > vms/mine/ctl")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    cfg = json.dumps(vm_config(m.kernel))
    assert as_nobody(m, f"echo '{cfg}' > vms/mine/config.json").returncode == 0


def test_allow_other_host_interfaces_are_roots(shared_mnt):
    """hostDevName names any host link (the bridge, another user's TAP): only root's
    VMs may; a user's VM gets the TAP the daemon makes."""
    m = shared_mnt
    assert as_nobody(m, "mkdir vms/mine").returncode == 0
    before = m.read("vms", "mine", "config.json")
    cfg = json.dumps(vm_config(m.kernel, networkInterfaces=[{"ifaceId": "eth0",
                                                             "hostDevName": "svbr0"}]))
    r = as_nobody(m, f"echo '{cfg}' > vms/mine/config.json")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert "hostDevName svbr0 names a host interface, which only root may" in \
        m.read("vms", "mine", "error")
    assert m.read("vms", "mine", "config.json") == before
    # root's own VM may name one
    m.make_vm("roots", networkInterfaces=[{"ifaceId": "eth0", "hostDevName": "tap-of-root"}])
    assert "tap-of-root" in m.read("vms", "roots", "config.json")


def test_allow_other_a_planted_snapshot_is_refused(shared_mnt):
    """restore DIR: a directory a user prepared (a config.json naming a file outside
    -o paths, an empty device state) is not a snapshot the daemon made: refused
    before anything is read from it or built."""
    m = shared_mnt
    planted = os.path.join(m.pub, "planted")
    os.makedirs(planted)
    for f in ("vmstate", "mem"):
        open(os.path.join(planted, f), "wb").close()
    outside = os.path.join(os.path.dirname(m.path), "outside", "vmlinux")
    cfg = vm_config(m.kernel, drives=[{"driveId": "stolen", "pathOnHost": outside,
                                       "isRootDevice": False}])
    with open(os.path.join(planted, "config.json"), "w") as f:
        json.dump(cfg, f)
    for f in os.listdir(planted):
        os.chmod(os.path.join(planted, f), 0o644)
    assert as_nobody(m, "mkdir vms/mine").returncode == 0
    r = as_nobody(m, f"echo 'restore {planted}' > vms/mine/ctl")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert f"snapshot {planted} has no origin.json: not made by smartvmfs" in \
        m.read("vms", "mine", "error")
    assert m.state("mine") == "created"
    assert not [c for _, c in _processes_mentioning(m.runtime) if "--api-sock" in c]


def test_default_runtime_dir_leaves_nothing(tmp_path, kernel_file):
    """Without -o runtimedir the daemon makes /dev/shm/.smartvm/runtime: both go at
    unmount (only when empty: another mount may share them)."""
    top = "/dev/shm/.smartvm"
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here: the default runtime dir is under $TMPDIR")
    if os.path.exists(top):
        pytest.skip(f"{top} exists already (another smartvmfs on this host?): not the test's")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen([BIN, "-f", "-o", f"firecracker={EMULATOR},datadir={tmp_path}/data,nocheck",
                             str(mnt)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.path.isdir(top + "/runtime")
        os.mkdir(mnt / "vms" / "web")
        (mnt / "vms" / "web" / "config.json").write_text(json.dumps(vm_config(kernel_file)))
        (mnt / "vms" / "web" / "ctl").write_text("start\n")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        assert proc.wait(timeout=30) == 0
    assert not os.path.exists(top), os.listdir(top)
