"""Values are never stale (DESIGN §3), now that value files' attributes are cached:
a write that changed values returns only after the kernel's copies were
invalidated, and a change nobody wrote (a VMM that ends) is invalidated at once."""
import errno
import fcntl
import os
import select
import stat
import termios
import time


def read_fresh(path):
    """stat, then open/read/close: both must agree with the value."""
    size = os.stat(path).st_size
    with open(path, "rb") as f:
        data = f.read()
    return size, data


def test_pause_then_state_at_once(mnt):
    mnt.started_vm("web")
    state = mnt.vm("web", "state")
    ctl = mnt.vm("web", "ctl")
    last_dir_mtime = os.stat(mnt.vm("web")).st_mtime_ns
    for i in range(200):
        # the kernel holds the state's attributes and pages from the read before
        want = "paused" if i % 2 == 0 else "running"
        mnt.ctl("web", "pause" if want == "paused" else "resume")
        size, data = read_fresh(state)
        assert data == (want + "\n").encode(), f"round {i}: {data!r}"
        assert size == len(data), f"round {i}: st_size {size} for {data!r}"
        # ctl's own read-out changed with it, through the descriptor just written,
        # and its size with it
        csize, cdata = read_fresh(ctl)
        assert f"state {want}\n".encode() in cdata
        assert csize == len(cdata), f"round {i}: ctl st_size {csize} for {cdata!r}"
        # the VM's directory shows the VM's last change
        dir_mtime = os.stat(mnt.vm("web")).st_mtime_ns
        assert dir_mtime > last_dir_mtime, f"round {i}: the directory's mtime stood still"
        last_dir_mtime = dir_mtime
        # a second look, the page cache answering, must agree
        assert read_fresh(state) == (size, data)


