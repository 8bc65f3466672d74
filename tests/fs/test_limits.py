"""A VM's resource limits as files (docs/limits.md): vms/NAME/limits/cpu.max,
memory.max, pids.max (cgroups), fsize and nofile (rlimits of the VMM). Read: the
value in force, the kernel's while the VMM runs; write: kept in config.json and
applied at once to a running VMM. Checked against what the kernel shows: the
VMM's cgroup files (v1 or v2, whichever this host has) and /proc/PID/limits."""
import errno
import json
import os
import stat
import time

import pytest

from conftest import EMULATOR, start_daemon, stop_daemon, check_output, _allowed
from test_jailer import jailed_mount, need_jailing

FILES = ["cpu.max", "memory.max", "pids.max", "fsize", "nofile"]
CG = "/sys/fs/cgroup"
SUBTREE = "smartvmfs"


def cgroup_version():
    """2 when /sys/fs/cgroup is the unified hierarchy, 1 when cpu, memory and pids
    have v1 hierarchies, else None."""
    try:
        mounts = [line.split() for line in open("/proc/mounts")]
    except OSError:
        return None
    if any(f[1] == CG and f[2] == "cgroup2" for f in mounts):
        ctls = open(os.path.join(CG, "cgroup.controllers")).read().split()
        return 2 if {"cpu", "memory", "pids"} <= set(ctls) else None
    have = {o for f in mounts if f[2] == "cgroup" for o in f[3].split(",")}
    return 1 if {"cpu", "memory", "pids"} <= have else None


def v1_mount(ctl):
    for f in (line.split() for line in open("/proc/mounts")):
        if f[2] == "cgroup" and ctl in f[3].split(","):
            return f[1]
    return None


def need_cgroups():
    if os.geteuid() != 0:
        pytest.skip("cgroups and other processes' rlimits need root")
    if cgroup_version() is None:
        pytest.skip("no cgroup hierarchy with the cpu, memory and pids controllers here")


def vm_id(m, name):
    return os.path.basename(m.read("vms", name, "runtime").strip())


def cg_dir(ctl, vid):
    base = CG if cgroup_version() == 2 else v1_mount(ctl)
    return os.path.join(base, SUBTREE, vid)


def kernel_value(name, vid):
    """The limit as its cgroup files say, in the file's own form."""
    v2 = cgroup_version() == 2
    if name == "cpu.max":
        d = cg_dir("cpu", vid)
        if v2:
            return open(os.path.join(d, "cpu.max")).read().strip()
        q = open(os.path.join(d, "cpu.cfs_quota_us")).read().strip()
        p = open(os.path.join(d, "cpu.cfs_period_us")).read().strip()
        return f"{'max' if q == '-1' else q} {p}"
    if name == "memory.max":
        d = cg_dir("memory", vid)
        v = open(os.path.join(d, "memory.max" if v2 else "memory.limit_in_bytes")).read().strip()
        return "max" if not v2 and int(v) >= 1 << 62 else v
    return open(os.path.join(cg_dir("pids", vid), "pids.max")).read().strip()


def proc_limit(pid, what):
    """/proc/PID/limits: the soft value of "Max file size" or "Max open files"."""
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith(what):
            v = line[len(what):].split()[0]
            return "max" if v == "unlimited" else v
    raise AssertionError(f"{what} not in /proc/{pid}/limits")


def in_cgroup(pid, vid):
    """The controllers whose cgroup of pid is the VM's own."""
    out = set()
    for line in open(f"/proc/{pid}/cgroup"):
        _, ctls, path = line.rstrip("\n").split(":", 2)
        if path == f"/{SUBTREE}/{vid}":
            out |= set(ctls.split(",")) if ctls else {"unified"}
    return out


def no_cgroup_left(vid):
    dirs = [os.path.join(CG, SUBTREE, vid)] + [
        os.path.join(m, SUBTREE, vid) for m in filter(None, map(v1_mount, ("cpu", "memory", "pids")))]
    left = [d for d in dirs if os.path.exists(d)]
    assert not left, f"cgroups left behind: {left}"


def limit(m, name, which):
    return m.read("vms", name, "limits", which).strip()


def set_limit(m, name, which, value):
    return m.write(m.vm(name, "limits", which), value + "\n")


def refused(m, name, which, value):
    with pytest.raises(OSError) as e:
        set_limit(m, name, which, value)
    return e.value.errno, m.read("vms", name, "error").splitlines()[-1]


def daemon_rlimit(m, what):
    return proc_limit(m.proc.pid, what)


# ------------------------------------------------------------------ the files


