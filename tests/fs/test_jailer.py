"""Every VMM under Firecracker's jailer (-o jailer=PATH, docs/jailer.md), through
the mount: the jailer's test double (tests/jailer) jails the static emulator, the
two of one release (v1.15.1, the emulator's)."""
import errno
import glob
import json
import os
import stat
import subprocess

import pytest

from conftest import BIN, check_output, start_daemon, stop_daemon, vm_config, _allowed

DOUBLE = os.environ.get("SMARTVMFS_JAILER_DOUBLE", "")
JAILED_FC = os.environ.get("SMARTVMFS_JAILED_EMULATOR", "")
FIRST, LAST = 900000000, 900065535  # the default range (other mounts may hold some)


def need_jailing():
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN is not set (run through meson test)")
    if os.geteuid() != 0:
        pytest.skip("a jailer needs root (chroot, uid switch, device nodes)")
    if not DOUBLE or not os.path.exists(DOUBLE):
        pytest.skip("SMARTVMFS_JAILER_DOUBLE is not set (tests/jailer builds it)")
    if not JAILED_FC or not os.path.exists(JAILED_FC):
        pytest.skip("SMARTVMFS_JAILED_EMULATOR is empty: the static emulator is not built "
                    "(static libmicrohttpd and jansson missing), and a jail holds no shared "
                    "libraries")


def jailed_mount(request, tmp_path, kernel, *opts):
    m = start_daemon(str(tmp_path), JAILED_FC, kernel, checks=False,
                     extra_opts=(f"jailer={DOUBLE}",) + opts)
    request.addfinalizer(lambda: (stop_daemon(m), check_output(m, _allowed(request)),
                                  no_mounts_under(m.runtime)))
    return m


@pytest.fixture
def jmnt(request, tmp_path, kernel_file):
    need_jailing()
    return jailed_mount(request, tmp_path, kernel_file)


def no_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]
    assert not left, f"mounts left behind: {left}"


def ids_of(pid):
    with open(f"/proc/{pid}/status") as f:
        lines = dict(line.split(":", 1) for line in f if ":" in line)
    return int(lines["Uid"].split()[0]), int(lines["Gid"].split()[0])


def jail_root(m, name):
    rundir = m.read("vms", name, "runtime").strip()
    roots = glob.glob(os.path.join(rundir, "jail", "*", "*", "root"))
    assert len(roots) == 1, roots
    return roots[0]


def start(m, name, **more):
    m.make_vm(name, **more)
    m.ctl(name, "start")
    assert m.state(name) == "running"
    return int(m.read("vms", name, "pid"))


