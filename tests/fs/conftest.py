"""Fixtures for the smartvmfs suite: a mounted filesystem, checked after each test.

Environment:
  SMARTVMFS_BIN           the smartvmfs binary (meson sets it)
  SMARTVMFS_EMULATOR      fc-emulator, the Firecracker test double
  SMARTVMFS_GUEST_KERNEL  the tiny guest kernel ELF (may be empty)
  SMARTVMFS_FIRECRACKER   a real Firecracker binary: enables the `fc_mnt` tests

As in sshfs's test/conftest.py, a test fails when the daemon printed "error",
"warning", "crash", ... that it did not declare with the `daemon_output` marker:

    @pytest.mark.daemon_output(r"some expected line")

A mount that runs its host checks also may print the warnings `smartvmfs --check`
reports for this host (tests/hostfacts.py learns them): a host without /dev/kvm says
so at every such mount, and that is expected, not a failure.
"""
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hostfacts  # noqa: E402

BIN = os.environ.get("SMARTVMFS_BIN", "")
EMULATOR = os.environ.get("SMARTVMFS_EMULATOR", "")
GUEST_KERNEL = os.environ.get("SMARTVMFS_GUEST_KERNEL", "")
FIRECRACKER = os.environ.get("SMARTVMFS_FIRECRACKER", "")

SUSPICIOUS = re.compile(
    r"error|warning|crash|abort|segfault|sanitizer|leak|fatal|assert|corrupt",
    re.IGNORECASE,
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "daemon_output(*patterns): the daemon may print lines matching these"
    )


def boot_args(extra=""):
    base = "console=ttyS0 reboot=k panic=1 pci=off"
    return f"{base} {extra}".strip()


def vm_config(kernel, extra_args="", **more):
    cfg = {
        "bootSource": {"kernelImagePath": kernel, "bootArgs": boot_args(extra_args)},
        "machineConfig": {"vcpuCount": 1, "memSizeMib": 128},
    }
    cfg.update(more)
    return cfg


