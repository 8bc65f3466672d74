"""/images: base-image bundles fetched from a loopback server, through the mount.

tests/images/fake_server.py (the core's own test server) stands in for GitHub's
Firecracker releases and the Firecracker CI bucket; the mount is pointed at it
with -o releasesurl= and -o cibucketurl=. It serves /files/NAME, and the same
file slowly (/slow/), cut in the middle (/drop/), or cut only the first time
(/dropfirst/).
"""
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import BIN, EMULATOR, _allowed, check_output, start_daemon, stop_daemon, vm_config

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "images", "fake_server.py")
FIXED = {"ctl", "error", "kernels", "rootfs"}


class Server:
    def __init__(self, root):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SERVER, "--root", root, "--page-size", "4"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        self.files = os.path.join(root, "files")
        os.makedirs(self.files, exist_ok=True)

    def stats(self):
        with urllib.request.urlopen(self.base + "/__stats") as r:
            return json.loads(r.read())

    def close(self):
        self.proc.stdin.close()  # its end of stdin ends it
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def server(tmp_path):
    s = Server(str(tmp_path / "srv"))
    try:
        yield s
    finally:
        s.close()


def mount(tmp_path, kernel, server, extra=()):
    if not BIN or not os.path.exists(BIN) or not EMULATOR:
        pytest.skip("SMARTVMFS_BIN / SMARTVMFS_EMULATOR not set (run through meson test)")
    opts = (f"releasesurl={server.base}/releases", f"cibucketurl={server.base}/bucket", *extra)
    return start_daemon(str(tmp_path), EMULATOR, kernel, extra_opts=opts, checks=False)


@pytest.fixture
def imgmnt(request, tmp_path, kernel_file, server):
    m = mount(tmp_path, kernel_file, server)
    m.server = server
    try:
        yield m
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


def manifest(m, tmp_path, bid, mode="files", kdata=None, rdata=None, rmode=None, **more):
    """A hosted manifest whose artifacts the server serves under /MODE/ (the
    rootfs under /RMODE/ if given)."""
    kdata = kdata if kdata is not None else (f"kernel of {bid}\n" * 50).encode()
    rdata = rdata if rdata is not None else (f"rootfs of {bid}\n" * 50).encode()
    arts = {}
    for what, data, how in (("kernel", kdata, mode), ("rootfs", rdata, rmode or mode)):
        name = f"{bid}-{what}"
        with open(os.path.join(m.server.files, name), "wb") as f:
            f.write(data)
        arts[what] = {"url": f"{m.server.base}/{how}/{name}", "fileName": f"{what}.img",
                      "sha256": hashlib.sha256(data).hexdigest(), "sizeBytes": len(data)}
    doc = {"schemaVersion": 1, "bundleId": bid, "arch": "x86_64", "firecrackerVersion": "v1.15.1",
           "rootfsType": "ext4", "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off", **arts}
    doc.update(more)
    path = tmp_path / f"{bid}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def images_ctl(m, line):
    return m.write(m.p("images", "ctl"), line + "\n")


def expect_errno(fn, code):
    with pytest.raises(OSError) as e:
        fn()
    assert e.value.errno == code, os.strerror(e.value.errno)


def bundles(m):
    return sorted(set(os.listdir(m.p("images"))) - FIXED - {"latest", "lts"})


def test_empty_tree(imgmnt):
    m = imgmnt
    assert set(os.listdir(m.p("images"))) == FIXED  # no preset resolved: no latest, lts
    assert not os.path.lexists(m.p("images", "latest"))
    assert os.listdir(m.p("images", "kernels")) == []
    assert m.read("images", "error") == ""