def opens_as(uid, fd):
    """Whether uid may open the file behind fd (reopened through /proc: its own
    mode and owner decide, not the directories on the way)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
            os._exit(0)
        except PermissionError:
            os._exit(13)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 13), f"the helper failed otherwise ({code})"
    return code == 0


def refused(m, name, line):
    with pytest.raises(OSError) as e:
        m.ctl(name, line)
    return e.value.errno, m.read("vms", name, "error")


# ------------------------------------------------------------------ jailed VMs


def test_a_jailed_vmm_runs_as_its_own_uid_in_its_jail(jmnt):
    pid = start(jmnt, "a")
    uid, gid = ids_of(pid)
    assert uid == gid and FIRST <= uid <= LAST
    root = jail_root(jmnt, "a")
    # its root is the jail: the same directory the host sees under the runtime dir
    here, there = os.stat(f"/proc/{pid}/root"), os.stat(root)
    assert (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
    assert sorted(os.listdir(f"/proc/{pid}/root")) == sorted(os.listdir(root))
    # the kernel: a copy the uid alone may read, or (on the jail's filesystem) a
    # link to the daemon's own file that all may read and none but root write
    st = os.stat(os.path.join(root, "kernel"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o400) or \
        (st.st_uid == 0 and st.st_mode & 0o004 and not st.st_mode & 0o022)
    # the daemon's own files stay outside
    assert not os.path.exists(os.path.join(root, "vm.json"))
    assert "Running Firecracker" in jmnt.read("vms", "a", "log")
    assert json.loads(jmnt.read("vms", "a", "metrics"))
    jmnt.ctl("a", "pause")
    assert jmnt.state("a") == "paused"
    jmnt.ctl("a", "resume")
    assert jmnt.state("a") == "running"
    # metadata through the API socket, events, the console both ways: as unjailed
    jmnt.write(jmnt.vm("a", "metadata"), '{"k": "v"}')
    assert json.loads(jmnt.read("vms", "a", "metadata")) == {"k": "v"}
    assert "running" in jmnt.read("vms", "a", "events")
    jmnt.write(jmnt.vm("a", "console"), "q")  # the guest resets, the VMM exits 0
    jmnt.wait_state("a", "stopped")
    assert not os.path.exists(root)


def test_two_vms_two_uids_and_a_uid_is_free_only_once_its_vmm_ended(request, tmp_path,
                                                                       kernel_file):
    need_jailing()
    m = jailed_mount(request, tmp_path, kernel_file, "jailuids=700000-700001")
    a, b = start(m, "a"), start(m, "b")
    assert {ids_of(a)[0], ids_of(b)[0]} == {700000, 700001}
    m.make_vm("c")
    with pytest.raises(OSError) as e:
        m.ctl("c", "start")
    assert e.value.errno == errno.ENOSPC
    assert "jailuids=700000-700001" in m.read("vms", "c", "error")
    held = ids_of(a)[0]
    root = jail_root(m, "a")
    m.ctl("a", "kill")
    assert m.state("a") == "stopped"
    assert not os.path.exists(os.path.dirname(os.path.dirname(os.path.dirname(root))))
    m.ctl("c", "start")
    assert ids_of(int(m.read("vms", "c", "pid")))[0] == held


def test_two_mounts_given_one_range_never_share_a_uid(request, tmp_path, kernel_file):
    """Each jailed uid is claimed on the host, not only in one mount: a second
    mount with the same range takes the uids the first does not hold."""
    need_jailing()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    m1 = jailed_mount(request, one, kernel_file, "jailuids=700010-700011")
    m2 = jailed_mount(request, two, kernel_file, "jailuids=700010-700011")
    a = ids_of(start(m1, "a"))[0]
    b = ids_of(start(m2, "b"))[0]
    assert {a, b} == {700010, 700011}
    m2.make_vm("c")
    with pytest.raises(OSError) as e:
        m2.ctl("c", "start")
    assert e.value.errno == errno.ENOSPC, "the other mount's uid is not given"
    m1.ctl("a", "kill")
    assert ids_of(start(m2, "d"))[0] == a, "once the first mount's VMM ended, its uid is free"


def test_a_jailed_uid_reaches_neither_another_jail_nor_host_files(jmnt, tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * 4096)
    drive = [{"driveId": "rootfs", "pathOnHost": str(img), "isRootDevice": True,
              "isReadOnly": False}]
    a, b = start(jmnt, "a", drives=drive), start(jmnt, "b", drives=drive)
    ua, ub = ids_of(a)[0], ids_of(b)[0]
    assert ua != ub
    # b's staged copy of its drive, in its jail
    fd = os.open(os.path.join(jail_root(jmnt, "b"), "drive-rootfs"), os.O_PATH)
    shadow = os.open("/etc/shadow", os.O_PATH)
    try:
        assert opens_as(ub, fd)  # its own
        assert not opens_as(ua, fd)
        assert not opens_as(ua, shadow)
    finally:
        os.close(fd)
        os.close(shadow)


def test_stop_rmdir_and_unmount_leave_no_jail(jmnt):
    start(jmnt, "a")
    rundir = jmnt.read("vms", "a", "runtime").strip()
    jmnt.ctl("a", "stop")
    assert jmnt.state("a") == "stopped"
    assert not os.path.exists(os.path.join(rundir, "jail"))
    os.rmdir(jmnt.vm("a"))
    start(jmnt, "b")  # left running: the unmount ends it (the fixture checks)


def test_drives_staged_linked_in_place_bound_read_only(jmnt, tmp_path):
    rw = tmp_path / "rw.img"
    rw.write_bytes(b"\0" * 4096)
    ro = tmp_path / "ro.img"
    ro.write_bytes(b"\1" * 4096)
    ro.chmod(0o644)
    drives = [{"driveId": "rootfs", "pathOnHost": str(rw), "isRootDevice": True,
               "isReadOnly": False},
              {"driveId": "data", "pathOnHost": str(ro), "isRootDevice": False,
               "isReadOnly": True}]
    uid = ids_of(start(jmnt, "a", drives=drives))[0]
    root = jail_root(jmnt, "a")
    staged = os.stat(os.path.join(root, "drive-rootfs"))
    assert staged.st_uid == uid and staged.st_nlink == 2  # the daemon's copy, linked
    assert rw.stat().st_uid == 0  # the user's file is untouched
    with open(os.path.join(root, "drive-data"), "rb") as f:
        assert f.read(4) == b"\1" * 4
    with pytest.raises(OSError) as e:
        open(os.path.join(root, "drive-data"), "wb")
    assert e.value.errno == errno.EROFS
    jmnt.ctl("a", "stop")
    no_mounts_under(jmnt.runtime)
    assert not acl_of(ro)


ACL = "system.posix_acl_access"


def acl_of(path):
    """The named-user entries of path's POSIX ACL: {uid: perm}."""
    import struct
    try:
        raw = os.getxattr(path, ACL)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return {}
        raise
    out = {}
    for i in range(4, len(raw), 8):
        tag, perm, uid = struct.unpack("<HHI", raw[i:i + 8])
        if tag == 0x02:
            out[uid] = perm
    return out


