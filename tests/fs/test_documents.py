"""config.json and metadata: replaced whole, parsed at every write, old value kept
on any failure."""
import errno
import json
import os

import pytest

from conftest import vm_config


def config(mnt, name):
    return json.loads(mnt.read("vms", name, "config.json"))


def expect_write_fails(mnt, name, text, code=errno.EINVAL, file="config.json"):
    before = mnt.read("vms", name, file)
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm(name, file), text)
    assert e.value.errno == code, os.strerror(e.value.errno)
    assert mnt.read("vms", name, file) == before


def test_config_roundtrip(mnt):
    mnt.make_vm("web")
    cfg = config(mnt, "web")
    assert cfg["bootSource"]["kernelImagePath"] == mnt.kernel
    assert cfg["machineConfig"]["memSizeMib"] == 128
    assert os.stat(mnt.vm("web", "config.json")).st_size == len(mnt.read("vms", "web", "config.json"))


def test_config_shell_syntax_error(mnt):
    mnt.make_vm("web")
    before = mnt.read("vms", "web", "config.json")
    r = mnt.sh("echo '{bad' > vms/web/config.json")
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert mnt.read("vms", "web", "config.json") == before
    assert "config.json" in mnt.read("vms", "web", "error")


def test_config_semantic_error(mnt):
    mnt.make_vm("web")
    cfg = vm_config(mnt.kernel)
    cfg["machineConfig"]["vcpuCount"] = 0
    expect_write_fails(mnt, "web", json.dumps(cfg))
    cfg = vm_config(mnt.kernel)
    cfg["vsock"] = {"guestCid": 1, "udsPath": "/tmp/v.sock"}
    expect_write_fails(mnt, "web", json.dumps(cfg))


def test_config_two_root_drives(mnt, tmp_path):
    mnt.make_vm("web")
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    cfg = vm_config(mnt.kernel, drives=[
        {"driveId": "a", "pathOnHost": str(disk), "isRootDevice": True, "isReadOnly": True},
        {"driveId": "b", "pathOnHost": str(disk), "isRootDevice": True, "isReadOnly": True},
    ])
    expect_write_fails(mnt, "web", json.dumps(cfg))


def test_config_unknown_field(mnt):
    mnt.make_vm("web")
    cfg = vm_config(mnt.kernel)
    cfg["frobnicate"] = True
    expect_write_fails(mnt, "web", json.dumps(cfg))
    assert "frobnicate" in mnt.read("vms", "web", "error")


def test_config_not_an_object(mnt):
    mnt.make_vm("web")
    expect_write_fails(mnt, "web", '"just a string"')
    expect_write_fails(mnt, "web", "[1, 2]")


def test_config_too_large(mnt):
    mnt.make_vm("web")
    cfg = vm_config(mnt.kernel)
    cfg["bootSource"]["bootArgs"] = "console=ttyS0 " + "x" * (200 * 1024)
    before = mnt.read("vms", "web", "config.json")
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("web", "config.json"), json.dumps(cfg))
    assert e.value.errno in (errno.EFBIG, errno.EINVAL)
    assert mnt.read("vms", "web", "config.json") == before


def test_config_in_pieces(mnt):
    mnt.make_vm("web")
    text = json.dumps(vm_config(mnt.kernel, "quiet"))
    fd = os.open(mnt.vm("web", "config.json"), os.O_WRONLY | os.O_TRUNC)
    try:
        for i in range(0, len(text), 7):
            assert os.write(fd, text[i:i + 7].encode()) == len(text[i:i + 7])
    finally:
        os.close(fd)
    assert "quiet" in config(mnt, "web")["bootSource"]["bootArgs"]


def test_config_incomplete_fails_close(mnt):
    mnt.make_vm("web")
    before = mnt.read("vms", "web", "config.json")
    fd = os.open(mnt.vm("web", "config.json"), os.O_WRONLY | os.O_TRUNC)
    assert os.write(fd, b'{"bootSource": {') == 16
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EINVAL
    assert mnt.read("vms", "web", "config.json") == before
    assert "incomplete" in mnt.read("vms", "web", "error")


def test_config_busy_while_running(mnt):
    mnt.started_vm("web")
    expect_write_fails(mnt, "web", json.dumps(vm_config(mnt.kernel)), errno.EBUSY)
    mnt.ctl("web", "pause")
    expect_write_fails(mnt, "web", json.dumps(vm_config(mnt.kernel)), errno.EBUSY)
    mnt.ctl("web", "kill")
    mnt.write(mnt.vm("web", "config.json"), json.dumps(vm_config(mnt.kernel, "again")))
    assert "again" in config(mnt, "web")["bootSource"]["bootArgs"]


def test_config_writable_in_error(mnt):
    mnt.make_vm("web", "emu.crash_ms=50")
    mnt.ctl("web", "start")
    mnt.wait_state("web", "error")
    mnt.write(mnt.vm("web", "config.json"), json.dumps(vm_config(mnt.kernel)))
    mnt.ctl("web", "start")
    assert mnt.state("web") == "running"


def test_metadata_before_start_and_live(mnt):
    mnt.make_vm("web")
    assert json.loads(mnt.read("vms", "web", "metadata")) == {}
    mnt.write(mnt.vm("web", "metadata"), '{"secret": "s3"}')
    assert json.loads(mnt.read("vms", "web", "metadata")) == {"secret": "s3"}
    mnt.ctl("web", "start")
    assert json.loads(mnt.read("vms", "web", "metadata")) == {"secret": "s3"}
    mnt.write(mnt.vm("web", "metadata"), '{"other": 1}')
    assert json.loads(mnt.read("vms", "web", "metadata")) == {"other": 1}


def test_metadata_bad(mnt):
    mnt.make_vm("web")
    mnt.write(mnt.vm("web", "metadata"), '{"a": 1}')
    expect_write_fails(mnt, "web", "{nope", file="metadata")
    assert json.loads(mnt.read("vms", "web", "metadata")) == {"a": 1}


def test_metadata_too_large(mnt):
    mnt.started_vm("web")
    big = json.dumps({"blob": "x" * (100 * 1024)})
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("web", "metadata"), big)
    assert e.value.errno in (errno.EFBIG, errno.EINVAL)
