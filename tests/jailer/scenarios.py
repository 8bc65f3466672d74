"""The jailer scenarios: each runs a jailer (the real one, or the test double)
on the probe (probe.c) and reads back what it did, in a form that does not
depend on the run (times, pids and the temporary base directory masked).

record.py writes the real jailer's answers to a table (jailer-v1.5.1.json);
test_jailer.py runs the same scenarios on the test double and compares."""
import os
import re
import shutil
import subprocess
import time

UID, GID = 60100, 60101
CGROUP_V1 = "/sys/fs/cgroup"

# name -> (jailer arguments, extra arguments after --, what to set up first)
# {exec} is the probe, {base} the chroot base dir, {id} the scenario's jail id.
SCENARIOS = {
    "plain": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
               "--chroot-base-dir", "{base}"], ["--api-sock", "/run/fc.sock"], None),
    "limits-and-cgroup": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                           str(GID), "--chroot-base-dir", "{base}", "--cgroup-version", "1",
                           "--cgroup", "pids.max=100", "--parent-cgroup", "smartvmfs-jailtest",
                           "--resource-limit", "no-file=512", "--resource-limit", "fsize=1048576"],
                          [], None),
    # the limits as the mount passes them (docs/limits.md): cgroup v1 files under
    # its own parent cgroup, rlimits with "max" as the kernel's infinity
    "cgroups-v1-limits": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                           str(GID), "--chroot-base-dir", "{base}", "--cgroup-version", "1",
                           "--parent-cgroup", "smartvmfs-jailtest",
                           "--cgroup", "cpu.cfs_period_us=50000", "--cgroup", "cpu.cfs_quota_us=20000",
                           "--cgroup", "memory.limit_in_bytes=536870912", "--cgroup", "pids.max=64",
                           "--resource-limit", "fsize=18446744073709551615",
                           "--resource-limit", "no-file=777"], [], None),
    "cgroups-v1-unlimited": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                              str(GID), "--chroot-base-dir", "{base}", "--cgroup-version", "1",
                              "--parent-cgroup", "smartvmfs-jailtest",
                              "--cgroup", "cpu.cfs_quota_us=-1", "--cgroup", "memory.limit_in_bytes=-1",
                              "--cgroup", "pids.max=max"], [], None),
    "cgroup-exists": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                       "--chroot-base-dir", "{base}", "--parent-cgroup", "smartvmfs-jailtest",
                       "--cgroup", "pids.max=10"], [], "cgroup-exists"),
    "bad-cgroup-value": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                          str(GID), "--chroot-base-dir", "{base}", "--parent-cgroup",
                          "smartvmfs-jailtest", "--cgroup", "pids.max=lots"], [], None),
    "unknown-cgroup-file": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                             str(GID), "--chroot-base-dir", "{base}", "--parent-cgroup",
                             "smartvmfs-jailtest", "--cgroup", "pids.nosuch=1"], [], None),
    "cgroup-v2-on-v1": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                         str(GID), "--chroot-base-dir", "{base}", "--cgroup-version", "2",
                         "--parent-cgroup", "smartvmfs-jailtest", "--cgroup", "pids.max=10"],
                        [], None),
    "fsize-too-big": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                       str(GID), "--chroot-base-dir", "{base}", "--resource-limit",
                       "fsize=18446744073709551616"], [], None),
    "new-pid-ns": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                    "--chroot-base-dir", "{base}", "--new-pid-ns"], [], None),
    "daemonize": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                   "--chroot-base-dir", "{base}", "--daemonize"], ["--report"], None),
    "no-id": (["--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
               "--chroot-base-dir", "{base}"], [], None),
    "bad-id-char": (["--id", "a_b", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                     "--chroot-base-dir", "{base}"], [], None),
    "id-too-long": (["--id", "a" * 65, "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                     "--chroot-base-dir", "{base}"], [], None),
    "id-64": (["--id", "a" * 64, "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
               "--chroot-base-dir", "{base}"], [], None),
    "no-exec-file": (["--id", "{id}", "--exec-file", "{base}/nosuch-firecracker", "--uid", str(UID),
                      "--gid", str(GID), "--chroot-base-dir", "{base}"], [], None),
    "exec-name": (["--id", "{id}", "--exec-file", "{probe_plain}", "--uid", str(UID), "--gid",
                   str(GID), "--chroot-base-dir", "{base}"], [], None),
    "bad-uid": (["--id", "{id}", "--exec-file", "{exec}", "--uid", "x1", "--gid", str(GID),
                 "--chroot-base-dir", "{base}"], [], None),
    "bad-cgroup": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                    "--chroot-base-dir", "{base}", "--cgroup", "pids.max"], [], None),
    "unknown-controller": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                            str(GID), "--chroot-base-dir", "{base}", "--cgroup", "nosuch.max=1"],
                           [], None),
    "bad-limit": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                   "--chroot-base-dir", "{base}", "--resource-limit", "stack=1"], [], None),
    "bad-limit-value": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                         str(GID), "--chroot-base-dir", "{base}", "--resource-limit",
                         "no-file=many"], [], None),
    "unknown-arg": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                     "--chroot-base-dir", "{base}", "--frob"], [], None),
    "missing-netns": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid",
                       str(GID), "--chroot-base-dir", "{base}", "--netns", "{base}/nosuch-ns"],
                      [], None),
    "jail-exists": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                     "--chroot-base-dir", "{base}"], [], "jail-exists"),
    "devices-exist": (["--id", "{id}", "--exec-file", "{exec}", "--uid", str(UID), "--gid", str(GID),
                       "--chroot-base-dir", "{base}"], [], "devices-exist"),
}