def test_a_users_file_used_in_place_is_lent_by_an_acl_entry(jmnt, tmp_path):
    """A writable drive used in place, a read-only one the uid may not read by
    its mode, a pmem file: each given to the jailed uid by an ACL entry for the
    VMM's life (the VMM opens each: the start would fail otherwise); the owner,
    the mode and (after) the ACL are the user's as they were."""
    rw, ro, pm = tmp_path / "rw.img", tmp_path / "ro.img", tmp_path / "pm.img"
    for f, mode in ((rw, 0o640), (ro, 0o600), (pm, 0o600)):
        f.write_bytes(b"\0" * (2 << 20))
        f.chmod(mode)
    drives = [{"driveId": "rootfs", "pathOnHost": str(rw), "isRootDevice": True,
               "isReadOnly": False, "ephemeral": False},
              {"driveId": "data", "pathOnHost": str(ro), "isRootDevice": False,
               "isReadOnly": True}]
    pid = start(jmnt, "a", drives=drives, pmem=[{"id": "p0", "pathOnHost": str(pm)}])
    uid = ids_of(pid)[0]
    assert acl_of(rw) == {uid: 6} and acl_of(ro) == {uid: 4} and acl_of(pm) == {uid: 6}
    root = jail_root(jmnt, "a")
    with open(os.path.join(root, "drive-rootfs"), "r+b") as f:
        f.write(b"via the jail")
    assert rw.read_bytes().startswith(b"via the jail")
    # another jailed uid is not given it
    fd = os.open(rw, os.O_RDONLY)
    try:
        assert opens_as(uid, fd) and not opens_as(uid + 1, fd)
    finally:
        os.close(fd)
    jmnt.ctl("a", "stop")
    no_mounts_under(jmnt.runtime)
    for f, mode in ((rw, 0o640), (ro, 0o600), (pm, 0o600)):
        assert acl_of(f) == {} and stat.S_IMODE(f.stat().st_mode) == mode
        with pytest.raises(OSError):
            os.getxattr(f, ACL)
    # an ACL the user had stays theirs, less the uid's entry
    import struct
    entries = [(0x01, 6, 0xffffffff), (0x02, 4, 4242), (0x04, 0, 0xffffffff),
               (0x10, 4, 0xffffffff), (0x20, 0, 0xffffffff)]  # setfacl -m u:4242:r, 0600
    os.setxattr(ro, ACL, struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e)
                                                         for e in entries))
    before = os.getxattr(ro, ACL)
    start(jmnt, "b", drives=[drives[1]])
    assert 4242 in acl_of(ro) and len(acl_of(ro)) == 2
    jmnt.ctl("b", "kill")
    assert os.getxattr(ro, ACL) == before


# ------------------------------------------------------------------ refused, clearly


def test_a_jailed_vsock_is_reached_where_the_config_says(jmnt, tmp_path):
    import socket
    start(jmnt, "a", vsock={"guestCid": 3})
    root = jail_root(jmnt, "a")
    uid = ids_of(int(jmnt.read("vms", "a", "pid")))[0]
    inside = os.stat(os.path.join(root, "vsock.sock"))
    assert stat.S_ISSOCK(inside.st_mode) and inside.st_uid == uid
    # the daemon's name for it: the same socket, in a directory the uid cannot write
    path = jmnt.read("vms", "a", "vsock").strip()
    assert path == os.path.join(jmnt.read("vms", "a", "runtime").strip(), "vsock.sock")
    assert os.lstat(path).st_ino == inside.st_ino
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(path)
    jmnt.ctl("a", "stop")
    assert not os.path.exists(path)
    # the config's own path, elsewhere: a link to that socket, gone at the end
    mine = tmp_path / "v.sock"
    start(jmnt, "b", vsock={"guestCid": 4, "udsPath": str(mine)})
    assert os.path.islink(mine) and stat.S_ISSOCK(os.stat(mine).st_mode)
    assert jmnt.read("vms", "b", "vsock").strip() == str(mine)
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(mine))
    jmnt.ctl("b", "kill")
    assert not os.path.lexists(mine)


