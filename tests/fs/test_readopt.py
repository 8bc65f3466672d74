"""A daemon restart (docs/restart.md): smartvmfs killed with SIGKILL and mounted
again re-adopts the VMs whose Firecracker still runs and answers, collects the
others, and says which was which in its log; -o noadopt collects them all.

On the emulator by default; the real-Firecracker test runs when
SMARTVMFS_FIRECRACKER names one (as test_firecracker.py).
"""
import os
import signal
import subprocess
import time

import pytest

import hostfacts
from conftest import (BIN, EMULATOR, FIRECRACKER, GUEST_KERNEL, need_real_firecracker, _allowed,
                      _processes_mentioning,
                      check_output, start_daemon, stop_daemon)

# the collection lines name a VM's last state, which may be "error"
COLLECTED = r"collected VM \S+ \(id \w+\) of a killed daemon"


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def alive(pid):
    """A process that has not ended (a zombie nobody reaped has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def kill_daemon(m):
    """SIGKILL: no cleanup at all. The dead mount is lazily unmounted here (the
    next daemon would do it, but the test's own mkdir of the mountpoint may see
    ENOTCONN first)."""
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait()
    subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True)


def vms(m):
    return sorted(x for x in os.listdir(m.p("vms")) if x != "clone")


def runtime_dir(m, name):
    return m.read("vms", name, "runtime").strip()


def runtime_dir_of(runtime, pid):
    """The runtime dir of the VMM pid (its --api-sock), found without a mount."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    sock = argv[argv.index(b"--api-sock") + 1].decode()
    assert sock.startswith(runtime)
    return os.path.dirname(sock)


def need_emulator():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN is not set (run through meson test)")
    if not EMULATOR or not os.path.exists(EMULATOR):
        pytest.skip("SMARTVMFS_EMULATOR is not set or fc-emulator is not built")


@pytest.fixture
def crashed(tmp_path, kernel_file):
    """A daemon with a running, a paused, a doomed, a stopped and a created VM,
    killed with SIGKILL; then the doomed VM's VMM killed too while no daemon
    runs. The created one never had a VMM: its directory has no state file."""
    need_emulator()
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        m.started_vm("web")
        m.started_vm("db")
        m.ctl("db", "pause")
        assert m.state("db") == "paused"
        m.started_vm("doomed")
        m.started_vm("idle")
        m.ctl("idle", "kill")
        m.make_vm("fresh")
        facts = {n: {"pid": int(m.read("vms", n, "pid")), "dir": runtime_dir(m, n)}
                 for n in ("web", "db", "doomed")}
        facts["idle"] = {"dir": runtime_dir(m, "idle")}
        facts["fresh"] = {"dir": runtime_dir(m, "fresh")}
        assert os.listdir(facts["fresh"]["dir"]) == []  # no file until a VMM runs
        # what the console held before: the ring is daemon memory, lost with it
        assert "ready" in m.read("vms", "web", "console")
    except BaseException:
        stop_daemon(m, check=False)
        raise
    kill_daemon(m)
    # serial input reaches the guest by name while no daemon runs; its echo
    # goes to a console FIFO nobody reads
    fd = os.open(os.path.join(facts["web"]["dir"], "stdin.fifo"), os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"typed while away\n")
    os.close(fd)
    os.kill(facts["doomed"]["pid"], signal.SIGKILL)
    assert wait_for(lambda: not alive(facts["doomed"]["pid"]))
    for n in ("web", "db"):
        assert alive(facts[n]["pid"]), f"the VMM of {n} died with the daemon"
    yield m, facts
    for f in facts.values():
        if f.get("pid") and alive(f["pid"]):
            os.kill(f["pid"], signal.SIGKILL)


