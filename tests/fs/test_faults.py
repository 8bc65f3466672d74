"""Fault injection: every resource a start takes may be refused, and a refused start
leaves nothing (issue 23, point 1).

strace attaches to the running daemon (all its threads, and the threads a start
creates) and makes one system call fail at its Nth call in each thread:
`--inject=SYSCALL:error=ERRNO:when=N`. For each case `echo start > vms/web/ctl`
either succeeds (the call was not on the start's path, or its failure has a
fallback) and the VM runs, or fails; and then:

- the write failed with an errno, and the VM's `error` file has a new line that
  says which step failed and why (the injected errno's text);
- the VM is in the state it had (stopped), its config unchanged;
- no VMM process of that VM is left, and its runtime dir holds no FIFO, socket or
  staged drive (at most vm.json, which a VM has once a VMM of it was spawned);
- the daemon holds as many descriptors as before (nothing leaked), and still works.

Bounded: about 40 cases of well under a second each.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (BIN, EMULATOR, _processes_mentioning, check_output, start_daemon,
                      stop_daemon)

pytestmark = [
    pytest.mark.skipif(not (BIN and os.path.exists(BIN) and EMULATOR and os.path.exists(EMULATOR)),
                       reason="SMARTVMFS_BIN or SMARTVMFS_EMULATOR not set (run through meson test)"),
    pytest.mark.skipif(not shutil.which("strace"),
                       reason="strace is not installed (Debian package strace): no fault injection"),
]

# The resource-taking calls of a start (the daemon's side: the VMM's own calls
# after execve are not traced), with the errno a shortage gives.
START_CALLS = [
    # (call, errno, the calls to fail (per thread), whether a start must fail)
    ("fcntl", "EMFILE", (1,), True),          # the descriptor check before a start (F_DUPFD)
    ("openat", "EMFILE", (1, 2, 3, 4, 5, 6, 7, 8, 9), True),  # drives, FIFOs, /proc
    # the config's host files, with the owner's rights (kernel, drive; a restore's
    # snapshot files)
    ("openat2", "EMFILE", (1, 2, 3), True),
    ("mknodat", "ENOSPC", (1, 3, 4), True),   # mkfifo: log, metrics, console, stdin
    ("mkdir", "ENOSPC", (1,), False),         # (the runtime dir is made with the VM)
    ("pipe2", "EMFILE", (1,), False),
    ("ftruncate", "ENOSPC", (1,), True),      # a staged drive's size
    ("copy_file_range", "ENOSPC", (1, 2), True),  # its bytes
    ("clone3", "EAGAIN", (1, 2), True),       # the op's thread, the VMM (posix_spawn)
    ("mmap", "ENOMEM", (1,), True),           # memory: posix_spawn's stack (not under ASan)
    ("pidfd_open", "EMFILE", (1,), False),    # (none: the console's hang-up is the exit watch)
    ("epoll_ctl", "ENOMEM", (1, 2, 3), True),  # the VMM's streams watched (console: its exit)
    ("inotify_init1", "EMFILE", (1,), False),  # the wait for the API socket polls then
    ("socket", "EMFILE", (1, 2), False),       # the API connection: tried again
    ("connect", "EAGAIN", (1, 2), False),
    # at the limit from the Nth descriptor on: the roll back gets none either
    ("openat", "EMFILE", ("2+", "4+", "6+", "8+"), True),
    ("openat,pidfd_open", "EMFILE", ("9+", "1+"), True),
]


def _attached(pid):
    """True once every thread of pid is traced."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                if re.search(r"^TracerPid:\s+0$", f.read(), re.M):
                    return False
        except OSError:
            pass
    return True