def test_fetch_latest_preset(imgmnt):
    m = imgmnt
    r = m.sh("echo fetch latest > images/ctl")
    assert r.returncode == 0, r.stderr
    bid = os.readlink(m.p("images", "latest"))
    assert bid.startswith("latest-v1.15-x86_64-vmlinux-6.1.141-")
    assert bundles(m) == [bid]
    assert not os.path.lexists(m.p("images", "lts"))
    d = m.p("images", "latest")  # through the symlink
    assert sorted(os.listdir(d)) == ["bootargs", "firecracker", "kernel", "manifest.json", "rootfs",
                                     "rootfstype", "status"]
    assert m.read("images", "latest", "status") == "ready\n"
    assert m.read("images", bid, "rootfstype") == "squashfs\n"
    assert m.read("images", bid, "firecracker") == "v1.15.1\n"
    assert "rootfstype=squashfs" in m.read("images", bid, "bootargs")
    man = json.loads(m.read("images", bid, "manifest.json"))
    assert man["bundleId"] == bid
    for f in ("kernel", "rootfs"):
        target = os.readlink(os.path.join(d, f))
        assert os.path.isabs(target) and os.path.isfile(target)
        assert target.startswith(os.path.join(m.datadir, "base-images", bid))
    for f in ("status", "bootargs", "manifest.json"):
        assert os.stat(os.path.join(d, f)).st_size == len(m.read("images", bid, f))
    assert bid in m.read("images", "ctl")
    # a second fetch resolves again and finds the bundle cached
    images_ctl(m, "fetch latest")
    assert bundles(m) == [bid]


def test_fetch_manifest_status_moves(imgmnt, tmp_path):
    m = imgmnt
    big = os.urandom(400 * 1024)
    path = manifest(m, tmp_path, "slowone", mode="slow", kdata=big, rdata=big[::-1])
    result = {}

    def fetch():
        try:
            result["n"] = images_ctl(m, f"fetch manifest {path}")
        except OSError as e:
            result["e"] = e

    t = threading.Thread(target=fetch)
    t.start()
    seen = []
    status = m.p("images", "slowone", "status")
    while t.is_alive():
        try:
            with open(status) as f:
                v = f.read()
        except FileNotFoundError:
            v = None
        if v and (not seen or seen[-1] != v):
            seen.append(v)
        time.sleep(0.005)
    t.join()
    assert "e" not in result, result
    assert m.read("images", "slowone", "status") == "ready\n"
    # "kernel DONE/TOTAL" lines (TOTAL is "?" until the server announced it)
    moving = [s for s in seen if s.startswith("kernel ")]
    assert len(moving) >= 2, seen  # it moved while we watched
    partial = [s.split()[1] for s in moving if s.split()[1].endswith(f"/{len(big)}")]
    assert any(int(p.split("/")[0]) < len(big) for p in partial), seen
    assert m.read("images", "slowone", "status") == "ready\n"
    assert os.path.getsize(os.readlink(m.p("images", "slowone", "kernel"))) == len(big)