@pytest.mark.daemon_output(COLLECTED, r"dead mount")
def test_restart_readopts_live_vms_and_collects_dead_ones(request, crashed, tmp_path, kernel_file):
    old, facts = crashed
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        log = m.read("log")
        assert f"adopted VM web (id {os.path.basename(facts['web']['dir'])}, " \
               f"pid {facts['web']['pid']}, running)" in log, log
        assert f"adopted VM db (id {os.path.basename(facts['db']['dir'])}, " \
               f"pid {facts['db']['pid']}, paused)" in log, log
        assert f"collected VM doomed (id {os.path.basename(facts['doomed']['dir'])}) " \
               f"of a killed daemon: its VMM (pid {facts['doomed']['pid']}) is gone" in log, log
        assert "collected VM idle" in log and "it had no VMM (stopped)" in log, log
        assert f"collected runtime dir {facts['fresh']['dir']} of a killed daemon " \
               "(no state file)" in log, log
        # the live ones are back, as they were, with their pid and config
        assert vms(m) == ["db", "web"]
        assert m.state("web") == "running" and m.state("db") == "paused"
        assert int(m.read("vms", "web", "pid")) == facts["web"]["pid"]
        assert '"kernelImagePath"' in m.read("vms", "web", "config.json")
        assert '"Paused"' in m.read("vms", "db", "info")
        assert runtime_dir(m, "web") == facts["web"]["dir"]
        # its uptime goes on (from the spawn, which the state file keeps)
        stat = dict(l.split() for l in m.read("vms", "web", "stat").splitlines())
        assert int(stat["uptime_ns"]) > 0, stat
        # the dead and the idle ones are gone: no runtime dir, no process
        assert not os.path.exists(facts["doomed"]["dir"])
        assert not os.path.exists(facts["idle"]["dir"])
        # console: new output flows (the ring before the kill is lost), input works
        m.write(m.vm("web", "console"), "after restart\n")
        assert wait_for(lambda: "after restart" in m.read("vms", "web", "console"))
        # controllable: resume, pause, stop; metrics flow through the reopened FIFO
        m.ctl("db", "resume")
        assert m.state("db") == "running"
        m.ctl("db", "pause")
        assert m.state("db") == "paused"
        m.ctl("web", "stop")
        assert m.state("web") == "stopped"
        assert m.read("vms", "web", "error") == ""
        assert wait_for(lambda: not alive(facts["web"]["pid"]))
        # and startable again, as our own child this time
        m.ctl("web", "start")
        assert m.state("web") == "running"
        assert int(m.read("vms", "web", "pid")) != facts["web"]["pid"]
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))
    assert not alive(facts["db"]["pid"])


@pytest.mark.daemon_output(COLLECTED, r"dead mount", r"ended unexpectedly")
def test_readopted_vmm_killed_is_error_without_status(request, crashed, tmp_path, kernel_file):
    old, facts = crashed
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        assert m.state("web") == "running"
        os.kill(facts["web"]["pid"], signal.SIGKILL)
        m.wait_state("web", "error")
        assert wait_for(lambda: m.read("vms", "web", "error") != "")
        err = m.read("vms", "web", "error")
        assert "exit status is unknown" in err and "re-adopted" in err, err
        assert m.read("vms", "web", "pid").strip() in ("", "0")
        m.ctl("web", "start")  # error -> start again, a child of ours
        assert m.state("web") == "running"
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


@pytest.mark.daemon_output(COLLECTED, r"dead mount", r"re-adoption is off")
def test_noadopt_kills_and_collects_everything(request, crashed, tmp_path, kernel_file):
    old, facts = crashed
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False, extra_opts=["noadopt"])
    try:
        log = m.read("log")
        for n in ("web", "db"):
            assert f"collected VM {n} " in log and "re-adoption is off (noadopt)" in log, log
            assert not alive(facts[n]["pid"]), f"{n}'s VMM survived noadopt"
            assert not os.path.exists(facts[n]["dir"])
        assert vms(m) == []
        assert not [p for p in _processes_mentioning(m.runtime) if "--api-sock" in p[1]]
        assert [x for x in os.listdir(m.runtime) if not x.startswith(".")] == []
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


@pytest.mark.daemon_output(r"dead mount", r"of a killed daemon \(no state file\)")
def test_runtime_dir_without_state_file_is_collected(request, tmp_path, kernel_file):
    need_emulator()
    rt = tmp_path / "rt"
    stray = rt / "abcd1234"
    stray.mkdir(parents=True, mode=0o700)
    (stray / "fc.sock").write_text("")
    keep = rt / "not-a-vm"  # only names like VM ids are ever touched
    keep.mkdir()
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        assert not stray.exists()
        assert keep.exists()
        assert f"collected runtime dir {stray} of a killed daemon (no state file)" in m.read("log")
    finally:
        keep.rmdir()
        stop_daemon(m)
        check_output(m, _allowed(request))


