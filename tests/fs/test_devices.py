"""A VM's device files: snapshots/ (named snapshots as symlinks), balloon, vsock."""
import errno
import json
import os
import stat
import time

import pytest

from conftest import vm_config


def expect_errno(fn, code):
    with pytest.raises(OSError) as e:
        fn()
    assert e.value.errno == code, os.strerror(e.value.errno)


def test_snapshot_by_name_and_restore(mnt):
    mnt.started_vm("web")
    snaps = mnt.vm("web", "snapshots")
    assert stat.S_ISDIR(os.stat(snaps).st_mode)
    assert os.listdir(snaps) == []
    mnt.ctl("web", "pause")
    mnt.ctl("web", "snapshot first")
    # the snapshot is a symlink to its host directory, and ls goes through it
    assert os.listdir(snaps) == ["first"]
    link = os.path.join(snaps, "first")
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    target = os.readlink(link)
    assert target == os.path.join(mnt.datadir, "snapshots", "web", "first")
    assert os.lstat(link).st_size == len(target)
    assert set(os.listdir(link)) >= {"config.json", "mem", "vmstate"}
    r = mnt.sh("ls -l vms/web/snapshots && ls vms/web/snapshots/first/")
    assert r.returncode == 0, r.stderr
    assert "first -> " + target in r.stdout
    assert "vmstate" in r.stdout
    # a second one, then restore the first by name into a fresh VMM
    mnt.ctl("web", "snapshot second diff")
    assert sorted(os.listdir(snaps)) == ["first", "second"]
    mnt.ctl("web", "kill")
    mnt.ctl("web", "restore first resume")
    assert mnt.state("web") == "running"
    mnt.ctl("web", "kill")
    mnt.ctl("web", "restore second")
    assert mnt.state("web") == "paused"


def test_snapshot_name_errors(mnt):
    mnt.started_vm("web")
    mnt.ctl("web", "pause")
    expect_errno(lambda: mnt.ctl("web", "snapshot .hidden"), errno.EINVAL)
    mnt.ctl("web", "kill")
    expect_errno(lambda: mnt.ctl("web", "restore nosuch"), errno.ENOENT)
    assert "nosuch" in mnt.read("vms", "web", "error")
    assert not os.path.lexists(mnt.vm("web", "snapshots", "nosuch"))
    assert os.listdir(mnt.vm("web", "snapshots")) == []


def test_snapshot_by_path_not_listed(mnt, tmp_path):
    mnt.started_vm("web")
    mnt.ctl("web", "pause")
    d = tmp_path / "snap"
    mnt.ctl("web", f"snapshot {d}")
    assert (d / "vmstate").exists()
    assert os.listdir(mnt.vm("web", "snapshots")) == []
    mnt.ctl("web", "kill")
    mnt.ctl("web", f"restore {d} resume")
    assert mnt.state("web") == "running"


def balloon_cfg():
    return {"amountMib": 0, "deflateOnOom": False, "statsPollingIntervalS": 1}


def test_balloon_stats(mnt):
    mnt.make_vm("web", balloon=balloon_cfg())
    assert mnt.read("vms", "web", "balloon") == ""  # not running: empty
    mnt.ctl("web", "start")
    text = mnt.read("vms", "web", "balloon")
    stats = json.loads(text)
    assert "target_pages" in stats or "actual_mib" in stats, stats
    assert text.endswith("\n")
    assert os.stat(mnt.vm("web", "balloon")).st_size == len(text)  # live: length last served
    # (a `balloon MIB` verb needs a guest balloon driver: the emulator, like
    # Firecracker, answers "Device not activated yet" for the tiny guest)
    mnt.ctl("web", "stop")
    assert mnt.read("vms", "web", "balloon") == ""


def test_balloon_without_device_is_empty(mnt):
    mnt.started_vm("web")
    assert mnt.read("vms", "web", "balloon") == ""


def test_vsock_path(mnt, tmp_path):
    mnt.make_vm("plain")
    assert mnt.read("vms", "plain", "vsock") == ""
    # no udsPath: the daemon's own socket in the runtime dir
    mnt.make_vm("web", vsock={"guestCid": 3})
    mnt.ctl("web", "start")
    path = mnt.read("vms", "web", "vsock")
    runtime = mnt.read("vms", "web", "runtime").strip()
    assert path == os.path.join(runtime, "vsock.sock") + "\n"
    assert os.stat(mnt.vm("web", "vsock")).st_size == len(path)
    assert stat.S_ISSOCK(os.stat(path.strip()).st_mode)
    # a udsPath: the socket is where the user asked, and goes with the VMM
    mine = str(tmp_path / "mine.sock")
    mnt.make_vm("own", vsock={"guestCid": 4, "udsPath": mine})
    mnt.ctl("own", "start")
    assert mnt.read("vms", "own", "vsock") == mine + "\n"
    assert stat.S_ISSOCK(os.stat(mine).st_mode)
    mnt.ctl("own", "stop")
    assert not os.path.exists(mine)
    # a stale socket there goes; a file that is not a socket stays, and the start fails
    open(mine, "w").write("mine, not a socket\n")
    with pytest.raises(OSError) as e:
        mnt.ctl("own", "start")
    assert e.value.errno == errno.EINVAL
    assert "vsock.udsPath " + mine + " exists and is not a socket" in mnt.read("vms", "own", "error")
    assert open(mine).read() == "mine, not a socket\n" and mnt.state("own") == "stopped"
    # relative: refused when written
    with pytest.raises(OSError):
        mnt.write(mnt.vm("plain", "config.json"), json.dumps(vm_config(mnt.kernel, vsock={
            "guestCid": 5, "udsPath": "v.sock"})))
    assert "vsock.udsPath must be an absolute path" in mnt.read("vms", "plain", "error")


