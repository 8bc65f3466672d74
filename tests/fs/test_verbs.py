"""ctl verbs: every verb where it is valid and where it is not, multi-line writes,
the errno table and the error file."""
import errno
import os

import pytest


def expect_errno(fn, code):
    with pytest.raises(OSError) as e:
        fn()
    assert e.value.errno == code, os.strerror(e.value.errno)


def test_shell_start_stop(mnt):
    mnt.make_vm("web")
    r = mnt.sh("echo start > vms/web/ctl && cat vms/web/state")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "running\n"  # the write returned with the VM running
    assert mnt.read("vms", "web", "pid").strip().isdigit()
    assert mnt.read("vms", "web", "runtime").startswith(mnt.runtime)
    r = mnt.sh("echo stop > vms/web/ctl && cat vms/web/state")
    assert r.stdout == "stopped\n", r.stderr
    assert mnt.read("vms", "web", "pid") == ""


def test_start_from_stopped_and_error(mnt):
    mnt.started_vm("web")
    mnt.ctl("web", "kill")
    assert mnt.state("web") == "stopped"
    mnt.ctl("web", "start")
    assert mnt.state("web") == "running"


def test_start_invalid_states(mnt):
    mnt.started_vm("web")
    expect_errno(lambda: mnt.ctl("web", "start"), errno.EBUSY)
    mnt.ctl("web", "pause")
    expect_errno(lambda: mnt.ctl("web", "start"), errno.EBUSY)
    err = mnt.read("vms", "web", "error")
    assert "start" in err


def test_pause_resume(mnt):
    mnt.started_vm("web")
    mnt.ctl("web", "pause")
    assert mnt.state("web") == "paused"
    expect_errno(lambda: mnt.ctl("web", "pause"), errno.EBUSY)
    assert "resume" in mnt.read("vms", "web", "ctl")
    mnt.ctl("web", "resume")
    assert mnt.state("web") == "running"
    expect_errno(lambda: mnt.ctl("web", "resume"), errno.EBUSY)


def test_pause_resume_invalid_in_created(mnt):
    mnt.make_vm("web")
    for verb in ("pause", "resume", "stop", "kill", "snapshot /tmp/x", "balloon 64",
                 f"drive rootfs {mnt.kernel}", "flushmetrics", "metadata {}"):
        expect_errno(lambda: mnt.ctl("web", verb), errno.EBUSY)
    assert mnt.state("web") == "created"


def test_stop_from_paused(mnt):
    mnt.started_vm("web")
    mnt.ctl("web", "pause")
    mnt.ctl("web", "stop")
    assert mnt.state("web") == "stopped"
    expect_errno(lambda: mnt.ctl("web", "stop"), errno.EBUSY)


def test_kill_running_and_paused(mnt):
    mnt.started_vm("a")
    mnt.ctl("a", "kill")
    assert mnt.state("a") == "stopped"
    expect_errno(lambda: mnt.ctl("a", "kill"), errno.EBUSY)
    mnt.started_vm("b")
    mnt.ctl("b", "pause")
    mnt.ctl("b", "kill")
    assert mnt.state("b") == "stopped"


def test_unknown_verb(mnt):
    mnt.make_vm("web")
    r = mnt.sh("echo frob 3 > vms/web/ctl")
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert 'unknown control message "frob 3"' in mnt.read("vms", "web", "error")


def test_bad_arguments(mnt):
    mnt.started_vm("web")
    expect_errno(lambda: mnt.ctl("web", "start now"), errno.EINVAL)
    expect_errno(lambda: mnt.ctl("web", "balloon"), errno.EINVAL)
    expect_errno(lambda: mnt.ctl("web", "drive rootfs"), errno.EINVAL)
    assert "usage: drive ID PATH" in mnt.read("vms", "web", "error")
    assert mnt.state("web") == "running"


def test_multiline_in_order(mnt):
    mnt.make_vm("web")
    text = "start\npause\nresume\n"
    assert mnt.write(mnt.vm("web", "ctl"), text) == len(text)
    assert mnt.state("web") == "running"


def test_multiline_fails_halfway(mnt):
    mnt.make_vm("web")
    text = b"start\nfrob\nstop\n"
    fd = os.open(mnt.vm("web", "ctl"), os.O_WRONLY)
    try:
        n = os.write(fd, text)
        assert n == len(b"start\n")  # the lines that succeeded
        with pytest.raises(OSError) as e:  # the retry of the rest gets the errno
            os.write(fd, text[n:])
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert mnt.state("web") == "running"  # start stays done, stop never ran
    assert 'unknown control message "frob"' in mnt.read("vms", "web", "error")


def test_multiline_shell(mnt):
    mnt.make_vm("web")
    r = mnt.sh("printf 'start\\nstop\\nstop\\n' > vms/web/ctl")
    assert r.returncode != 0  # the third line fails with EBUSY
    assert mnt.state("web") == "stopped"


