"""smartvmfs as a system tool: what `meson install` puts where, the ways to mount
(mount -t fuse.smartvmfs, an fstab line, the systemd unit), the command line
(--help, --version, --check, refused options), the log (stderr, syslog, levels),
and the examples of docs/examples, all against the Firecracker API emulator.

Environment (tests/install/meson.build sets it): SMARTVMFS_BIN, SMARTVMFS_EMULATOR,
SMARTVMFS_GUEST_KERNEL, SMARTVMFS_SOURCE_ROOT, SMARTVMFS_BUILD_ROOT, SMARTVMFS_MESON,
SMARTVMFS_PREFIX, SMARTVMFS_BINDIR, SMARTVMFS_MANDIR, SMARTVMFS_DATADIR,
SMARTVMFS_UNITDIR, SMARTVMFS_UNIT, SMARTVMFS_MAN_PAGES, SMARTVMFS_VERSION.
"""
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

ENV = os.environ.get
BIN = ENV("SMARTVMFS_BIN", "")
EMULATOR = ENV("SMARTVMFS_EMULATOR", "")
KERNEL = ENV("SMARTVMFS_GUEST_KERNEL", "")
SRC = ENV("SMARTVMFS_SOURCE_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = ENV("SMARTVMFS_BUILD_ROOT", "")
MESON = ENV("SMARTVMFS_MESON") or shutil.which("meson") or ""
PREFIX = ENV("SMARTVMFS_PREFIX", "/usr/local")
BINDIR = ENV("SMARTVMFS_BINDIR", PREFIX + "/bin")
MANDIR = ENV("SMARTVMFS_MANDIR", PREFIX + "/share/man")
DATADIR = ENV("SMARTVMFS_DATADIR", PREFIX + "/share")
UNITDIR = ENV("SMARTVMFS_UNITDIR", PREFIX + "/lib/systemd/system")
UNIT = ENV("SMARTVMFS_UNIT", "")
MAN_PAGES = bool(ENV("SMARTVMFS_MAN_PAGES"))
VERSION = ENV("SMARTVMFS_VERSION", "")
EXAMPLES = os.path.join(SRC, "docs", "examples")

# the fs suite's helpers: mount on the emulator, unmount, judge the daemon's output
_spec = importlib.util.spec_from_file_location("fs_conftest", os.path.join(SRC, "tests", "fs", "conftest.py"))
fsc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fsc)
hostfacts = fsc.hostfacts

pytestmark = pytest.mark.skipif(
    not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
    reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)")

# DESIGN §3's options, the ones smartvmfs adds, and what mount.fuse3 and fstab pass
OPTIONS = ["datadir", "runtimedir", "imagecache", "maximages", "manifest", "firecracker",
           "fcversion", "arch", "bridge", "subnet", "noephemeral", "consolesize", "paths",
           "allow_other", "dns", "releasesurl", "cibucketurl", "nocheck", "noadopt", "persist", "readytimeout",
           "maxvms", "maxrunning", "maxmem", "maxdata", "jailer", "jailuids", "nojailer"]
PASSED = ["rw", "nosuid", "nodev", "noauto", "_netdev", "x-systemd."]


def run(*cmd, timeout=60, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def kernel_path(tmp_path):
    if KERNEL and os.path.exists(KERNEL):
        return KERNEL
    k = tmp_path / "vmlinux"
    k.write_bytes(b"\x7fELF" + b"\0" * 60)  # the emulator only needs it to exist
    return str(k)


# ------------------------------------------------------------------ install

def meson_install(build, destdir):
    if not MESON:
        pytest.skip("meson is not on PATH: cannot run meson install")
    r = run(MESON, "install", "-C", build, "--destdir", destdir, "--no-rebuild", "--quiet",
            timeout=300)
    assert r.returncode == 0, f"meson install failed: {r.stdout}{r.stderr}"


def installed_files(destdir):
    found = {}
    for d, _, files in os.walk(destdir):
        for f in files:
            full = os.path.join(d, f)
            found["/" + os.path.relpath(full, destdir)] = os.stat(full).st_mode & 0o7777
    return found


def expected_files(bindir, mandir, datadir, unitdir, man):
    want = {
        f"{bindir}/smartvmfs": 0o755,
        f"{unitdir}/smartvmfs@.service": 0o644,
        f"{datadir}/smartvmfs/smartvm-minimal.manifest.example.json": 0o644,
        f"{datadir}/doc/smartvmfs/examples/walkthrough.sh": 0o755,
        f"{datadir}/doc/smartvmfs/examples/vms.py": 0o755,
    }
    if man:
        want[f"{mandir}/man1/smartvmfs.1"] = 0o644
        want[f"{mandir}/man5/smartvmfs.5"] = 0o644
    return want


def systemd_unit_dirs():
    """Where systemd looks for system units (pkg-config knows; else the usual)."""
    r = run("pkg-config", "--variable=systemdsystemunitpath", "systemd") if shutil.which("pkg-config") else None
    if r and r.returncode == 0 and r.stdout.strip():
        return [os.path.normpath(p) for p in r.stdout.strip().split(":") if p]
    return ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
            "/lib/systemd/system", "/usr/lib/systemd/system"]