def test_logger_and_metrics_paths_get_copies(mnt, tmp_path):
    """logger.logPath and metrics.metricsPath: the VM's log and metrics files keep
    everything, and a copy goes where the config asks."""
    logp, metp = tmp_path / "fc.log", tmp_path / "fc.metrics"
    mnt.make_vm("web", logger={"logPath": str(logp), "level": "Debug", "showLevel": True},
                metrics={"metricsPath": str(metp)})
    mnt.ctl("web", "start")
    mnt.ctl("web", "flushmetrics")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (metp.exists() and metp.read_text().endswith("\n")
                                                and logp.exists() and logp.stat().st_size):
        time.sleep(0.05)
    log_copy, own_log = logp.read_text(), mnt.read("vms", "web", "log")
    assert log_copy and own_log.startswith(log_copy[:200]), (log_copy[:200], own_log[:200])
    assert stat.S_IMODE(logp.stat().st_mode) == 0o600
    lines = metp.read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    assert json.loads(mnt.read("vms", "web", "metrics"))  # the VM's own file still answers
    mnt.ctl("web", "stop")
    assert logp.exists()  # the user's file stays the user's
    # a path that cannot be written fails the start, with nothing built
    mnt.make_vm("bad", logger={"logPath": str(tmp_path / "no-such-dir" / "fc.log")})
    with pytest.raises(OSError) as e:
        mnt.ctl("bad", "start")
    assert e.value.errno == errno.ENOENT
    assert "logger.logPath " in mnt.read("vms", "bad", "error")
    assert mnt.state("bad") == "created"


def test_version_of_the_vmm(mnt):
    mnt.make_vm("web")
    assert mnt.read("vms", "web", "version") == ""  # no VMM to ask
    mnt.ctl("web", "start")
    v = json.loads(mnt.read("vms", "web", "version"))
    assert v["firecracker_version"].count(".") == 2, v
    mnt.ctl("web", "stop")
    assert mnt.read("vms", "web", "version") == ""


def test_error_lines_carry_the_code_and_firecrackers_status(mnt):
    mnt.started_vm("web")  # no balloon device: Firecracker refuses a resize
    expect_errno(lambda: mnt.ctl("web", "balloon 64"), errno.EIO)
    last = mnt.read("vms", "web", "error").splitlines()[-1]
    assert last.endswith("(API_ERROR, HTTP 400)"), last
    expect_errno(lambda: mnt.ctl("web", "frobnicate"), errno.EINVAL)
    assert mnt.read("vms", "web", "error").splitlines()[-1].endswith('"frobnicate" (INVALID_ARGUMENT)')


def test_snapshot_to_and_from_two_files(mnt, tmp_path):
    """The seed's createSnapshot/loadSnapshot: the state file and the memory file
    anywhere, chosen apart; STATE.seal beside the state holds the seal and the
    config. A changed seal is refused; a NAME with a file, or three words without
    two paths, is EINVAL."""
    (tmp_path / "states").mkdir()
    (tmp_path / "mems").mkdir()
    state, mem = tmp_path / "states" / "web.state", tmp_path / "mems" / "web.mem"
    mnt.started_vm("web")
    mnt.ctl("web", "pause")
    mnt.ctl("web", f"snapshot {state} {mem} full")
    assert sorted(os.listdir(tmp_path / "states")) == ["web.state", "web.state.seal"]
    assert os.listdir(tmp_path / "mems") == ["web.mem"]
    assert json.loads((tmp_path / "states" / "web.state.seal").read_text())["config"]
    mnt.ctl("web", "kill")
    mnt.ctl("web", f"restore {state} {mem} resume")
    assert mnt.state("web") == "running"
    mnt.ctl("web", "kill")
    seal = tmp_path / "states" / "web.state.seal"
    doc = json.loads(seal.read_text())
    doc["owner"] = 4242
    seal.write_text(json.dumps(doc))
    expect_errno(lambda: mnt.ctl("web", f"restore {state} {mem}"), errno.EACCES)
    assert "its seal does not match" in mnt.read("vms", "web", "error")
    mnt.ctl("web", "start")
    mnt.ctl("web", "pause")
    expect_errno(lambda: mnt.ctl("web", f"snapshot first {mem}"), errno.EINVAL)
    expect_errno(lambda: mnt.ctl("web", f"snapshot {state} full diff"), errno.EINVAL)
