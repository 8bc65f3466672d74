"""Two unprivileged users on one allow_other mount, as a hostile one would try it.

Every host path a user names is opened with that user's rights, beneath -o paths,
when it is used, and the VMM gets the open file; snapshots are the daemon's own
(made fresh and private, sealed) and a restore loads nothing a user could have
written. Each test below tries one attack and asserts the refusal, and that no
protected file was read, copied or changed (docs/smartvmfs.5.md, ACCESS).

Users: ALICE and BOB, uids without a passwd entry, files of root's 0600.
"""
import ctypes
import errno
import hashlib
import json
import os
import struct
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import EMULATOR, start_daemon, stop_daemon, check_output, vm_config

ALICE, BOB = 60001, 60002

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (two other users)")
pytestmark = [needs_root]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class OpenWatch:
    """inotify on one file: any open of it, by anyone (the daemon, a VMM), is seen."""
    IN_ACCESS, IN_MODIFY, IN_OPEN, IN_NONBLOCK = 0x1, 0x2, 0x20, 0o4000

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK | 0o2000000)
        assert self.fd >= 0
        wd = self.libc.inotify_add_watch(self.fd, path.encode(),
                                         self.IN_OPEN | self.IN_ACCESS | self.IN_MODIFY)
        assert wd >= 0

    def events(self):
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, off = [], 0
        while off + 16 <= len(data):
            _, mask, _, n = struct.unpack_from("iIII", data, off)
            out.append(mask)
            off += 16 + n
        return out

    def close(self):
        os.close(self.fd)


