"""Clean shutdown: unmount or SIGTERM with many running VMs leaves nothing behind.

docs/smartvmfs.5.md (ENDING): `fusermount3 -u`, SIGTERM and SIGINT stop every VM
and remove every process, socket, TAP, bridge, NAT rule, staged drive and runtime
directory the daemon made, and put net.ipv4.ip_forward back. Checked here with 100
emulated VMs, with automatic networking inside a private network namespace, and
while other threads read files and start and stop VMs as the unmount happens.
"""
import errno
import json
import os
import signal
import subprocess
import shutil
import threading
import time

import pytest

from conftest import (BIN, EMULATOR, FIRECRACKER, GUEST_KERNEL, need_real_firecracker, _allowed,
                      _processes_mentioning, check_output, start_daemon,
                      stop_daemon)
from test_faults import Injector
from test_net import NET_MARKS, netns  # noqa: F401 (netns: the fixture of the tests below)

MANY = 100
NET_VMS = 30

needs_daemon = pytest.mark.skipif(not BIN or not os.path.exists(BIN) or not EMULATOR,
                                  reason="SMARTVMFS_BIN / SMARTVMFS_EMULATOR not set")


FUSECTL = "/sys/fs/fuse/connections"
# libfuse's line for a read the kernel failed with ECONNABORTED, and the daemon's own
CONNECTION_ENDED = (r"^fuse: reading device: Software caused connection abort$",
                    r"the kernel ended the FUSE connection during a read \(ECONNABORTED")


def fusectl_mounted():
    with open("/proc/self/mounts") as f:
        return any(line.split()[1:3] == [FUSECTL, "fusectl"] for line in f)


def mount(tmp_path, kernel, wrap=()):
    return start_daemon(str(tmp_path), EMULATOR, kernel, wrap=wrap, checks=False)


def start_many(m, n, prefix="vm", **more):
    names = [f"{prefix}{i}" for i in range(n)]
    for name in names:
        m.make_vm(name, **more)
        m.ctl(name, "start")
    for name in names:
        assert m.state(name) == "running"
    return names


def vmm_pids(m, names):
    return [int(m.read("vms", n, "pid")) for n in names]


def wait_exit(m, timeout=30):
    try:
        return m.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        m.proc.kill()
        m.proc.wait()
        raise AssertionError(f"smartvmfs did not exit within {timeout} s: {m.daemon_output()}")


