"""What this host offers the test suite, learned from the host and from smartvmfs itself.

Hosts differ: with or without /dev/kvm, /dev/net/tun, iptables, network namespaces,
systemd as PID 1, a real Firecracker binary. The suites ask here, so that

  - a mount that runs its host checks (KVM, TUN, root, iptables, RLIMIT_NOFILE, the
    runtime dir) is expected to log exactly the warnings `smartvmfs --check` reports
    for this host, and nothing else (mount_warnings());
  - a test that needs a piece skips with one sentence that says which piece is missing
    and how to get it (the functions returning None or a reason).

Each fact is learned once per test process (the checks take milliseconds).
"""
import functools
import os
import re
import shutil
import subprocess
import tempfile

# The core looks for iptables at these paths, whatever PATH says (core/net/net_fw.c).
IPTABLES_PATHS = ("/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables")


@functools.lru_cache(maxsize=None)
def check_report(binary, firecracker):
    """`smartvmfs --check` for a runtime dir in this host's temp dir, as (ok, line)
    pairs; the temp dir's path reads as "<tmp>" (the suites' daemon logs say so too)."""
    tmp = tempfile.mkdtemp(prefix="svm-hostfacts-")
    try:
        r = subprocess.run([binary, "--check", "-o", f"runtimedir={tmp}/rt,firecracker={firecracker}"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = []
    for line in r.stdout.splitlines():
        m = re.match(r"(ok|PROBLEM) +(.*)$", line)
        if m:
            lines.append((m.group(1) == "ok", m.group(2).replace(tmp, "<tmp>")))
    if not lines:
        raise RuntimeError(f"{binary} --check printed no check: {r.stdout}{r.stderr}")
    return tuple(lines)


def mount_warnings(binary, firecracker):
    """Patterns of the warnings a mount with its host checks on logs on this host: the
    problems --check finds, worded as it words them (figures may differ: free space)."""
    pats = []
    for ok, line in check_report(binary, firecracker):
        if not ok:
            pats.append("warning: " + re.sub(r"\\?\d+(?:\\\.\d+)?", r"[\\d.]+", re.escape(line)))
    return pats


def _device(path, consequence):
    """None when the device opens for reading and writing, else why not."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CLOEXEC))
        return None
    except OSError as e:
        return f"{path} is not usable here ({e.strerror}): {consequence}"


def kvm():
    return _device("/dev/kvm", "KVM is needed to boot a guest")


def tun():
    return _device("/dev/net/tun", "TAPs cannot be made (modprobe tun)")


def iptables():
    if any(os.access(p, os.X_OK) for p in IPTABLES_PATHS):
        return None
    return "iptables is not installed here: no NAT for the guests (apt-get install iptables)"


@functools.lru_cache(maxsize=None)
def netns():
    """None when a private network namespace can be made (unshare -n), else why not."""
    if os.geteuid() != 0:
        return "networking tests need root (a private network namespace, TAPs, NAT)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed here (util-linux, iproute2)"
    r = subprocess.run(["unshare", "-n", "--", "true"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"no private network namespace here (unshare -n: {r.stderr.strip()})"
    return None


def networking():
    """None when guest networking (TAPs, a bridge, NAT) can be tested here."""
    return netns() or tun() or iptables()


def systemd():
    if os.path.isdir("/run/systemd/system"):
        return None
    try:
        comm = open("/proc/1/comm").read().strip()
    except OSError:
        comm = "unknown"
    return f"systemd is not PID 1 here (PID 1 is {comm}): no unit can be started"


def real_firecracker(path):
    """None when `path` names a real Firecracker that can boot a guest here."""
    if not path:
        return "SMARTVMFS_FIRECRACKER is not set: no real Firecracker to run"
    if not os.access(path, os.X_OK):
        return f"SMARTVMFS_FIRECRACKER={path} is not executable"
    return kvm()
