"""The jailer's test double does what the real jailer did (jailer-v1.5.1.json):
the same exit status and reason for every bad command line, and for every good
one the same jail (tree, modes, owners), the same view from inside (arguments,
uid/gid, environment, limits, devices), the pid file and the cgroups.
SMARTVMFS_JAILER=/path/to/jailer replays the scenarios on a real one too."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from scenarios import SCENARIOS, run

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = json.load(open(os.path.join(HERE, "jailer-v1.5.1.json")))
DOUBLE = os.environ.get("SMARTVMFS_JAILER_DOUBLE")
PROBE = os.environ.get("SMARTVMFS_JAILER_PROBE")
REAL = os.environ.get("SMARTVMFS_JAILER")


def v1_pids():
    """cgroup v1 with the pids controller mounted alone, as where the table was made."""
    try:
        return any(l.split()[1] == "/sys/fs/cgroup/pids" and l.split()[2] == "cgroup"
                   for l in open("/proc/mounts"))
    except OSError:
        return False


# the scenarios whose cgroups need a host like the table's: cgroup v1, with the
# cpu, memory and pids controllers each under /sys/fs/cgroup/NAME
V1_SCENARIOS = {"limits-and-cgroup", "cgroups-v1-limits", "cgroups-v1-unlimited", "cgroup-exists",
                "bad-cgroup-value", "unknown-cgroup-file", "cgroup-v2-on-v1"}


def v1_host():
    try:
        ctls = set()
        for line in open("/proc/mounts"):
            f = line.split()
            if f[2] == "cgroup":
                ctls |= set(f[3].split(","))
            if f[1] == "/sys/fs/cgroup" and f[2] == "cgroup2":
                return False
        return {"cpu", "memory", "pids"} <= ctls and all(
            os.path.isdir(f"/sys/fs/cgroup/{c}") for c in ("cpu", "memory", "pids"))
    except OSError:
        return False


def why_not():
    if os.geteuid() != 0:
        return "the jailer needs root (mount namespace, chroot, mknod, uid switch)"
    if not DOUBLE or not PROBE:
        return "SMARTVMFS_JAILER_DOUBLE and SMARTVMFS_JAILER_PROBE name the builds (meson test)"
    return None


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="jailtest-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def replay(jailer, name, base):
    if why_not():
        pytest.skip(why_not())
    if name == "limits-and-cgroup" and not v1_pids():
        pytest.skip("no cgroup v1 pids controller at /sys/fs/cgroup/pids (the table's host had one)")
    if name in V1_SCENARIOS and not v1_host():
        pytest.skip("not a cgroup v1 host with cpu, memory and pids under /sys/fs/cgroup (the "
                    "table's host was)")
    plain = os.path.join(base, "probe")
    if not os.path.exists(plain):
        shutil.copy(PROBE, plain)
    got = run(jailer, name, PROBE, plain, base)
    assert got == TABLE["scenarios"][name], f"{name}: the jail differs from {TABLE['jailer']}'s"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_double_jails_as_the_real_jailer(name, base):
    replay(DOUBLE, name, base)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_real_jailer_still_agrees(name, base):
    if not REAL:
        pytest.skip("no SMARTVMFS_JAILER: the recorded table stands for the real jailer")
    replay(REAL, name, base)


def test_table_covers_every_scenario():
    assert sorted(TABLE["scenarios"]) == sorted(SCENARIOS)
    assert any(s["exit"] != 0 for s in TABLE["scenarios"].values())
    assert any(s["exit"] == 0 for s in TABLE["scenarios"].values())


def api_get(sock_path, timeout=5.0):
    """GET / over the API socket, once it answers."""
    end = time.monotonic() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(sock_path)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n")
            data = s.recv(4096).decode(errors="replace")
            s.close()
            return data
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


@pytest.mark.parametrize("which", ["double", "real"])
def test_the_emulator_runs_jailed(which, base):
    """The static emulator is a VMM a jail can hold: jailed, it serves its API on
    a socket inside the chroot, as the uid the jailer switched to."""
    if why_not():
        pytest.skip(why_not())
    jailer = DOUBLE if which == "double" else REAL
    if not jailer:
        pytest.skip("no SMARTVMFS_JAILER: the recorded table stands for the real jailer")
    emu = os.environ.get("SMARTVMFS_JAILED_EMULATOR")
    if not emu:
        pytest.skip("no static libmicrohttpd/jansson: the jailed emulator is not built")
    jail = os.path.join(base, "firecracker-emulator", f"emu-{which}")
    shutil.rmtree(jail, ignore_errors=True)
    p = subprocess.Popen([jailer, "--id", f"emu-{which}", "--exec-file", emu, "--uid", "60100",
                          "--gid", "60101", "--chroot-base-dir", base, "--",
                          "--api-sock", "/run/api.sock"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sock = os.path.join(jail, "root", "run", "api.sock")
        answer = api_get(sock)
        assert " 200 " in answer.splitlines()[0] and f'"id":"emu-{which}"' in answer
        st = os.stat(sock)
        assert (st.st_uid, st.st_gid) == (60100, 60101), "the socket is the jailed uid's"
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(jail, ignore_errors=True)
