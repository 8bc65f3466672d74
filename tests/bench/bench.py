#!/usr/bin/python3
"""smartvmfs benchmark suite (tests/bench/README.md).

Runs every figure of the benchmark issue against a reference measured in the
same run, interleaving subject and reference runs, and writes
OUT/results.json, OUT/results.md and OUT/start-latency.svg.

    bench.py --build BUILDDIR --out OUTDIR [--real FIRECRACKER] [--quick] [--only 2,3]

Everything it starts (mounts, processes, namespaces, temp files) is removed at
the end, also on Ctrl-C. Figures are reported, never asserted.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GUEST_LINE = b"smartvm-guest: ready"
BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off"

A = None  # parsed arguments
CLEANUPS = []  # callables, run in reverse at exit


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def now():
    return time.perf_counter()


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": len(xs)}


def ratio(a, b):
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def tool(name):
    p = os.path.join(A.build, "tests", "bench", name)
    if not os.path.exists(p):
        raise SystemExit(f"bench: {p} is missing: build first (tests/bench/run.sh does)")
    return p


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data if isinstance(data, bytes) else data.encode())
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def private_dirty_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def load_average():
    """The 1-minute load average: other work on a shared machine moves every
    ratio (the daemon's threads wait for a CPU more often than the direct client)."""
    try:
        return float(read_file("/proc/loadavg").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def make_tmp(prefix, base=None):
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    CLEANUPS.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


# ------------------------------------------------------------------ mounts


class Mount:
    """A smartvmfs daemon in the foreground on a fresh mountpoint."""

    def __init__(self, firecracker, extra="", data=None, flags=()):
        self.root = make_tmp("svmbench-")
        self.rt = make_tmp("svb-", "/dev/shm")  # short: socket paths
        self.path = os.path.join(self.root, "mnt")
        self.data = data or os.path.join(self.root, "data")
        os.mkdir(self.path)
        opts = f"firecracker={firecracker},runtimedir={self.rt}/rt,datadir={self.data}"
        if extra:
            opts += "," + extra
        self.logf = open(os.path.join(self.root, "daemon.log"), "wb")
        self.proc = subprocess.Popen([A.smartvmfs, "-f", *flags, "-o", opts, self.path],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        CLEANUPS.append(self.close)
        deadline = now() + 10
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None or now() > deadline:
                raise RuntimeError(f"smartvmfs did not mount: {self.log_text()}")
            time.sleep(0.01)

    def log_text(self):
        try:
            return read_file(os.path.join(self.root, "daemon.log")).decode(errors="replace")
        except OSError:
            return ""

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def close(self):
        if self.proc is None:
            return
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", self.path], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            subprocess.run(["fusermount3", "-u", "-z", self.path], stderr=subprocess.DEVNULL)
        self.proc = None
        self.logf.close()

    def new_vm(self, name, cfg):
        os.mkdir(self.p("vms", name))
        write_file(self.p("vms", name, "config.json"), json.dumps(cfg))

    def ctl(self, name, verb):
        write_file(self.p("vms", name, "ctl"), verb + "\n")


def vm_config(kernel, **more):
    cfg = {"bootSource": {"kernelImagePath": kernel, "bootArgs": BOOT_ARGS},
           "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}
    cfg.update(more)
    return cfg


def direct(vmm, runs=1, wait="running", parallel=0, steps=None, floor=0):
    """Runs fc-direct; returns its samples in ms (or wall times with parallel).
    steps: a list that gets (API ready, InstanceStart answered) in ms from the
    spawn, per sample."""
    d = make_tmp("svd-", "/dev/shm")
    cmd = [tool("fc-direct"), "--vmm", vmm, "--kernel", A.kernel, "--dir", d, "--runs", str(runs),
           "--wait", wait]
    if parallel:
        cmd += ["--parallel", str(parallel)]
    if floor:
        cmd += ["--floor", str(floor)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = []
    for line in r.stdout.splitlines():
        w = line.split()
        if w and w[0] == "sample":
            out.append(float(w[1]))
            if steps is not None and len(w) >= 4:
                steps.append((float(w[2]), float(w[3])))
        elif w and w[0] == "parallel":
            out.append((int(w[1]), float(w[2])))
        elif w and w[0] == "op":
            out.append((w[1], float(w[2])))
    if r.returncode != 0:
        log(f"fc-direct: {r.stderr.strip()}")
    return out


# ------------------------------------------------------------------ figures

RESULTS = []


def figure(num, name, unit, subject, reference, ref_name, mark, meets, **extra):
    f = {"figure": num, "name": name, "unit": unit, "subject": subject,
         "reference": reference, "reference_name": ref_name,
         "ratio": ratio(subject, reference) if reference else None,
         "mark": mark, "meets": meets}
    f.update(extra)
    RESULTS.append(f)
    r = f"{f['ratio']:.2f}x" if f["ratio"] else "-"
    s = subject["median"] if subject else None
    verdict = "reported" if meets is None else "met" if meets else "MISSED"
    log(f"figure {num} {name}: {s} {unit} ({r}) mark {mark}: {verdict}")
    return f


def start_mount_line(m, name, cfg):
    """Through the mount: write `start`, wait for the guest's line in console.
    Returns ms from the write of start to the line, or None."""
    m.new_vm(name, cfg)
    cfd = os.open(m.p("vms", name, "console"), os.O_RDONLY)
    ctl = os.open(m.p("vms", name, "ctl"), os.O_WRONLY)
    err = []

    def writer():
        try:
            os.write(ctl, b"start\n")
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=writer)
    t0 = now()
    th.start()
    got = None
    while now() - t0 < 10:
        if GUEST_LINE in os.pread(cfd, 4096, 0):
            got = (now() - t0) * 1e3
            break
        if err:
            break
        time.sleep(0.0001)
    th.join()
    os.close(ctl)
    os.close(cfd)
    if err:
        log(f"start {name}: {err[0]}")
    m.ctl(name, "kill")
    os.rmdir(m.p("vms", name))
    return got


def real_skipped():
    """Why the real Firecracker's figures (1, 9R to 11rR) cannot be measured
    here, or None: each boots a guest, which needs /dev/kvm."""
    if not A.real:
        return "no --real FIRECRACKER given"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no /dev/kvm: the real Firecracker cannot boot a guest on this host"
    return None


def fig1_real():
    why = real_skipped()
    if why:
        log(f"figure 1 skipped: {why}")
        RESULTS.append({"figure": 1, "name": "start latency, real Firecracker (write of start -> guest line)",
                        "skipped": why, "mark": "<= 1.1x"})
        return None
    runs = 10 if A.quick else 40
    m = Mount(A.real)
    cfg = vm_config(A.kernel)
    ours, ref = [], []
    for i in range(runs):
        ours.append(start_mount_line(m, f"r{i}", cfg))
        ref += direct(A.real, 1, "line")
    m.close()
    s, r = stats(ours), stats(ref)
    rt = ratio(s, r)
    figure(1, "start latency, real Firecracker (write of start -> guest line in console)", "ms",
           s, r, "fc-direct (spawn, same API requests with libcurl, guest line on stdout)",
           "<= 1.1x", rt is not None and rt <= 1.1, samples={"ours": ours, "reference": ref})
    return ours, ref


def fig2_emulator():
    runs = 20 if A.quick else 100
    m = Mount(A.emulator)
    cfg = json.dumps(vm_config(A.kernel))
    ours, ref, start_only, ref_steps = [], [], [], []
    for i in range(runs):
        name = f"e{i}"
        t0 = now()
        os.mkdir(m.p("vms", name))
        write_file(m.p("vms", name, "config.json"), cfg)
        t1 = now()
        m.ctl(name, "start")
        t2 = now()
        ours.append((t2 - t0) * 1e3)
        start_only.append((t2 - t1) * 1e3)
        m.ctl(name, "kill")
        os.rmdir(m.p("vms", name))
        ref += direct(A.emulator, 1, "running", steps=ref_steps)
    m.close()
    # the same steps in the daemon, from its log line of each start
    our_steps = [(float(b), float(a)) for a, b in re.findall(
        r": running \(pid \d+\) in ([\d.]+) ms \(API ready after ([\d.]+) ms\)", m.log_text())]
    steps = {"ours_api_ready": stats([x[0] for x in our_steps]),
             "ours_running": stats([x[1] for x in our_steps]),
             "reference_api_ready": stats([x[0] for x in ref_steps]),
             "reference_running": stats([x[1] for x in ref_steps])}
    s, r = stats(ours), stats(ref)
    rt = ratio(s, r)
    figure(2, "control path on the emulator (mkdir + config.json + start -> running)", "ms",
           s, r, "fc-direct (spawn, same API requests with libcurl, InstanceStart answered)",
           "<= 1.2x", rt is not None and rt <= 1.2, start_write_only=stats(start_only),
           steps_from_spawn_ms=steps,
           samples={"ours": ours, "reference": ref})
    return ours, ref


def pin_process(pid, cpus):
    """Every thread of pid to cpus (threads made later inherit their maker's)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass  # a thread that ended meanwhile


def fig3_cat_state():
    m = Mount(A.emulator)
    m.new_vm("c", vm_config(A.kernel))
    m.ctl("c", "start")
    # the same daemon with libfuse's single-threaded loop (-s): what is left of
    # the difference once the loop is the reference's
    m1 = Mount(A.emulator, flags=("-s",))
    m1.new_vm("c", vm_config(A.kernel))
    m1.ctl("c", "start")
    refdir = make_tmp("svmbench-minfuse-")
    mins, mins_mt = os.path.join(refdir, "st"), os.path.join(refdir, "mt")
    os.mkdir(mins)
    os.mkdir(mins_mt)
    procs = []
    for mp, extra in ((mins, []), (mins_mt, ["-o", "mt"])):
        p = subprocess.Popen([tool("minfuse")] + extra + [mp], stderr=subprocess.DEVNULL)
        procs.append((p, mp))
    shm = make_tmp("svb-tmpfs-", "/dev/shm")
    tmpfs_file = os.path.join(shm, "state")
    with open(tmpfs_file, "w") as f:
        f.write("running\n")
    deadline = now() + 5
    while not (os.path.ismount(mins) and os.path.ismount(mins_mt)) and now() < deadline:
        time.sleep(0.01)
    paths = {"ours": m.p("vms", "c", "state"), "ours_st": m1.p("vms", "c", "state"),
             "minfuse": os.path.join(mins, "state"),
             "minfuse_mt": os.path.join(mins_mt, "state"), "tmpfs": tmpfs_file}
    # Where the scheduler puts a server's thread against the reader decides the
    # time more than either program does: on this 2-core machine an open+read+
    # close costs minfuse 8 us on the reader's CPU and 15 us on the other, and
    # a free run flips between the two at the scheduler's whim (a run once
    # compared ours on the far CPU with minfuse on the near one: 1.95x). So
    # every server is also pinned to CPU 0 with the reader on CPU 0 ("same")
    # and on CPU 1 ("cross"), and the figure is the worse of those two ratios.
    servers = [m.proc.pid, m1.proc.pid] + [p.pid for p, _ in procs]
    cpus = sorted(os.sched_getaffinity(0))
    placements = [("free", None, None)]
    if len(cpus) >= 2:
        placements += [("same", cpus[0], cpus[0]), ("cross", cpus[0], cpus[1])]
    runs = {}
    try:
        assert read_file(paths["ours"]) == b"running\n"
        rounds, iters = (10, 300) if A.quick else (30, 1000)
        for name, server_cpu, reader_cpu in placements:
            for pid in servers:
                pin_process(pid, {server_cpu} if server_cpu is not None else set(cpus))
            runs[name] = subprocess.run(
                [tool("svmbench-tool"), "readloop", str(rounds), str(iters)] + list(paths.values()),
                capture_output=True, text=True, check=True,
                preexec_fn=(lambda c=reader_cpu: os.sched_setaffinity(0, {c})) if reader_cpu is not None else None)
    finally:
        for p, mp in procs:
            subprocess.run(["fusermount3", "-u", mp], stderr=subprocess.DEVNULL)
            p.wait(timeout=10)
        m.close()
        m1.close()

    def parse(out):
        by_path = {}
        for line in out.splitlines():
            w = line.split()
            if len(w) >= 2 and w[1] == "rounds":
                by_path.setdefault(w[0], {})["rounds"] = [int(x) / 1e3 for x in w[2:]]
            else:
                by_path.setdefault(w[0], {}).update(
                    {"median": int(w[1]) / 1e3, "min": int(w[2]) / 1e3, "max": int(w[3]) / 1e3,
                     "p10": int(w[4]) / 1e3, "p90": int(w[5]) / 1e3, "runs": int(w[6])})
        return {k: by_path[v] for k, v in paths.items()}

    by_place = {name: parse(r.stdout) for name, r in runs.items()}

    def place_ratio(res):
        refk = min(("minfuse", "minfuse_mt"), key=lambda k: res[k]["median"])
        return ratio(res["ours"], res[refk])

    pinned = [n for n in ("same", "cross") if n in by_place]
    worst = max(pinned, key=lambda n: place_ratio(by_place[n])) if pinned else "free"
    res = by_place[worst]
    # the faster of the two loops is the reference ("as fast as libfuse allows")
    refk = min(("minfuse", "minfuse_mt"), key=lambda k: res[k]["median"])
    ours, ref, tmpfs = res["ours"], res[refk], res["tmpfs"]
    per_round = [o / f for o, f in zip(ours["rounds"], res[refk]["rounds"])]
    rt = ratio(ours, ref)
    figure(3, f"cat state (open, read, close), always fresh ({worst} CPU, the worse placement)", "us",
           {k: ours[k] for k in ("median", "min", "max", "runs")},
           {k: ref[k] for k in ("median", "min", "max", "runs")},
           f"minimal low-level libfuse server, constant 8-byte file ({'multi' if refk.endswith('mt') else 'single'}-threaded loop)",
           "<= 1.2x", rt is not None and rt <= 1.2,
           ratio_to_tmpfs=ratio(ours, tmpfs), reference_ratio_to_tmpfs=ratio(ref, tmpfs),
           tmpfs={k: tmpfs[k] for k in ("median", "min", "max", "runs")},
           ratio_per_round_median=statistics.median(per_round),
           ratio_to_minfuse_mt=ratio(ours, res["minfuse_mt"]),
           single_threaded_ratio=ratio(res["ours_st"], res["minfuse"]),
           ratio_by_placement={n: place_ratio(r) for n, r in by_place.items()},
           detail_by_placement=by_place)


def fig4_5_many():
    """Figures 4 (200 starts at once; private memory per running VM) and 5."""
    n = 200
    runs = 2 if A.quick else 5
    m = Mount(A.emulator)
    cfg = json.dumps(vm_config(A.kernel))
    names = [f"p{i}" for i in range(n)]
    for nm in names:
        os.mkdir(m.p("vms", nm))
        write_file(m.p("vms", nm, "config.json"), cfg)
    pid = m.proc.pid
    pd0 = private_dirty_kib(pid)
    fds0 = len(os.listdir(f"/proc/{pid}/fd"))
    rates, refrates, pd_running, lat, fds_running = [], [], [], [], []
    walls, floor_walls, floor_thr_walls, start_floor_walls = [], [], [], []
    log_at = len(m.log_text())
    for r in range(runs):
        res = subprocess.run([tool("svmbench-tool"), "parwrite", "start"] +
                             [m.p("vms", nm, "ctl") for nm in names],
                             capture_output=True, text=True)
        ok, wall = 0, None
        for line in res.stdout.splitlines():
            w = line.split()
            if w[0] == "ok":
                ok, wall = int(w[1]), float(w[3])
            elif w[0] == "lat" and r == 0:
                lat.append(float(w[1]))
        if ok != n:
            log(f"parallel start: {ok}/{n} ok: {res.stderr.strip()[:400]}")
        rates.append(ok / (wall / 1e3) if wall else None)
        walls.append(wall if ok == n else None)
        time.sleep(0.5)
        pd_running.append(private_dirty_kib(pid))
        fds_running.append(len(os.listdir(f"/proc/{pid}/fd")))
        write_file(m.p("ctl"), "cleanup\n")
        for ok_ref, wall_ref in direct(A.emulator, 1, "running", parallel=n):
            refrates.append(ok_ref / (wall_ref / 1e3))
        for ok_ref, wall_ref in direct(A.emulator, 1, "api", floor=n):
            floor_walls.append(wall_ref if ok_ref == n else None)
        for ok_ref, wall_ref in direct(A.emulator, 1, "running", floor=n):
            start_floor_walls.append(wall_ref if ok_ref == n else None)
        for ok_ref, wall_ref in direct(A.emulator, 1, "api", parallel=n):
            floor_thr_walls.append(wall_ref if ok_ref == n else None)
    burst_steps = [(float(b), float(a)) for a, b in re.findall(
        r": running \(pid \d+\) in ([\d.]+) ms \(API ready after ([\d.]+) ms\)",
        m.log_text()[log_at:])]
    m.close()
    s, rf = stats(rates), stats(refrates)
    figure(4, "200 VMs started at once through the mount (emulator)", "starts/s", s, rf,
           "fc-direct, 200 threads at once (spawn, same API requests)",
           ">= 100/s", bool(s and s["median"] >= 100), start_latency_ms=stats(lat))
    # the floor is the faster of two ways to spawn 200 VMMs and ask each GET /:
    # from one thread with one poll loop, or a thread each (spawns on both CPUs)
    w, fev, fthr = stats(walls), stats(floor_walls), stats(floor_thr_walls)
    fw = min((x for x in (fev, fthr) if x), key=lambda x: x["median"], default=None)
    rt = ratio(w, fw)
    figure("4f", "200 VMs started at once: the burst's wall time over the machine's floor", "ms",
           w, fw, "the floor: 200 VMMs spawned at once, each answering GET /, no daemon "
           f"({'one poll loop' if fw is fev else 'a thread each'})",
           "<= 1.2x", rt is not None and rt <= 1.2, floor_poll_loop=fev, floor_threads=fthr,
           start_floor=stats(start_floor_walls),
           steps_from_spawn_ms={"api_ready": stats([x[0] for x in burst_steps]),
                                "running": stats([x[1] for x in burst_steps])})
    pdr = stats(pd_running)
    per_vm = pdr["median"] / n
    delta = (pdr["median"] - pd0) / n
    figure("5c", "daemon Private_Dirty per running VM (200 running)", "KiB",
           {"median": per_vm, "min": pdr["min"] / n, "max": pdr["max"] / n, "runs": pdr["runs"]},
           None, None, "< 64 KiB", per_vm < 64,
           private_dirty_kib_total=pdr, private_dirty_kib_before_start=pd0,
           first_burst_per_vm_kib=pd_running[0] / n, private_dirty_kib_per_burst=pd_running,
           per_vm_increase_kib=delta)
    fd = stats([(f - fds0) / n for f in fds_running])
    figure("5d", "daemon descriptors per running VM (200 running)", "fds", fd, None, None,
           "<= 3", fd["median"] <= 3, descriptors_before_start=fds0,
           descriptors_per_burst=fds_running)

    # figure 5: 1000 VMs created
    m = Mount(A.emulator)
    for i in range(1000):
        os.mkdir(m.p("vms", f"v{i:04d}"))
    ref = make_tmp("svb-ls-", "/dev/shm")
    for i in range(1000):
        os.mkdir(os.path.join(ref, f"v{i:04d}"))
    ls_ours, ls_ref, ls_warm = [], [], []
    runs = 5 if A.quick else 10
    for r in range(runs):
        time.sleep(1.1)  # the VM directories' attributes (1 s) have expired: as a user sees it
        for target, acc in ((m.p("vms"), ls_ours), (ref, ls_ref)):
            t0 = now()
            subprocess.run(["ls", "-l", target], stdout=subprocess.DEVNULL, check=True)
            acc.append((now() - t0) * 1e3)
        t0 = now()
        subprocess.run(["ls", "-l", m.p("vms")], stdout=subprocess.DEVNULL, check=True)
        ls_warm.append((now() - t0) * 1e3)
    rss = rss_kib(m.proc.pid)
    m.close()
    s = stats(ls_ours)
    figure("5a", "ls -l vms with 1000 VMs", "ms", s, stats(ls_ref), "ls -l of 1000 directories on tmpfs",
           "< 50 ms", s["median"] < 50, warm_cache=stats(ls_warm))
    figure("5b", "daemon RSS with 1000 VMs created", "MiB",
           {"median": rss / 1024, "min": rss / 1024, "max": rss / 1024, "runs": 1}, None, None,
           "< 32 MiB", rss / 1024 < 32)


def wait_state(m, name, want, timeout=5):
    deadline = now() + timeout
    while read_file(m.p("vms", name, "state")).decode().strip() != want:
        if now() > deadline:
            raise RuntimeError(f"{name} is not {want}")
        time.sleep(0.001)


class FuseVerbFloor:
    """The floor of figure 11: the same verbs written to the ctl of a minimal
    FUSE server (minfuse -o api, single- and multi-threaded loop) that sends
    each as the bare request to a booted VMM of its own (fc-direct --wait
    hold): what any filesystem interface to the API costs, before anything
    smartvmfs does. ctls: loop name -> its ctl path (none if it could not be
    set up: the figure then says so)."""

    def __init__(self, vmm):
        self.ctls, self.procs = {}, []
        d = make_tmp("svf-", "/dev/shm")
        self.hold = subprocess.Popen([tool("fc-direct"), "--vmm", vmm, "--kernel", A.kernel, "--dir", d,
                                      "--wait", "hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.hold.stdout.readline().split()
        if len(line) != 2 or line[0] != "hold":
            log("figure 11's FUSE floor: fc-direct --wait hold could not boot a VMM")
            return
        for k, extra in (("st", []), ("mt", ["-o", "mt"])):
            mp = os.path.join(make_tmp("svf-mnt-"), k)
            os.mkdir(mp)
            p = subprocess.Popen([tool("minfuse"), "-o", f"api={line[1]}"] + extra + [mp],
                                 stderr=subprocess.DEVNULL)
            self.procs.append((p, mp))
            deadline = now() + 5
            while not os.path.ismount(mp) and now() < deadline and p.poll() is None:
                time.sleep(0.01)
            if os.path.ismount(mp):
                self.ctls[k] = os.path.join(mp, "ctl")

    def close(self):
        for p, mp in self.procs:
            subprocess.run(["fusermount3", "-u", mp], stderr=subprocess.DEVNULL)
            p.wait(timeout=10)
        self.procs = []
        if self.hold.poll() is None:
            self.hold.stdin.close()
            self.hold.wait(timeout=10)


def fig9_11_snapshots(vmm=None):
    """Figures 9 (restore -> running), 10 (10 clones of one snapshot at once)
    and 11 (pause, snapshot, resume), each against the bare Firecracker API
    requests of fc-direct, interleaved; on the emulator, or (vmm given) on a
    real Firecracker, as figures 9R, 10R, 11pR ... The snapshots are written
    where fc-direct writes its own, in /dev/shm: both pay the same
    filesystem (a real guest's 128 MiB memory file took 13x longer to write
    to this host's disk than to tmpfs)."""
    real = vmm is not None
    vmm = vmm or A.emulator
    sfx, where = ("R", "real Firecracker") if real else ("", "emulator")
    runs = (5 if A.quick else 20) if real else (10 if A.quick else 40)
    m = Mount(vmm)
    snaps = make_tmp("svs-", "/dev/shm")
    snap = os.path.join(snaps, "snap")
    m.new_vm("s", vm_config(A.kernel))
    m.ctl("s", "start")
    m.ctl("s", "pause")
    m.ctl("s", f"snapshot {snap}")
    m.ctl("s", "kill")
    ours, ref = [], []
    for i in range(runs):
        t0 = now()
        m.ctl("s", f"restore {snap} resume")
        ours.append((now() - t0) * 1e3)
        m.ctl("s", "kill")
        ref += direct(vmm, 1, "restore")
    s, r = stats(ours), stats(ref)
    rt = ratio(s, r)
    figure(f"9{sfx}", f"snapshot restore -> running (restore DIR resume, {where})", "ms", s, r,
           "fc-direct: a fresh VMM, PUT /snapshot/load resumed", "<= 1.1x",
           rt is not None and rt <= 1.1, samples={"ours": ours, "reference": ref})

    k = 10
    cl_ours, cl_ref, cl_loop = [], [], []
    for r_ in range(3 if A.quick else 8):
        names = [f"c{r_}-{i}" for i in range(k)]
        for nm in names:
            os.mkdir(m.p("vms", nm))
        res = subprocess.run([tool("svmbench-tool"), "parwrite", f"restore {snap} resume"] +
                             [m.p("vms", nm, "ctl") for nm in names], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            w = line.split()
            if w[0] == "ok":
                cl_ours.append(float(w[3]) if int(w[1]) == k else None)
        if res.returncode != 0:
            log(f"clones: {res.stderr.strip()[:300]}")
        for nm in names:
            m.ctl(nm, "kill")
            os.rmdir(m.p("vms", nm))
        for ok_ref, wall_ref in direct(vmm, 1, "restore", parallel=k):
            cl_ref.append(wall_ref if ok_ref == k else None)
        for ok_ref, wall_ref in direct(vmm, 1, "restore", floor=k):
            cl_loop.append(wall_ref if ok_ref == k else None)
    # the reference is the faster of a thread per VMM and one poll loop for all
    s, thr, loop = stats(cl_ours), stats(cl_ref), stats(cl_loop)
    r = min((x for x in (thr, loop) if x), key=lambda x: x["median"], default=None)
    rt = ratio(s, r)
    figure(f"10{sfx}", f"10 clones of one snapshot restored at once (total wall time, {where})", "ms", s, r,
           "10 fresh VMMs at once, each PUT /snapshot/load resumed "
           f"({'fc-direct --floor 10: one poll loop' if r is loop else 'fc-direct: a thread each'})",
           "<= 1.2x", rt is not None and rt <= 1.2, reference_threads=thr, reference_poll_loop=loop)

    m.ctl("s", "start")
    snap2 = os.path.join(snaps, "snap2")
    verbs = (("pause", "pause"), ("snapshot", f"snapshot {snap2}"), ("resume", "resume"))
    floors = FuseVerbFloor(vmm)
    ops = {"pause": [], "snapshot": [], "resume": []}
    ops_ref = {"pause": [], "snapshot": [], "resume": []}
    ops_floor = {k: {"pause": [], "snapshot": [], "resume": []} for k in floors.ctls}
    try:
        for _ in range((2 if A.quick else 4) if real else (4 if A.quick else 10)):
            for _ in range(5):
                for verb, arg in verbs:
                    t0 = now()
                    m.ctl("s", arg)
                    ops[verb].append((now() - t0) * 1e3)
            for verb, ms in direct(vmm, 5, "ops"):
                ops_ref[verb].append(ms)
            for k, ctl in floors.ctls.items():
                for _ in range(5):
                    for verb, arg in verbs:
                        t0 = now()
                        write_file(ctl, f"{arg}.floor-{k}\n" if verb == "snapshot" else arg + "\n")
                        ops_floor[k][verb].append((now() - t0) * 1e3)
    finally:
        floors.close()
    m.close()
    for verb in ("pause", "snapshot", "resume"):
        s, r = stats(ops[verb]), stats(ops_ref[verb])
        rt = ratio(s, r)
        fl = {k: stats(v[verb]) for k, v in ops_floor.items() if v[verb]}
        floor_k = min(fl, key=lambda k: fl[k]["median"]) if fl else None
        floor = fl.get(floor_k)
        figure(f"11{verb[0]}{sfx}", f"`{verb}` write to ctl -> done (running VM, {where})", "ms", s, r,
               f"fc-direct: the bare request ({'PUT /snapshot/create, full' if verb == 'snapshot' else 'PATCH /vm'}) "
               "over a kept connection", "<= 1.1x", rt is not None and rt <= 1.1,
               fuse_floor=floor, fuse_floor_loop=floor_k,
               fuse_floor_to_bare=ratio(floor, r) if floor else None,
               ours_to_fuse_floor=ratio(s, floor) if floor else None)


def fig12_exit():
    """Figure 12: a VMM's end seen by a waiting `events` reader and by poll(),
    from the kill; the reference is a pidfd of the same process, polled at the
    same time (the kernel's own notice of the end)."""
    runs = 10 if A.quick else 30
    m = Mount(A.emulator)
    m.new_vm("x", vm_config(A.kernel))
    got = {"read": ([], []), "poll": ([], [])}
    for i in range(runs):
        for mode in ("read", "poll"):
            m.ctl("x", "start")
            pid = read_file(m.p("vms", "x", "pid")).decode().strip()
            r = subprocess.run([tool("svmbench-tool"), "exitwait", mode, m.p("vms", "x", "events"),
                                pid], capture_output=True, text=True)
            w = r.stdout.split()
            if r.returncode == 0 and len(w) == 3:
                got[mode][0].append(float(w[1]))
                got[mode][1].append(float(w[2]))
            else:
                log(f"exitwait {mode}: {r.stderr.strip()}")
            wait_state(m, "x", "error")
    m.close()
    for mode, label in (("read", "a waiting read (events opened read-write)"),
                        ("poll", "poll() on events (opened read-only)")):
        s, r = stats(got[mode][0]), stats(got[mode][1])
        figure(f"12{mode[0]}", f"VMM end (SIGKILL) seen by {label}", "us", s, r,
               "a pidfd of the VMM polled at the same time", "reported", None,
               after_pidfd_us=stats([a - b for a, b in zip(*got[mode])]))


def du_bytes(path):
    """Allocated bytes and inodes under path (no link followed)."""
    total, inodes = 0, 0
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                st = os.lstat(os.path.join(d, n))
            except OSError:
                continue
            total += st.st_blocks * 512
            inodes += 1
    return total, inodes


def fig14_jailed():
    """Start latency jailed vs unjailed, the same static emulator both sides
    (the jail's own cost), and what a jail holds while its VM runs."""
    if not (A.jailer and A.static_emulator) or os.geteuid() != 0:
        RESULTS.append({"figure": 14, "name": "jailed start", "mark": "reported",
                        "skipped": "needs root, the jailer double and the static emulator"})
        log("figure 14 skipped: needs root, tests/jailer/jailer and the static emulator")
        return
    runs = 20 if A.quick else 100
    mj = Mount(A.static_emulator, f"jailer={A.jailer}")
    mu = Mount(A.static_emulator)
    cfg = json.dumps(vm_config(A.kernel))
    starts = {"j": [], "u": []}
    ends = {"j": [], "u": []}
    cost = []
    for i in range(runs):
        for key, m in (("j", mj), ("u", mu)):
            name = f"v{i}"
            os.mkdir(m.p("vms", name))
            write_file(m.p("vms", name, "config.json"), cfg)
            t0 = now()
            m.ctl(name, "start")
            starts[key].append((now() - t0) * 1e3)
            if key == "j" and i < 5:
                rundir = read_file(m.p("vms", name, "runtime")).decode().strip()
                cost.append(du_bytes(os.path.join(rundir, "jail")))
            t0 = now()
            m.ctl(name, "kill")
            os.rmdir(m.p("vms", name))
            ends[key].append((now() - t0) * 1e3)
    mj.close()
    mu.close()
    s, r = stats(starts["j"]), stats(starts["u"])
    figure("14", "start jailed (-o jailer, the jailer double) -> running, static emulator", "ms",
           s, r, "the same start unjailed, same static emulator, interleaved", "reported", None,
           samples={"ours": starts["j"], "reference": starts["u"]})
    s, r = stats(ends["j"]), stats(ends["u"])
    figure("14e", "kill + rmdir of a jailed VM (jail removed, uid given back)", "ms", s, r,
           "the same unjailed, interleaved", "reported", None)
    b = sorted(c[0] for c in cost)[len(cost) // 2]
    n = sorted(c[1] for c in cost)[len(cost) // 2]
    figure("14c", "a running VM's jail: bytes allocated (the VMM's copy, device nodes, links)",
           "KiB", {"median": round(b / 1024, 1), "min": round(b / 1024, 1),
                   "max": round(b / 1024, 1), "runs": len(cost)}, None, None, "reported", None,
           inodes=n)


def timed_mount(data, expect_vms):
    """A mount with -o persist on data (and the listing of its VMs, expect_vms
    of them) timed from the daemon's spawn; returns (Mount, ms)."""
    t0 = now()
    m = Mount(A.emulator, "persist", data)
    while len(os.listdir(m.p("vms"))) < expect_vms:
        time.sleep(0.001)
    return m, (now() - t0) * 1e3


def timed_unmount(m):
    t0 = now()
    m.close()
    return (now() - t0) * 1e3


def fig5_many_vms():
    """Figure 5 at scale: 10,000 VMs created (-o persist, so the next mount
    makes them again), 1,000 of them running."""
    n, running = (2000, 200) if A.quick else (10000, 1000)
    base = make_tmp("svmbench-10k-")
    extra = os.path.join(base, "data")
    m, empty_mount = timed_mount(extra, 0)
    rss0 = rss_kib(m.proc.pid)
    empty_unmount = timed_unmount(m)
    m, _ = timed_mount(extra, 0)
    t0 = now()
    for i in range(n):
        os.mkdir(m.p("vms", f"v{i:05d}"))
    mkdir_ms = (now() - t0) * 1e3 / n
    ref = make_tmp("svb-ls-", "/dev/shm")
    for i in range(n):
        os.mkdir(os.path.join(ref, f"v{i:05d}"))
    ls_ours, ls_ref = [], []
    for _ in range(3 if A.quick else 5):
        time.sleep(1.1)  # the 1 s attributes have expired
        for target, acc in ((m.p("vms"), ls_ours), (ref, ls_ref)):
            t0 = now()
            subprocess.run(["ls", "-l", target], stdout=subprocess.DEVNULL, check=True)
            acc.append((now() - t0) * 1e3)
    rss = rss_kib(m.proc.pid)
    unmount = timed_unmount(m)
    m, mount = timed_mount(extra, n)
    cfg = json.dumps(vm_config(A.kernel))
    names = [f"v{i:05d}" for i in range(running)]
    for nm in names:
        write_file(m.p("vms", nm, "config.json"), cfg)
    res = subprocess.run([tool("svmbench-tool"), "parwrite", "start"] +
                         [m.p("vms", nm, "ctl") for nm in names], capture_output=True, text=True)
    ok = next((int(l.split()[1]) for l in res.stdout.splitlines() if l.startswith("ok ")), 0)
    rss_running = rss_kib(m.proc.pid)
    unmount_running = timed_unmount(m)
    s = stats(ls_ours)
    rt = ratio(s, stats(ls_ref))
    figure("5e", f"ls -l vms with {n} VMs", "ms", s, stats(ls_ref),
           f"ls -l of {n} directories on tmpfs", "<= 2.5x", rt is not None and rt <= 2.5,
           mkdir_ms_per_vm=mkdir_ms)
    one = lambda x: {"median": x, "min": x, "max": x, "runs": 1}
    figure("5f", f"daemon RSS with {n} VMs created", "MiB", one(rss / 1024), None, None,
           "< 128 MiB", rss / 1024 < 128, rss_empty_kib=rss0,
           rss_with_running_kib=rss_running, running=ok)
    per_vm = (rss - rss0) / n
    figure("5g", f"daemon RSS per VM ({n} created, less the empty mount)", "KiB", one(per_vm),
           None, None, "< 32 KiB", per_vm < 32)
    figure("5h", f"mount with {n} VMs kept (-o persist), until vms/ lists them all", "ms",
           one(mount), one(empty_mount), "the same mount with no VMs", "reported", None)
    figure("5i", f"unmount with {n} VMs created", "ms", one(unmount), one(empty_unmount),
           "the unmount of an empty mount", "reported", None)
    figure("5j", f"unmount with {n} VMs, {ok} of them running", "ms", one(unmount_running),
           one(empty_unmount), "the unmount of an empty mount", "reported", None)


def fig6_stage():
    work = make_tmp("svmbench-stage-", "/var/tmp")
    src = os.path.join(work, "drive.img")
    # a 1 GiB sparse drive holding 64 MiB of data in 16 extents of 4 MiB
    with open(src, "wb") as f:
        f.truncate(1 << 30)
        for i in range(16):
            f.seek(i * (64 << 20))
            f.write(os.urandom(4 << 20))
    dst = make_tmp("svb-stage-", "/dev/shm")  # where a VM's runtime directory is
    runs = 4 if A.quick else 10
    r = subprocess.run([tool("core-bench"), "stage", src, dst, str(runs)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        log(f"core-bench stage: {r.stderr.strip()}")
    ours, ref, bo, br = [], [], set(), set()
    for line in r.stdout.splitlines():
        w = line.split()
        (ours if w[0] == "stage" else ref).append(float(w[1]))
        (bo if w[0] == "stage" else br).add(int(w[2]))
    s, rf = stats(ours), stats(ref)
    rt = ratio(s, rf)
    same = bo == br and len(bo) == 1
    figure(6, "staging a 1 GiB sparse drive with 64 MiB of data (to tmpfs)", "ms", s, rf,
           "cp --sparse=always", "<= 1.05x, same blocks", rt is not None and rt <= 1.05 and same,
           blocks_ours=sorted(bo), blocks_cp=sorted(br), same_blocks=same)


def fig7_image():
    work = make_tmp("svmbench-image-", "/var/tmp")
    runs = 10 if A.quick else 50
    r = subprocess.run([tool("core-bench"), "image", work, str(runs)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        log(f"core-bench image: {r.stderr.strip()}")
    got = {"apply": [], "fetch": [], "stat": [], "setup_fetch": []}
    for line in r.stdout.splitlines():
        w = line.split()
        got[w[0]].append(float(w[1]))
    s = stats(got["apply"])
    figure(7, "cached base-image hit, 1 GiB bundle (images_apply of a start)", "ms", s,
           stats(got["stat"]), "stat() of both cached artifacts (the floor)", "< 5 ms",
           bool(s and s["median"] < 5), fetch_manifest_hit=stats(got["fetch"]),
           first_fetch_ms=got["setup_fetch"][0] if got["setup_fetch"] else None)


def fig8_net():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables"):
        RESULTS.append({"figure": 8, "name": "networking", "mark": "<= 1.3x; nothing left behind",
                        "skipped": "needs root, unshare and iptables"})
        log("figure 8 skipped: needs root, unshare and iptables")
        return
    cmd = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--net-child",
           "--build", A.build, "--out", A.out] + (["--quick"] if A.quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    sys.stderr.write(r.stderr)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        RESULTS.append({"figure": 8, "name": "networking", "error": r.stdout[-500:]})
        return
    s, rf = res["net"], res["nonet"]
    figure(8, "100 VMs with automatic networking created, started, killed, destroyed "
              "(emulator, private netns)", "ms/VM", s, rf,
           "the same without a network interface", "<= 1.3x; nothing left behind",
           res["leftovers"] == [] and res["errors"] == 0 and (ratio(s, rf) or 99) <= 1.3,
           leftovers=res["leftovers"],
           kernel_tap_ops=res["ip"],
           phases=res["phases"], errors=res["errors"], unmount_ms=res.get("unmount_ms"))


def net_child():
    """Inside `unshare -n`: figure 8. Prints JSON on stdout."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def snapshot():
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        # rules and our own chains; not the empty tables iptables itself loads
        builtin = (":INPUT ", ":OUTPUT ", ":FORWARD ", ":PREROUTING ", ":POSTROUTING ")
        rules = [l for l in rules.splitlines()
                 if l.startswith("-") or (l.startswith(":") and not l.startswith(builtin))]
        fwd = read_file("/proc/sys/net/ipv4/ip_forward").decode().strip()
        return {"links": sorted(l.split(":")[1].strip() for l in links.splitlines()),
                "rules": rules, "ip_forward": fwd}

    before = snapshot()
    n = 20 if A.quick else 100
    m = Mount(A.emulator)
    errors = 0
    out, phases = {}, {}
    try:
        for kind in ("net", "nonet", "net", "nonet"):
            extra = {"networkInterfaces": [{"ifaceId": "eth0"}]} if kind == "net" else {}
            cfg = json.dumps(vm_config(A.kernel, **extra))
            names = [f"{kind}{len(out.get(kind, []))}-{i}" for i in range(n)]
            t0 = now()
            for nm in names:
                try:
                    os.mkdir(m.p("vms", nm))
                    write_file(m.p("vms", nm, "config.json"), cfg)
                    m.ctl(nm, "start")
                except OSError as e:
                    errors += 1
                    log(f"net {nm}: {e}")
            t1 = now()
            for nm in names:
                try:
                    m.ctl(nm, "kill")
                    os.rmdir(m.p("vms", nm))
                except OSError as e:
                    errors += 1
                    log(f"net {nm} destroy: {e}")
            t2 = now()
            out.setdefault(kind, []).append((t2 - t0) * 1e3 / n)
            phases.setdefault(kind, []).append({"create_start_ms_per_vm": (t1 - t0) * 1e3 / n,
                                                "kill_destroy_ms_per_vm": (t2 - t1) * 1e3 / n})
    finally:
        t0 = now()
        m.close()
        unmount_ms = (now() - t0) * 1e3
    # the kernel's own cost: the same TAP and bridge operations from one `ip -batch`
    ref = []
    for _ in range(2):
        cmds = ["link add svbref type bridge", "link set svbref up"]
        for i in range(n):
            cmds += [f"tuntap add dev svref{i} mode tap", f"link set svref{i} master svbref",
                     f"link set svref{i} up"]
        t0 = now()
        subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)
        t1 = now()
        dels = [f"link del svref{i}" for i in range(n)] + ["link del svbref"]
        subprocess.run(["ip", "-batch", "-"], input="\n".join(dels) + "\n", text=True, check=True)
        t2 = now()
        ref.append({"create_ms_per_vm": (t1 - t0) * 1e3 / n, "delete_ms_per_vm": (t2 - t1) * 1e3 / n,
                    "total": (t2 - t0) * 1e3 / n})
    phases["ip_batch"] = ref
    after = snapshot()
    left = []
    for k in ("links", "rules"):
        left += [f"{k}: {x}" for x in after[k] if x not in before[k]]
    if after["ip_forward"] != before["ip_forward"]:
        left.append(f"ip_forward {before['ip_forward']} -> {after['ip_forward']}")
    if os.path.exists(m.rt + "/rt") and os.listdir(m.rt + "/rt"):
        left.append(f"runtime dir not empty: {os.listdir(m.rt + '/rt')}")
    print(json.dumps({"net": stats(out["net"]), "nonet": stats(out["nonet"]),
                      "ip": stats([r["total"] for r in ref]), "phases": phases,
                      "leftovers": left, "errors": errors, "unmount_ms": unmount_ms}))


# ------------------------------------------------------------------ output


def fmt(x, unit):
    if x is None:
        return "-"
    return f"{x['median']:.3g} [{x['min']:.3g}–{x['max']:.3g}] ×{x['runs']}"


def write_outputs(meta):
    os.makedirs(A.out, exist_ok=True)
    with open(os.path.join(A.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "figures": RESULTS}, f, indent=1)
    lines = ["# smartvmfs benchmarks", "",
             f"{meta['date']} on {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}; "
             f"load average {meta['load_start']} at the start, {meta['load_end']} at the end); "
             f"real Firecracker: {meta['real'] or 'not given'}. "
             "Cells: median [min–max] ×runs. Ratios are medians over medians, taken in this one run.", "",
             "| # | figure | unit | ours | reference | ratio | mark | met |",
             "|---|---|---|---|---|---|---|---|"]
    for f in RESULTS:
        if "skipped" in f or "error" in f:
            lines.append(f"| {f['figure']} | {f['name']} | | {f.get('skipped') or f.get('error')} | | | {f.get('mark','')} | skipped |")
            continue
        ref = fmt(f["reference"], f["unit"]) if f["reference"] else "-"
        if f["reference_name"]:
            ref += f" ({f['reference_name']})"
        rt = f"{f['ratio']:.2f}x" if f["ratio"] else "-"
        lines.append(f"| {f['figure']} | {f['name']} | {f['unit']} | {fmt(f['subject'], f['unit'])} | "
                     f"{ref} | {rt} | {f['mark']} | {'-' if f['meets'] is None else 'yes' if f['meets'] else '**no**'} |")
    extras = []
    for f in RESULTS:
        if f.get("figure") == 3 and "ratio_to_tmpfs" in f:
            extras.append(f"- 3: ours / tmpfs read = {f['ratio_to_tmpfs']:.1f}x; minimal server / tmpfs = "
                          f"{f['reference_ratio_to_tmpfs']:.1f}x; tmpfs median {f['tmpfs']['median']:.2f} us; "
                          f"median of per-round ratios {f['ratio_per_round_median']:.2f}x. Ours / the "
                          f"minimal server's multi-threaded loop = {f['ratio_to_minfuse_mt']:.2f}x; ours "
                          f"with the single-threaded loop (-s) / its single-threaded loop = "
                          f"{f['single_threaded_ratio']:.2f}x (both are one OPEN and one RELEASE per cat).")
        if f.get("figure") == 2 and "start_write_only" in f:
            extras.append(f"- 2: the `start` write alone: {fmt(f['start_write_only'], 'ms')} ms.")
            st = f.get("steps_from_spawn_ms") or {}
            if all(st.get(k) for k in ("ours_api_ready", "ours_running", "reference_api_ready",
                                       "reference_running")):
                extras.append(
                    f"- 2: from just before the spawn (the daemon's log line of each start; "
                    f"fc-direct's own clock), ours / direct: API answering "
                    f"{st['ours_api_ready']['median']:.2f} / {st['reference_api_ready']['median']:.2f} ms, "
                    f"InstanceStart answered {st['ours_running']['median']:.2f} / "
                    f"{st['reference_running']['median']:.2f} ms; the rest of ours is the FUSE "
                    f"requests (mkdir, config.json, ctl), the checks before the spawn and the answer.")
        if f.get("figure") == 4 and f.get("start_latency_ms"):
            extras.append(f"- 4: each writer's own start (open..close) in the burst: "
                          f"{fmt(f['start_latency_ms'], 'ms')} ms.")
        if f.get("figure") == "4f":
            st = f.get("steps_from_spawn_ms") or {}
            fl = " / ".join(fmt(f.get(k), "ms") for k in ("floor_poll_loop", "floor_threads"))
            if st.get("api_ready") and st.get("running"):
                extras.append(f"- 4f: the floor from one poll loop / a thread each: {fl} ms. Per start "
                              f"in the burst, from just before its spawn (the daemon's log): API "
                              f"answering {fmt(st['api_ready'], 'ms')} ms, InstanceStart answered "
                              f"{fmt(st['running'], 'ms')} ms.")
        if f.get("figure") in ("12r", "12p") and f.get("after_pidfd_us"):
            extras.append(f"- {f['figure']}: after the pidfd's wake: {fmt(f['after_pidfd_us'], 'us')} us.")
        if str(f.get("figure", "")).startswith("11") and f.get("fuse_floor"):
            extras.append(f"- {f['figure']}: the FUSE floor (minfuse -o api, {f['fuse_floor_loop']} loop: the same "
                          f"write, sent as the bare request): {fmt(f['fuse_floor'], 'ms')} ms, "
                          f"{f['fuse_floor_to_bare']:.2f}x the bare request; ours is "
                          f"{f['ours_to_fuse_floor']:.2f}x the floor.")
        if f.get("figure") == "4f" and f.get("start_floor") and f.get("reference"):
            sf = f["start_floor"]
            extras.append(f"- 4f: the floor of a burst of starts (one poll loop, each VMM sent the "
                          f"start's requests in turn: boot source, machine, InstanceStart; no daemon, "
                          f"no FIFOs, no log): {fmt(sf, 'ms')} ms, {ratio(sf, f['reference']):.2f}x "
                          f"the floor; ours is {ratio(f['subject'], sf):.2f}x it.")
        if f.get("figure") == "5e":
            extras.append(f"- 5e: mkdir of each VM (with -o persist): {f['mkdir_ms_per_vm']:.3f} ms.")
        if f.get("figure") == "5f":
            extras.append(f"- 5f: empty mount {f['rss_empty_kib'] / 1024:.1f} MiB; after the next mount "
                          f"with {f['running']} of them running {f['rss_with_running_kib'] / 1024:.1f} MiB.")
        if f.get("figure") == "5a":
            extras.append(f"- 5a: right after another ls (attributes still cached): {fmt(f['warm_cache'], 'ms')} ms.")
        if f.get("figure") == "5c":
            extras.append(f"- 5c: Private_Dirty total {f['private_dirty_kib_total']['median']} KiB with 200 running, "
                          f"{f['private_dirty_kib_before_start']} KiB before they started "
                          f"({f['per_vm_increase_kib']:.1f} KiB per VM of increase); per burst (start 200, "
                          f"cleanup, again) {f['private_dirty_kib_per_burst']} KiB: the first burst is "
                          f"{f['first_burst_per_vm_kib']:.1f} KiB per VM.")
        if f.get("figure") == 6 and "blocks_ours" in f:
            extras.append(f"- 6: allocated 512-byte blocks: ours {f['blocks_ours']}, cp {f['blocks_cp']}.")
        if f.get("figure") == 7 and f.get("fetch_manifest_hit"):
            extras.append(f"- 7: `fetch manifest` of the cached bundle again: {fmt(f['fetch_manifest_hit'], 'ms')} ms; "
                          f"the first fetch (copy + SHA-256 of 1 GiB): {f['first_fetch_ms']:.0f} ms.")
        if f.get("figure") == 8 and "leftovers" in f:
            ph = f["phases"]
            net = statistics.median(p["create_start_ms_per_vm"] for p in ph["net"])
            netd = statistics.median(p["kill_destroy_ms_per_vm"] for p in ph["net"])
            non = statistics.median(p["create_start_ms_per_vm"] for p in ph["nonet"])
            nond = statistics.median(p["kill_destroy_ms_per_vm"] for p in ph["nonet"])
            ipc = statistics.median(p["create_ms_per_vm"] for p in ph["ip_batch"])
            ipd = statistics.median(p["delete_ms_per_vm"] for p in ph["ip_batch"])
            extras.append(f"- 8: per VM, with network / without: create+start {net:.2f} / {non:.2f} ms, "
                          f"kill+rmdir {netd:.2f} / {nond:.2f} ms; the kernel's own TAP work "
                          f"(`ip -batch`: tuntap add, enslave, up / link del) {ipc:.2f} / {ipd:.2f} ms per TAP. "
                          f"Left behind after unmount: {f['leftovers'] or 'nothing'}; the unmount "
                          f"(deleting the TAP pool, side by side) took {f.get('unmount_ms') or 0:.0f} ms.")
    if extras:
        lines += ["", "Notes:", ""] + extras
    lines += ["", "Chart of the start latency distribution: start-latency.svg", ""]
    with open(os.path.join(A.out, "results.md"), "w") as f:
        f.write("\n".join(lines))
    log(f"wrote {A.out}/results.md and results.json")


def chart(series):
    """CDF of the start latencies (figure 1 and 2), gnuplot SVG."""
    if not series:
        return
    if not shutil.which("gnuplot"):
        log("no gnuplot (apt-get install gnuplot-nox): no chart")
        return
    d = make_tmp("svmbench-plot-")
    plots = []
    for title, (ours, ref) in series.items():
        files = []
        for label, xs in (("smartvmfs", ours), ("direct client", ref)):
            xs = sorted(x for x in xs if x is not None)
            fn = os.path.join(d, f"{len(plots)}-{len(files)}.dat")
            with open(fn, "w") as f:
                for i, x in enumerate(xs):
                    f.write(f"{x} {(i + 1) / len(xs)}\n")
            files.append((label, fn))
        plots.append((title, files))
    svg = os.path.join(A.out, "start-latency.svg")
    script = [f"set terminal svg size {560 * len(plots)},420 dynamic font 'sans,11'",
              f"set output '{svg}'", f"set multiplot layout 1,{len(plots)}",
              "set grid", "set key bottom right", "set ylabel 'fraction of starts'",
              "set xlabel 'ms'", "set yrange [0:1]"]
    for title, files in plots:
        script.append(f"set title '{title}'")
        script.append("plot " + ", ".join(f"'{fn}' using 1:2 with steps lw 2 title '{label}'"
                                          for label, fn in files))
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=False)
    log(f"wrote {svg}")


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--real", default=os.environ.get("SMARTVMFS_FIRECRACKER") or None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--net-child", action="store_true")
    A = ap.parse_args()
    A.build = os.path.abspath(A.build)
    A.out = os.path.abspath(A.out)
    A.smartvmfs = os.path.join(A.build, "fs", "smartvmfs")
    A.emulator = os.path.join(A.build, "tests", "emulator", "fc-emulator")
    A.kernel = os.path.join(A.build, "assets", "guest", "smartvm-guest.elf")
    # figure 14: the jailer double and the static emulator it jails (when built)
    A.jailer = os.path.join(A.build, "tests", "jailer", "jailer")
    A.static_emulator = os.path.join(A.build, "tests", "emulator", "firecracker-emulator")
    if not os.path.exists(A.jailer) or not os.path.exists(A.static_emulator):
        A.jailer = A.static_emulator = None
    for p in (A.smartvmfs, A.emulator, A.kernel):
        if not os.path.exists(p):
            raise SystemExit(f"bench: {p} is missing")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        if A.net_child:
            net_child()
            return
        only = set(A.only.split(",")) if A.only else None

        def want(k):
            return only is None or k in only

        series = {}
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
                "cpus": os.cpu_count(), "kernel": platform.release(), "real": A.real,
                "quick": A.quick, "load_start": load_average()}
        if want("1"):
            r = fig1_real()
            if r:
                series["real Firecracker: start -> guest line"] = r
        if want("2"):
            series["emulator: mkdir + config + start -> running"] = fig2_emulator()
        if want("3"):
            fig3_cat_state()
        if want("4") or want("5"):
            fig4_5_many()
        if want("6"):
            fig6_stage()
        if want("7"):
            fig7_image()
        if want("8"):
            fig8_net()
        if want("9") or want("10") or want("11"):
            fig9_11_snapshots()
            why = real_skipped()
            if not why:
                fig9_11_snapshots(A.real)
            elif A.real:
                log(f"figures 9R to 11rR skipped: {why}")
                for num in ("9R", "10R", "11pR", "11sR", "11rR"):
                    RESULTS.append({"figure": num, "name": "the same on the real Firecracker",
                                    "skipped": why, "mark": "as 9 to 11"})
        if want("12"):
            fig12_exit()
        if want("14"):
            fig14_jailed()
        if want("13"):
            import bench_exec  # figure 13: exec sessions (bench_exec.py)
            bench_exec.fig13_exec(sys.modules[__name__])
        if want("5"):
            fig5_many_vms()
        meta["load_end"] = load_average()
        os.makedirs(A.out, exist_ok=True)
        chart(series)
        write_outputs(meta)
    finally:
        while CLEANUPS:
            try:
                CLEANUPS.pop()()
            except Exception as e:  # keep cleaning
                log(f"cleanup: {e}")


if __name__ == "__main__":
    main()