def test_the_files_and_what_they_say_before_any_start(mnt):
    mnt.make_vm("a")
    assert sorted(os.listdir(mnt.vm("a", "limits"))) == sorted(FILES)
    for f in FILES:
        assert stat.S_IMODE(os.stat(mnt.vm("a", "limits", f)).st_mode) == 0o644
    assert limit(mnt, "a", "cpu.max") == "max 100000"
    assert limit(mnt, "a", "memory.max") == "max"
    assert limit(mnt, "a", "pids.max") == "max"
    # unjailed, an unset rlimit is the daemon's own, which its VMM inherits
    assert limit(mnt, "a", "fsize") == daemon_rlimit(mnt, "Max file size")
    assert limit(mnt, "a", "nofile") == daemon_rlimit(mnt, "Max open files")
    assert "limits" not in json.loads(mnt.read("vms", "a", "config.json"))
    # grep -r and cat over the tree read them like any file
    r = mnt.sh("grep -r . vms/a/limits | sort", check=True)
    assert r.stdout.splitlines()[0] == "vms/a/limits/cpu.max:max 100000"


def test_sizes_are_true_and_a_write_is_seen_at_once(mnt):
    mnt.started_vm("a")
    for f in FILES:
        path = mnt.vm("a", "limits", f)
        data = open(path, "rb").read()
        assert os.stat(path).st_size == len(data) and data.endswith(b"\n"), f
    before = os.stat(mnt.vm("a", "limits", "nofile")).st_mtime_ns
    set_limit(mnt, "a", "nofile", "300")
    assert open(mnt.vm("a", "limits", "nofile")).read() == "300\n"  # no stale page
    assert os.stat(mnt.vm("a", "limits", "nofile")).st_mtime_ns > before


def test_a_write_is_kept_in_config_json_in_one_form(mnt):
    mnt.make_vm("a")
    for which, value, shown, kept in [("memory.max", "256M", "268435456", 268435456),
                                      ("cpu.max", "50000", "50000 100000", "50000 100000"),
                                      ("cpu.max", "max 20000", "max 20000", "max 20000"),
                                      ("cpu.max", "30000", "30000 20000", "30000 20000"),
                                      ("pids.max", "64", "64", 64),
                                      ("fsize", "1G", "1073741824", 1073741824),
                                      ("nofile", "1000", "1000", 1000),
                                      ("pids.max", "max", "max", "max")]:
        mnt.sh(f"echo {value} > vms/a/limits/{which}", check=True)
        assert limit(mnt, "a", which) == shown, which
        assert json.loads(mnt.read("vms", "a", "config.json"))["limits"][which] == kept
    # a config.json with the same limits is the same VM
    cfg = json.loads(mnt.read("vms", "a", "config.json"))
    mnt.make_vm("b", limits=cfg["limits"])
    for f in FILES:
        assert limit(mnt, "b", f) == limit(mnt, "a", f)


@pytest.mark.parametrize("which,value", [
    ("cpu.max", "lots"), ("cpu.max", "999 100000"), ("cpu.max", "50000 999"),
    ("cpu.max", "50000 100000 7"), ("cpu.max", ""), ("memory.max", "-1"),
    ("memory.max", "1000"), ("memory.max", "12X"), ("pids.max", "0"), ("pids.max", "many"),
    ("fsize", "1.5G"), ("nofile", "max"), ("nofile", "8"), ("nofile", "99999999999"),
    ("pids.max", "1\n2"),
])
def test_a_bad_value_is_einval_with_a_reason_and_changes_nothing(mnt, which, value):
    mnt.make_vm("a")
    set_limit(mnt, "a", "pids.max", "77")
    before = mnt.read("vms", "a", "config.json"), [limit(mnt, "a", f) for f in FILES]
    code, line = refused(mnt, "a", which, value)
    assert code == errno.EINVAL
    # a value with a control byte in it is refused as every control file refuses it
    why = "control byte" if "\n" in value else f"{which} must be"
    assert f"write limits/{which}: " in line and why in line, line
    assert (mnt.read("vms", "a", "config.json"), [limit(mnt, "a", f) for f in FILES]) == before


def test_config_json_limits_are_validated_when_written(mnt):
    mnt.make_vm("a")
    cfg = json.loads(mnt.read("vms", "a", "config.json"))
    for bad, says in [({"memory.max": "lots"}, "limits.memory.max must be"),
                      ({"cpu.max": 50000}, "limits.cpu.max must be"),
                      ({"swap.max": 1}, 'unknown field "limits.swap.max"'),
                      ("max", "limits must be an object")]:
        cfg["limits"] = bad
        r = mnt.sh(f"echo '{json.dumps(cfg)}' > vms/a/config.json")
        assert r.returncode != 0 and "Invalid argument" in r.stderr
        assert says in mnt.read("vms", "a", "error").splitlines()[-1]
    assert "limits" not in json.loads(mnt.read("vms", "a", "config.json"))