TIMES = re.compile(r"^(arg \d+ )(\d+)$")


def normalise_report(text):
    out = []
    masked = False
    for line in text.splitlines():
        if line.startswith("path /report"):
            continue
        m = TIMES.match(line)
        if m and masked:
            line = m.group(1) + "N"
        masked = bool(re.match(r"^arg \d+ --(start-time-us|start-time-cpu-us|parent-cpu-time-us)$", line))
        out.append(line)
    head = [line for line in out if not line.startswith("path ")]
    paths = sorted(line for line in out if line.startswith("path "))
    return head + paths


def tree(root):
    """The jail as the host sees it: path, type, mode, owner."""
    rows = []
    for top, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            st = os.lstat(p)
            kind = ("dir" if os.path.isdir(p) and not os.path.islink(p) else
                    "chr" if (st.st_mode & 0o170000) == 0o020000 else
                    "link" if os.path.islink(p) else "file")
            rows.append(f"{os.path.relpath(p, root)} {kind} {st.st_mode & 0o7777:04o} "
                        f"{st.st_uid}:{st.st_gid}")
    return sorted(r for r in rows if not r.startswith("root/report "))


def error_line(stderr):
    """The jailer's reason, without the place in its sources."""
    m = re.search(r"Jailer error: (.*?)'?, src/", stderr) or re.search(r"Jailer error: (.*)", stderr)
    if m:
        return m.group(1).strip()
    m = re.search(r"panicked at '(.*)', src/", stderr)  # an unwrapped io::Error
    if m:
        return m.group(1).strip()
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    return lines[0].strip() if lines else ""


def cgroup_files(jail_id, parent):
    """v1 controllers that have PARENT/ID, and the value of pids.max there."""
    found = {}
    for ctl in sorted(os.listdir(CGROUP_V1)):
        d = os.path.join(CGROUP_V1, ctl, parent, jail_id)
        if os.path.isdir(d):
            v = None
            if os.path.exists(os.path.join(d, "pids.max")):
                v = open(os.path.join(d, "pids.max")).read().strip()
            found[ctl] = v
    return found


def cgroup_values(jail_id, parent, words):
    """What each --cgroup FILE=VALUE left in its controller's PARENT/ID/FILE."""
    found = {}
    for i, w in enumerate(words[:-1]):
        if w != "--cgroup" or "=" not in words[i + 1] or "." not in words[i + 1]:
            continue
        f = words[i + 1].split("=", 1)[0]
        ctl = f.split(".", 1)[0]
        p = os.path.join(CGROUP_V1, ctl, parent, jail_id, f)
        try:
            found[f] = open(p).read().strip()
        except OSError as e:
            found[f] = f"unreadable: {e.strerror}"
    return found


def cgroup_cleanup(jail_id, parent):
    for ctl in os.listdir(CGROUP_V1):
        for d in (os.path.join(CGROUP_V1, ctl, parent, jail_id), os.path.join(CGROUP_V1, ctl, parent)):
            if os.path.isdir(d) and not os.path.islink(d):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def run(jailer, name, exec_file, probe_plain, base):
    args, extra, setup = SCENARIOS[name]
    fill = {"id": f"jt-{name}", "exec": exec_file, "base": base, "probe_plain": probe_plain}
    words = [a.format(**fill) for a in args]
    argv = [jailer] + words + (["--"] + extra if extra else [])
    jail_id = words[words.index("--id") + 1] if "--id" in words else fill["id"]
    name_of_exec = os.path.basename(exec_file)
    jail = os.path.join(base, name_of_exec, jail_id)
    shutil.rmtree(jail, ignore_errors=True)
    if setup in ("jail-exists", "devices-exist"):
        os.makedirs(os.path.join(jail, "root"), exist_ok=True)
    if setup == "cgroup-exists":
        os.makedirs(os.path.join(CGROUP_V1, "pids", "smartvmfs-jailtest", jail_id), exist_ok=True)
    if setup == "devices-exist":
        os.makedirs(os.path.join(jail, "root", "dev", "net"), exist_ok=True)
        os.mknod(os.path.join(jail, "root", "dev", "net", "tun"), 0o20600, os.makedev(10, 200))
    parent = "smartvmfs-jailtest" if "--parent-cgroup" in args else name_of_exec
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    time.sleep(0.2)  # a daemonized or pid-namespaced child writes its report on its own
    root = os.path.join(jail, "root")
    answer = {"exit": p.returncode,
              "error": error_line(p.stderr).replace(base, "{base}") if p.returncode else ""}
    if p.returncode == 0:
        report = p.stdout
        if not report.strip() and os.path.exists(os.path.join(root, "report")):
            report = open(os.path.join(root, "report")).read()
        answer["report"] = normalise_report(report)
        answer["jail"] = tree(jail)
        pidfile = os.path.join(root, name_of_exec + ".pid")
        answer["pidfile"] = (bool(re.fullmatch(r"\d+", open(pidfile).read().strip()))
                             if os.path.exists(pidfile) else None)
        answer["cgroups"] = cgroup_files(jail_id, parent)
        if "--cgroup" in words:
            answer["cgroup_values"] = cgroup_values(jail_id, parent, words)
    cgroup_cleanup(jail_id, parent)
    shutil.rmtree(jail, ignore_errors=True)
    return answer
