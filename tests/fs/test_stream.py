"""console (absolute offsets, tail -f) and events (the history read-only; reads that
wait, read-write; poll, Ctrl-C)."""
import errno
import os
import select
import signal
import subprocess
import sys
import time

import pytest


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


def test_console_cat_ends_and_echo(mnt):
    mnt.started_vm("web")
    assert wait_for(lambda: "smartvm-guest: ready" in mnt.read("vms", "web", "console"))
    r = mnt.sh("cat vms/web/console", timeout=5)  # cat ends: a read at st_size returns 0
    assert r.returncode == 0 and "smartvm-guest: ready" in r.stdout
    size = os.stat(mnt.vm("web", "console")).st_size
    assert size == len(r.stdout.encode())
    mnt.write(mnt.vm("web", "console"), "hello guest\n")
    assert wait_for(lambda: "hello guest" in mnt.read("vms", "web", "console"))
    assert os.stat(mnt.vm("web", "console")).st_size > size


def test_console_offsets(mnt):
    mnt.started_vm("web")
    assert wait_for(lambda: os.stat(mnt.vm("web", "console")).st_size > 0)
    with open(mnt.vm("web", "console"), "rb") as f:
        whole = f.read()
        f.seek(5)
        assert f.read() == whole[5:]
        f.seek(len(whole))
        assert f.read() == b""


def test_console_write_when_not_running(mnt):
    mnt.make_vm("web")
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("web", "console"), "x")
    assert e.value.errno == errno.EBUSY


