"""Figure 13 of the benchmarks (tests/bench/README.md): exec sessions.

13a: `echo hi` through an exec session of the mount, the one-liner (open
exec/run, write the line, read output and status to the end, close), against a minimal direct client of the same agent over the same vsock
socket (CONNECT, SPAWN, frames until EXIT): the same command in the same guest,
runs interleaved; the same through exec/clone (clone, `run echo hi` to N/ctl,
stdout read to its end through a read-write open, status) is reported beside it.
13b: 100 sessions at once on one VM (the clone way: each writes its own ctl), the
wall time, against 100 direct clients at once. Both on the emulator, whose guest is the agent run
as a host process for each connection, so both sides pay the same fork and
exec of the agent; the ratio is what the daemon adds."""
import os
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import agentclient  # noqa: E402


def session(m, vm):
    """One `echo hi` through the files; returns (stdout, status)."""
    fd = os.open(m.p("vms", vm, "exec", "clone"), os.O_RDWR)
    try:
        n = os.read(fd, 32).decode().strip()
        # to the session's own ctl, not through the clone descriptor: the kernel
        # takes an inode's lock for each write, so writes on the one clone inode
        # wait for each other while each waits for its command to start
        ctl = os.open(m.p("vms", vm, "exec", n, "ctl"), os.O_WRONLY)
        try:
            os.write(ctl, b"run echo hi\n")
        finally:
            os.close(ctl)
        out = b""
        so = os.open(m.p("vms", vm, "exec", n, "stdout"), os.O_RDWR)
        try:
            while True:
                d = os.read(so, 65536)
                if not d:
                    break
                out += d
        finally:
            os.close(so)
        st = os.open(m.p("vms", vm, "exec", n, "status"), os.O_RDONLY)
        try:
            status = os.read(st, 64)
        finally:
            os.close(st)
        return out, status
    finally:
        os.close(fd)


def one_liner(m, vm):
    """The same through exec/run: one open, the command line, its output and
    status read to the end; returns (stdout, status) split off its last line."""
    fd = os.open(m.p("vms", vm, "exec", "run"), os.O_RDWR)
    try:
        os.write(fd, b"echo hi")
        out = b""
        while True:
            d = os.read(fd, 65536)
            if not d:
                break
            out += d
    finally:
        os.close(fd)
    head, _, status = out[:-1].rpartition(b"\n")
    return head + b"\n", status + b"\n"


def direct(uds):
    """The same through the agent's protocol, nothing in between."""
    s = agentclient.connect(uds)
    try:
        s.sendall(agentclient.spawn_frame(["echo", "hi"]))
        out, status = b"", None
        for t, p in agentclient.frames(s):
            if t == agentclient.STDOUT:
                out += p
            elif t == agentclient.EXIT:
                how, code = struct.unpack(">II", p)
                status = f"{'signal' if how else 'exit'} {code}\n".encode()
                break
        return out, status
    finally:
        s.close()


def at_once(k, fn):
    """Wall time (s) of k calls of fn at once, and whether each gave hi/exit 0."""
    results = [None] * k
    go = threading.Event()

    def one(i):
        go.wait()
        try:
            results[i] = fn()
        except Exception as e:  # a failed run is counted, not raised
            results[i] = e

    th = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    for t in th:
        t.start()
    t0 = B.now()
    go.set()
    for t in th:
        t.join()
    wall = B.now() - t0
    ok = all(r == (b"hi\n", b"exit 0\n") for r in results)
    return wall, ok


B = None  # the bench module (its Mount, figure, stats, A)


def fig13_exec(bench):
    global B
    B = bench
    A = bench.A
    runs = 30 if A.quick else 200
    m = bench.Mount(A.emulator)
    m.new_vm("x", bench.vm_config(A.kernel, vsock={"guestCid": 3}))
    m.ctl("x", "start")
    uds = bench.read_file(m.p("vms", "x", "vsock")).decode().strip()
    ours, ref, files, bad = [], [], [], 0
    for i in range(runs + 5):
        t0 = bench.now()
        a = one_liner(m, "x")
        t1 = bench.now()
        b = direct(uds)
        t2 = bench.now()
        c = session(m, "x")
        t3 = bench.now()
        bad += any(r != (b"hi\n", b"exit 0\n") for r in (a, b, c))
        if i >= 5:  # the first runs warm the page cache of the agent's binary
            ours.append((t1 - t0) * 1e3)
            ref.append((t2 - t1) * 1e3)
            files.append((t3 - t2) * 1e3)
    s, r = bench.stats(ours), bench.stats(ref)
    rt = bench.ratio(s, r)
    bench.figure("13a", "`echo hi` through an exec session (exec/run) -> output and status read",
                 "ms", s, r, "a direct client of the same agent over the same vsock socket "
                 "(tests/agentclient.py)", "<= 1.2x", rt is not None and rt <= 1.2,
                 wrong_answers=bad, clone_ctl_stdout_status=bench.stats(files),
                 clone_path_ratio=bench.ratio(bench.stats(files), r),
                 samples={"ours": ours, "reference": ref, "clone_path": files})
    k, reps = 100, 3 if A.quick else 7
    walls, rwalls, oks = [], [], True
    for _ in range(reps):
        w, ok = at_once(k, lambda: session(m, "x"))
        walls.append(w * 1e3)
        oks &= ok
        w, ok = at_once(k, lambda: direct(uds))
        rwalls.append(w * 1e3)
        oks &= ok
    m.ctl("x", "kill")
    m.close()
    s, r = bench.stats(walls), bench.stats(rwalls)
    rt = bench.ratio(s, r)
    bench.figure("13b", f"{k} exec sessions at once on one VM (`echo hi` each), wall time", "ms",
                 s, r, f"{k} direct clients of the agent at once", "<= 1.2x",
                 rt is not None and rt <= 1.2 and oks, all_answers_right=oks)