def end_daemon(m, how):
    """Ends the daemon as a user would: fusermount3 -u, umount, SIGTERM or SIGINT;
    returns once it exited."""
    if how in ("fusermount", "umount"):
        cmd = ["fusermount3", "-u"] if how == "fusermount" else ["umount"]
        r = subprocess.run(cmd + [m.path], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    else:
        m.proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    wait_exit(m)


def assert_nothing_left(m, pids):
    """The daemon exited 0; no VMM, socket, FIFO or runtime directory is left."""
    assert m.proc.returncode == 0, f"smartvmfs exited {m.proc.returncode}: {m.daemon_output()}"
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert not alive, f"VMMs left running: {alive}"
    assert not _processes_mentioning(m.runtime), _processes_mentioning(m.runtime)
    if os.path.exists(m.runtime):
        left = []
        for d, dirs, files in os.walk(m.runtime):
            left += [os.path.join(d, x) for x in dirs + files]
        assert not left, f"runtime files left behind: {left[:10]}"
    assert not os.path.ismount(m.path)


@needs_daemon
@pytest.mark.parametrize("how", ["fusermount", "umount", "sigterm", "sigint"])
def test_many_vms_end_clean(request, tmp_path, kernel_file, how):
    m = mount(tmp_path, kernel_file)
    try:
        names = start_many(m, MANY)
        pids = vmm_pids(m, names)
        assert len(set(pids)) == MANY
        assert f"running {MANY} " in m.read("ctl")
        t0 = time.monotonic()
        end_daemon(m, how)
        took = time.monotonic() - t0
    finally:
        stop_daemon(m, check=False)
    assert_nothing_left(m, pids)
    assert took < 10, f"ending {MANY} VMs took {took:.1f} s"
    check_output(m, _allowed(request))


@needs_daemon
@pytest.mark.parametrize("how", ["fusermount", "sigterm"])
def test_real_firecracker_vms_end_clean(request, tmp_path, how):
    """A few real Firecracker VMs booting the tiny guest (opt-in: SMARTVMFS_FIRECRACKER)."""
    need_real_firecracker()
    m = start_daemon(str(tmp_path), FIRECRACKER, GUEST_KERNEL, checks=False)
    try:
        names = start_many(m, 5)
        pids = vmm_pids(m, names)
        end_daemon(m, how)
    finally:
        stop_daemon(m, check=False)
    assert_nothing_left(m, pids)
    check_output(m, _allowed(request))


# ------------------------------------------------------------ with networking

@needs_daemon
@NET_MARKS[0]
@pytest.mark.parametrize("how", ["fusermount", "sigterm"])
def test_networked_vms_end_clean(request, netns, tmp_path, kernel_file, how):
    from test_net import assert_nothing_left as no_links_or_rules
    assert netns.ip_forward() == "0"
    m = mount(tmp_path, kernel_file, wrap=netns.wrap())
    try:
        names = start_many(m, NET_VMS, networkInterfaces=[{"ifaceId": "eth0"}])
        pids = vmm_pids(m, names)
        leases = m.read("net", "leases").splitlines()
        assert len(leases) == NET_VMS
        taps = {l.split()[2] for l in leases}
        assert taps <= set(netns.links())
        assert "svbr0" in netns.links()
        assert len(netns.nat_rules()) == 1
        assert netns.ip_forward() == "1"
        end_daemon(m, how)
    finally:
        stop_daemon(m, check=False)
    assert_nothing_left(m, pids)
    no_links_or_rules(netns)  # no TAP, no bridge, no NAT or filter rule of ours
    assert netns.ip_forward() == "0", "ip_forward was not put back"
    check_output(m, _allowed(request))


# ------------------------------------------------------------ under load

class Load:
    """Threads that act on the mount until told to stop (or the mount goes)."""

    def __init__(self, m, names):
        self.m = m
        self.names = names
        self.stop = threading.Event()
        self.errors = []     # unexpected exceptions (not OSError)
        self.ops = 0
        self.threads = []

    def spawn(self, fn, *args):
        t = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
        self.threads.append(t)
        t.start()

    def _run(self, fn, *args):
        while not self.stop.is_set():
            try:
                fn(*args)
                self.ops += 1
            except OSError:
                # ENOTCONN, ENOENT, EBUSY, EINTR...: the mount is going away
                if not os.path.ismount(self.m.path):
                    time.sleep(0.005)
            except Exception as e:  # a bug of the test, or a hang turned error
                self.errors.append(repr(e))
                return

    def reader(self, name):
        for f in ("state", "config.json", "info", "stat", "console", "ctl", "metadata", "pid"):
            with open(self.m.vm(name, f), "rb") as fh:
                fh.read()
        os.listdir(self.m.p("vms"))

    def cycler(self, tag):
        name = f"{tag}{self.ops % 5}"
        try:
            os.mkdir(self.m.p("vms", name))
            self.m.write(self.m.vm(name, "config.json"), json.dumps({
                "bootSource": {"kernelImagePath": self.m.kernel,
                               "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off"},
                "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        self.m.ctl(name, "start")
        self.m.ctl(name, "pause")
        self.m.ctl(name, "resume")
        self.m.ctl(name, "stop" if self.ops % 2 else "kill")
        os.rmdir(self.m.p("vms", name))

    def stopper(self, name):
        self.m.ctl(name, "stop")
        self.m.ctl(name, "start")

    def end(self, timeout=20):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        hung = [t for t in self.threads if t.is_alive()]
        assert not hung, f"{len(hung)} thread(s) still blocked in the mount after it ended"
        assert not self.errors, self.errors


def events_cat(m, name):
    """`cat` of a read-write open of events: waits in the daemon after the first read."""
    p = subprocess.Popen(["bash", "-c", 'exec 3<>"$1"; exec cat <&3', "-", m.vm(name, "events")],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout.readline().startswith(b"state ")
    return p


# Files still open when the daemon ends (SIGTERM), or closed as a lazy unmount
# ends (the last RELEASEs may not be delivered): the daemon frees their handles
# itself at the end (LeakSanitizer checks it in the ASan build). An ending under
# mkdir/rmdir may leave the notifier waiting in the kernel on a directory lock a
# request the ended loop never answers holds: the daemon then aborts its own
# connection and says so (docs/architecture.md, Ending); it must still end.
@needs_daemon
@pytest.mark.daemon_output(r"the notifier was stuck in the kernel at the end", *CONNECTION_ENDED)
@pytest.mark.parametrize("how", ["lazy-unmount", "sigterm"])
def test_unmount_under_load(request, tmp_path, kernel_file, how):
    m = mount(tmp_path, kernel_file)
    load = None
    cats = []
    try:
        names = start_many(m, 20)
        pids = vmm_pids(m, names)
        cats = [events_cat(m, n) for n in names[4:6]]
        load = Load(m, names)
        for i in range(4):
            load.spawn(load.reader, names[i])
        for i in range(3):
            load.spawn(load.cycler, f"c{i}x")
        for i in range(2):
            load.spawn(load.stopper, names[10 + i])
        time.sleep(0.5)  # the load is on
        assert load.ops > 10, "the load did not get going"
        if how == "lazy-unmount":
            # busy: a plain unmount is refused while files are open, so a user
            # unmounts lazily. The filesystem then lives until its last open
            # file is closed: the load stops, the blocked readers are ended
            # (Ctrl-C), and then the daemon must end by itself.
            r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True)
            assert r.returncode != 0 and "busy" in r.stderr, r.stderr
            assert os.path.ismount(m.path) and m.proc.poll() is None
            r = subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert not os.path.ismount(m.path)
            time.sleep(0.2)  # the load runs on against the detached mount
            load.end()
            for c in cats:
                c.send_signal(signal.SIGINT)
        else:
            m.proc.send_signal(signal.SIGTERM)
            # the blocked reads end (end of file, or ECONNABORTED once the
            # daemon has unmounted): none hangs
            for c in cats:
                c.stdout.read()
                c.wait(timeout=20)
            load.end()
        wait_exit(m)
    finally:
        if load:
            load.stop.set()
        for c in cats:
            if c.poll() is None:
                c.kill()
            c.wait()
            c.stdout.close()
        stop_daemon(m, check=False)
    # every VMM the daemon ever started, the cyclers' too, is gone
    assert_nothing_left(m, pids)
    check_output(m, _allowed(request))


# The FUSE connection can end under a read. An administrator ends a hung mount
# by writing its connection's abort file (FUSECTL/N/abort, N the mount's device
# minor): the daemon's read then fails with ENODEV. A read that is taking a
# request as the connection ends fails with ECONNABORTED instead: the kernel
# ends the connection between taking the request and handing it over, as the
# last close of a lazily unmounted mount can (the background requests it flushes
# then). That one is injected here (strace fails the daemon's read of
# /dev/fuse), since no test can time the kernel's window. Both are the end of
# the connection, not of the daemon's work: it ends as at an unmount (exit 0,
# every VM stopped, nothing left), a read waiting in it ends, and it says why.
@needs_daemon
@pytest.mark.daemon_output(*CONNECTION_ENDED)
@pytest.mark.parametrize("how", ["abort-file", "read-fails-econnaborted"])
def test_connection_ended_under_a_read(request, tmp_path, kernel_file, how):
    if os.geteuid() != 0:
        pytest.skip("the abort file and strace's injection need root")
    if how == "read-fails-econnaborted" and not shutil.which("strace"):
        pytest.skip("strace is not installed (Debian package strace): no fault injection")
    mounted_ctl = False  # a host without systemd may not have it: mounted, then unmounted
    if how == "abort-file" and not fusectl_mounted():
        mounted_ctl = subprocess.run(["mount", "-t", "fusectl", "fusectl", FUSECTL],
                                     capture_output=True).returncode == 0
    wrap = ()
    if how == "read-fails-econnaborted":
        # strace is still attached as the daemon ends (its injection ends it),
        # and LeakSanitizer cannot run under ptrace (the ASan build)
        asan = os.environ.get("ASAN_OPTIONS", "")
        wrap = ("env", f"ASAN_OPTIONS={asan}{':' if asan else ''}detect_leaks=0")
    m = mount(tmp_path, kernel_file, wrap=wrap)
    cat = inj = None
    try:
        names = start_many(m, 8)
        pids = vmm_pids(m, names)
        cat = events_cat(m, names[0])  # a read waiting in the daemon
        if how == "abort-file":
            abort = os.path.join(FUSECTL, str(os.minor(os.stat(m.path).st_dev)), "abort")
            if not os.path.exists(abort):
                pytest.skip(f"{FUSECTL} (fusectl) is not available on this host")
            with open(abort, "w") as f:
                f.write("1")
        else:
            inj = Injector(m.proc.pid, "read", "error=ECONNABORTED:when=1",
                           str(tmp_path / "strace.log"), path="/dev/fuse")
            try:  # requests, for the reader's next read to fail
                for _ in range(3):
                    os.listdir(m.p("vms"))
            except OSError:
                pass  # the mount ended under them
        assert wait_exit(m) == 0, m.daemon_output()
        cat.stdout.read()  # the waiting read ends (an error), it does not hang
        assert cat.wait(timeout=20) != 0
        if inj:
            assert inj.injected(), "strace failed no read of /dev/fuse"
    finally:
        if inj:
            inj.close()
        if cat and cat.poll() is None:
            cat.kill()
            cat.wait()
        stop_daemon(m, check=False)
        if mounted_ctl:
            subprocess.run(["umount", FUSECTL], capture_output=True)
    assert_nothing_left(m, pids)
    said = "the kernel ended the FUSE connection during a read" in m.daemon_output()
    assert said == (how == "read-fails-econnaborted"), m.daemon_output()
    check_output(m, _allowed(request))