def test_tail_follows_console(mnt):
    mnt.started_vm("web")
    tail = subprocess.Popen(["tail", "-f", mnt.vm("web", "console")], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        mnt.write(mnt.vm("web", "console"), "followed by tail\n")
        got = b""
        deadline = time.monotonic() + 5
        os.set_blocking(tail.stdout.fileno(), False)
        while b"followed by tail" not in got and time.monotonic() < deadline:
            select.select([tail.stdout], [], [], 0.5)
            chunk = tail.stdout.read()
            if chunk:
                got += chunk
        assert b"followed by tail" in got
    finally:
        tail.kill()
        tail.wait()


def test_events_read_only_is_the_history_and_ends(mnt):
    """cat, grep, cp: a read-only open reads the VM's events so far and ends."""
    mnt.make_vm("web")
    r = mnt.sh("cat vms/web/events", timeout=5)
    assert r.returncode == 0 and r.stdout == "state created\n", r
    mnt.ctl("web", "start")
    mnt.ctl("web", "stop")
    r = mnt.sh("cat vms/web/events; wc -c < vms/web/events; tail -n 1 vms/web/events", timeout=5)
    lines = r.stdout.splitlines()
    assert lines[:4] == ["state created", "state starting", "state running", "state stopping"]
    assert "state stopped" in lines[4:6] and any(x.startswith("exit ") for x in lines[4:6])
    history = "\n".join(lines[:6]) + "\n"
    assert int(lines[6]) == len(history) and lines[7] == lines[5]


def test_events_read_only_poll_waits_for_the_next(mnt):
    """A program waits without polling: read to the end, then poll()."""
    mnt.make_vm("web")
    fd = os.open(mnt.vm("web", "events"), os.O_RDONLY)
    try:
        assert os.read(fd, 4096) == b"state created\n"
        assert os.read(fd, 4096) == b""  # the end: a reader never waits
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(200) == []  # nothing new
        mnt.ctl("web", "start")
        assert p.poll(2000)
        lines = b""
        while b"state running" not in lines:
            chunk = os.read(fd, 4096)
            lines += chunk
        assert lines.startswith(b"state starting\n"), lines
    finally:
        os.close(fd)


def test_events_tail_f(mnt):
    mnt.make_vm("web")
    tail = subprocess.Popen(["tail", "-f", "-s", "0.1", mnt.vm("web", "events")],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        got = b""
        time.sleep(0.3)
        mnt.ctl("web", "start")
        deadline = time.monotonic() + 5
        os.set_blocking(tail.stdout.fileno(), False)
        while b"state running" not in got and time.monotonic() < deadline:
            select.select([tail.stdout], [], [], 0.5)
            got += tail.stdout.read() or b""
        assert got == b"state created\nstate starting\nstate running\n", got
    finally:
        tail.kill()
        tail.wait()


def test_events_read_write_first_read_then_waits(mnt):
    """The opt-in: a read-write open's reads wait for the next events."""
    mnt.make_vm("web")
    fd = os.open(mnt.vm("web", "events"), os.O_RDWR)
    try:
        assert os.read(fd, 4096) == b"state created\n"
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(200) == []  # nothing new: a read would wait
        mnt.ctl("web", "start")
        assert p.poll(2000)
        lines = b""
        while b"state running" not in lines:
            lines += os.read(fd, 4096)
        assert b"state starting" in lines
        with pytest.raises(OSError) as e:  # nothing is ever written
            os.write(fd, b"state paused\n")
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert "write events: events takes no writes" in mnt.read("vms", "web", "error")


def test_shell_waits_on_events(mnt):
    """bash: exec 3<>events, then `read` waits for each next event."""
    mnt.make_vm("web")
    sh = subprocess.Popen(["bash", "-c", "exec 3<>vms/web/events; while read -r ev <&3; do "
                           "echo \"$ev\"; done"], cwd=mnt.path, stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True)
    try:
        assert sh.stdout.readline() == "state created\n"
        mnt.ctl("web", "start")
        assert sh.stdout.readline() == "state starting\n"
        assert sh.stdout.readline() == "state running\n"
        mnt.ctl("web", "stop")
        rest = [sh.stdout.readline() for _ in range(3)]
        assert "state stopping\n" in rest and "state stopped\n" in rest
        assert any(line.startswith("exit ") for line in rest)
    finally:
        sh.send_signal(signal.SIGINT)  # Ctrl-C ends a waiting read
        sh.wait(timeout=5)


def test_events_ctrl_c(mnt):
    mnt.make_vm("web")
    code = (
        "import os,sys\n"
        f"fd=os.open({mnt.vm('web', 'events')!r}, os.O_RDWR)\n"
        "os.read(fd, 100)\n"
        "print('blocking', flush=True)\n"
        "try:\n"
        "    os.read(fd, 100)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "blocking\n"
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.stdout.readline() == "interrupted\n"
    assert p.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 2


def test_events_end_when_vm_removed(mnt):
    mnt.make_vm("web")
    fd = os.open(mnt.vm("web", "events"), os.O_RDWR)
    try:
        os.read(fd, 100)
        os.rmdir(mnt.p("vms", "web"))
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)


def test_log_file(mnt):
    mnt.started_vm("web")
    assert "mounted on" in mnt.read("log")
    size = os.stat(mnt.vm("web", "log")).st_size
    assert size == len(open(mnt.vm("web", "log"), "rb").read())


def test_an_editor_save_of_console_is_not_guest_input(mnt):
    """An editor opens console, the user types a line, the editor saves: the whole
    buffer would replay the guest's output into its serial input. It is refused."""
    mnt.started_vm("web")
    console = mnt.vm("web", "console")
    wait_for(lambda: "ready" in mnt.read("vms", "web", "console"))
    text = mnt.read("vms", "web", "console")
    fd = os.open(console, os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, (text + "reboot\n").encode())
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert "write console: what was written starts with the console's own output" in \
        mnt.read("vms", "web", "error")
    time.sleep(0.3)
    assert mnt.read("vms", "web", "console") == text  # the guest echoed nothing
    # what a shell user writes still goes to the guest
    r = mnt.sh("echo hello > vms/web/console")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: mnt.read("vms", "web", "console") == text + "hello\n")