def test_blank_lines(mnt):
    mnt.make_vm("web")
    assert mnt.write(mnt.vm("web", "ctl"), "\n  start  \n\n") == len("\n  start  \n\n")
    assert mnt.state("web") == "running"


def test_start_without_kernel_enoent(mnt):
    import json
    from conftest import vm_config
    os.mkdir(mnt.p("vms", "web"))
    cfg = json.dumps(vm_config("/nonexistent/vmlinux"))
    try:
        mnt.write(mnt.vm("web", "config.json"), cfg)
    except OSError as e:  # refused early is fine too, with the same errno
        assert e.errno == errno.ENOENT
        return
    expect_errno(lambda: mnt.ctl("web", "start"), errno.ENOENT)
    assert mnt.state("web") == "created"
    assert "start" in mnt.read("vms", "web", "error")


def test_snapshot_restore(mnt, tmp_path):
    snap = tmp_path / "snap"
    mnt.started_vm("web")
    expect_errno(lambda: mnt.ctl("web", f"snapshot {snap}"), errno.EBUSY)  # running
    mnt.ctl("web", "pause")
    mnt.ctl("web", f"snapshot {snap} full")
    assert (snap / "vmstate").exists() and (snap / "mem").exists()
    mnt.ctl("web", "kill")
    mnt.make_vm("copy")
    mnt.ctl("copy", f"restore {snap}")
    assert mnt.state("copy") == "paused"
    expect_errno(lambda: mnt.ctl("copy", f"restore {snap}"), errno.EBUSY)
    mnt.ctl("copy", "kill")


def test_flushmetrics_metadata_verbs(mnt):
    mnt.make_vm("web")
    mnt.write(mnt.vm("web", "metadata"), '{"a": 1}')  # applied at start: MMDS exists
    mnt.ctl("web", "start")
    mnt.ctl("web", "flushmetrics")
    assert mnt.read("vms", "web", "metrics").startswith("{")
    mnt.ctl("web", 'metadata {"k": "v 1"}')  # a merge; the JSON argument may hold blanks
    md = mnt.read("vms", "web", "metadata")
    assert '"v 1"' in md and '"a"' in md


def test_balloon_verb(mnt):
    mnt.make_vm("web", balloon={"amountMib": 16, "deflateOnOom": True})
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "balloon 32")
    assert e.value.errno == errno.EBUSY
    mnt.ctl("web", "start")
    # the tiny guest has no balloon driver: Firecracker refuses, and says why
    try:
        mnt.ctl("web", "balloon 32")
    except OSError as e:
        assert e.errno == errno.EIO
        assert "balloon 32" in mnt.read("vms", "web", "error")


def test_root_ctl(mnt):
    mnt.started_vm("a")
    mnt.started_vm("b")
    mnt.write(mnt.p("ctl"), "stopall\n")
    assert mnt.state("a") == "stopped" and mnt.state("b") == "stopped"
    mnt.ctl("a", "start")
    mnt.write(mnt.p("ctl"), "cleanup\n")
    assert mnt.state("a") == "stopped"
    r = mnt.sh("echo frob > ctl")
    assert r.returncode != 0
    assert 'unknown control message "frob"' in mnt.read("error")
    # purge: the seed's cleanup - every VM killed and removed (tests/fs/test_net.py
    # checks the network's part)
    mnt.ctl("b", "start")
    mnt.make_vm("idle")
    mnt.write(mnt.p("ctl"), "purge\n")
    assert os.listdir(mnt.p("vms")) == ["clone"]
    assert [d for d in os.listdir(mnt.runtime) if not d.startswith(".")] == []


def test_ctl_write_leaves_other_vms_readable(mnt):
    mnt.make_vm("slow", "emu.boot_ms=1500")
    mnt.make_vm("other")
    import threading
    import time
    t = threading.Thread(target=lambda: mnt.ctl("slow", "start"))
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert mnt.state("other") == "created"
    assert mnt.state("slow") == "starting"
    assert time.monotonic() - t0 < 0.5
    t.join()
    assert mnt.state("slow") == "running"


def test_drive_rate_limiter_update(mnt, tmp_path):
    """`drive ID - JSON` changes only the rate limiter; bad JSON and '-' alone are EINVAL."""
    disk = tmp_path / "data.img"
    disk.write_bytes(b"\0" * 65536)
    mnt.started_vm("web", drives=[{"driveId": "data", "pathOnHost": str(disk),
                                   "isRootDevice": False, "ephemeral": False}])
    mnt.ctl("web", 'drive data - {"bandwidth": {"size": 5000, "refillTime": 100}}')
    expect_errno(lambda: mnt.ctl("web", "drive data -"), errno.EINVAL)
    expect_errno(lambda: mnt.ctl("web", 'drive data - {"bandwidth": {"size": -1, "refillTime": 1}}'),
                 errno.EINVAL)
    err = mnt.read("vms", "web", "error")
    assert "nothing to change" in err and "bandwidth.size" in err
    assert mnt.state("web") == "running"