def check_man_page(path, section):
    text = open(path, encoding="utf-8").read()
    assert text.startswith(".\\\"") or text.startswith(".TH")
    assert re.search(rf'^\.TH "SMARTVMFS" "{section}"', text, re.M), text[:300]
    assert '.SH "NAME"' in text
    if shutil.which("lexgrog"):  # what mandb and whatis read
        r = run("lexgrog", path)
        assert r.returncode == 0 and "smartvmfs - " in r.stdout, r.stdout + r.stderr
    if shutil.which("man"):
        r = run("man", "-l", path, env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": ""})
        assert r.returncode == 0, r.stderr
        assert "NAME" in r.stdout and "smartvmfs" in r.stdout
        # at a terminal's 80 columns troff neither warns nor breaks words in tables
        w = run("man", "--warnings", "-l", path, env={**os.environ, "MANWIDTH": "80"})
        assert w.returncode == 0 and not w.stderr.strip(), w.stderr
        return r.stdout
    return text


def check_install(destdir, bindir, mandir, datadir, unitdir, man):
    got = installed_files(destdir)
    want = expected_files(bindir, mandir, datadir, unitdir, man)
    assert set(got) == set(want), f"installed {sorted(got)}, expected {sorted(want)}"
    for path, mode in want.items():
        assert got[path] == mode, f"{path}: mode {oct(got[path])}, expected {oct(mode)}"
    binary = destdir + f"{bindir}/smartvmfs"
    r = run(binary, "--version")
    assert r.returncode == 0 and r.stdout.startswith(f"smartvmfs {VERSION}\n"), r.stdout + r.stderr
    with open(destdir + f"{datadir}/smartvmfs/smartvm-minimal.manifest.example.json") as f:
        manifest = json.load(f)
    assert manifest["schemaVersion"] == 1 and manifest["bundleId"]
    for part in ("kernel", "rootfs"):
        assert {"url", "sha256", "fileName"} <= set(manifest[part]), manifest
    unit = open(destdir + f"{unitdir}/smartvmfs@.service").read()
    assert re.search(rf"^ExecStart={re.escape(bindir)}/smartvmfs -f ", unit, re.M), unit
    assert "Documentation=man:smartvmfs(1) man:smartvmfs(5)" in unit
    assert os.path.normpath(unitdir) in systemd_unit_dirs(), f"{unitdir} is not where systemd looks"
    if man:
        page1 = check_man_page(destdir + f"{mandir}/man1/smartvmfs.1", 1)
        for opt in OPTIONS:
            assert opt in page1, f"smartvmfs(1) does not mention {opt}"
        check_man_page(destdir + f"{mandir}/man5/smartvmfs.5", 5)
    return unit


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    if not BUILD:
        pytest.skip("SMARTVMFS_BUILD_ROOT is not set (run through meson test)")
    d = str(tmp_path_factory.mktemp("destdir"))
    meson_install(BUILD, d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_install_puts_every_file_in_place(destdir):
    if not MAN_PAGES:
        print("lowdown is missing: the man pages were not built, so not installed")
    check_install(destdir, BINDIR, MANDIR, DATADIR, UNITDIR, MAN_PAGES)


def test_installed_unit_verifies(destdir, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    # the unit as installed, its binary and man pages where this DESTDIR has them
    unit = open(destdir + f"{UNITDIR}/smartvmfs@.service").read()
    unit = unit.replace(f"{BINDIR}/smartvmfs", destdir + f"{BINDIR}/smartvmfs")
    if not MAN_PAGES:  # built without lowdown: the pages Documentation= names are not there
        unit = re.sub(r"^Documentation=.*\n", "", unit, flags=re.M)
    (tmp_path / "smartvmfs@.service").write_text(unit)
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:", "MANPATH": destdir + MANDIR + ":"}
    r = run("systemd-analyze", "verify", "smartvmfs@mnt-vm.service", env=env)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_install_with_prefix_usr(tmp_path):
    """A distribution's layout: /usr/bin, /usr/share/man, systemd's own unit dir."""
    if not MESON:
        pytest.skip("meson is not on PATH")
    build = str(tmp_path / "build")
    r = run(MESON, "setup", "--prefix=/usr", build, SRC, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    targets = ["fs/smartvmfs"] + (["assets/smartvmfs.1", "assets/smartvmfs.5"] if MAN_PAGES else [])
    r = run("ninja", "-C", build, *targets, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    dest = str(tmp_path / "dest")
    meson_install(build, dest)
    r = run("pkg-config", "--variable=systemdsystemunitdir", "systemd") if shutil.which("pkg-config") else None
    unitdir = r.stdout.strip() if r and r.returncode == 0 and r.stdout.strip() else "/usr/lib/systemd/system"
    check_install(dest, "/usr/bin", "/usr/share/man", "/usr/share", unitdir, MAN_PAGES)


# ------------------------------------------------------------------ the command line

def test_help_lists_every_option_with_its_default():
    r = run(BIN, "--help")
    assert r.returncode == 0 and r.stderr == ""
    text = r.stdout
    for opt in OPTIONS + PASSED + ["--check", "--version", "-f"]:
        assert opt in text, f"--help does not mention {opt}"
    # each smartvmfs option's entry (its line and continuation lines) has [default]
    section = text.split("smartvmfs options")[1].split("FUSE options")[0]
    entries = re.split(r"\n    (?=\S)", section)[1:]
    names = [e.split("=")[0].split()[0] for e in entries]
    assert sorted(names) == sorted(OPTIONS), names
    for e in entries:
        assert re.search(r"\[[^\]]+\]", e), f"no default in: {e!r}"


def test_version_says_which_firecracker(tmp_path):
    r = run(BIN, "--version", "-o", f"firecracker={EMULATOR}")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"smartvmfs {VERSION}"
    # the emulator is named as what it is, not as a Firecracker
    assert re.fullmatch(rf"firecracker v\d+\.\d+\.\d+ \({re.escape(EMULATOR)}: fc-emulator, the test double\)",
                        lines[1]), lines
    r = run(BIN, "-V", "-o", "fcversion=v1.7.0")
    assert r.stdout.splitlines()[1].startswith("firecracker v1.7.0 "), r.stdout
    # no binary, nothing downloaded: it says what will happen, without the network
    r = run(BIN, "--version", "-o", f"datadir={tmp_path}")
    assert re.match(r"firecracker latest \(.*downloaded", r.stdout.splitlines()[1]), r.stdout


@pytest.mark.parametrize("args,says", [
    (["-o", "frob=1"], 'unknown option "-o frob=1"'),
    (["-o", "datadir"], 'option "-o datadir" needs a value'),
    (["-o", "rw,nosymfollow"], 'unknown option "-o nosymfollow"'),
    (["--frobnicate"], 'unknown option "--frobnicate"'),
    (["a-source", "extra"], "one more argument"),
])
def test_unknown_options_are_refused(tmp_path, args, says):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run(BIN, "-f", *args, str(mnt), timeout=10)
    assert r.returncode == 1
    assert says in r.stderr and "--help" in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


def test_fstab_words_are_accepted(tmp_path):
    m = fsc.start_daemon(str(tmp_path), EMULATOR, kernel_path(tmp_path), extra_opts=[
        "rw", "nosuid", "nodev", "noauto", "auto", "_netdev", "nofail", "defaults", "users",
        "x-systemd.automount", "x-systemd.requires=network.target", "comment=x", "relatime",
        "noatime", "ro"])
    try:
        assert m.read("version").startswith("smartvmfs ")
        with pytest.raises(OSError):  # ro: the kernel refuses writes
            os.mkdir(m.p("vms", "web"))
    finally:
        fsc.stop_daemon(m)
    fsc.check_output(m, [])


def check_lines(out):
    lines = out.splitlines()
    assert lines[-1].startswith("smartvmfs --check: ")
    for line in lines[:-1]:
        assert re.match(r"(ok|PROBLEM) +\S", line), line
    return [line for line in lines if line.startswith("PROBLEM")]


def test_check(tmp_path):
    r = run(BIN, "--check", "-o", f"runtimedir={tmp_path}/rt,firecracker={EMULATOR}")
    problems = check_lines(r.stdout)
    assert r.returncode == (1 if problems else 0), r.stdout
    for what in ("/dev/kvm", "/dev/net/tun", "/dev/fuse", "iptables", "RLIMIT_NOFILE",
                 f"runtime dir {tmp_path}/rt", "firecracker"):
        assert what in r.stdout, f"--check says nothing of {what}"
    # the emulator boots no guest: KVM is never a problem for it
    assert not any("/dev/kvm" in p for p in problems), problems



def test_check_says_what_is_wrong_and_how_to_fix_it(tmp_path):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    plain = tmp_path / "not-executable"
    plain.write_text("")
    r = run("prlimit", "--nofile=256:256", BIN, "--check", "-o", f"firecracker={plain}")
    assert r.returncode == 1
    problems = "\n".join(check_lines(r.stdout))
    # 3 descriptors per running VM (docs/architecture.md)
    assert re.search(r"RLIMIT_NOFILE is 256 .*room for about 85 VMs at ~3 descriptors each.*LimitNOFILE=",
                     problems), problems
    assert re.search(rf"firecracker {plain} is not an executable file: chmod \+x", problems), problems
    r = run(BIN, "--check", "-o", f"firecracker={tmp_path}/none")
    assert re.search(r"PROBLEM +firecracker .*/none: No such file or directory: give the path", r.stdout)


def test_mount_warns_what_check_finds(tmp_path):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    k = kernel_path(tmp_path)
    m = fsc.start_daemon(str(tmp_path / "a"), EMULATOR, k, wrap=("prlimit", "--nofile=512:512", "--"))
    try:
        assert "warning: RLIMIT_NOFILE is 512" in m.read("log")
    finally:
        fsc.stop_daemon(m)
    fsc.check_output(m, [r"warning: RLIMIT_NOFILE is 512 \(hard\)"])
    # nocheck: not a word
    m = fsc.start_daemon(str(tmp_path / "b"), EMULATOR, k, extra_opts=["nocheck"],
                         wrap=("prlimit", "--nofile=512:512", "--"))
    fsc.stop_daemon(m)
    assert "RLIMIT_NOFILE" not in m.daemon_output()


# ------------------------------------------------------------------ the log

def test_foreground_log_one_line_per_event(tmp_path):
    m = fsc.start_daemon(str(tmp_path), EMULATOR, kernel_path(tmp_path))
    try:
        m.started_vm("web")
        m.ctl("web", "stop")
        m.started_vm("dying", "emu.crash_ms=50 emu.crash_exit=3")
        m.wait_state("dying", "error")
    finally:
        fsc.stop_daemon(m)
    out = m.daemon_output()
    fsc.check_output(m, [r"firecracker ended unexpectedly \(exit 3\)"])
    for pattern in [rf"^smartvmfs: smartvmfs \S+ mounted on {re.escape(m.path)} in [\d.]+ ms$",
                    r"^smartvmfs: vm web: running \(pid \d+\) in [\d.]+ ms",
                    r"^smartvmfs: vm web: stopped \(exit 0\) after [\d.]+ s, stop took [\d.]+ ms$",
                    r"^smartvmfs: vm dying: firecracker ended unexpectedly \(exit 3\)$",
                    rf"^smartvmfs: unmounted {re.escape(m.path)}$",
                    r"^smartvmfs: stopped every VM and removed what the daemon made in [\d.]+ ms$"]:
        assert re.search(pattern, out, re.M), f"no line {pattern!r} in:\n{out}"


class SyslogSink:
    """A datagram socket at /dev/log, when this machine has none, that keeps what
    syslog(3) sends: "<PRI>TIMESTAMP smartvmfs[PID]: TEXT"."""

    def __init__(self):
        self.lines = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("/dev/log")
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self):
        while not self.stop:
            try:
                self.lines.append(self.sock.recv(8192).decode(errors="replace"))
            except socket.timeout:
                pass

    def find(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.match(r"<(\d+)>.*?smartvmfs\[\d+\]: (.*)$", line)
                if m and re.search(pattern, m.group(2)):
                    return int(m.group(1)) & 7, m.group(2)
            time.sleep(0.05)
        raise AssertionError(f"no syslog line {pattern!r} in {self.lines}")

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()
        os.unlink("/dev/log")


@pytest.fixture
def syslog():
    if os.path.exists("/dev/log"):
        pytest.skip("this machine has a syslog socket (/dev/log): its lines go there, "
                    "not to the test (journalctl -t smartvmfs shows them)")
    sink = SyslogSink()
    try:
        yield sink
    finally:
        sink.close()


# ------------------------------------------------------------------ mount(8), fstab

class MountNamespace:
    """A private mount namespace held by a sleeping process: the installed
    smartvmfs is bound onto /usr/local/sbin there (mount(8) runs its helpers with
    a PATH of its own), and the FUSE mounts made there stay there."""

    def __init__(self, bindir):
        for tool in ("unshare", "nsenter", "mount", "umount"):
            if not shutil.which(tool):
                pytest.skip(f"{tool} (util-linux) is not installed")
        if not os.path.exists("/sbin/mount.fuse3") and not shutil.which("mount.fuse3"):
            pytest.skip("mount.fuse3 (fuse3) is not installed")
        if os.geteuid() != 0:
            pytest.skip("mount -t fuse.smartvmfs needs root")
        own = os.readlink("/proc/self/ns/mnt")
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{self.holder.pid}/ns/mnt") == own:
            assert time.monotonic() < deadline, "unshare -m did not start"
            time.sleep(0.01)
        r = self.run("mount", "--bind", bindir, "/usr/local/sbin")
        assert r.returncode == 0, r.stderr

    def run(self, *cmd, timeout=60):
        return run("nsenter", "-t", str(self.holder.pid), "-m", "--", *cmd, timeout=timeout)

    def mounted(self, path):
        r = self.run("cat", "/proc/self/mounts")
        return any(f" {path} fuse.smartvmfs " in line for line in r.stdout.splitlines())

    def close(self):
        self.holder.kill()
        self.holder.wait()


def wait_gone(runtime, timeout=30.0):
    deadline = time.monotonic() + timeout
    while fsc._processes_mentioning(runtime):
        assert time.monotonic() < deadline, f"left behind: {fsc._processes_mentioning(runtime)}"
        time.sleep(0.05)
    left = [os.path.join(d, x) for d, ds, fs in os.walk(runtime) for x in ds + fs]
    assert not left, f"runtime files left behind: {left}"


@pytest.fixture
def ns(destdir):
    n = MountNamespace(destdir + BINDIR)
    yield n
    n.close()


def mount_scenario(ns, tmp_path, mount_cmd, syslog=None):
    mnt, rt = str(tmp_path / "mnt"), str(tmp_path / "rt")
    os.makedirs(mnt, exist_ok=True)
    try:
        r = ns.run(*mount_cmd(mnt, rt))
        assert r.returncode == 0, f"mount failed: {r.stdout}{r.stderr}"
        assert r.stderr == "", r.stderr  # detached: the log is syslog's, not the terminal's
        assert ns.mounted(mnt)
        r = ns.run("cat", f"{mnt}/version")
        assert r.stdout.startswith("smartvmfs "), r.stdout + r.stderr
        config = json.dumps(fsc.vm_config(kernel_path(tmp_path)))
        r = ns.run("sh", "-c", f"mkdir {mnt}/vms/web && printf '%s' '{config}' > {mnt}/vms/web/config.json"
                               f" && echo start > {mnt}/vms/web/ctl && cat {mnt}/vms/web/state")
        assert r.stdout == "running\n", r.stdout + r.stderr
        if syslog:
            level, _ = syslog.find(rf"mounted on {re.escape(mnt)}")
            assert level == 5  # notice
            level, _ = syslog.find(r"^vm web: running \(pid \d+\)")
            assert level == 6  # info
        r = ns.run("umount", mnt)
        assert r.returncode == 0, r.stderr
        wait_gone(rt)
        assert not ns.mounted(mnt)
        if syslog:
            syslog.find(r"^vm web: stopped \(")
            syslog.find(rf"^unmounted {re.escape(mnt)}(;|$)")
    finally:
        if ns.mounted(mnt):
            ns.run("umount", "-l", mnt)
        for pid, _ in fsc._processes_mentioning(rt):
            os.kill(pid, 9)


def common_opts(rt, tmp_path):
    return f"firecracker={EMULATOR},runtimedir={rt},datadir={tmp_path}/data"


def test_mount_t_fuse_smartvmfs(ns, tmp_path, syslog):
    mount_scenario(ns, tmp_path, lambda mnt, rt: [
        "mount", "-t", "fuse.smartvmfs", "smartvmfs", mnt, "-o",
        common_opts(rt, tmp_path) + ",nosuid,nodev,noauto,_netdev,x-systemd.requires=network.target"],
        syslog)


def test_mount_from_an_fstab_line(ns, tmp_path):
    fstab = tmp_path / "fstab"

    def cmd(mnt, rt):
        fstab.write_text(f"# an fstab line for smartvmfs\nsmartvmfs {mnt} fuse.smartvmfs "
                         f"{common_opts(rt, tmp_path)},_netdev,noauto,nofail,"
                         f"x-systemd.automount,x-systemd.idle-timeout=60 0 0\n")
        return ["mount", "--fstab", str(fstab), mnt]
    mount_scenario(ns, tmp_path, cmd)


def test_mount_refuses_an_unknown_option(ns, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = ns.run("mount", "-t", "fuse.smartvmfs", "smartvmfs", str(mnt), "-o",
               f"firecracker={EMULATOR},frobnicate")
    assert r.returncode != 0
    assert 'unknown option "-o frobnicate"' in r.stderr, r.stderr
    assert not ns.mounted(str(mnt))


def test_detached_daemon_logs_to_syslog_with_levels(tmp_path, syslog):
    mnt, rt = tmp_path / "mnt", str(tmp_path / "rt")
    mnt.mkdir()
    r = run(BIN, "-o", common_opts(rt, tmp_path), str(mnt))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    try:
        m = fsc.Mount(str(tmp_path), str(mnt), rt, f"{tmp_path}/data", kernel_path(tmp_path),
                      EMULATOR, None, None)
        m.started_vm("dying", "emu.crash_ms=50 emu.crash_exit=3")
        m.wait_state("dying", "error")
        assert syslog.find(r"^vm dying: firecracker ended unexpectedly \(exit 3\)")[0] == 3  # err
        assert syslog.find(r"^vm dying: running")[0] == 6  # info
        os.rmdir(m.vm("dying"))
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    wait_gone(rt)
    assert syslog.find(r"^stopped every VM and removed what the daemon made in [\d.]+ ms$")[0] == 5


# ------------------------------------------------------------------ systemd

def test_under_systemd_journal_levels_and_notify(tmp_path):
    """What the unit relies on, without systemd: with stderr on the journal
    (JOURNAL_STREAM names it) each line carries its "<N>" priority, and
    NOTIFY_SOCKET hears READY=1 once mounted and STOPPING=1 at the end."""
    mnt, rt = tmp_path / "mnt", str(tmp_path / "rt")
    mnt.mkdir()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(10)
    logpath = tmp_path / "journal"
    with open(logpath, "w") as log:
        st = os.fstat(log.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
               "NOTIFY_SOCKET": str(tmp_path / "notify")}
        proc = subprocess.Popen([BIN, "-f", "-o", common_opts(rt, tmp_path), str(mnt)],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    try:
        ready = notify.recv(4096).decode()
        assert ready.startswith("READY=1\n") and f"STATUS=mounted on {mnt}" in ready, ready
        assert os.path.ismount(mnt)  # ready means mounted
        m = fsc.Mount(str(tmp_path), str(mnt), rt, f"{tmp_path}/data", kernel_path(tmp_path),
                      EMULATOR, proc, str(logpath))
        m.started_vm("dying", "emu.crash_ms=50 emu.crash_exit=3")
        m.wait_state("dying", "error")
        # the VMMs do not inherit NOTIFY_SOCKET
        m.started_vm("web")
        with open(f"/proc/{int(m.read('vms', 'web', 'pid'))}/environ", "rb") as f:
            assert not any(e.startswith(b"NOTIFY_SOCKET=") for e in f.read().split(b"\0"))
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        assert proc.wait(timeout=30) == 0
        assert notify.recv(4096).decode() == "STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        notify.close()
    wait_gone(rt)
    lines = logpath.read_text().splitlines()
    want = [(5, rf"^smartvmfs \S+ mounted on {re.escape(str(mnt))} in "),
            (6, r"^vm dying: running \(pid \d+\)"),
            (3, r"^vm dying: firecracker ended unexpectedly \(exit 3\)$"),
            (5, r"^stopped every VM and removed what the daemon made in ")]
    for level, pattern in want:
        hits = [line for line in lines if re.match(rf"<{level}>", line)
                and re.search(pattern, line[3:])]
        assert hits, f"no <{level}> line {pattern!r} in:\n" + "\n".join(lines)
    assert all(re.match(r"<[0-7]>\S", line) for line in lines), lines



def test_systemd_unit_starts_and_stops(tmp_path):
    why = hostfacts.systemd()
    if why:
        pytest.skip(why)
    if os.geteuid() != 0:
        pytest.skip("starting a system unit needs root")
    mnt, rt = str(tmp_path / "mnt"), str(tmp_path / "rt")
    os.makedirs(mnt)
    instance = run("systemd-escape", "--path", mnt).stdout.strip()
    name = f"smartvmfs@{instance}.service"
    unit = open(UNIT).read().replace(f"{BINDIR}/smartvmfs", BIN)
    unit_file = "/run/systemd/system/smartvmfs@.service"
    dropin = f"/run/systemd/system/{name}.d"
    assert not os.path.exists(unit_file), f"{unit_file} exists: not the test's to replace"
    try:
        with open(unit_file, "w") as f:
            f.write(unit)
        os.makedirs(dropin)
        with open(f"{dropin}/test.conf", "w") as f:
            f.write(f'[Service]\nEnvironment="SMARTVMFS_OPTS=-o {common_opts(rt, tmp_path)}"\n')
        assert run("systemctl", "daemon-reload").returncode == 0
        r = run("systemctl", "start", name, timeout=120)
        assert r.returncode == 0, r.stderr + run("journalctl", "-u", name, "-n", "30").stdout
        # Type=notify: started means mounted
        assert os.path.ismount(mnt)
        m = fsc.Mount(str(tmp_path), mnt, rt, f"{tmp_path}/data", kernel_path(tmp_path),
                      EMULATOR, None, None)
        m.started_vm("web")
        pid = int(m.read("vms", "web", "pid"))
        r = run("systemctl", "stop", name, timeout=120)
        assert r.returncode == 0, r.stderr
        assert not os.path.ismount(mnt)
        assert not os.path.exists(f"/proc/{pid}")
        wait_gone(rt)
        log = run("journalctl", "-u", name, "-o", "cat").stdout
        assert f"mounted on {mnt}" in log and f"unmounted {mnt}" in log, log
    finally:
        run("systemctl", "stop", name, timeout=120)
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        shutil.rmtree(dropin, ignore_errors=True)
        if os.path.exists(unit_file):
            os.unlink(unit_file)
        run("systemctl", "daemon-reload")


# ------------------------------------------------------------------ docs/examples

@pytest.fixture
def mnt(tmp_path):
    m = fsc.start_daemon(str(tmp_path), EMULATOR, kernel_path(tmp_path))
    try:
        yield m
    finally:
        fsc.stop_daemon(m)
        fsc.check_output(m, [])


def test_walkthrough_sh(mnt):
    r = run(os.path.join(EXAMPLES, "walkthrough.sh"), mnt.path, mnt.kernel,
            env={**os.environ, "VM": "tour"}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for expected in ["$ echo start > vms/tour/ctl\n$ cat vms/tour/state\nrunning\n",
                     "state running\n", "smartvm-guest: ready\nhello\n",
                     'unknown control message "frobnicate"',
                     "$ ls vms/tour/snapshots\nfirst\n",
                     "$ cat vms/tour/state\nstopped\n", "$ ls vms\nclone\n"]:
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert "Invalid argument" in r.stderr  # the refused command, as bash prints it
    assert os.listdir(mnt.p("vms")) == ["clone"]


def test_vms_py(mnt):
    r = run("/usr/bin/python3", os.path.join(EXAMPLES, "vms.py"), mnt.path, mnt.kernel, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for pattern in [r"^created: \S+, py-\d+$", r": running, pid \d+$", r": info says Running",
                    r": console: hello from python$", r": events: state running$",
                    r": events: state paused$", r"^py-\d+: stopped$", r"^vms/ now holds: clone$"]:
        assert re.search(pattern, out, re.M), f"{pattern!r} not in:\n{out}"
    assert os.listdir(mnt.p("vms")) == ["clone"]