def test_boot_from_latest_and_evict_busy(imgmnt, kernel_file):
    m = imgmnt
    # the emulator, as Firecracker, loads the kernel as an ELF: serve one at the
    # CI key the preset resolves to (the server reads its files at each request)
    ci = os.path.join(os.path.dirname(m.server.files), "bucket", "firecracker-ci", "v1.15", "x86_64")
    with open(kernel_file, "rb") as src, open(os.path.join(ci, "vmlinux-6.1.141"), "wb") as dst:
        dst.write(src.read())
    images_ctl(m, "fetch latest")
    bid = os.readlink(m.p("images", "latest"))
    os.mkdir(m.p("vms", "web"))
    cfg = {"image": "latest", "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}
    m.write(m.vm("web", "config.json"), json.dumps(cfg))
    m.ctl("web", "start")
    assert m.state("web") == "running"
    expect_errno(lambda: images_ctl(m, f"evict {bid}"), errno.EBUSY)
    assert f"evict {bid}" in m.read("images", "error")
    assert bundles(m) == [bid]
    m.ctl("web", "stop")
    images_ctl(m, f"evict {bid}")
    assert bundles(m) == []
    assert not os.path.exists(m.p("images", bid))
    expect_errno(lambda: images_ctl(m, f"evict {bid}"), errno.ENOENT)


@pytest.mark.daemon_output(r"warning: bundle tampered: .*fetching it again")
def test_tampered_file_fetched_again(imgmnt, tmp_path):
    m = imgmnt
    images_ctl(m, f"fetch manifest {manifest(m, tmp_path, 'tampered')}")
    rootfs = os.readlink(m.p("images", "tampered", "rootfs"))
    good = open(rootfs, "rb").read()
    gets = m.server.stats()["/files/tampered-rootfs"]
    with open(rootfs, "r+b") as f:
        f.write(b"EVIL")
    images_ctl(m, "verify tampered")
    assert open(rootfs, "rb").read() == good
    assert m.server.stats()["/files/tampered-rootfs"] == gets + 1
    assert m.read("images", "tampered", "status") == "ready\n"
    # a changed stamp is also seen without `verify`, at the next use
    with open(rootfs, "r+b") as f:
        f.write(b"EVIL")
    images_ctl(m, f"fetch manifest {manifest(m, tmp_path, 'tampered')}")
    assert open(rootfs, "rb").read() == good


@pytest.mark.daemon_output(r"warning: base image cache stores at most 2 bundle")
def test_retention_and_prune(imgmnt, tmp_path):
    m = imgmnt
    for b in ("one", "two", "three"):
        images_ctl(m, f"fetch manifest {manifest(m, tmp_path, b)}")
        time.sleep(0.01)
    # the default limit is 2: the least recently used went
    assert bundles(m) == ["three", "two"]
    assert "Evicting one" in m.read("log")
    images_ctl(m, "prune")
    assert bundles(m) == ["three", "two"]


@pytest.mark.daemon_output(r"warning: base image cache stores at most 1 bundle")
def test_maximages_option(tmp_path, kernel_file, server):
    m = mount(tmp_path, kernel_file, server, extra=("maximages=1",))
    m.server = server
    try:
        for b in ("one", "two"):
            images_ctl(m, f"fetch manifest {manifest(m, tmp_path, b)}")
        assert bundles(m) == ["two"]
    finally:
        stop_daemon(m)
    check_output(m, [r"warning: base image cache stores at most 1 bundle"])


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_maximages_invalid_refuses_mount(tmp_path, value):
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN not set")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "-f", "-o", f"firecracker={EMULATOR},maximages={value},"
                        f"runtimedir={tmp_path}/rt,datadir={tmp_path}/data", str(mnt)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert f"maximages={value}" in r.stderr and "INVALID_BASE_IMAGE_CACHE_LIMIT" in r.stderr
    assert not os.path.ismount(mnt)


def test_bad_manifest(imgmnt, tmp_path):
    m = imgmnt
    path = manifest(m, tmp_path, "badone", schemaVersion=2)
    r = m.sh(f"echo 'fetch manifest {path}' > images/ctl")
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    err = m.read("images", "error")
    assert f"fetch manifest {path}" in err and "schemaVersion" in err
    assert bundles(m) == []
    expect_errno(lambda: images_ctl(m, "frob"), errno.EINVAL)
    assert 'unknown control message "frob"' in m.read("images", "error")
    assert "last failure" in m.read("images", "ctl")


def test_dropped_connection_then_retry(imgmnt, tmp_path):
    m = imgmnt
    path = manifest(m, tmp_path, "dropped", rmode="dropfirst", rdata=os.urandom(100000))
    expect_errno(lambda: images_ctl(m, f"fetch manifest {path}"), errno.EIO)
    err = m.read("images", "error")
    assert "dropped" in err and "failed after" in err, err
    assert bundles(m) == []
    cache = os.path.join(m.datadir, "base-images")
    assert [x for x in os.listdir(cache) if "partial" in x or x == "dropped"] == []
    images_ctl(m, f"fetch manifest {path}")  # the server no longer drops it
    assert bundles(m) == ["dropped"]
    assert m.read("images", "dropped", "status") == "ready\n"


@pytest.mark.daemon_output(r"waiting for")
def test_ctrl_c_on_fetch(imgmnt, tmp_path):
    m = imgmnt
    big = os.urandom(300 * 1024)
    path = manifest(m, tmp_path, "interrupted", mode="slow", kdata=big, rdata=big)
    code = (
        "import os\n"
        f"fd=os.open({m.p('images', 'ctl')!r}, os.O_WRONLY)\n"
        "print('writing', flush=True)\n"
        "try:\n"
        f"    os.write(fd, b'fetch manifest {path}\\n')\n"
        "    print('done', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "writing\n"
    deadline = time.monotonic() + 10
    while not os.path.exists(m.p("images", "interrupted")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.stdout.readline() == "interrupted\n"
    p.wait(timeout=10)
    p.stdout.close()
    assert time.monotonic() - t0 < 0.3  # EINTR at once, not after the download
    # the download goes on in the background and completes
    deadline = time.monotonic() + 20
    while m.read("images", "interrupted", "status") != "ready\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_user_files(imgmnt, tmp_path):
    m = imgmnt
    images_ctl(m, "fetch latest")
    images_ctl(m, "clone latest mine")
    link = m.p("images", "rootfs", "mine")
    assert os.listdir(m.p("images", "rootfs")) == ["mine"]
    assert os.readlink(link) == os.path.join(m.datadir, "rootfs", "mine")
    assert open(link, "rb").read() == open(m.p("images", "latest", "rootfs"), "rb").read()
    data = b"a kernel\n" * 10
    with open(os.path.join(m.server.files, "k1"), "wb") as f:
        f.write(data)
    images_ctl(m, f"import kernel {m.server.base}/files/k1 k1")
    assert os.listdir(m.p("images", "kernels")) == ["k1"]
    assert open(m.p("images", "kernels", "k1"), "rb").read() == data
    expect_errno(lambda: images_ctl(m, "clone latest mine"), errno.EEXIST)
    if os.path.exists("/usr/sbin/mkfs.ext4") or os.path.exists("/sbin/mkfs.ext4"):
        images_ctl(m, "blank scratch 8")
        assert sorted(os.listdir(m.p("images", "rootfs"))) == ["mine", "scratch"]
        assert os.stat(m.p("images", "rootfs", "scratch")).st_size == 8 << 20


def test_allow_other_paths(tmp_path, kernel_file, server):
    outside = tmp_path / "outside"
    outside.mkdir()
    m = mount(tmp_path, kernel_file, server, extra=("allow_other", f"paths={tmp_path}/data"))
    m.server = server
    try:
        # base images are what every user boots: only the mount's owner changes them
        assert oct(os.stat(m.p("images", "ctl")).st_mode & 0o777) == "0o644"
        r = subprocess.run(["sh", "-c", f"echo 'blank mine 8' > {m.p('images', 'ctl')}"],
                           user=65534, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
        path = manifest(m, outside, "outsider")
        expect_errno(lambda: images_ctl(m, f"fetch manifest {path}"), errno.EACCES)
        expect_errno(lambda: images_ctl(m, "clone /etc/passwd stolen"), errno.EACCES)
        expect_errno(lambda: images_ctl(m, "import kernel file:///etc/passwd k"), errno.EINVAL)
        # a path longer than any fixed buffer: checked whole, not by a prefix that
        # lies under -o paths ("DATA/././…" resolves to DATA for 511 bytes)
        long_path = f"{tmp_path}/data" + "/." * 400 + "/../../../../../../../../etc/passwd"
        expect_errno(lambda: images_ctl(m, f"clone {long_path} stolen"), errno.EACCES)
        assert "is not under -o paths" in m.read("images", "error")
        assert bundles(m) == [] and os.listdir(m.p("images", "rootfs")) == []
        # a URL is fine
        images_ctl(m, "fetch latest")
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_url_credentials_are_never_shown(imgmnt):
    """A URL's password never reaches what others read: images/ctl, images/error,
    the daemon log (and its copy on stderr)."""
    m = imgmnt
    host = m.server.base.split("://", 1)[1]
    url = f"http://fetcher:s3cr3t-pw@{host}/files/no-such-manifest.json"
    expect_errno(lambda: images_ctl(m, f"fetch manifest {url}"), errno.EIO)
    for shown in (m.read("images", "ctl"), m.read("images", "error"), m.read("log"),
                  m.daemon_output()):
        assert "s3cr3t-pw" not in shown
    assert f"http://fetcher:***@{host}/files/no-such-manifest.json" in m.read("images", "error")


def test_unmount_ends_a_download(tmp_path, kernel_file, server):
    """A download that trickles (20 s a file) does not hold the end: SIGTERM (the
    writer still blocked in its write keeps fusermount3 -u at EBUSY, as any open
    file does) stops it, the daemon exits at once, and nothing of it stays."""
    m = mount(tmp_path, kernel_file, server)
    m.server = server
    big = os.urandom(256 * 1024)
    path = manifest(m, tmp_path, "trickling", mode="trickle", kdata=big, rdata=big)
    p = subprocess.Popen(["sh", "-c", f"echo 'fetch manifest {path}' > {m.p('images', 'ctl')}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(m.p("images", "trickling")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.5)  # bytes are arriving
        t0 = time.monotonic()
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(timeout=30)
        took = time.monotonic() - t0
        p.wait(timeout=10)  # its write ends too
    finally:
        p.kill()
        p.wait()
        stop_daemon(m)
    assert took < 5, f"the end waited {took:.1f} s for a download"
    cache = os.path.join(m.datadir, "base-images")
    left = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs
            if not d.endswith(".locks")]  # lock files stay, as after any fetch
    assert not [f for f in left if "trickling" in f or f.endswith(".part")], left
    check_output(m, [r"waiting for", r"cancelled", r"download"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts a small tmpfs)")
def test_image_cache_full_during_a_download(tmp_path, kernel_file, server):
    """The image cache on a 1 MiB tmpfs, a bundle of 2 MiB: the fetch fails EIO with
    the cause (no space) in images/error, nothing of it stays in the cache, the
    space is back, and a bundle that fits is fetched after it (issue 23)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(cache)],
                   check=True)
    try:
        m = mount(tmp_path, kernel_file, server, extra=(f"imagecache={cache}",))
        m.server = server
        try:
            free = os.statvfs(cache).f_bavail
            big = os.urandom(1 << 20)
            path = manifest(m, tmp_path, "toobig", kdata=big, rdata=big)
            expect_errno(lambda: images_ctl(m, f"fetch manifest {path}"), errno.EIO)
            assert "No space left on device" in m.read("images", "error")
            left = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs
                    if not d.endswith(".locks")]
            assert left == [], left
            assert os.statvfs(cache).f_bavail == free
            assert "toobig" not in bundles(m)
            images_ctl(m, f"fetch manifest {manifest(m, tmp_path, 'small')}")
            assert m.read("images", "small", "status") == "ready\n"
        finally:
            stop_daemon(m)
        check_output(m, [r"download", r"No space", r"error"])
    finally:
        subprocess.run(["umount", "-l", str(cache)])


@pytest.mark.daemon_output(r"warning: base image cache stores at most 1 bundle")
def test_prune_keep_and_firecracker_binaries(tmp_path, kernel_file, server):
    """images/ctl: `prune keep ID` never evicts ID and says what it evicted (log,
    and `last prune:` in the read-out); `firecracker VERSION|latest` fetches a
    release binary (its SHA-256 checked) before any start; the read-out names the
    cache, its limit and the binaries; /paths says where the mount keeps things."""
    m = mount(tmp_path, kernel_file, server, extra=("maximages=1",))
    m.server = server
    try:
        kernel = open(kernel_file, "rb").read()  # an ELF: the emulator boots it
        images_ctl(m, f"fetch manifest {manifest(m, tmp_path, 'one', kdata=kernel)}")
        m.make_vm("web", image="one", bootSource={"bootArgs": "console=ttyS0"})
        m.ctl("web", "start")  # "one" in use: a later fetch cannot evict it
        images_ctl(m, f"fetch manifest {manifest(m, tmp_path, 'two')}")
        assert bundles(m) == ["one", "two"]
        m.ctl("web", "kill")
        images_ctl(m, "prune keep one")
        assert bundles(m) == ["one"]
        summary = m.read("images", "ctl")
        assert "last prune: evicted two\n" in summary
        assert f"cache {m.datadir}/base-images maximages 1\n" in summary
        assert "images: prune keeping one evicted two" in m.read("log")
        expect_errno(lambda: images_ctl(m, "prune one"), errno.EINVAL)
        # Firecracker binaries, ahead of any start
        images_ctl(m, "firecracker v1.15.1")
        binary = os.path.join(m.datadir, "bin", "v1.15.1", "firecracker")
        assert os.access(binary, os.X_OK)
        images_ctl(m, "firecracker latest")  # the releases page says v1.15.1: there
        images_ctl(m, "firecracker v1.7.0")  # no SHA-256 published: said in the log
        assert "firecracker v1.7.0 v1.15.1\n" in m.read("images", "ctl")
        expect_errno(lambda: images_ctl(m, "firecracker v1.9.9"), errno.EIO)
        assert "SHA256 mismatch" in m.read("images", "error")
        assert not os.path.exists(os.path.join(m.datadir, "bin", "v1.9.9"))
        expect_errno(lambda: images_ctl(m, "firecracker 1.2"), errno.EINVAL)
        assert m.read("paths") == (f"datadir {m.datadir}\nruntimedir {m.runtime}\n"
                                   f"imagecache {m.datadir}/base-images\nmaximages 1\n")
    finally:
        stop_daemon(m)
    check_output(m, [r"warning: base image cache stores at most 1 bundle",
                     r"warning: Firecracker v1.7.0: the release publishes no SHA-256",
                     r"SHA256 mismatch", r"Failed to download",
                     r"over its limit of 1 bundle.*in use by a running VM: kept",
                     r"v1.7.0: no jailer"])


def test_fetch_for_another_arch(imgmnt):
    """fetch latest arch aarch64: that arch's Firecracker CI bundle comes into the
    cache (for another host sharing it), but is never this host's latest."""
    m = imgmnt
    images_ctl(m, "fetch latest arch aarch64")
    ids = bundles(m)
    assert len(ids) == 1 and "aarch64" in ids[0], ids
    assert not os.path.lexists(m.p("images", "latest"))  # this host's latest: not resolved
    assert "(not this host's latest)" in m.read("log")
    expect_errno(lambda: images_ctl(m, "fetch latest arch mips"), errno.EINVAL)
    expect_errno(lambda: images_ctl(m, "fetch hosted arch aarch64"), errno.EINVAL)
    expect_errno(lambda: images_ctl(m, "fetch latest arch"), errno.EINVAL)
    images_ctl(m, "fetch latest force")  # the old words still work
    assert os.path.lexists(m.p("images", "latest"))


def test_firecracker_download_shows_its_progress(imgmnt):
    """firecracker VERSION: while the release downloads, the images/ctl read-out
    says how far it is, as a bundle's status does; the line goes when it ends."""
    m = imgmnt
    p = subprocess.Popen(["sh", "-c", f"echo 'firecracker v1.6.6' > {m.p('images', 'ctl')}"],
                         stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        seen = None
        while time.monotonic() < deadline and not seen:
            for line in m.read("images", "ctl").splitlines():
                if line.startswith("firecracker downloading v1.6.6 ") and not line.endswith(" 0/0"):
                    seen = line
            time.sleep(0.05)
        assert seen, m.read("images", "ctl")
        done, total = seen.split()[-1].split("/")
        assert 0 <= int(done) <= int(total) and int(total) > 0, seen
    finally:
        p.wait(timeout=60)
    assert "firecracker downloading" not in m.read("images", "ctl")
    assert "firecracker v1.6.6" in m.read("images", "ctl")
