"""At the edges: a mount that runs out of descriptors refuses the next start up front
(ENOSPC, the limit and the fix in error and in log), leaves nothing of it, and the
VMs it runs stay as they are."""
import errno
import os
import shutil
import time

import pytest

from conftest import (BIN, EMULATOR, _processes_mentioning, check_output, start_daemon,
                      stop_daemon)

pytestmark = pytest.mark.skipif(
    not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
    reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)")


@pytest.mark.daemon_output(r"no descriptors left for another VM")
def test_out_of_descriptors_refuses_before_building(tmp_path, kernel_file):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     wrap=("prlimit", "--nofile=120:120", "--"))
    try:
        room = dict(line.split() for line in m.read("room").splitlines())
        assert room["descriptors_limit"] == "120" and int(room["vms_by_descriptors"]) > 5, room
        started, refused = [], None
        for i in range(60):
            name = f"v{i}"
            m.make_vm(name)
            try:
                m.ctl(name, "start")
            except OSError as e:
                refused = (name, e.errno)
                break
            started.append(name)
        assert refused, "120 descriptors held 60 VMs?"
        name, err = refused
        assert err == errno.ENOSPC, errno.errorcode.get(err)
        assert len(started) >= 5
        why = m.read("vms", name, "error")
        assert "no descriptors left for another VM: RLIMIT_NOFILE is 120" in why
        assert "LimitNOFILE=" in why
        # the log line follows the reply (after_op): give it a moment
        deadline = time.monotonic() + 5
        while f"vm {name}: start failed: no descriptors left" not in m.read("log"):
            assert time.monotonic() < deadline, m.read("log")[-500:]
            time.sleep(0.02)
        # the refused VM is as it was, and nothing of its start is left
        assert m.state(name) == "created"
        rundir = m.read("vms", name, "runtime").strip()
        # its runtime dir holds nothing: no FIFO, socket, staged drive, and no
        # state file (a VM gets one with its first VMM)
        assert not os.path.exists(rundir) or os.listdir(rundir) == [], os.listdir(rundir)
        vmms = [cmd for _, cmd in _processes_mentioning(m.runtime) if "--api-sock" in cmd]
        assert not any(f"/{os.path.basename(rundir)}/" in cmd for cmd in vmms)
        # the running ones run, each with its own VMM
        assert all(m.state(n) == "running" for n in started)
        assert len(vmms) == len(started)
        # the room file says as much: none left, or one that a descriptor the
        # refused start's thread closed after its answer has just made room for
        assert int(dict(line.split() for line in m.read("room").splitlines())
                   ["vms_by_descriptors"]) <= 1
        # room again: stopped VMs give their descriptors back (a start needs 16
        # free, a running VM keeps 3), and the start goes
        for n in started[:7]:
            m.ctl(n, "stop")
        m.ctl(name, "start")
        assert m.state(name) == "running"
    finally:
        stop_daemon(m)
    check_output(m, [r"no descriptors left for another VM"])


def test_soft_nofile_raised_to_hard_at_mount(tmp_path, kernel_file):
    """A soft limit of 256 (hard 4096): the daemon takes the hard limit at mount and
    says so in its log, with what it allows."""
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     wrap=("prlimit", "--nofile=256:4096", "--"))
    try:
        with open(f"/proc/{m.proc.pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max open files"))
        assert line.split()[3:5] == ["4096", "4096"], line
        room = dict(x.split() for x in m.read("room").splitlines())
        assert room["descriptors_limit"] == "4096", room
        log = m.read("log")
        per_vm = int(room["descriptors_per_vm"])
        assert (f"RLIMIT_NOFILE 4096 (from 256) raised to the hard limit: room for about "
                f"{(4096 - 64) // per_vm} running VMs at {per_vm} descriptors each") in log, log
        assert "LimitNOFILE=" in log
    finally:
        stop_daemon(m)
    check_output(m, [])