def test_the_manual_lists_the_files(mnt):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "limits.md")
    text = open(src).read()
    mnt.make_vm("a")
    for f in os.listdir(mnt.vm("a", "limits")):
        assert f"| `{f}` | 0644 |" in text, f"docs/limits.md does not describe {f}"


# ------------------------------------------------------------------ in the kernel


def test_unjailed_a_start_applies_them_and_a_write_changes_them_live(mnt):
    need_cgroups()
    mnt.make_vm("a", limits={"cpu.max": "20000 50000", "memory.max": "512M", "pids.max": 100,
                             "fsize": "1G", "nofile": 1000})
    mnt.ctl("a", "start")
    pid, vid = int(mnt.read("vms", "a", "pid")), vm_id(mnt, "a")
    want = {"cpu", "memory", "pids"} if cgroup_version() == 1 else {"unified"}
    assert want <= in_cgroup(pid, vid), open(f"/proc/{pid}/cgroup").read()
    assert kernel_value("cpu.max", vid) == "20000 50000" == limit(mnt, "a", "cpu.max")
    assert kernel_value("memory.max", vid) == "536870912" == limit(mnt, "a", "memory.max")
    assert kernel_value("pids.max", vid) == "100" == limit(mnt, "a", "pids.max")
    assert proc_limit(pid, "Max file size") == "1073741824" == limit(mnt, "a", "fsize")
    assert proc_limit(pid, "Max open files") == "1000" == limit(mnt, "a", "nofile")
    # live: the kernel's value changes, and config.json keeps it for the next start
    set_limit(mnt, "a", "cpu.max", "max")
    set_limit(mnt, "a", "memory.max", "1G")
    set_limit(mnt, "a", "pids.max", "64")
    set_limit(mnt, "a", "fsize", "2M")
    set_limit(mnt, "a", "nofile", "500")
    assert kernel_value("cpu.max", vid) == "max 50000" == limit(mnt, "a", "cpu.max")
    assert kernel_value("memory.max", vid) == "1073741824"
    assert kernel_value("pids.max", vid) == "64"
    assert proc_limit(pid, "Max file size") == "2097152" == limit(mnt, "a", "fsize")
    assert proc_limit(pid, "Max open files") == "500" == limit(mnt, "a", "nofile")
    assert json.loads(mnt.read("vms", "a", "config.json"))["limits"] == {
        "cpu.max": "max 50000", "memory.max": 1073741824, "pids.max": 64, "fsize": 2097152,
        "nofile": 500}
    mnt.ctl("a", "pause")
    set_limit(mnt, "a", "pids.max", "65")  # paused: the VMM is there all the same
    assert kernel_value("pids.max", vid) == "65"
    mnt.ctl("a", "resume")
    mnt.ctl("a", "stop")
    no_cgroup_left(vid)
    # stopped: the kept values
    assert limit(mnt, "a", "pids.max") == "65" and limit(mnt, "a", "nofile") == "500"
    mnt.ctl("a", "start")
    pid = int(mnt.read("vms", "a", "pid"))
    assert kernel_value("pids.max", vid) == "65"
    assert proc_limit(pid, "Max open files") == "500"


def test_a_limit_written_while_running_makes_the_cgroup_then(mnt):
    need_cgroups()
    mnt.started_vm("a")
    pid, vid = int(mnt.read("vms", "a", "pid")), vm_id(mnt, "a")
    assert not in_cgroup(pid, vid), "no limit: no cgroup of its own"
    assert limit(mnt, "a", "pids.max") == "max"
    set_limit(mnt, "a", "pids.max", "50")
    assert ("pids" if cgroup_version() == 1 else "unified") in in_cgroup(pid, vid)
    assert kernel_value("pids.max", vid) == "50" == limit(mnt, "a", "pids.max")
    mnt.ctl("a", "kill")
    no_cgroup_left(vid)


def test_a_value_the_kernel_refuses_fails_the_write_and_keeps_the_old(mnt):
    """An rlimit above the daemon's own hard limit needs CAP_SYS_RESOURCE; a host
    where the daemon has it raises it, else the write fails and changes nothing."""
    need_cgroups()
    mnt.started_vm("a")
    pid = int(mnt.read("vms", "a", "pid"))
    hard = int(open(f"/proc/{pid}/limits").read().split("Max open files")[1].split()[1])
    above = min(hard + 1000, 1048576)
    caps = int([line.split()[1] for line in open("/proc/self/status")
                if line.startswith("CapEff")][0], 16)
    if above <= hard or caps & (1 << 24):
        pytest.skip("the daemon may raise its hard limit here (CAP_SYS_RESOURCE)")
    before = mnt.read("vms", "a", "config.json")
    code, line = refused(mnt, "a", "nofile", str(above))
    assert code == errno.EACCES and "CAP_SYS_RESOURCE" in line, line
    assert proc_limit(pid, "Max open files") == limit(mnt, "a", "nofile") != str(above)
    assert mnt.read("vms", "a", "config.json") == before