class Injector:
    """strace -f on the daemon, tampering with `call` as `how` says (strace's
    --inject: "error=EMFILE:when=3" fails its 3rd call in each thread,
    "delay_exit=500000" delays each by half a second); with path, only the
    calls on that file (strace -P)."""

    def __init__(self, pid, call, how, log, path=None):
        self.log = log
        self.proc = subprocess.Popen(
            ["strace", "-f", "-b", "execve", "-qq", "-o", log, "-p", str(pid),
             *(["-P", path] if path else []),
             "-e", f"trace={call}", "-e", f"inject={call}:{how}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while not _attached(pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"strace did not attach: {self.proc.stderr.read()!r}")
            time.sleep(0.005)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # detaches from every thread
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def injected(self):
        """The lines of the calls it failed."""
        with open(self.log, errors="replace") as f:
            return [line.strip() for line in f if "(INJECTED)" in line]


def injected(pid, call, how, log, action):
    """Runs action() (a write to the mount) with strace failing `call` as `how`
    says; returns the errno the write got (0: it succeeded)."""
    inj = Injector(pid, call, how, log)
    try:
        action()
        return 0
    except OSError as e:
        return e.errno
    finally:
        inj.close()


def _fds(pid):
    return sorted(os.listdir(f"/proc/{pid}/fd"))


def _vmms_of(m, rundir):
    tag = f"/{os.path.basename(rundir)}/"
    return [(p, c) for p, c in _processes_mentioning(m.runtime) if "--api-sock" in c and tag in c]


def _stable_fds(pid, want, timeout=2.0):
    """The daemon's descriptors, once they are back to `want` many (a start's last
    descriptor is closed by its thread after it has replied) or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        fds = _fds(pid)
        if len(fds) <= want or time.monotonic() > deadline:
            return fds
        time.sleep(0.01)


@pytest.mark.parametrize("verb", ["start", "restore keep"])
def test_every_start_call_may_fail(tmp_path, kernel_file, verb):
    """start, and restore (which builds a VM the same way, from a snapshot)."""
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     extra_opts=["readytimeout=2000"])
    pid = m.proc.pid
    report = []
    try:
        # a writable drive, so the start stages a copy (open, create, size, copy)
        drive = tmp_path / "disk.img"
        with open(drive, "wb") as f:
            f.write(os.urandom(64 * 1024) * 40)  # 2.5 MiB: three copy chunks
        m.make_vm("web", drives=[{"driveId": "rootfs", "pathOnHost": str(drive),
                                  "isRootDevice": True, "isReadOnly": False}])
        m.ctl("web", "start")
        if verb != "start":
            m.ctl("web", "pause")
            m.ctl("web", "snapshot keep")
        m.ctl("web", "kill")
        rundir = m.read("vms", "web", "runtime").strip()
        config = m.read("vms", "web", "config.json")
        time.sleep(0.3)  # the stop's thread has ended, its descriptors closed
        base_fds = _fds(pid)
        failed = 0
        problems = []
        must_fail = set()
        with open(f"/proc/{pid}/maps") as f:
            # ASan's own allocator dies at a failed mmap (pthread_create's)
            asan = "libasan" in f.read()
        for call, err, whens, must in START_CALLS:
            if asan and call == "mmap":
                report.append("mmap: not under ASan")
                continue
            if must:
                must_fail.add(call)
            for when in whens:
                case = f"{call}:{err}:when={when}"
                errors_before = m.read("vms", "web", "error").splitlines()
                inj = Injector(pid, call, f"error={err}:when={when}", str(tmp_path / "strace.log"))
                try:
                    t0 = time.monotonic()
                    try:
                        m.ctl("web", verb)
                        got = 0
                    except OSError as e:
                        got = e.errno
                    took = time.monotonic() - t0
                finally:
                    inj.close()
                hit = inj.injected()
                state = m.state("web")
                if not got:
                    # not on the start's path, or it has a fallback: a real start
                    report.append(f"{case}: started ({len(hit)} injected)")
                    assert state == ("running" if verb == "start" else "paused"), (case, state, hit)
                    assert len(_vmms_of(m, rundir)) == 1, case
                    m.ctl("web", "kill")
                    assert m.state("web") == "stopped"
                    continue
                failed += 1
                must_fail.discard(call)
                new = m.read("vms", "web", "error").splitlines()[len(errors_before):]
                line = new[-1] if new else ""
                report.append(f"{case}: {errno.errorcode.get(got, got)} in {took:.2f} s, "
                              f"{line or 'no error line'}")
                left = sorted(os.listdir(rundir)) if os.path.exists(rundir) else []
                fds = _stable_fds(pid, len(base_fds))
                checks = [
                    (hit, "the start failed, but strace injected nothing"),
                    (verb.split()[0] in line, "no error line of the start"),
                    # the step and the reason: "STEP: <the injected errno's text>"
                    # (the check of free descriptors names the limit instead)
                    (os.strerror(getattr(errno, err)) in line
                     or (call == "fcntl" and "no descriptors left" in line),
                     "the error line hides the cause"),
                    # a shortage, not a fault of the request
                    (got == errno.ENOSPC, f"errno {errno.errorcode.get(got, got)}"),
                    (state == "stopped", f"state {state}"),
                    (m.read("vms", "web", "config.json") == config, "config changed"),
                    (not _vmms_of(m, rundir), f"VMM left: {_vmms_of(m, rundir)}"),
                    (left in ([], ["vm.json"]), f"left in the runtime dir: {left}"),
                    (len(fds) <= len(base_fds), f"descriptors {len(base_fds)} -> {len(fds)}"),
                    (took < 5, f"took {took:.1f} s"),
                ]
                problems += [f"{case}: {why} ({line})" for ok, why in checks if not ok]
                if not _vmms_of(m, rundir) and state == "running":
                    m.ctl("web", "stop")  # a lie: running without a VMM
                elif state != "stopped" and _vmms_of(m, rundir):
                    m.ctl("web", "kill")
        # the injections did reach the start: most calls failed it at least once
        assert not must_fail, (f"no injection into {sorted(must_fail)} failed a start:\n"
                               + "\n".join(report))
        assert not problems, "\n".join(problems)
        # and the daemon is whole: one without injection runs
        m.ctl("web", verb)
        assert m.state("web") == ("running" if verb == "start" else "paused")
    finally:
        print("\n".join(report))
        stop_daemon(m)
    check_output(m, [])


# The resource-taking calls of a snapshot over an earlier one (NAME, with a kept
# drive): the daemon's own files (each made NAME.new, then renamed into place).
SNAPSHOT_CALLS = [
    ("openat", "EMFILE", (1, 2, 3, 4, 5)),   # the directory, vmstate, mem, the drive's copy, ...
    ("unlinkat", "EACCES", (1,)),            # a stale .new
    ("ftruncate", "ENOSPC", (1,)),           # the kept drive's size
    ("copy_file_range", "ENOSPC", (1,)),     # its bytes
    ("write", "ENOSPC", ("1+",)),            # config.json, origin.json (and what else writes)
    ("renameat", "EACCES", (1, 2, 3)),       # putting the new files in place
]


def test_a_failed_snapshot_leaves_the_one_before(tmp_path, kernel_file):
    """snapshot NAME over an earlier NAME, each resource call failing in turn:
    the write fails with the cause in `error`, the VM stays paused with its VMM,
    no NAME.new is left, and the earlier snapshot is whole: it restores. A failure
    while the new files are renamed into place (the last step) may leave some new
    and some old: the seal then refuses that mix, it never loads."""
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    pid = m.proc.pid
    report, problems = [], []
    try:
        drive = tmp_path / "disk.img"
        with open(drive, "wb") as f:
            f.write(os.urandom(64 * 1024) * 8)
        m.make_vm("web", drives=[{"driveId": "rootfs", "pathOnHost": str(drive),
                                  "isRootDevice": True, "isReadOnly": False}])
        m.ctl("web", "start")
        m.ctl("web", "pause")
        m.ctl("web", "snapshot keep")
        snap = os.path.join(m.datadir, "snapshots", "web", "keep")
        failed = 0
        for call, err, whens in SNAPSHOT_CALLS:
            for when in whens:
                case = f"{call}:{err}:when={when}"
                n_err = len(m.read("vms", "web", "error").splitlines())
                got = injected(pid, call, f"error={err}:when={when}", str(tmp_path / "strace.log"),
                               lambda: m.ctl("web", "snapshot keep"))
                if not got:
                    report.append(f"{case}: snapshot made")
                    continue
                failed += 1
                new = m.read("vms", "web", "error").splitlines()[n_err:]
                line = new[-1] if new else ""
                report.append(f"{case}: {errno.errorcode.get(got, got)}, {line}")
                left = [f for f in os.listdir(snap) if f.endswith(".new")]
                state = m.state("web")
                # the earlier snapshot: whole (it restores), or - only when a rename
                # of the last step failed - a mix the seal refuses
                m.ctl("web", "kill")
                try:
                    m.ctl("web", "restore keep")
                    whole = True
                except OSError:
                    whole = False
                said = m.read("vms", "web", "error").splitlines()[-1]
                mix_ok = call == "renameat" and when != 1 and "its seal does not match" in said
                checks = [
                    ("snapshot" in line, "no error line"),
                    (got == errno.ENOSPC if err in ("EMFILE", "ENOSPC") else True,
                     f"a shortage answered {errno.errorcode.get(got, got)}"),
                    (state == "paused", f"state {state}"),
                    (not left, f"left: {left}"),
                    (whole or mix_ok, f"the earlier snapshot does not restore: {said}"),
                ]
                problems += [f"{case}: {why} ({line})" for ok, why in checks if not ok]
                if not whole:
                    report.append(f"{case}: a mix of old and new files, refused by the seal")
                    m.ctl("web", "start")
                    m.ctl("web", "pause")
                    m.ctl("web", "snapshot keep")
        assert failed >= 5, "\n".join(report)
        assert not problems, "\n".join(problems + report)
        m.ctl("web", "kill")
        m.ctl("web", "restore keep resume")
        assert m.state("web") == "running"
    finally:
        print("\n".join(report))
        stop_daemon(m)
    check_output(m, [])


DRIVE_CALLS = [
    ("openat2", "EMFILE", (1,)),      # the new file, with the owner's rights (beneath a root)
    ("symlink", "ENOSPC", (1,)),      # its name in the runtime dir
    ("rename", "ENOSPC", (1,)),       # put in place of the last one
    ("connect", "EMFILE", ("1+",)),   # the VMM's API
]


def test_a_failed_drive_change_leaves_nothing(tmp_path, kernel_file):
    """drive ID PATH on a running VM, each call failing in turn: the write fails
    with the cause in `error`, the VM runs on with its drive as it was, and no
    link of the change is left in the runtime dir."""
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    pid = m.proc.pid
    report, problems = [], []
    try:
        old, new = tmp_path / "old.img", tmp_path / "new.img"
        for p in (old, new):
            p.write_bytes(b"\0" * (1 << 20))
        m.make_vm("web", drives=[{"driveId": "data", "pathOnHost": str(old),
                                  "isRootDevice": False, "ephemeral": False}])
        m.ctl("web", "start")
        rundir = m.read("vms", "web", "runtime").strip()
        base = sorted(os.listdir(rundir))
        for call, err, whens in DRIVE_CALLS:
            for when in whens:
                case = f"{call}:{err}:when={when}"
                n_err = len(m.read("vms", "web", "error").splitlines())
                got = injected(pid, call, f"error={err}:when={when}", str(tmp_path / "strace.log"),
                               lambda: m.ctl("web", f"drive data {new}"))
                if not got:
                    report.append(f"{case}: changed")
                    continue
                line = (m.read("vms", "web", "error").splitlines()[n_err:] or [""])[-1]
                report.append(f"{case}: {errno.errorcode.get(got, got)}, {line}")
                left = sorted(os.listdir(rundir))
                checks = [
                    ("drive data" in line, "no error line"),
                    (m.state("web") == "running", f"state {m.state('web')}"),
                    (left == base, f"runtime dir {base} -> {left}"),
                ]
                problems += [f"{case}: {why} ({line})" for ok, why in checks if not ok]
        assert len([r for r in report if "changed" not in r]) >= 3, "\n".join(report)
        assert not problems, "\n".join(problems + report)
        m.ctl("web", f"drive data {new}")  # and without injection it works
    finally:
        print("\n".join(report))
        stop_daemon(m)
    check_output(m, [])


FETCH_CALLS = [
    ("openat", "EMFILE", (1, 2, 3)),     # the cache's lock and files
    ("mkdir", "ENOSPC", (1, 2)),         # the bundle's directory
    ("write", "ENOSPC", ("1+",)),         # the artifacts' bytes
    ("rename", "EACCES", (1,)),          # a finished file put in place
    ("renameat", "EACCES", (1,)),
    ("socket", "EMFILE", (1,)),          # the download's connection
]


def test_a_failed_fetch_leaves_nothing(tmp_path, kernel_file):
    """fetch manifest, each call failing in turn: the write fails (EIO: a download
    that fails), the reason in images/error, and the cache holds nothing of it; the
    same fetch without injection then succeeds."""
    from test_images import Server, manifest, mount

    server = Server(str(tmp_path / "srv"))
    m = mount(tmp_path, kernel_file, server)
    m.server = server
    report, problems = [], []
    try:
        pid = m.proc.pid
        path = manifest(m, tmp_path, "faulty")
        cache = os.path.join(m.datadir, "base-images")
        for call, err, whens in FETCH_CALLS:
            for when in whens:
                case = f"{call}:{err}:when={when}"
                got = injected(pid, call, f"error={err}:when={when}", str(tmp_path / "strace.log"),
                               lambda: m.write(m.p("images", "ctl"), f"fetch manifest {path}\n"))
                if not got:
                    report.append(f"{case}: fetched")
                    m.write(m.p("images", "ctl"), "evict faulty\n")
                    continue
                line = (m.read("images", "error").splitlines() or [""])[-1]
                left = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs
                        if not d.endswith(".locks")]
                report.append(f"{case}: {errno.errorcode.get(got, got)}, {line}")
                checks = [
                    ("faulty" in line or "fetch" in line, "no images/error line"),
                    (not left, f"left in the cache: {left}"),
                    ("faulty" not in os.listdir(m.p("images")) or
                     m.read("images", "faulty", "status") != "ready\n", "a half bundle is ready"),
                ]
                problems += [f"{case}: {why} ({line})" for ok, why in checks if not ok]
        assert len([r for r in report if "fetched" not in r]) >= 4, "\n".join(report)
        assert not problems, "\n".join(problems + report)
        m.write(m.p("images", "ctl"), f"fetch manifest {path}\n")
        assert m.read("images", "faulty", "status") == "ready\n"
    finally:
        print("\n".join(report))
        stop_daemon(m)
        server.close()
    check_output(m, [r"download", r"error", r"Failed", r"warning"])