def test_a_new_drive_file_reaches_the_running_jail(jmnt, tmp_path):
    first = tmp_path / "first.img"
    first.write_bytes(b"\0" * 4096)
    pid = start(jmnt, "a", drives=[{"driveId": "rootfs", "pathOnHost": str(first),
                                    "isRootDevice": True, "isReadOnly": False}])
    uid = ids_of(pid)[0]
    img = tmp_path / "new.img"
    img.write_bytes(b"new file")
    img.chmod(0o600)
    try:
        jmnt.ctl("a", f"drive rootfs {img}")  # the VMM opens it, as the uid, in its jail
    except OSError:
        raise AssertionError(jmnt.read("vms", "a", "error"))
    assert acl_of(img) == {uid: 6}
    with open(f"/proc/{pid}/root/drive-rootfs.1", "rb") as f:
        assert f.read() == b"new file"
    jmnt.ctl("a", "stop")
    assert acl_of(img) == {} and stat.S_IMODE(img.stat().st_mode) == 0o600


def test_snapshot_restore_and_clones_jailed(jmnt, tmp_path):
    snap = tmp_path / "snap"
    pid = start(jmnt, "a", vsock={"guestCid": 3})
    jmnt.ctl("a", "pause")
    jmnt.ctl("a", f"snapshot {snap}")
    # written by the jailed VMM, the owner's again after, nothing left lent
    for f in ("vmstate", "mem"):
        st = os.stat(snap / f)
        assert st.st_uid == 0 and st.st_size > 0
    root = jail_root(jmnt, "a")
    assert not [f for f in os.listdir(root) if f.startswith("snapshot-")]
    no_mounts_under(root)
    assert ids_of(pid)[0] >= FIRST
    jmnt.ctl("a", "kill")
    # restored into the same VM, and cloned into two others: each in a jail of its own
    jmnt.ctl("a", f"restore {snap}")
    assert jmnt.state("a") == "paused"
    pids = {int(jmnt.read("vms", "a", "pid"))}
    for name in ("b", "c"):
        jmnt.make_vm(name, vsock={"guestCid": 3})
        jmnt.ctl(name, f"restore {snap} resume")
        assert jmnt.state(name) == "running"
        pids.add(int(jmnt.read("vms", name, "pid")))
    assert len({ids_of(p)[0] for p in pids}) == 3
    for name in ("a", "b", "c"):
        # the vsock socket of each, where its VM shows it
        assert stat.S_ISSOCK(os.stat(jmnt.read("vms", name, "vsock").strip()).st_mode)
        jmnt.ctl(name, "kill")
        assert not os.path.exists(os.path.join(jmnt.read("vms", name, "runtime").strip(), "jail"))