def fake_vmm(tmp_path, name, body):
    """A stand-in for the Firecracker binary (the cases no boot argument can
    provoke: they happen before the guest exists)."""
    p = tmp_path / name
    p.write_text("#!/usr/bin/python3\nimport os, socket, sys, time\n"
                 "sock = sys.argv[sys.argv.index('--api-sock') + 1]\n" + body)
    p.chmod(0o755)
    return str(p)


@pytest.mark.parametrize("kind", ["no-socket", "mute-socket"])
def test_readiness_timeouts_say_which(tmp_path, kernel_file, kind):
    if kind == "no-socket":  # never makes its socket
        fc = fake_vmm(tmp_path, "slow-fc", "time.sleep(30)\n")
        want = ("SOCKET_TIMEOUT", "did not make its API socket")
    else:  # makes it, listens, never answers
        fc = fake_vmm(tmp_path, "mute-fc", "s = socket.socket(socket.AF_UNIX)\ns.bind(sock)\n"
                      "s.listen(8)\ntime.sleep(30)\n")
        want = ("API_TIMEOUT", "is there but its API did not answer within 300 ms")
    m = start_daemon(str(tmp_path), fc, kernel_file, checks=False, extra_opts=["readytimeout=300"])
    try:
        m.make_vm("web")
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            m.ctl("web", "start")
        assert e.value.errno == errno.ETIMEDOUT
        assert time.monotonic() - t0 < 5  # the option, not the default 5 s
        line = m.read("vms", "web", "error").splitlines()[-1]
        assert want[1] in line and line.endswith(f"({want[0]})"), line
        assert m.state("web") == "created"
        assert not [c for _, c in _processes_mentioning(m.runtime) if "--api-sock" in c]
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_stderr_tail_in_error_without_a_descriptor(tmp_path, kernel_file):
    """The VMM's stderr is a file in its runtime dir (the daemon holds no descriptor
    for it while the VMM runs): what a VMM that fails wrote there is the end of the
    error line, and the file goes with the VMM."""
    fc = fake_vmm(tmp_path, "dying-fc", "sys.stderr.write('x' * 5000 + '\\nError: "
                  "RunWithApi(out of luck)\\n')\nsys.stderr.flush()\nsys.exit(3)\n")
    m = start_daemon(str(tmp_path), fc, kernel_file, checks=False)
    try:
        m.make_vm("web")
        with pytest.raises(OSError) as e:
            m.ctl("web", "start")
        assert e.value.errno == errno.EIO
        line = m.read("vms", "web", "error").splitlines()[-1]
        assert "exited before its API was ready (exit 3)" in line, line
        assert "Error: RunWithApi(out of luck)" in line, line
        assert m.state("web") == "created"
        rundir = m.read("vms", "web", "runtime").strip()
        assert sorted(os.listdir(rundir)) == ["vm.json"], os.listdir(rundir)
    finally:
        stop_daemon(m)
    check_output(m, [])


def _daemon_fds(pid):
    time.sleep(0.3)  # a verb's thread closes its last descriptors after it replied
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_descriptors_per_running_vm(mnt):
    """A running VM costs the daemon 3 descriptors (its console, log and metrics
    FIFOs), what /room says, however much it is used: no connection to its API,
    no pidfd, no stdin or stderr kept; a stopped VM costs none."""
    pid = mnt.proc.pid
    n = 8
    base = _daemon_fds(pid)
    for i in range(n):
        mnt.started_vm(f"v{i}")
    per_vm = int(dict(x.split() for x in mnt.read("room").splitlines())["descriptors_per_vm"])
    assert per_vm == 3
    assert _daemon_fds(pid) - base == per_vm * n
    for i in range(n):
        for f in ("info", "metrics", "version"):
            mnt.read("vms", f"v{i}", f)
        mnt.write(mnt.vm(f"v{i}", "console"), "x")
        mnt.ctl(f"v{i}", "pause")
        mnt.ctl(f"v{i}", "resume")
    assert _daemon_fds(pid) - base == per_vm * n
    for i in range(n):
        mnt.ctl(f"v{i}", "stop")
    assert _daemon_fds(pid) == base