def test_state_file_is_private_and_holds_no_metadata(mnt):
    mnt.started_vm("web")
    mnt.write(mnt.vm("web", "metadata"), '{"secret": "hunter2"}')
    path = os.path.join(runtime_dir(mnt, "web"), "vm.json")
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600
    with open(path) as f:
        text = f.read()
    assert "hunter2" not in text
    assert f'"pid":{int(mnt.read("vms", "web", "pid"))}' in text
    # written at the spawn; the end of the start and a pause cost no write: a
    # later daemon asks the VMM (the crashed fixture's paused VM comes back
    # paused, its running one running)
    assert '"state":"starting"' in text
    before = os.stat(path).st_mtime_ns, os.stat(path).st_ino
    mnt.ctl("web", "pause")
    assert (os.stat(path).st_mtime_ns, os.stat(path).st_ino) == before
    mnt.ctl("web", "resume")
    for fifo in ("stdin.fifo", "console.fifo", "stderr.log", "log.fifo", "metrics.fifo"):
        assert os.path.exists(os.path.join(runtime_dir(mnt, "web"), fifo)), fifo
    mnt.ctl("web", "kill")


@pytest.mark.daemon_output(r"dead mount")
def test_second_live_mount_never_adopts(request, tmp_path, kernel_file):
    """A second mount with the same runtime dir and bridge while the first lives:
    it must neither adopt nor collect the first one's VMs."""
    need_emulator()
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        m.started_vm("web")
        pid = int(m.read("vms", "web", "pid"))
        m2 = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                          mountpoint=str(tmp_path / "mnt2"))
        try:
            assert vms(m2) == []
            assert "adopted" not in m2.read("log")
        finally:
            stop_daemon(m2, check=False)
        assert alive(pid) and m.state("web") == "running"
        assert os.path.exists(os.path.join(runtime_dir(m, "web"), "vm.json"))
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