class Shared:
    """The mount, its public directory (-o paths), each user's own directory in
    it, and a root-only secret beside them."""

    def __init__(self, m, pub, secret):
        self.m = m
        self.pub = pub
        self.secret = secret
        self.secret_sum = digest(secret)
        self.secret_mtime = os.stat(secret).st_mtime_ns
        self.watch = OpenWatch(secret)  # from here on nobody opens it

    def home(self, uid):
        d = os.path.join(self.pub, str(uid))
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, uid)
        os.chmod(d, 0o700)
        return d

    def run(self, uid, cmd, timeout=30):
        return subprocess.run(cmd, shell=True, executable="/bin/bash", cwd=self.m.path, user=uid,
                              group=uid, extra_groups=[], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def ok(self, uid, cmd):
        r = self.run(uid, cmd)
        assert r.returncode == 0, f"{cmd!r} as {uid}: {r.stderr}"
        return r.stdout

    def refused(self, uid, cmd, errtext="Permission denied"):
        r = self.run(uid, cmd)
        assert r.returncode != 0 and errtext in r.stderr, (cmd, r)
        return r

    def vm(self, uid, name, cfg):
        self.ok(uid, f"mkdir vms/{name}")
        self.ok(uid, f"cat > vms/{name}/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")

    def secret_untouched(self):
        assert self.watch.events() == [], "the secret was opened"
        assert os.stat(self.secret).st_mtime_ns == self.secret_mtime, "the secret was written"
        for dirpath, _, files in os.walk(self.m.runtime):
            for f in files:
                p = os.path.join(dirpath, f)
                if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) == \
                        os.path.getsize(self.secret):
                    assert digest(p) != self.secret_sum, f"a copy of the secret: {p}"

    def vmm_files(self):
        """Every file a running VMM of this mount has open."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
                if self.m.runtime not in cmd:
                    continue
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
        return out


@pytest.fixture
def shared(kernel_file):
    tmp = tempfile.mkdtemp(prefix="svmfs-users-")
    os.chmod(tmp, 0o755)
    pub = os.path.join(tmp, "pub")
    os.makedirs(pub, mode=0o755)
    kernel = os.path.join(pub, "vmlinux")
    shutil.copy(kernel_file, kernel)
    os.chmod(kernel, 0o644)
    secret = os.path.join(pub, "secret")
    with open(secret, "w") as f:
        f.write("root's own words\n" * 64)
    os.chmod(secret, 0o600)
    m = start_daemon(tmp, EMULATOR, kernel, extra_opts=["allow_other", f"paths={pub}"],
                     checks=False)
    sh = Shared(m, pub, secret)
    try:
        yield sh
    finally:
        sh.watch.close()
        stop_daemon(sh.m)  # a test may have mounted again
        check_output(sh.m, [])
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_config_naming_a_file_its_owner_cannot_read_is_refused_at_start(shared):
    s = shared
    cfg = vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": s.secret,
                                         "isRootDevice": False}])
    s.vm(ALICE, "a", cfg)
    s.refused(ALICE, "echo start > vms/a/ctl")
    assert f"drive d {s.secret}: Permission denied" in s.m.read("vms", "a", "error")
    assert s.m.state("a") == "created"
    s.secret_untouched()
    # read-only and used in place: the same
    cfg["drives"][0].update(isReadOnly=True, ephemeral=False)
    s.ok(ALICE, f"cat > vms/a/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
    s.refused(ALICE, "echo start > vms/a/ctl")
    s.secret_untouched()


def test_a_link_swapped_after_the_config_was_written_is_judged_at_start(shared):
    """The config names ALICE's link to her own kernel; she points it at the secret
    once the write was accepted: the start opens it as her, and fails."""
    s = shared
    home = s.home(ALICE)
    mine = os.path.join(home, "disk")
    s.ok(ALICE, f"head -c 1048576 /dev/zero > {mine}")
    link = os.path.join(home, "link")
    s.ok(ALICE, f"ln -s {mine} {link}")
    s.vm(ALICE, "a", vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": link,
                                                    "isRootDevice": False}]))
    s.ok(ALICE, f"ln -sfn {s.secret} {link}")
    s.refused(ALICE, "echo start > vms/a/ctl")
    s.secret_untouched()
    # and a link out of -o paths is refused even where its owner could read
    s.ok(ALICE, f"ln -sfn /etc/hostname {link}")
    s.refused(ALICE, "echo start > vms/a/ctl")
    assert "leads out of -o paths" in s.m.read("vms", "a", "error")


def test_snapshot_into_a_directory_of_planted_links_writes_only_new_files(shared):
    s = shared
    home = s.home(ALICE)
    snap = os.path.join(home, "snap")
    s.ok(ALICE, f"mkdir {snap} && ln -s {s.secret} {snap}/vmstate && ln -s {s.secret} {snap}/mem "
                f"&& ln -s {s.secret} {snap}/config.json && ln -s {s.secret} {snap}/origin.json")
    # and at the names the files are made under first: links, and what a
    # crashed snapshot leaves (a regular file)
    s.ok(ALICE, f"ln -s {s.secret} {snap}/vmstate.new && ln -s {s.secret} {snap}/mem.new "
                f"&& ln -s {s.secret} {snap}/config.json.new && echo left > {snap}/origin.json.new")
    s.vm(ALICE, "a", vm_config(s.m.kernel))
    s.ok(ALICE, "echo start > vms/a/ctl && echo pause > vms/a/ctl")
    s.ok(ALICE, f"echo 'snapshot {snap}' > vms/a/ctl")
    s.secret_untouched()
    assert sorted(os.listdir(snap)) == ["config.json", "mem", "origin.json", "vmstate"]
    for f in ("vmstate", "mem", "config.json", "origin.json"):
        st = os.lstat(os.path.join(snap, f))
        assert not os.path.islink(os.path.join(snap, f))
        assert (st.st_uid, st.st_mode & 0o777) == (ALICE, 0o600), f
    # and it restores, as its owner
    s.ok(ALICE, "echo kill > vms/a/ctl")
    s.ok(ALICE, f"echo 'restore {snap}' > vms/a/ctl")
    assert s.m.state("a") == "paused"


def test_a_tampered_snapshot_is_not_restored(shared):
    """ALICE's own snapshot, then she edits what the VMM would load: a device state
    naming the secret as a drive, a runtime dir elsewhere, another config."""
    s = shared
    home = s.home(ALICE)
    snap = os.path.join(home, "snap")
    s.vm(ALICE, "a", vm_config(s.m.kernel))
    s.ok(ALICE, "echo start > vms/a/ctl && echo pause > vms/a/ctl")
    s.ok(ALICE, f"echo 'snapshot {snap}' > vms/a/ctl && echo kill > vms/a/ctl")
    originals = {f: open(os.path.join(snap, f), "rb").read()
                 for f in ("vmstate", "config.json", "origin.json")}

    def put(name, data):
        path = os.path.join(snap, name)
        s.ok(ALICE, f"rm -f {path}")
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, ALICE, ALICE)

    state = json.loads(originals["vmstate"])
    state["drives"] = [{"drive_id": "x", "path_on_host": s.secret, "is_read_only": False,
                        "is_root_device": False}]
    put("vmstate", json.dumps(state).encode())
    s.refused(ALICE, f"echo 'restore {snap}' > vms/a/ctl")
    assert "its seal does not match" in s.m.read("vms", "a", "error")
    put("vmstate", originals["vmstate"])
    elsewhere = os.path.join(s.pub, "made-by-the-daemon")
    origin = json.loads(originals["origin.json"])
    origin["runtimeDir"] = elsewhere
    put("origin.json", json.dumps(origin).encode())
    s.refused(ALICE, f"echo 'restore {snap}' > vms/a/ctl")
    assert not os.path.exists(elsewhere)
    put("origin.json", originals["origin.json"])
    cfg = json.loads(originals["config.json"])
    cfg["drives"] = [{"driveId": "x", "pathOnHost": s.secret, "isRootDevice": False}]
    put("config.json", json.dumps(cfg).encode())
    s.refused(ALICE, f"echo 'restore {snap}' > vms/a/ctl")
    assert s.m.state("a") == "stopped"
    s.secret_untouched()
    put("config.json", originals["config.json"])
    s.ok(ALICE, f"echo 'restore {snap}' > vms/a/ctl")


def test_another_users_snapshots_are_theirs(shared):
    s = shared
    s.vm(ALICE, "web", vm_config(s.m.kernel))
    s.ok(ALICE, "echo start > vms/web/ctl && echo pause > vms/web/ctl && echo 'snapshot first' > vms/web/ctl")
    s.ok(ALICE, "echo kill > vms/web/ctl && rmdir vms/web")
    # BOB makes a VM of the same name: the named snapshot is not his to restore or overwrite
    s.vm(BOB, "web", vm_config(s.m.kernel))
    s.refused(BOB, "echo 'restore first' > vms/web/ctl")
    assert f"made by uid {ALICE}'s VM" in s.m.read("vms", "web", "error")
    s.ok(BOB, "echo start > vms/web/ctl && echo pause > vms/web/ctl")
    s.refused(BOB, "echo 'snapshot first' > vms/web/ctl")
    assert f"belongs to uid {ALICE}" in s.m.read("vms", "web", "error")
    s.ok(BOB, "echo 'snapshot second' > vms/web/ctl && echo kill > vms/web/ctl")
    # a snapshot of ALICE's by path: BOB cannot even read it
    home = s.home(ALICE)
    s.vm(ALICE, "a", vm_config(s.m.kernel))
    s.ok(ALICE, f"echo start > vms/a/ctl && echo pause > vms/a/ctl && echo 'snapshot {home}/s' > vms/a/ctl")
    s.refused(BOB, f"echo 'restore {home}/s' > vms/web/ctl")
    assert s.m.state("web") == "stopped"


def test_another_vms_staged_drive_cannot_be_attached(shared):
    s = shared
    home = s.home(ALICE)
    disk = os.path.join(home, "disk")
    s.ok(ALICE, f"head -c 1048576 /dev/zero > {disk}")
    s.vm(ALICE, "a", vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": disk,
                                                    "isRootDevice": False}]))
    s.ok(ALICE, "echo start > vms/a/ctl")
    staged = [os.path.join(dp, f) for dp, _, fs in os.walk(s.m.runtime) for f in fs
              if f == "drive-d.img"]
    assert staged
    bobs = s.home(BOB)
    s.ok(BOB, f"head -c 1048576 /dev/zero > {bobs}/disk")
    s.vm(BOB, "b", vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": f"{bobs}/disk",
                                                  "isRootDevice": False}]))
    s.ok(BOB, "echo start > vms/b/ctl")
    s.refused(BOB, f"echo 'drive d {staged[0]}' > vms/b/ctl")
    s.refused(BOB, f"echo 'drive d {disk}' > vms/b/ctl")
    assert disk not in s.vmm_files()


def test_drive_verb_against_a_flipping_link(shared):
    """BOB flips a link between his file and the secret while asking for it, a
    bounded number of times: the VMM never has the secret open."""
    s = shared
    home = s.home(BOB)
    mine = os.path.join(home, "mine")
    s.ok(BOB, f"head -c 1048576 /dev/zero > {mine}")
    link = os.path.join(home, "flip")
    s.vm(BOB, "b", vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": mine,
                                                  "isRootDevice": False}]))
    s.ok(BOB, "echo start > vms/b/ctl")
    stop = threading.Event()

    def flipper():
        while not stop.is_set():
            for target in (mine, s.secret):
                tmp = link + ".new"
                try:
                    os.symlink(target, tmp)
                    os.lchown(tmp, BOB, BOB)
                    os.rename(tmp, link)
                except OSError:
                    pass

    t = threading.Thread(target=flipper)
    t.start()
    got, refused = 0, 0
    deadline = time.monotonic() + 10
    try:
        for _ in range(60):
            if time.monotonic() > deadline:
                break
            r = s.run(BOB, f"echo 'drive d {link}' > vms/b/ctl")
            got += r.returncode == 0
            refused += r.returncode != 0
            assert s.watch.events() == [], "the secret was opened"
    finally:
        stop.set()
        t.join()
    assert got + refused > 0
    assert s.m.state("b") == "running"
    s.secret_untouched()


def test_files_of_the_kernel_are_never_a_drive(shared, kernel_file):
    """/proc/self/... opened by a thread of the daemon would be the daemon's own
    memory and descriptors: refused whatever -o paths says."""
    s = shared
    stop_daemon(s.m)
    tmp = os.path.dirname(s.pub)
    m = start_daemon(tmp, EMULATOR, s.m.kernel, extra_opts=["allow_other", "paths=/"],
                     checks=False)
    s.m = m
    for path in ("/proc/self/environ", "/proc/self/fd/0", "/proc/self/mem"):
        s.ok(ALICE, "mkdir -p vms/p")
        cfg = vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": path,
                                             "isRootDevice": False, "isReadOnly": True,
                                             "ephemeral": False}])
        s.ok(ALICE, f"cat > vms/p/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
        s.refused(ALICE, "echo start > vms/p/ctl")
        assert s.m.state("p") == "created"


def test_vsock_socket_only_where_its_owner_may_write(shared):
    s = shared
    cfg = vm_config(s.m.kernel, vsock={"guestCid": 3, "udsPath": os.path.join(s.pub, "v.sock")})
    s.vm(ALICE, "a", cfg)
    s.refused(ALICE, "echo start > vms/a/ctl")
    assert "its owner cannot make a socket" in s.m.read("vms", "a", "error")
    assert not os.path.exists(os.path.join(s.pub, "v.sock"))
    home = s.home(ALICE)
    cfg["vsock"]["udsPath"] = os.path.join(home, "v.sock")
    s.ok(ALICE, f"cat > vms/a/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
    s.ok(ALICE, "echo start > vms/a/ctl")


def test_base_images_are_the_owners_to_change(shared):
    s = shared
    s.refused(ALICE, "echo 'blank scratch 8' > images/ctl")
    s.refused(ALICE, f"echo 'clone {s.secret} stolen' > images/ctl")
    assert os.listdir(s.m.p("images", "rootfs")) == []


def test_a_paths_directory_others_may_write_to_is_warned_of(kernel_file, tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o1777)
    own = tmp_path / "alices"
    own.mkdir()
    os.chown(own, ALICE, ALICE)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file,
                     extra_opts=["allow_other", f"paths={open_dir}:{own}:{closed}"], checks=False)
    try:
        log = m.read("log")
    finally:
        stop_daemon(m)
    assert f"warning: -o paths: {open_dir} is writable by every user (mode 1777)" in log
    assert f"warning: -o paths: {own} is writable by uid {ALICE}" in log
    assert f"{closed} is writable" not in log
    check_output(m, [r"warning: -o paths: .* is writable by"])


def test_quotas_per_user(kernel_file):
    """-o maxvms, maxrunning, maxmem, maxdata: each user's own count; EDQUOT and a
    line naming the option; root is not counted, nor limited."""
    tmp_path = Path(tempfile.mkdtemp(prefix="svmfs-quota-"))  # every user passes through
    os.chmod(tmp_path, 0o755)
    pub = tmp_path / "pub"
    pub.mkdir(mode=0o755)
    kernel = str(pub / "vmlinux")
    shutil.copy(kernel_file, kernel)
    os.chmod(kernel, 0o644)
    m = start_daemon(str(tmp_path), EMULATOR, kernel, checks=False,
                     extra_opts=["allow_other", f"paths={pub}", "maxvms=2", "maxrunning=1",
                                 "maxmem=200", "maxdata=1"])
    try:
        s = Shared(m, str(pub), kernel)
        s.vm(ALICE, "a1", vm_config(kernel))
        s.vm(ALICE, "a2", vm_config(kernel))
        s.refused(ALICE, "mkdir vms/a3", "Disk quota exceeded")
        assert f"quota: uid {ALICE} has 2 VMs, -o maxvms=2 allows no more" in m.read("error")
        s.refused(ALICE, "exec 3<>vms/clone", "Disk quota exceeded")
        s.vm(BOB, "b1", vm_config(kernel))  # BOB has his own count
        m.sh("mkdir vms/r1 vms/r2 vms/r3", check=True)  # root is not limited
        s.ok(ALICE, "echo start > vms/a1/ctl")
        s.refused(ALICE, "echo start > vms/a2/ctl", "Disk quota exceeded")
        assert "-o maxrunning=1 allows no more" in m.read("vms", "a2", "error")
        assert m.state("a2") == "created"
        s.ok(ALICE, "echo kill > vms/a1/ctl")
        big = vm_config(kernel)
        big["machineConfig"]["memSizeMib"] = 256
        s.ok(ALICE, f"cat > vms/a2/config.json <<'EOF'\n{json.dumps(big)}\nEOF")
        s.refused(ALICE, "echo start > vms/a2/ctl", "Disk quota exceeded")
        assert "would have 256 MiB of memory, -o maxmem=200" in m.read("vms", "a2", "error")
        s.ok(ALICE, "rmdir vms/a1 && mkdir vms/a3")
        # maxdata: her named snapshots (a kept 2 MiB drive) fill her MiB
        disk = os.path.join(s.home(ALICE), "disk")
        s.ok(ALICE, f"head -c 2097152 /dev/urandom > {disk}")
        small = vm_config(kernel, drives=[{"driveId": "d", "pathOnHost": disk,
                                           "isRootDevice": False}])
        s.ok(ALICE, f"cat > vms/a3/config.json <<'EOF'\n{json.dumps(small)}\nEOF")
        s.ok(ALICE, "echo start > vms/a3/ctl && echo pause > vms/a3/ctl")
        s.ok(ALICE, "echo 'snapshot one' > vms/a3/ctl")
        s.refused(ALICE, "echo 'snapshot two' > vms/a3/ctl", "Disk quota exceeded")
        assert "-o maxdata=1 allows no more" in m.read("vms", "a3", "error")
        s.ok(ALICE, f"echo 'snapshot {os.path.dirname(disk)}/mine' > vms/a3/ctl")
        s.watch.close()
    finally:
        stop_daemon(m)
        try:
            check_output(m, [])
        finally:
            shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_vms_vsock_socket_is_its_owners(shared):
    """The owner connects to the socket `vsock` names; another user cannot."""
    s = shared
    s.vm(ALICE, "a", vm_config(s.m.kernel, vsock={"guestCid": 3}))
    s.ok(ALICE, "echo start > vms/a/ctl")
    path = s.m.read("vms", "a", "vsock").strip()
    st = os.stat(path)
    assert (st.st_uid, st.st_mode & 0o777) == (ALICE, 0o600)
    probe = ("/usr/bin/python3 -c 'import socket,sys; c=socket.socket(socket.AF_UNIX); "
             f"c.connect(\"{path}\"); print(\"connected\")'")
    assert s.ok(ALICE, probe).strip() == "connected"
    s.refused(BOB, probe, "PermissionError")
    # the runtime dir lets the owner through, and lists nothing to others
    s.refused(BOB, f"ls {os.path.dirname(path)}")


def test_log_and_metrics_copies_are_written_as_their_owner(shared):
    """logger.logPath / metrics.metricsPath: appended to with the owner's rights: a
    root-only file (the path of a cron file, say) is refused, one of hers is made
    hers."""
    s = shared
    cfg = vm_config(s.m.kernel, logger={"logPath": s.secret, "level": "Info"})
    s.vm(ALICE, "a", cfg)
    s.refused(ALICE, "echo start > vms/a/ctl")
    assert f"logger.logPath {s.secret}: Permission denied" in s.m.read("vms", "a", "error")
    cfg["logger"]["logPath"] = os.path.join(s.pub, "made-by-root")
    s.ok(ALICE, f"cat > vms/a/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
    s.refused(ALICE, "echo start > vms/a/ctl")
    assert not os.path.exists(os.path.join(s.pub, "made-by-root"))
    home = s.home(ALICE)
    cfg["logger"]["logPath"] = os.path.join(home, "fc.log")
    cfg["metrics"] = {"metricsPath": os.path.join(home, "fc.metrics")}
    s.ok(ALICE, f"cat > vms/a/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
    s.ok(ALICE, "echo start > vms/a/ctl")
    for f in ("fc.log", "fc.metrics"):
        st = os.stat(os.path.join(home, f))
        assert (st.st_uid, st.st_mode & 0o777) == (ALICE, 0o600), f
    s.secret_untouched()


def test_unfinished_documents_one_user_may_hold(shared):
    """Each open config.json buffers an unfinished document (up to 64 KiB); one user's
    open files together hold at most 16 MiB (EDQUOT past it), and closing them gives
    it back."""
    s = shared
    s.vm(ALICE, "a", vm_config(s.m.kernel))
    script = f"""
