"""The daemon's own files and what other users can reach (docs/smartvmfs.5.md, ACCESS).

- The data, runtime and image-cache directories default to world-writable places
  (/tmp, /dev/shm): a symlink or a directory another user planted there refuses
  the mount with a clear message, and nothing is written through it; ours are
  made 0700.
- metadata (MMDS contents, which may carry secrets) is 0600 and never appears in
  the daemon's output, its log, Firecracker's log or an error file.
- Without allow_other the mount is its owner's only.
- Every child is started from an argv: no shell anywhere in core/ or fs/.
"""
import errno
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import BIN, EMULATOR, start_daemon, stop_daemon, check_output, _allowed

SRC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "s3cr3t-MMDS-marker-7f1e"
NOBODY = 65534

needs_daemon = pytest.mark.skipif(not BIN or not os.path.exists(BIN) or not EMULATOR,
                                  reason="SMARTVMFS_BIN / SMARTVMFS_EMULATOR not set")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setpriv)")


def refused_mount(tmp_path, **dirs):
    """Runs the daemon with these directories; it must refuse to mount."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    opts = {"firecracker": EMULATOR, "runtimedir": str(tmp_path / "rt"),
            "datadir": str(tmp_path / "data"), "nocheck": None}
    opts.update(dirs)
    spec = ",".join(k if v is None else f"{k}={v}" for k, v in opts.items())
    r = subprocess.run([BIN, "-f", "-o", spec, str(mnt)], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    if os.path.ismount(mnt):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        raise AssertionError("the daemon mounted")
    assert r.returncode != 0
    return r.stderr


def planted_link(tmp_path, name):
    """A directory an attacker owns, and a symlink to it where we would create ours."""
    target = tmp_path / f"attacker-{name}"
    target.mkdir()
    os.symlink(target, tmp_path / name)
    return str(tmp_path / name), target


@needs_daemon
@pytest.mark.parametrize("option", ["datadir", "runtimedir", "imagecache"])
def test_symlink_planted_at_our_directory_is_refused(tmp_path, option):
    path, target = planted_link(tmp_path, option)
    err = refused_mount(tmp_path, **{option: path})
    assert f"{path} is not a directory (a symlink?): refusing to use it" in err, err
    assert os.listdir(target) == [], "something was written through the link"
    assert os.path.islink(path)


@needs_daemon
@needs_root
def test_symlink_of_another_user_on_the_way_is_refused(tmp_path):
    link, target = planted_link(tmp_path, "shared")
    os.lchown(link, NOBODY, NOBODY)
    err = refused_mount(tmp_path, datadir=os.path.join(link, "data"))
    assert f"{link} is a symlink of uid {NOBODY}, not of us or root: refusing to use it" in err, err
    assert os.listdir(target) == []


@needs_daemon
def test_symlink_of_ours_on_the_way_is_followed(tmp_path, kernel_file, request):
    # as /var/run -> /run: a link only its owner (we, root) can change
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "via")
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     extra_opts=(f"datadir={tmp_path / 'via' / 'data'}",))
    stop_daemon(m)
    assert mode(tmp_path / "real" / "data") == 0o700
    check_output(m, _allowed(request))


@needs_daemon
@needs_root
def test_directory_of_another_user_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    err = refused_mount(tmp_path, datadir=str(data))
    assert f"{data} belongs to uid {NOBODY}, not to us" in err, err
    assert os.listdir(data) == []


@needs_daemon
@needs_root
def test_open_parent_without_sticky_bit_is_refused(tmp_path):
    # others may rename our directory away in it, and put a link in its place
    pub = tmp_path / "pub"
    pub.mkdir()
    os.chmod(pub, 0o777)
    err = refused_mount(tmp_path, datadir=str(pub / "data"))
    assert f"{pub} is writable by others and not sticky (mode 0777)" in err, err
    # with the sticky bit (as /tmp) it is fine
    os.chmod(pub, 0o1777)
    m = start_daemon(str(tmp_path), EMULATOR, "/nonexistent", checks=False,
                     extra_opts=(f"datadir={pub / 'data'}",))
    stop_daemon(m)
    assert stat.S_IMODE(os.stat(pub / "data").st_mode) == 0o700


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@needs_daemon
def test_our_directories_are_private(tmp_path, kernel_file, request):
    # an existing data dir of ours that is too open is made private
    (tmp_path / "data").mkdir()
    os.chmod(tmp_path / "data", 0o755)
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        assert mode(m.datadir) == 0o700
        assert mode(m.runtime) == 0o700
        assert mode(os.path.join(m.datadir, "base-images")) == 0o700
        m.started_vm("web")
        rundir = m.read("vms", "web", "runtime").strip()
        assert os.path.dirname(rundir) == m.runtime
        assert mode(rundir) == 0o700
        # the API socket, FIFOs and files in it: not reachable by others anyway,
        # and none is open to writes by others
        for name in os.listdir(rundir):
            p = os.path.join(rundir, name)
            if not os.path.islink(p):
                assert not mode(p) & 0o002, (name, oct(mode(p)))
    finally:
        stop_daemon(m)
    check_output(m, _allowed(request))


def host_files(*tops):
    for top in tops:
        for d, dirs, files in os.walk(top):
            for x in files:
                yield os.path.join(d, x)


@needs_daemon
@pytest.mark.parametrize("vmm", ["mnt", "fc_mnt"])  # the emulator, a real Firecracker
def test_metadata_never_logged(request, vmm):
    m = request.getfixturevalue(vmm)
    m.make_vm("web")
    doc = json.dumps({"token": SECRET})
    m.write(m.vm("web", "metadata"), doc)
    assert mode(m.vm("web", "metadata")) == 0o600
    # refused while created: the error echo leaves the JSON out
    with pytest.raises(OSError) as e:
        m.ctl("web", f'metadata {{"again": "{SECRET}"}}')
    assert e.value.errno == errno.EBUSY
    assert "metadata (" in m.read("vms", "web", "error")
    m.ctl("web", "start")
    assert SECRET in m.read("vms", "web", "metadata")  # the owner reads it back
    m.ctl("web", f'metadata {{"more": "{SECRET}"}}')
    with pytest.raises(OSError) as e:  # over the MMDS limit
        m.ctl("web", 'metadata {"pad": "' + "x" * 52000 + f'", "k": "{SECRET}"}}')
    assert e.value.errno in (errno.EFBIG, errno.EINVAL)
    with pytest.raises(OSError):  # not an object
        m.write(m.vm("web", "metadata"), json.dumps([SECRET]))
    m.ctl("web", "pause")
    m.ctl("web", "kill")
    m.ctl("web", "start")
    m.ctl("web", "stop")

    seen = {
        "/log": m.read("log"),
        "/error": m.read("error"),
        "vms/web/error": m.read("vms", "web", "error"),
        "vms/web/log (Firecracker's)": m.read("vms", "web", "log"),
        "vms/web/console": m.read("vms", "web", "console"),
        "daemon stdout/stderr": m.daemon_output(),
    }
    for where, text in seen.items():
        assert SECRET not in text, f"the metadata shows in {where}"
    # on the host: only in files no other user can read
    for p in host_files(m.runtime, m.datadir):
        if not stat.S_ISREG(os.lstat(p).st_mode):
            continue  # sockets, FIFOs (an open would wait for a writer)
        with open(p, "rb") as f:
            has = SECRET.encode() in f.read()
        if has:
            assert not mode(p) & 0o077, f"{p} holds the metadata with mode {oct(mode(p))}"


@needs_daemon
def test_metadata_syntax_error_shows_no_fragment(mnt):
    m = mnt
    m.make_vm("web")
    with pytest.raises(OSError):
        # a bad escape after a short secret (jansson quotes up to 20 bytes)
        m.write(m.vm("web", "metadata"), '{"pin": "Zq4711\\q"}')
    with pytest.raises(OSError):  # the same through the ctl verb
        m.ctl("web", 'metadata {"pin": "Zq4712\\q"}')
    err = m.read("vms", "web", "error")
    assert err.count("\n") == 2 and "Zq4711" not in err and "Zq4712" not in err, err


@needs_daemon
@needs_root
def test_mount_is_its_owners_only(mnt):
    m = mnt
    m.make_vm("web")
    r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                        "ls", m.path], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr, r.stderr


@needs_daemon
@needs_root
def test_allow_other_still_keeps_metadata_private(tmp_path, kernel_file, request):
    # a mountpoint other users can reach (pytest's tmp_path lies in a 0700 dir)
    pub = tempfile.mkdtemp(prefix="smartvmfs-sec-")
    os.chmod(pub, 0o755)
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     extra_opts=("allow_other",), mountpoint=pub)
    try:
        os.mkdir(m.p("vms", "web"))  # (its default config: no host path outside -o paths)
        m.write(m.vm("web", "metadata"), json.dumps({"token": SECRET}))
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        r = subprocess.run([*as_nobody, "cat", m.vm("web", "state")], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 0 and r.stdout == "created\n", r.stderr
        r = subprocess.run([*as_nobody, "cat", m.vm("web", "metadata")], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
        assert SECRET not in r.stdout
        r = subprocess.run([*as_nobody, "sh", "-c", f"echo kill > {m.vm('web', 'ctl')}"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
    finally:
        stop_daemon(m)
        os.rmdir(pub)
    check_output(m, _allowed(request))


def test_no_shell_in_the_daemon():
    """Every child process is started from an argv (posix_spawn/exec*v), never a shell."""
    pat = re.compile(r'\b(system|popen)\(|"/bin/sh"|"sh"\s*,\s*"-c"|\bexecl[pe]?\s*\(')
    found = []
    for sub in ("core", "fs"):
        d = os.path.join(SRC, sub)
        if not os.path.isdir(d):
            pytest.skip("the sources are not beside the tests")
        names = [os.path.relpath(os.path.join(top, n), SRC)
                 for top, _, files in os.walk(d) for n in files if n.endswith((".c", ".h"))]
        assert len(names) > 10, f"{sub}: no sources found"
        for name in sorted(names):
            with open(os.path.join(SRC, name), errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if pat.search(line):
                        found.append(f"{name}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


@needs_daemon
@pytest.mark.daemon_output(r"Failed to download kernel")
def test_import_checks_the_sha256_it_is_given(tmp_path, kernel_file, request):
    import hashlib
    from test_images import Server
    srv = Server(str(tmp_path / "srv"))
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        data = b"a kernel\n" * 100
        with open(os.path.join(srv.files, "k"), "wb") as f:
            f.write(data)
        good = hashlib.sha256(data).hexdigest()
        url = f"{srv.base}/files/k"
        with pytest.raises(OSError) as e:
            m.write(m.p("images", "ctl"), f"import kernel {url} bad {'0' * 64}\n")
        assert e.value.errno == errno.EIO
        assert f"sha256 {good}, expected {'0' * 64}" in m.read("images", "error")
        assert os.listdir(m.p("images", "kernels")) == []
        assert os.listdir(os.path.join(m.datadir, "kernels")) == []  # no partial file either
        with pytest.raises(OSError) as e:
            m.write(m.p("images", "ctl"), f"import kernel {url} bad nothex\n")
        assert e.value.errno == errno.EINVAL
        m.write(m.p("images", "ctl"), f"import kernel {url} k {good.upper()}\n")
        assert open(m.p("images", "kernels", "k"), "rb").read() == data
        assert f"sha256 {good}, as expected" in m.read("log")
    finally:
        stop_daemon(m)
        srv.close()
    check_output(m, _allowed(request))
