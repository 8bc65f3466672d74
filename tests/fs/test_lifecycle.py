"""VMM ends the daemon did not ask for, interrupted starts, many starts at once,
clone."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest


def test_crash_is_error_with_exit_status(mnt):
    mnt.make_vm("web", "emu.crash_ms=100 emu.crash_exit=3")
    mnt.ctl("web", "start")
    mnt.wait_state("web", "error")
    assert "exit 3" in mnt.read("vms", "web", "error")
    assert "verbs start" in mnt.read("vms", "web", "ctl")


def test_crash_signal(mnt):
    mnt.make_vm("web", "emu.crash_ms=100 emu.crash_signal=11")
    mnt.ctl("web", "start")
    mnt.wait_state("web", "error")
    assert "signal 11" in mnt.read("vms", "web", "error")


def test_kill_9_is_error(mnt):
    mnt.started_vm("web")
    pid = int(mnt.read("vms", "web", "pid"))
    os.kill(pid, signal.SIGKILL)
    mnt.wait_state("web", "error")
    assert "signal 9" in mnt.read("vms", "web", "error")
    mnt.ctl("web", "start")  # error -> start again
    assert mnt.state("web") == "running"


def test_guest_reboot_is_stopped(mnt):
    mnt.started_vm("web")
    mnt.write(mnt.vm("web", "console"), "q")  # the guest resets, the VMM exits 0
    mnt.wait_state("web", "stopped")


def test_guest_ignoring_cad_still_stops(mnt):
    mnt.started_vm("web", "svmguest.nocad")
    t0 = time.monotonic()
    mnt.ctl("web", "stop")
    assert mnt.state("web") == "stopped"
    assert time.monotonic() - t0 < 20


def test_ctrl_c_on_start_rolls_back(mnt):
    mnt.make_vm("web", "emu.boot_ms=3000")
    code = (
        "import os\n"
        f"fd=os.open({mnt.vm('web', 'ctl')!r}, os.O_WRONLY)\n"
        "print('writing', flush=True)\n"
        "try:\n"
        "    os.write(fd, b'start\\n')\n"
        "    print('done', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "writing\n"
    mnt.wait_state("web", "starting")
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.stdout.readline() == "interrupted\n"
    p.wait(timeout=10)
    # an API call already in flight (InstanceStart) may finish first: then the
    # core rolls back after it, still well before the write could have been
    # retried; what matters is EINTR and nothing left running
    assert time.monotonic() - t0 < 6
    assert mnt.state("web") == "created"
    assert mnt.read("vms", "web", "pid") == ""


def test_thirty_starts_stall_nothing(mnt):
    # one start, to know how long a start takes here
    mnt.make_vm("probe", "emu.boot_ms=800")
    t0 = time.monotonic()
    mnt.ctl("probe", "start")
    one_start = time.monotonic() - t0
    names = [f"vm{i}" for i in range(30)]
    for n in names:
        mnt.make_vm(n, "emu.boot_ms=800")
    mnt.make_vm("watched")
    errors = []
    worst = [0.0]
    stop = threading.Event()

    def start(n):
        try:
            mnt.ctl(n, "start")
        except OSError as e:
            errors.append((n, e))

    def watch():
        while not stop.is_set():
            t = time.monotonic()
            assert mnt.state("watched") == "created"
            worst[0] = max(worst[0], time.monotonic() - t)

    w = threading.Thread(target=watch)
    w.start()
    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    w.join()
    assert not errors
    assert all(mnt.state(n) == "running" for n in names)
    assert worst[0] < one_start, f"a state read waited {worst[0]:.3f}s, a start takes {one_start:.3f}s"
    assert "running 31" in mnt.read("ctl")


def test_clone(mnt):
    fd = os.open(mnt.p("vms", "clone"), os.O_RDWR)
    try:
        name = os.read(fd, 100).decode().strip()
        assert name and name in os.listdir(mnt.p("vms"))
        assert mnt.state(name) == "created"
        mnt.write(mnt.vm(name, "config.json"), open(mnt.vm(name, "config.json")).read())
    finally:
        os.close(fd)
    # Plan 9 style: writes on the clone descriptor are ctl messages of the new VM
    import json
    from conftest import vm_config
    fd = os.open(mnt.p("vms", "clone"), os.O_RDWR)
    try:
        other = os.read(fd, 100).decode().strip()
        assert other != name
        mnt.write(mnt.vm(other, "config.json"), json.dumps(vm_config(mnt.kernel)))
        os.write(fd, b"start\n")
        assert mnt.state(other) == "running"
    finally:
        os.close(fd)


def test_clone_read_only_creates_nothing(mnt):
    with pytest.raises(PermissionError):
        open(mnt.p("vms", "clone")).read()
    r = mnt.sh("cat vms/clone")
    assert r.returncode != 0
    assert os.listdir(mnt.p("vms")) == ["clone"]