def test_an_unjailed_snapshot_is_not_restored_jailed(request, jmnt, tmp_path, kernel_file):
    snap = tmp_path / "plain"
    (tmp_path / "unjailed").mkdir()
    plain = start_daemon(str(tmp_path / "unjailed"), JAILED_FC, kernel_file, checks=False)
    request.addfinalizer(lambda: (stop_daemon(plain), check_output(plain, _allowed(request))))
    start(plain, "a")
    plain.ctl("a", "pause")
    plain.ctl("a", f"snapshot {snap}")
    plain.ctl("a", "kill")
    # one key for both mounts' seals (it is read at its first use): the snapshot
    # is trusted, and what refuses it is the jail
    with open(os.path.join(plain.datadir, "seal.key"), "rb") as f:
        key = f.read()
    fd = os.open(os.path.join(jmnt.datadir, "seal.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key)
    os.close(fd)
    jmnt.make_vm("a")
    errno_, text = refused(jmnt, "a", f"restore {snap}")
    assert errno_ == errno.EINVAL and "unjailed VMM" in text
    assert jmnt.state("a") == "created"


# ------------------------------------------------------------------ the mode


def test_the_mount_log_says_jailed(jmnt):
    assert f"VMMs run jailed: jailer {DOUBLE} v1.15.1, uids 900000000-900065535" in \
        jmnt.daemon_output()


def test_nojailer_wins(request, tmp_path, kernel_file):
    need_jailing()
    m = jailed_mount(request, tmp_path, kernel_file, "nojailer")
    assert "VMMs run unjailed: -o nojailer" in m.daemon_output()
    pid = start(m, "a")
    assert ids_of(pid) == (0, 0)
    assert not os.path.exists(os.path.join(m.read("vms", "a", "runtime").strip(), "jail"))


def refused_mount(tmp_path, *opts):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "-f", "-o", ",".join((f"firecracker={JAILED_FC}",
                        f"runtimedir={tmp_path}/rt", f"datadir={tmp_path}/data", "nocheck")
                        + opts), str(mnt)], capture_output=True, text=True, timeout=30)
    if os.path.ismount(mnt):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
    assert r.returncode != 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_a_jailer_of_another_release_refuses_the_mount(tmp_path):
    need_jailing()
    other = tmp_path / "jailer"
    other.write_text("#!/bin/sh\necho 'Jailer v1.5.1'\necho\n")
    other.chmod(0o755)
    out = refused_mount(tmp_path, f"jailer={other}")
    assert "is v1.5.1 but the VMM" in out and "is v1.15.1" in out, out


def test_a_missing_jailer_and_a_bad_range_refuse_the_mount(tmp_path):
    need_jailing()
    out = refused_mount(tmp_path, f"jailer={tmp_path}/nowhere")
    assert "-o jailer" in out and "BINARY_NOT_FOUND" in out, out
    (tmp_path / "mnt").rmdir()
    out = refused_mount(tmp_path, f"jailer={DOUBLE}", "jailuids=5-1")
    assert "-o jailuids=5-1" in out, out


