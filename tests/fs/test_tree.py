"""The file tree: names, modes, sizes, mkdir/rmdir, names that are refused."""
import errno
import os
import stat

import pytest

ROOT_FILES = {"ctl", "version", "paths", "error", "log", "vms", "net", "images", "room"}
VM_FILES = {"ctl", "state", "events", "config.json", "metadata", "console", "error", "info",
            "pid", "net", "runtime", "stat", "log", "metrics", "snapshots", "balloon", "hotplug", "hinting", "vsock",
            "autostart", "version", "limits", "exec"}


def test_root_listing(mnt):
    assert ROOT_FILES <= set(os.listdir(mnt.path))
    assert os.listdir(mnt.p("vms")) == ["clone"]
    r = mnt.sh("ls -l")
    assert r.returncode == 0 and "vms" in r.stdout


def test_version_and_summary(mnt):
    v = mnt.read("version")
    assert v.startswith("smartvmfs ") and v.endswith("\n") and v.count("\n") == 1
    assert v.endswith(" (emulator: fc-emulator, the test double)\n"), v  # not a Firecracker
    summary = mnt.read("ctl")
    assert summary.count("\n") == 1
    assert "vms 0" in summary and "running 0" in summary and "bridge " in summary
    mnt.make_vm("a")
    assert "vms 1" in mnt.read("ctl") and "created 1" in mnt.read("ctl")


def test_vm_directory(mnt):
    r = mnt.sh("mkdir vms/web && ls vms/web && cat vms/web/state")
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()[:-1]) == VM_FILES
    assert r.stdout.split()[-1] == "created"
    assert stat.S_IMODE(os.stat(mnt.vm("web", "metadata")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(mnt.vm("web", "state")).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(mnt.vm("web", "ctl")).st_mode) == 0o644
    ctl = mnt.read("vms", "web", "ctl")
    assert ctl.splitlines()[0] == "state created"
    assert set(ctl.splitlines()[1].split()[1:]) == {"start", "restore"}


def test_sizes_are_true(mnt):
    mnt.started_vm("web")
    for f in sorted(VM_FILES - {"events", "snapshots", "limits", "exec"}):
        path = mnt.vm("web", f)
        with open(path, "rb") as fh:
            data = fh.read()
        # live files report the length last served, so stat after reading
        assert os.stat(path).st_size == len(data), f
        if f not in ("console", "log", "net", "metrics") and data:
            assert data.endswith(b"\n"), f


def test_mtime_moves_with_state(mnt):
    mnt.make_vm("web")
    before = os.stat(mnt.vm("web", "state")).st_mtime_ns
    mnt.ctl("web", "start")
    assert os.stat(mnt.vm("web", "state")).st_mtime_ns > before


def test_mkdir_rmdir_new_inode(mnt):
    os.mkdir(mnt.p("vms", "x"))
    ino1 = os.stat(mnt.p("vms", "x")).st_ino
    f1 = os.stat(mnt.vm("x", "state")).st_ino
    os.rmdir(mnt.p("vms", "x"))
    assert not os.path.exists(mnt.p("vms", "x"))
    os.mkdir(mnt.p("vms", "x"))
    assert os.stat(mnt.p("vms", "x")).st_ino != ino1
    assert os.stat(mnt.vm("x", "state")).st_ino != f1
    assert mnt.state("x") == "created"


def test_mkdir_exists(mnt):
    os.mkdir(mnt.p("vms", "x"))
    with pytest.raises(FileExistsError):
        os.mkdir(mnt.p("vms", "x"))


@pytest.mark.parametrize("name,errnos", [
    ("..", {errno.EEXIST, errno.EINVAL}),
    ("a/b", {errno.ENOENT}),
    ("a" * 65, {errno.EINVAL, errno.ENAMETOOLONG}),
    ("", {errno.ENOENT, errno.EEXIST}),
    (".hidden", {errno.EINVAL}),
    ("bad name", {errno.EINVAL}),
])
def test_bad_names(mnt, name, errnos):
    with pytest.raises(OSError) as e:
        os.mkdir(os.path.join(mnt.p("vms"), name) if name else mnt.p("vms", ""))
    assert e.value.errno in errnos
    assert os.listdir(mnt.p("vms")) == ["clone"]


def test_name_of_64_is_fine(mnt):
    os.mkdir(mnt.p("vms", "a" * 64))
    assert mnt.state("a" * 64) == "created"


def test_mkdir_elsewhere_refused(mnt):
    os.mkdir(mnt.p("vms", "web"))
    for where in (mnt.p("newdir"), mnt.vm("web", "sub")):
        with pytest.raises(OSError) as e:
            os.mkdir(where)
        assert e.value.errno in (errno.EPERM, errno.EACCES)


def test_no_new_files(mnt):
    os.mkdir(mnt.p("vms", "web"))
    r = mnt.sh("echo x > vms/web/newfile")
    assert r.returncode != 0
    with pytest.raises(OSError):
        os.unlink(mnt.vm("web", "state"))
    with pytest.raises(OSError):
        os.rename(mnt.p("vms", "web"), mnt.p("vms", "web2"))


def test_read_only_files_refuse_writes(mnt):
    os.mkdir(mnt.p("vms", "web"))
    for f in ("state", "pid", "info", "error", "stat"):
        with pytest.raises(PermissionError):
            mnt.write(mnt.vm("web", f), "x\n")
    with pytest.raises(PermissionError):
        mnt.write(mnt.p("version"), "x\n")


def test_rmdir_busy_while_running(mnt):
    mnt.started_vm("web")
    r = mnt.sh("rmdir vms/web")
    assert r.returncode != 0 and "busy" in r.stderr.lower()
    assert "rmdir vms/web" in mnt.read("error")
    mnt.ctl("web", "kill")
    assert mnt.sh("rmdir vms/web").returncode == 0
    assert os.listdir(mnt.p("vms")) == ["clone"]


def test_rmdir_missing(mnt):
    with pytest.raises(FileNotFoundError):
        os.rmdir(mnt.p("vms", "nope"))


def test_touch_and_truncate(mnt):
    os.mkdir(mnt.p("vms", "web"))
    assert mnt.sh("touch vms/web/config.json").returncode == 0
    before = mnt.read("vms", "web", "config.json")
    assert mnt.sh(": > vms/web/config.json").returncode == 0  # O_TRUNC never resets the config
    assert mnt.read("vms", "web", "config.json") == before


def test_poll_on_plain_files(mnt):
    import select
    os.mkdir(mnt.p("vms", "web"))
    fd = os.open(mnt.vm("web", "state"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(1000)
    finally:
        os.close(fd)


def test_statfs(mnt):
    st = os.statvfs(mnt.path)
    assert st.f_namemax == 64