@pytest.mark.daemon_output(COLLECTED, r"dead mount")
def test_real_firecracker_survives_and_flows_again(request, tmp_path):
    """The real VMM survives its daemon's SIGKILL while the guest prints (its
    console writes fail with EPIPE while nobody reads), and after re-adoption
    console output and serial input flow again."""
    need_real_firecracker()
    m = start_daemon(str(tmp_path), FIRECRACKER, GUEST_KERNEL, checks=False)
    pid = None
    try:
        m.started_vm("tiny")
        assert wait_for(lambda: "smartvm-guest: ready" in m.read("vms", "tiny", "console"))
        pid = int(m.read("vms", "tiny", "pid"))
        # the guest echoes: give it output to write while no daemon reads
        m.write(m.vm("tiny", "console"), "x" * 200 + "\n")
    except BaseException:
        stop_daemon(m, check=False)
        raise
    kill_daemon(m)
    # serial input by name while no daemon runs: the guest echoes it to a
    # console FIFO nobody reads (EPIPE), and Firecracker must live on
    fd = os.open(os.path.join(runtime_dir_of(m.runtime, pid), "stdin.fifo"),
                 os.O_WRONLY | os.O_NONBLOCK)
    for _ in range(20):
        os.write(fd, b"typed while away\n")
        time.sleep(0.02)
    os.close(fd)
    time.sleep(0.5)
    assert alive(pid), "Firecracker died with its daemon"
    m2 = start_daemon(str(tmp_path), FIRECRACKER, GUEST_KERNEL, checks=False)
    try:
        assert f"adopted VM tiny (id " in m2.read("log")
        assert m2.state("tiny") == "running"
        assert '"Running"' in m2.read("vms", "tiny", "info")
        m2.write(m2.vm("tiny", "console"), "echo back\n")
        assert wait_for(lambda: "echo back" in m2.read("vms", "tiny", "console")), \
            m2.read("vms", "tiny", "console")
        m2.ctl("tiny", "pause")
        assert m2.state("tiny") == "paused"
        m2.ctl("tiny", "resume")
        m2.ctl("tiny", "stop")
        assert m2.state("tiny") == "stopped"
        assert not alive(pid)
    finally:
        stop_daemon(m2)
        check_output(m2, _allowed(request))
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.daemon_output(COLLECTED, r"left by a crashed run", r"dead mount")
def test_readopted_vm_keeps_its_tap_and_address(request, tmp_path, kernel_file):
    """With networking, in a private network namespace (as test_net.py): the
    re-adopted VM keeps its TAP, address, bridge and NAT; the dead one's TAP
    goes; the unmount then removes everything, as for VMs of its own."""
    need_emulator()
    if hostfacts.networking():
        pytest.skip(hostfacts.networking())
    from test_net import NetNS, assert_nothing_left, leases, mount_in, start_net_vm
    ns = NetNS()
    m2 = None
    pids = []
    try:
        m = mount_in(ns, tmp_path, kernel_file)
        try:
            start_net_vm(m, "a")
            start_net_vm(m, "b")
            before = leases(m)
            pids = [int(m.read("vms", n, "pid")) for n in ("a", "b")]
            net_a = m.read("vms", "a", "net")
        except BaseException:
            stop_daemon(m, check=False)
            raise
        kill_daemon(m)
        os.kill(pids[1], signal.SIGKILL)
        assert wait_for(lambda: not alive(pids[1]))
        m2 = mount_in(ns, tmp_path, kernel_file)
        log = m2.read("log")
        assert "adopted VM a (id " in log and "collected VM b (id " in log, log
        links = ns.links()
        assert before["a"]["tap"] in links, "the re-adopted VM's TAP was removed"
        assert before["b"]["tap"] not in links, "the dead VM's TAP was left"
        assert f"removed TAP {before['b']['tap']} left by a crashed run" in log, log
        assert leases(m2) == {"a": before["a"]}
        assert m2.read("vms", "a", "net") == net_a
        assert "svbr0" in links and len(ns.nat_rules()) == 1
        # a new VM gets a fresh address, never the re-adopted one's
        start_net_vm(m2, "c")
        assert leases(m2)["c"]["addr"] not in (before["a"]["addr"],)
        m2.ctl("a", "stop")
        assert m2.state("a") == "stopped"
    finally:
        if m2:
            stop_daemon(m2)
            check_output(m2, _allowed(request))
            assert_nothing_left(ns)
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        ns.close()


@pytest.mark.daemon_output(r"dead mount")
def test_clone_in_its_own_mount_namespace_is_readopted(request, tmp_path, kernel_file):
    """A clone (a snapshot restored into another VM) runs in a private mount
    namespace where its runtime dir shows at the original's path, a directory
    made on the host for it. Re-adopted, that directory stays while it runs and
    goes when it ends."""
    need_emulator()
    if os.geteuid() != 0:
        pytest.skip("a clone's private mount namespace needs root")
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    pid = None
    try:
        m.started_vm("web")
        web_dir = runtime_dir(m, "web")
        m.ctl("web", "pause")
        snap = tmp_path / "snap"
        m.ctl("web", f"snapshot {snap}")
        m.ctl("web", "kill")
        os.rmdir(m.p("vms", "web"))
        assert not os.path.exists(web_dir)
        os.mkdir(m.p("vms", "copy"))
        m.ctl("copy", f"restore {snap} resume")
        assert m.state("copy") == "running"
        assert os.path.isdir(web_dir)  # the clone's mount point on the host
        pid = int(m.read("vms", "copy", "pid"))
    except BaseException:
        stop_daemon(m, check=False)
        raise
    kill_daemon(m)
    m2 = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        assert "adopted VM copy (id " in m2.read("log")
        assert m2.state("copy") == "running" and int(m2.read("vms", "copy", "pid")) == pid
        assert os.path.isdir(web_dir), "a re-adopted clone's mount point was collected"
        m2.write(m2.vm("copy", "console"), "clone here\n")
        assert wait_for(lambda: "clone here" in m2.read("vms", "copy", "console"))
        m2.ctl("copy", "stop")
        assert m2.state("copy") == "stopped"
        assert not os.path.exists(web_dir)
    finally:
        stop_daemon(m2)
        check_output(m2, _allowed(request))
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