def test_pause_then_cat_in_shell(mnt):
    mnt.started_vm("web")
    r = mnt.sh(
        "for i in $(seq 50); do"
        "  echo pause > vms/web/ctl || exit 1;"
        "  s=$(stat -c %s vms/web/state); v=$(cat vms/web/state);"
        "  [ \"$v\" = paused ] && [ \"$s\" = 7 ] || { echo \"$i: $v $s\"; exit 1; };"
        "  echo resume > vms/web/ctl || exit 1;"
        "  s=$(stat -c %s vms/web/state); v=$(cat vms/web/state);"
        "  [ \"$v\" = running ] && [ \"$s\" = 8 ] || { echo \"$i: $v $s\"; exit 1; };"
        "done", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_config_write_then_read_back(mnt):
    mnt.make_vm("web")
    path = mnt.vm("web", "config.json")
    for i in range(50):
        before = read_fresh(path)
        doc = '{"machineConfig": {"vcpuCount": 1, "memSizeMib": %d}, ' \
              '"bootSource": {"kernelImagePath": "%s"}}' % (128 + i * 1000, mnt.kernel)
        mnt.write(path, doc)
        size, data = read_fresh(path)
        assert size == len(data)
        assert b'"memSizeMib": %d' % (128 + i * 1000) in data, data
        assert i == 0 or (size, data) != before


def test_unasked_exit_is_seen_within_100ms(mnt):
    mnt.make_vm("web", "emu.crash_ms=400")
    mnt.ctl("web", "start")
    state = mnt.vm("web", "state")
    pid = int(mnt.read("vms", "web", "pid"))
    pidfd = os.pidfd_open(pid)
    try:
        # keep the kernel's attributes and pages of `state` warm until the VMM ends.
        # Read first, then ask the pidfd: a VMM still alive after the read was
        # alive during it, so that read must say running
        while True:
            got = read_fresh(state)
            if select.select([pidfd], [], [], 0)[0]:
                break
            assert got == (8, b"running\n")
            time.sleep(0.002)
        ended = time.monotonic()
    finally:
        os.close(pidfd)
    while True:
        size, data = read_fresh(state)
        if data == b"error\n" and size == len(data):
            break
        assert data in (b"running\n", b"error\n"), data
        assert time.monotonic() - ended < 0.1, f"still {data!r} (st_size {size}) after 100 ms"
        time.sleep(0.001)
    assert time.monotonic() - ended < 0.1
    assert "exit" in mnt.read("vms", "web", "error")


def test_stat_after_start_is_fresh(mnt):
    """A start moves the mtime of the files whose value it changed, in attributes the
    kernel cached a moment before, and every size stays the length a read gives."""
    mnt.make_vm("web")
    files = ["ctl", "state", "config.json", "error", "pid", "net", "runtime", "vsock"]
    moving = ["ctl", "state", "pid"]
    before = {f: os.stat(mnt.vm("web", f)) for f in files}
    for f in files:
        mnt.read("vms", "web", f)
    time.sleep(0.01)
    mnt.ctl("web", "start")
    for f in files:
        st = os.stat(mnt.vm("web", f))
        if f in moving:
            assert st.st_mtime_ns > before[f].st_mtime_ns, f
        size, data = read_fresh(mnt.vm("web", f))
        assert size == len(data), f
    assert read_fresh(mnt.vm("web", "pid"))[1].strip().isdigit()


def test_kill_and_stop_then_stat_at_once(mnt):
    """A kill or stop waits for the VMM's end, which the core's event loop
    reports: its reply comes only after the files the end changed were
    invalidated, so the attributes the kernel held from before say the truth."""
    mnt.make_vm("web")
    ctl, state = mnt.vm("web", "ctl"), mnt.vm("web", "state")
    for i in range(30):
        mnt.ctl("web", "start")
        # the kernel holds attributes (and the page) of the running VM's files
        running = {f: read_fresh(mnt.vm("web", f)) for f in ("ctl", "state", "pid")}
        assert running["state"][1] == b"running\n"
        dir_mtime = os.stat(mnt.vm("web")).st_mtime_ns
        mnt.ctl("web", "kill" if i % 2 == 0 else "stop")
        for f in ("ctl", "state", "pid"):
            size, data = read_fresh(mnt.vm("web", f))
            assert size == len(data), f"round {i}: {f}: st_size {size} for {data!r}"
        assert read_fresh(state)[1] == b"stopped\n", f"round {i}"
        assert b"state stopped\n" in read_fresh(ctl)[1], f"round {i}"
        assert os.stat(mnt.vm("web")).st_mtime_ns > dir_mtime, f"round {i}"


def test_mtime_moves_only_with_the_value(mnt):
    """A pause changes the state, not config.json or error: their mtime stays (a file
    manager or make(1) sees what changed); the directory's moves."""
    mnt.started_vm("web")
    time.sleep(0.3)  # what the start itself changed has been seen
    before = {f: os.stat(mnt.vm("web", f)).st_mtime_ns for f in ("config.json", "error", "state")}
    dir_before = os.stat(mnt.vm("web")).st_mtime_ns
    mnt.ctl("web", "pause")
    after = {f: os.stat(mnt.vm("web", f)).st_mtime_ns for f in before}
    assert after["config.json"] == before["config.json"]
    assert after["error"] == before["error"]
    assert after["state"] > before["state"]
    assert os.stat(mnt.vm("web")).st_mtime_ns > dir_before
    try:
        mnt.ctl("web", "frobnicate")
    except OSError:
        pass
    assert os.stat(mnt.vm("web", "error")).st_mtime_ns > before["error"]


def test_listing_then_change_is_fresh(mnt):
    """`ls -l vms` hands the kernel every VM directory's attributes at once; a change
    after that listing still shows in the next stat and the next listing."""
    for n in ("a", "b", "c"):
        mnt.make_vm(n)
    r = mnt.sh("ls -l --time-style=+%s.%N vms")
    assert r.returncode == 0, r.stderr
    listed = {ln.split()[-1] for ln in r.stdout.splitlines()[1:]}
    assert {"a", "b", "c"} <= listed
    before = {n: os.stat(mnt.vm(n)) for n in ("a", "b", "c")}
    for n, st in before.items():
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    time.sleep(0.01)
    mnt.ctl("b", "start")
    assert os.stat(mnt.vm("b")).st_mtime_ns > before["b"].st_mtime_ns
    assert os.stat(mnt.vm("a")).st_mtime_ns == before["a"].st_mtime_ns
    mnt.sh("ls -l vms")
    os.rmdir(mnt.vm("c"))
    r = mnt.sh("ls vms")
    assert "c" not in r.stdout.split() and "b" in r.stdout.split()


def test_no_file_is_a_terminal(mnt):
    """isatty() (an ioctl, which the daemon's reader answers itself) says no,
    and the open it came with works on: Python's open() asks it every time."""
    mnt.started_vm("web")
    for name, mode in (("ctl", os.O_WRONLY | os.O_TRUNC), ("state", os.O_RDONLY),
                       ("config.json", os.O_RDONLY)):
        fd = os.open(mnt.vm("web", name), mode)
        try:
            assert not os.isatty(fd), name
            try:
                fcntl.ioctl(fd, termios.TCGETS, bytes(64))
                raise AssertionError(f"{name}: TCGETS answered")
            except OSError as e:
                assert e.errno == errno.ENOTTY, (name, e)
            if name == "ctl":
                os.write(fd, b"pause\n")
        finally:
            os.close(fd)
    assert open(mnt.vm("web", "state")).read() == "paused\n"