def test_rmdir_and_unmount_leave_no_cgroup(request, tmp_path, kernel_file):
    need_cgroups()
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False)
    try:
        m.make_vm("a", limits={"pids.max": 10})
        m.make_vm("b", limits={"memory.max": "256M", "cpu.max": "max"})
        m.ctl("a", "start")
        m.ctl("b", "start")
        a, b = vm_id(m, "a"), vm_id(m, "b")
        assert kernel_value("pids.max", a) == "10"
        m.ctl("a", "kill")
        os.rmdir(m.vm("a"))
        no_cgroup_left(a)
    finally:
        stop_daemon(m)  # b still runs: the unmount ends it
        check_output(m, _allowed(request))
    no_cgroup_left(b)


def test_persisted_limits_outlast_the_mount(tmp_path, kernel_file):
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, extra_opts=["persist"], checks=False)
    try:
        m.make_vm("a")
        set_limit(m, "a", "pids.max", "42")
    finally:
        stop_daemon(m)
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, extra_opts=["persist"], checks=False)
    try:
        assert limit(m, "a", "pids.max") == "42"
    finally:
        stop_daemon(m)


# ------------------------------------------------------------------ jailed


def test_jailed_the_jailer_applies_them_at_the_same_paths(request, tmp_path, kernel_file):
    need_jailing()
    need_cgroups()
    m = jailed_mount(request, tmp_path, kernel_file)
    m.make_vm("b")
    assert limit(m, "b", "nofile") == "2048", "the jailer's own no-file, unless given"
    m.make_vm("a", limits={"cpu.max": "20000 50000", "memory.max": "512M", "pids.max": 100,
                           "fsize": "max", "nofile": 777})
    m.ctl("a", "start")
    pid, vid = int(m.read("vms", "a", "pid")), vm_id(m, "a")
    want = {"cpu", "memory", "pids"} if cgroup_version() == 1 else {"unified"}
    assert want <= in_cgroup(pid, vid)
    assert kernel_value("cpu.max", vid) == "20000 50000"
    assert kernel_value("memory.max", vid) == "536870912"
    assert kernel_value("pids.max", vid) == "100"
    assert proc_limit(pid, "Max file size") == "max" == limit(m, "a", "fsize")
    assert proc_limit(pid, "Max open files") == "777" == limit(m, "a", "nofile")
    set_limit(m, "a", "pids.max", "64")
    set_limit(m, "a", "cpu.max", "max")
    assert kernel_value("pids.max", vid) == "64" and kernel_value("cpu.max", vid) == "max 50000"
    # another uid's rlimits: with CAP_SYS_RESOURCE at once, else refused and kept as it was
    r = m.sh("echo 999 > vms/a/limits/nofile")
    if r.returncode == 0:
        assert proc_limit(pid, "Max open files") == "999"
    else:
        assert "Permission denied" in r.stderr
        assert "CAP_SYS_RESOURCE" in m.read("vms", "a", "error").splitlines()[-1]
        assert proc_limit(pid, "Max open files") == "777" == limit(m, "a", "nofile")
    m.ctl("b", "start")
    assert proc_limit(int(m.read("vms", "b", "pid")), "Max open files") == "2048"
    assert limit(m, "b", "nofile") == "2048"
    m.ctl("a", "kill")
    no_cgroup_left(vid)


# ------------------------------------------------------------------ a real VMM


def test_a_real_vmm_boots_and_runs_inside_its_limits(fc_mnt):
    """Firecracker itself (SMARTVMFS_FIRECRACKER) in a cgroup: 128 MiB of guest
    under a 512 MiB ceiling, half a CPU, 64 tasks, 1024 descriptors."""
    need_cgroups()
    m = fc_mnt
    m.make_vm("tiny", limits={"cpu.max": "50000 100000", "memory.max": "512M", "pids.max": 64,
                              "nofile": 1024})
    m.ctl("tiny", "start")
    pid, vid = int(m.read("vms", "tiny", "pid")), vm_id(m, "tiny")
    deadline = time.monotonic() + 10
    while "smartvm-guest: ready" not in m.read("vms", "tiny", "console"):
        assert time.monotonic() < deadline, "the guest did not print its line"
        time.sleep(0.05)
    assert kernel_value("memory.max", vid) == "536870912"
    assert kernel_value("cpu.max", vid) == "50000 100000"
    assert proc_limit(pid, "Max open files") == "1024"
    usage = "memory.current" if cgroup_version() == 2 else "memory.usage_in_bytes"
    used = int(open(os.path.join(cg_dir("memory", vid), usage)).read())
    assert 0 < used < 512 << 20, "the VMM's memory is counted in its cgroup"
    m.ctl("tiny", "stop")
    no_cgroup_left(vid)