def test_a_kernel_the_uid_may_not_read_is_copied_for_it(jmnt, tmp_path):
    k = tmp_path / "private-vmlinux"
    k.write_bytes(open(jmnt.kernel, "rb").read())
    k.chmod(0o600)
    jmnt.kernel = str(k)
    uid = ids_of(start(jmnt, "a"))[0]
    st = os.stat(os.path.join(jail_root(jmnt, "a"), "kernel"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_nlink) == (uid, 0o400, 1)
    assert stat.S_IMODE(k.stat().st_mode) == 0o600 and k.stat().st_uid == 0


# ------------------------------------------------------------------ networking jailed


def test_a_jailed_vmm_attaches_to_its_tap_as_its_uid(request, tmp_path, kernel_file):
    need_jailing()
    import hostfacts
    if hostfacts.networking() is not None:
        pytest.skip(str(hostfacts.networking()))
    from test_net import NetNS, leases
    ns = NetNS()
    request.addfinalizer(ns.close)
    m = start_daemon(str(tmp_path), JAILED_FC, kernel_file, checks=False,
                     extra_opts=(f"jailer={DOUBLE}",), wrap=ns.wrap())
    request.addfinalizer(lambda: (stop_daemon(m), check_output(m, _allowed(request)),
                                  no_mounts_under(m.runtime)))

    def owner(tap):
        data = ns.links()[tap]["linkinfo"]["info_data"]
        return data.get("user")

    pid = start(m, "a", networkInterfaces=[{"ifaceId": "eth0"}])
    uid, _ = ids_of(pid)
    tap = leases(m)["a"]["tap"]
    # the VMM, as its uid, holds the TAP's queue: the kernel let it attach
    assert owner(tap) in (uid, str(uid))
    m.ctl("a", "stop")
    # the TAP stays the VM's, but no jailed uid's any more
    assert owner(tap) in (0, "0", "root")
    # another VM's uid next: the TAP, taken again, is given to it
    m.ctl("a", "start")
    assert m.state("a") == "running"
    uid2, _ = ids_of(int(m.read("vms", "a", "pid")))
    assert uid2 != uid and owner(tap) in (uid2, str(uid2))
    m.ctl("a", "stop")
    os.rmdir(m.p("vms", "a"))
    pooled = [l for l in ns.links().values() if l.get("ifalias", "").endswith(" pool")]
    assert pooled and all(l["linkinfo"]["info_data"].get("user") in (0, "0", "root")
                          for l in pooled)


# ------------------------------------------------------------------ a daemon restart


def crash_jailed(request, tmp_path, kernel_file):
    """A jailed mount with a running VM (its vsock named elsewhere) and a paused
    one, its daemon killed with SIGKILL."""
    from test_readopt import kill_daemon
    m = start_daemon(str(tmp_path), JAILED_FC, kernel_file, checks=False,
                     extra_opts=(f"jailer={DOUBLE}",))
    img = tmp_path / "b.img"
    img.write_bytes(b"\0" * 4096)
    img.chmod(0o600)
    pids = {"a": start(m, "a", vsock={"guestCid": 3, "udsPath": str(tmp_path / "a.sock")}),
            "b": start(m, "b", drives=[{"driveId": "rootfs", "pathOnHost": str(img),
                                         "isRootDevice": True, "isReadOnly": False,
                                         "ephemeral": False}])}
    assert acl_of(img)
    m.ctl("b", "pause")
    uids = {n: ids_of(p)[0] for n, p in pids.items()}
    kill_daemon(m)

    def no_vmm_left():
        from test_readopt import alive
        for p in pids.values():
            if alive(p):
                os.kill(p, 9)
    request.addfinalizer(no_vmm_left)
    return pids, uids


def test_a_restarted_jailed_mount_readopts_its_jailed_vmms(request, tmp_path, kernel_file):
    need_jailing()
    pids, uids = crash_jailed(request, tmp_path, kernel_file)
    m = jailed_mount(request, tmp_path, kernel_file)
    log = m.read("log")
    assert f"adopted VM a (id " in log and f"pid {pids['a']}, running)" in log, log
    assert m.state("a") == "running" and m.state("b") == "paused"
    assert int(m.read("vms", "a", "pid")) == pids["a"]
    # their uids are held again: a new VM gets another
    c = start(m, "c")
    assert ids_of(c)[0] not in uids.values()
    m.ctl("b", "resume")
    assert m.state("b") == "running"
    # the ends as before: the jail, the vsock link and the uid go
    link = tmp_path / "a.sock"
    assert os.path.islink(link)
    m.ctl("a", "stop")
    assert not os.path.lexists(link)
    assert not os.path.exists(os.path.join(m.read("vms", "a", "runtime").strip(), "jail"))
    d = start(m, "d")
    assert ids_of(d)[0] != uids["b"]
    # b's drive, given to its uid before the restart, is taken back at its end
    assert acl_of(tmp_path / "b.img") == {uids["b"]: 6}
    m.ctl("b", "kill")
    assert acl_of(tmp_path / "b.img") == {}


def test_an_unjailed_mount_collects_jailed_vmms(request, tmp_path, kernel_file):
    need_jailing()
    pids, _ = crash_jailed(request, tmp_path, kernel_file)
    m = start_daemon(str(tmp_path), JAILED_FC, kernel_file, checks=False)
    request.addfinalizer(lambda: (stop_daemon(m), check_output(m, _allowed(request)),
                                  no_mounts_under(m.runtime)))
    log = m.read("log")
    assert "it ran jailed, and this mount does not jail its VMMs" in log, log
    from test_readopt import alive, wait_for
    assert wait_for(lambda: not any(alive(p) for p in pids.values()))
    assert not [d for d in os.listdir(m.runtime)
                if os.path.exists(os.path.join(m.runtime, d, "jail"))]
    assert acl_of(tmp_path / "b.img") == {}
    assert stat.S_IMODE(os.stat(tmp_path / "b.img").st_mode) == 0o600


# ------------------------------------------------------------------ the release's own jailer


def test_a_downloaded_release_jails_its_vmms_by_default(request, tmp_path, kernel_file):
    """No -o firecracker, no -o jailer: the VMM comes from a downloaded release,
    and so does its jailer (the same archive): every VMM runs jailed."""
    need_jailing()
    import hashlib
    import io
    import platform
    import tarfile
    from test_images import Server
    server = Server(str(tmp_path / "srv"))
    request.addfinalizer(server.close)
    version, arch = "v1.15.1", platform.machine()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, src in (("firecracker", JAILED_FC), ("jailer", DOUBLE)):
            tar.add(src, arcname=f"release-{version}-{arch}/{name}-{version}-{arch}")
    name = f"firecracker-{version}-{arch}.tgz"
    at = tmp_path / "srv" / "releases" / version
    at.mkdir(parents=True, exist_ok=True)
    (at / name).write_bytes(buf.getvalue())
    (at / (name + ".sha256.txt")).write_text(
        f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {name}\n")
    m = start_daemon(str(tmp_path), "", kernel_file, checks=False,
                     extra_opts=(f"releasesurl={server.base}/releases",
                                 f"cibucketurl={server.base}/bucket"))
    request.addfinalizer(lambda: (stop_daemon(m), check_output(m, _allowed(request)),
                                  no_mounts_under(m.runtime)))
    assert "VMMs run jailed: the jailer of each downloaded Firecracker release" in m.read("log")
    pid = start(m, "a")
    assert ids_of(pid)[0] >= FIRST
    root = jail_root(m, "a")
    assert os.path.basename(os.path.dirname(os.path.dirname(root))) == "firecracker"
    m.ctl("a", "stop")
    # -o nojailer turns it off
    stop_daemon(m)
    m2 = start_daemon(str(tmp_path), "", kernel_file, checks=False,
                      extra_opts=(f"releasesurl={server.base}/releases", "nojailer"))
    request.addfinalizer(lambda: stop_daemon(m2))
    assert "VMMs run unjailed: -o nojailer" in m2.read("log")
    pid = start(m2, "b")
    assert ids_of(pid)[0] == 0


def test_a_vm_in_a_network_namespace_of_the_users(request, jmnt, tmp_path):
    """netns: the jailer joins the VMM to the user's network namespace, where
    the TAPs are the user's (hostDevName); each is given to the VMM's uid there,
    and root's again at its end. The daemon's own networking stays out of it."""
    import hostfacts
    if hostfacts.networking() is not None:
        pytest.skip(str(hostfacts.networking()))
    from test_net import NetNS
    ns = NetNS()
    request.addfinalizer(ns.close)
    ns.run("ip", "tuntap", "add", "dev", "tapu0", "mode", "tap")
    # without hostDevName, the config is refused at once
    jmnt.make_vm("bad")
    with pytest.raises(OSError) as e:
        jmnt.write(jmnt.vm("bad", "config.json"), json.dumps(vm_config(
            jmnt.kernel, netns=ns.path, networkInterfaces=[{"ifaceId": "eth0"}])))
    assert e.value.errno == errno.EINVAL
    try:
        pid = start(jmnt, "a", netns=ns.path,
                    networkInterfaces=[{"ifaceId": "eth0", "hostDevName": "tapu0"}])
    except OSError:
        raise AssertionError(jmnt.read("vms", "a", "error"))
    uid = ids_of(pid)[0]
    assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink(ns.path)
    info = ns.links()["tapu0"]["linkinfo"]["info_data"]
    assert info.get("user") in (uid, str(uid))
    assert jmnt.read("net", "leases") == ""  # no lease, no TAP of the daemon's
    jmnt.ctl("a", "stop")
    assert ns.links()["tapu0"]["linkinfo"]["info_data"].get("user") in (0, "0", "root")


def test_netns_needs_the_jailer(mnt, tmp_path):
    mnt.make_vm("a", netns="/proc/self/ns/net")
    with pytest.raises(OSError) as e:
        mnt.ctl("a", "start")
    assert e.value.errno == errno.EINVAL
    assert "mount with -o jailer" in mnt.read("vms", "a", "error")


def test_exec_in_a_jailed_vm_with_the_agent(jmnt):
    """"agent": true jailed: the agent's initrd is placed in the jail as any
    initrd, its vsock socket linked out; the emulated guest runs the agent its
    initrd holds (in the jail, where the only program is the VMM's copy)."""
    start(jmnt, "a", agent=True)
    root = jail_root(jmnt, "a")
    assert os.path.exists(os.path.join(root, "initrd"))
    fd = os.open(jmnt.vm("a", "exec", "clone"), os.O_RDWR)
    try:
        n = os.read(fd, 64).decode().strip()
        os.write(fd, b"run /firecracker-emulator --version\n")
        out = os.open(jmnt.vm("a", "exec", n, "stdout"), os.O_RDWR)
        try:
            got = b""
            while True:
                b = os.read(out, 4096)
                if not b:
                    break
                got += b
        finally:
            os.close(out)
        assert got.startswith(b"Firecracker v1.15.1")
        assert jmnt.read("vms", "a", "exec", n, "status").strip() == "exit 0"
    finally:
        os.close(fd)