class Mount:
    """A mounted smartvmfs and helpers that act as a user would."""

    def __init__(self, root, path, runtime, datadir, kernel, firecracker, proc, logpath,
                 checks=True):
        self.root = root
        self.checks = checks  # the mount ran its host checks (no -o nocheck)
        self.path = path
        self.runtime = runtime
        self.datadir = datadir
        self.kernel = kernel
        self.firecracker = firecracker
        self.proc = proc
        self.logpath = logpath

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def vm(self, name, *parts):
        return os.path.join(self.path, "vms", name, *parts)

    def sh(self, cmd, timeout=60, check=False):
        """Runs a shell command line as a user types it, in the mount."""
        r = subprocess.run(
            cmd, shell=True, executable="/bin/bash", cwd=self.path, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"{cmd!r} failed ({r.returncode}): {r.stderr}")
        return r

    def read(self, *parts):
        with open(self.p(*parts)) as f:
            return f.read()

    def write(self, path, data):
        """One write() on a fresh O_WRONLY|O_TRUNC open; returns its byte count."""
        if isinstance(data, str):
            data = data.encode()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    def state(self, name):
        return self.read("vms", name, "state").strip()

    def ctl(self, name, text):
        return self.write(self.vm(name, "ctl"), text + ("\n" if not text.endswith("\n") else ""))

    def make_vm(self, name, extra_args="", **more):
        os.mkdir(self.p("vms", name))
        self.write(self.vm(name, "config.json"), json.dumps(vm_config(self.kernel, extra_args, **more)))
        return name

    def started_vm(self, name, extra_args="", **more):
        self.make_vm(name, extra_args, **more)
        self.ctl(name, "start")
        assert self.state(name) == "running"
        return name

    def wait_state(self, name, want, timeout=10.0):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.state(name)
            if st == want:
                return st
            time.sleep(0.02)
        raise AssertionError(f"{name}: state {st!r}, wanted {want!r}")

    def daemon_output(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()


def _wait_mounted(path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            # statfs and open always reach the daemon (stat may be answered from
            # the kernel's cache, even on a dead mount)
            os.statvfs(path)
            with open(os.path.join(path, "version")) as f:
                if f.read().startswith("smartvmfs "):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _processes_mentioning(text):
    """pids whose command line mentions text (emulator or Firecracker children)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and int(pid) != os.getpid():
            found.append((int(pid), cmd))
    return found


def start_daemon(tmp, firecracker, kernel, extra_opts=(), mountpoint=None, wrap=(), checks=True):
    """Mounts smartvmfs on tmp/mnt. wrap: a command the daemon runs under, e.g.
    ("nsenter", "--net=/proc/PID/ns/net", "--") (it must exec, not fork, so that
    proc.pid is the daemon's). checks=False mounts with nocheck, as most of tests/fs
    does (the mount-time checks are tests/install's subject); with the checks on,
    check_output() expects the warnings this host's checks give (tests/hostfacts.py)."""
    mnt = mountpoint or os.path.join(tmp, "mnt")
    runtime = os.path.join(tmp, "rt")
    datadir = os.path.join(tmp, "data")
    os.makedirs(mnt, exist_ok=True)
    # no firecracker: the mount downloads a release at the first start
    opts = ([f"firecracker={firecracker}"] if firecracker else []) + \
        [f"runtimedir={runtime}", f"datadir={datadir}"]
    if not checks:
        opts.append("nocheck")
    opts += list(extra_opts)
    logpath = os.path.join(tmp, "daemon.log")
    log = open(logpath, "ab")
    proc = subprocess.Popen(
        [*wrap, BIN, "-f", "-o", ",".join(opts), mnt],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    log.close()
    if not _wait_mounted(mnt, proc):
        proc.kill()
        proc.wait()
        with open(logpath, errors="replace") as f:
            raise AssertionError(f"smartvmfs did not mount: {f.read()}")
    return Mount(tmp, mnt, runtime, datadir, kernel, firecracker, proc, logpath,
                 checks=checks and "nocheck" not in extra_opts)


def stop_daemon(m, check=True):
    """Unmounts (fusermount3 -u), waits for the daemon and checks that it left
    nothing behind: no process, no socket, no runtime directory."""
    if m.proc.poll() is None:
        r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True)
        try:
            m.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            holders = [f"{pid}: {cmd}" for pid, cmd in _processes_mentioning(m.path)]
            m.proc.kill()
            m.proc.wait()
            for pid, cmd in _processes_mentioning(m.runtime):  # its VMMs, orphaned now
                if "--api-sock" in cmd:
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError("smartvmfs did not exit within 30 s of unmount (fusermount3: "
                                 f"{r.returncode} {r.stderr.strip()!r}; processes naming the "
                                 f"mount: {holders})\n" + m.daemon_output()[-2000:])
    try:
        dead = os.path.ismount(m.path)
    except OSError:
        dead = True
    if dead:  # a daemon that died leaves its mount behind: never leave it to the next run
        subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True)
    if not check:
        return
    assert m.proc.returncode == 0, f"smartvmfs exited {m.proc.returncode}: {m.daemon_output()}"
    left = _processes_mentioning(m.runtime)
    assert not left, f"processes left behind: {left}"
    if os.path.exists(m.runtime):
        leftovers = []
        for d, dirs, files in os.walk(m.runtime):
            leftovers += [os.path.join(d, x) for x in dirs + files]
        assert not leftovers, f"runtime files left behind: {leftovers}"
    assert not os.path.ismount(m.path)


def check_output(m, allowed):
    """Fails on daemon lines that look like trouble, unless a pattern of allowed (the
    test's declarations) or, for a mount that ran its host checks, of this host's
    expected warnings matches them."""
    if m.checks:
        allowed = list(allowed) + hostfacts.mount_warnings(BIN, m.firecracker)
    bad = []
    for line in m.daemon_output().splitlines():
        # paths hold the test's name (test_crash_signal0/...): judge the words only
        line = line.replace(m.root, "<tmp>")
        if SUSPICIOUS.search(line) and not any(re.search(p, line) for p in allowed):
            bad.append(line)
    assert not bad, "unexpected daemon output:\n" + "\n".join(bad)


@pytest.fixture
def kernel_file(tmp_path):
    if GUEST_KERNEL and os.path.exists(GUEST_KERNEL):
        return GUEST_KERNEL
    k = tmp_path / "vmlinux"
    k.write_bytes(b"\x7fELF" + b"\0" * 60)  # the emulator only needs it to exist
    return str(k)


def _allowed(request):
    pats = []
    for mark in request.node.iter_markers("daemon_output"):
        pats += list(mark.args)
    return pats


@pytest.fixture
def mnt(request, tmp_path, kernel_file):
    """smartvmfs on the Firecracker API emulator."""
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN is not set (run through meson test)")
    if not EMULATOR or not os.path.exists(EMULATOR):
        pytest.skip("SMARTVMFS_EMULATOR is not set or fc-emulator is not built")
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        yield m
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


def need_real_firecracker():
    """Skips the test unless a real Firecracker can boot the tiny guest here
    (opt-in: SMARTVMFS_FIRECRACKER)."""
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN is not set (run through meson test)")
    why = hostfacts.real_firecracker(FIRECRACKER)
    if why:
        pytest.skip(why)
    if not GUEST_KERNEL or not os.path.exists(GUEST_KERNEL):
        pytest.skip("SMARTVMFS_GUEST_KERNEL is not set (nasm missing?): nothing to boot")


@pytest.fixture
def fc_mnt(request, tmp_path):
    """smartvmfs on a real Firecracker booting the tiny guest."""
    need_real_firecracker()
    m = start_daemon(str(tmp_path), FIRECRACKER, GUEST_KERNEL, checks=False)
    try:
        yield m
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


def is_fifo_or_sock(path):
    mode = os.stat(path).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def interrupt_after(proc, delay):
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