import errno, os
fds, refused = [], None
chunk = b'{{"pad": "' + b'x' * (60 << 10)
for i in range(400):
    fd = os.open({s.m.vm("a", "config.json")!r}, os.O_WRONLY)
    fds.append(fd)
    try:
        os.write(fd, chunk)
    except OSError as e:
        refused = (i, e.errno)
        break
said = "open files hold" in open({s.m.vm("a", "error")!r}).read()
for fd in fds:
    try:
        os.close(fd)
    except OSError:
        pass  # an unfinished document fails close (EINVAL): it was never stored
fd = os.open({s.m.vm("a", "config.json")!r}, os.O_WRONLY | os.O_TRUNC)
os.write(fd, chunk)
print(refused, said)
"""
    out = s.run(ALICE, f"/usr/bin/python3 - <<'EOF'\n{script}\nEOF")
    chunk = len('{"pad": "') + (60 << 10)
    assert out.stdout.strip() == f"({(16 << 20) // chunk}, {errno.EDQUOT}) True", out


def test_one_user_cannot_flood_the_shared_error_file(shared):
    s = shared
    s.run(BOB, "mkdir vms/-bobs-first-mistake")
    s.run(ALICE, "for i in $(seq 300); do mkdir vms/-bad$i 2>/dev/null; done")
    log = s.m.read("error")
    alices = [l for l in log.splitlines() if "vms/-bad" in l]
    assert 0 < len(alices) <= 22, len(alices)
    assert "vms/-bobs-first-mistake" in log  # not pushed out
    time.sleep(2.2)  # one more line's worth
    s.run(ALICE, "mkdir vms/-bad-again")
    last = s.m.read("error").splitlines()[-1]
    assert "mkdir vms/-bad-again (and " in last and \
        f"earlier failures of uid {ALICE}, not shown)" in last, last


def test_base_images_are_everyones_to_boot(shared):
    """What the mount's owner makes in images/ (here a blank rootfs) lives in the
    daemon's data dir, which no user may read: the daemon opens it for any VM,
    beneath that directory only."""
    s = shared
    s.m.write(s.m.p("images", "ctl"), "blank scratch 8\n")
    disk = os.readlink(s.m.p("images", "rootfs", "scratch"))
    s.vm(ALICE, "a", vm_config(s.m.kernel, drives=[{"driveId": "d", "pathOnHost": disk,
                                                    "isRootDevice": False}]))
    s.ok(ALICE, "echo start > vms/a/ctl")
    assert s.m.state("a") == "running"
    # but not a path that leaves it (the daemon's seal key beside it)
    cfg = vm_config(s.m.kernel, drives=[{"driveId": "d", "isRootDevice": False,
                                         "pathOnHost": os.path.join(os.path.dirname(disk), "..",
                                                                    "seal.key")}])
    s.ok(ALICE, "mkdir vms/b")
    s.refused(ALICE, f"cat > vms/b/config.json <<'EOF'\n{json.dumps(cfg)}\nEOF")
