"""-o persist: VM definitions outlast the mount (config.json, metadata, owner,
autostart), kept in DATADIR/vms; the default stays ephemeral."""
import errno
import json
import os

import pytest

from conftest import (BIN, EMULATOR, check_output, start_daemon, stop_daemon, vm_config)

pytestmark = pytest.mark.skipif(
    not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
    reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)")


def persisted(tmp_path, kernel):
    return start_daemon(str(tmp_path), EMULATOR, kernel, extra_opts=["persist"], checks=False)


def test_default_is_ephemeral(mnt):
    mnt.make_vm("web")
    assert mnt.read("vms", "web", "autostart") == "off\n"
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("web", "autostart"), "on\n")
    assert e.value.errno == errno.EINVAL
    assert "autostart needs VM definitions that outlast the mount: mount with -o persist" in \
        mnt.read("vms", "web", "error")
    assert not os.path.exists(os.path.join(mnt.datadir, "vms"))


def test_definitions_come_back_and_autostart(tmp_path, kernel_file):
    m = persisted(tmp_path, kernel_file)
    try:
        m.make_vm("web", "svm.marker=1")
        m.write(m.vm("web", "metadata"), json.dumps({"role": "web"}))
        m.write(m.vm("web", "autostart"), "on\n")
        m.started_vm("idle")
        m.make_vm("gone")
        os.rmdir(m.vm("gone"))  # removed: its definition goes with it
        with pytest.raises(OSError) as e:
            m.write(m.vm("idle", "autostart"), "maybe\n")
        assert e.value.errno == errno.EINVAL
        config_before = json.loads(m.read("vms", "web", "config.json"))
        files = sorted(os.listdir(os.path.join(m.datadir, "vms")))
        assert files == ["idle.json", "web.json"], files
        assert all(os.stat(os.path.join(m.datadir, "vms", f)).st_mode & 0o777 == 0o600 for f in files)
    finally:
        stop_daemon(m)  # the runtime dir, processes and TAPs go as always
    check_output(m, [])
    idle_file = os.path.join(m.datadir, "vms", "idle.json")
    idle_kept = os.stat(idle_file)

    m = persisted(tmp_path, kernel_file)
    try:
        assert sorted(os.listdir(m.p("vms"))) == ["clone", "idle", "web"]
        # a definition the mount found as it is is not written again (no fsync
        # per kept VM at each mount); a change after it is
        st = os.stat(idle_file)
        assert (st.st_ino, st.st_mtime_ns) == (idle_kept.st_ino, idle_kept.st_mtime_ns)
        m.write(m.vm("idle", "metadata"), json.dumps({"role": "spare"}))
        with open(idle_file) as f:
            assert json.load(f)["metadata"] == {"role": "spare"}
        m.wait_state("web", "running")  # autostart
        assert m.state("idle") == "created"  # kept, not started
        assert json.loads(m.read("vms", "web", "config.json")) == config_before
        assert json.loads(m.read("vms", "web", "metadata")) == {"role": "web"}
        assert m.read("vms", "web", "autostart") == "on\n"
        assert "kept VM definitions: 2 restored" in m.read("log")
        m.ctl("web", "stop")
        os.rmdir(m.vm("web"))
        assert os.listdir(os.path.join(m.datadir, "vms")) == ["idle.json"]
    finally:
        stop_daemon(m)
    check_output(m, [])


@pytest.mark.daemon_output(r"its kept definition was not restored")
def test_a_definition_that_cannot_be_used_is_left_as_it_is(request, tmp_path, kernel_file):
    vms = tmp_path / "data" / "vms"
    vms.mkdir(parents=True)
    os.chmod(tmp_path / "data", 0o700)
    bad = {"format": 1, "name": "bad", "uid": 0, "config": {"machineConfig": {"vcpuCount": 0}},
           "autostart": True}
    (vms / "bad.json").write_text(json.dumps(bad))
    m = persisted(tmp_path, kernel_file)
    try:
        assert os.listdir(m.p("vms")) == ["clone"]
        assert "vm bad: its kept definition was not restored (left in" in m.read("log")
        assert json.loads((vms / "bad.json").read_text()) == bad  # nothing lost
        m.make_vm("good")  # the mount works
    finally:
        stop_daemon(m)
    check_output(m, [r"its kept definition was not restored"])
