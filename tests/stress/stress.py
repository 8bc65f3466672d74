#!/usr/bin/env python3
"""Load test of a mounted smartvmfs (the issue's "Load" paragraph).

N threads (8) issue mixed operations over M emulated VMs (100) for a bounded time:
reads of every file (root, /net, /images, each VM's), start, pause, resume, stop,
kill, config.json and metadata writes, mkdir and rmdir. The daemon should be a
ThreadSanitizer build (tests/stress/run.sh makes one) whose reports go to files
named by TSAN_OPTIONS log_path; any report fails the run.

It fails on:
  - a data race, or any other ThreadSanitizer report, in the daemon (or emulator);
  - an operation that takes over --watchdog seconds (10): a deadlock, or worse;
    the threads of the daemon are dumped with gdb when it is installed;
  - a crash: the daemon gone, ENOTCONN, an errno an operation never gives;
  - a read that gives what the file never holds (a state name, JSON, a pid);
  - a final state that is not consistent with the operations that succeeded:
    the VMs that exist, each VM's state, config.json and metadata, its pid and
    its VMM process, the root ctl counts; the stored metadata of a running VM
    is what Firecracker held (checked after a stop); then an unmount that leaves
    no process, socket or runtime file behind.

Consistency with concurrent operations: each successful operation took effect at
some instant within its [start, end]. For each VM and attribute (exists, state,
config, metadata) the value must be that of the last successful operation to
end, or of one that overlapped it (ended after it began).

Usage: stress.py --daemon BIN --emulator EMU [--kernel FILE] [--vms 100]
       [--threads 8] [--seconds 120] [--watchdog 10] [--workdir DIR] [--seed N]
       [--nofile N]   (the daemon's descriptor limit: a run past it, and back)
"""
import argparse
import collections
import errno
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

STATES = {"created", "starting", "running", "paused", "stopping", "stopped", "error"}
# a VM's small values (read through the page cache while they hold still): one
# read gives the whole value, newline-terminated, never cut or padded with zeros
SMALL = {"state", "pid", "net", "runtime", "vsock"}
# growing files (streams with absolute offsets): read to their end they are whole
# lines, and a reader may see them grow between two reads
GROWING = {"error"}
# errnos an operation may give in a race (the VM changed state, was removed, a kill
# ended the VMM under a request); anything else is a failure
EXPECTED = {
    # EINVAL: a VM made again by mkdir has the default config, without a kernel
    # ENOSPC: no descriptors left for one more VMM (--nofile)
    "start": {errno.EBUSY, errno.ENOENT, errno.EINTR, errno.EIO, errno.EINVAL, errno.ENOSPC},
    "pause": {errno.EBUSY, errno.ENOENT, errno.EIO},
    "resume": {errno.EBUSY, errno.ENOENT, errno.EIO},
    "stop": {errno.EBUSY, errno.ENOENT},
    "kill": {errno.EBUSY, errno.ENOENT},
    "config": {errno.EBUSY, errno.ENOENT},
    "metadata": {errno.EBUSY, errno.ENOENT, errno.EIO},
    "mkdir": {errno.EEXIST},
    "rmdir": {errno.EBUSY, errno.ENOENT},
    "read": {errno.ENOENT, errno.EIO, errno.ESRCH},
}
TARGET = {"start": "running", "pause": "paused", "resume": "running", "stop": "stopped",
          "kill": "stopped"}
# op -> weight
MIX = [("read", 40), ("start", 12), ("pause", 7), ("resume", 6), ("stop", 5), ("kill", 3),
       ("config", 10), ("metadata", 6), ("mkdir", 5), ("rmdir", 6)]


def now():
    return time.monotonic()


class Failure(Exception):
    pass


class Stress:
    def __init__(self, a):
        self.a = a
        self.work = a.workdir or tempfile.mkdtemp(prefix="svm-stress.")
        self.mnt = os.path.join(self.work, "mnt")
        self.rt = os.path.join(self.work, "rt")
        self.data = os.path.join(self.work, "data")
        self.tsan_dir = os.path.join(self.work, "tsan")
        for d in (self.mnt, self.tsan_dir):
            os.makedirs(d, exist_ok=True)
        self.names = ["vm%03d" % i for i in range(a.vms)]
        self.lock = threading.Lock()
        self.events = collections.defaultdict(list)  # name -> [(t0, t1, attr, value)]
        self.counts = collections.Counter()           # (op, outcome) -> n
        self.failures = []
        self.abort = False                            # the run cannot go on
        self.inflight = {}                            # thread id -> (op, name, t0)
        self.stop_at = 0.0
        self.token = 0
        self.slowest = collections.defaultdict(float)
        self.read_errors = collections.Counter()      # (file, errno) -> n
        self.proc = None

    # ------------------------------------------------------------ helpers
    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)
            n = len(self.failures)
        if n <= 20:
            print("FAIL:", msg, flush=True)

    def vm(self, name, *parts):
        return os.path.join(self.mnt, "vms", name, *parts)

    def next_token(self, prefix):
        with self.lock:
            self.token += 1
            return "%s%d" % (prefix, self.token)

    def config_doc(self, token):
        return json.dumps({
            "id": token,
            "bootSource": {"kernelImagePath": self.a.kernel,
                           "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off"},
            "machineConfig": {"vcpuCount": 1, "memSizeMib": 16},
        })

    @staticmethod
    def write(path, data, flags=os.O_WRONLY | os.O_TRUNC):
        fd = os.open(path, flags)
        try:
            n = os.write(fd, data.encode())
            if n != len(data.encode()):
                raise Failure("short write %d of %d to %s" % (n, len(data), path))
        finally:
            os.close(fd)

    def record(self, name, t0, t1, attr, value):
        with self.lock:
            self.events[name].append((t0, t1, attr, value))

    # ------------------------------------------------------------ daemon
    def start_daemon(self):
        env = dict(os.environ)
        supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tsan.supp")
        env["TSAN_OPTIONS"] = ":".join([
            "halt_on_error=0", "second_deadlock_stack=1", "history_size=4",
            "suppressions=" + supp, "log_path=" + os.path.join(self.tsan_dir, "report"),
            env.get("TSAN_OPTIONS", "")]).rstrip(":")
        opts = ["firecracker=" + self.a.emulator, "runtimedir=" + self.rt, "datadir=" + self.data]
        self.log = open(os.path.join(self.work, "daemon.log"), "ab")
        limit = None
        if self.a.nofile:  # past the descriptor limit: starts are refused (ENOSPC) and
            import resource  # the rest goes on, consistent (issue 23)
            n = self.a.nofile
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))  # noqa: E731
        self.proc = subprocess.Popen([self.a.daemon, "-f", "-o", ",".join(opts), self.mnt],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, preexec_fn=limit)
        deadline = now() + 30
        while now() < deadline:
            if self.proc.poll() is not None:
                raise Failure("smartvmfs exited %d at mount" % self.proc.returncode)
            try:
                with open(os.path.join(self.mnt, "version")) as f:
                    if f.read().startswith("smartvmfs "):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure("smartvmfs did not mount within 30 s")

    def vmm_pids(self):
        """pids of VMM processes of this daemon (their command line names our runtime dir)."""
        found = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == self.proc.pid:
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % pid) as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if self.rt in cmd and not zombie:
                found[int(pid)] = cmd
        return found

    DUMPER = (
        "import subprocess, sys\n"
        "for line in sys.stdin:\n"
        "    gdb, pid, out = line.split()\n"
        "    with open(out, 'w') as f:\n"
        "        try:\n"
        "            subprocess.run([gdb, '-batch', '-p', pid, '-ex', 'thread apply all bt 16'],\n"
        "                           stdout=f, stderr=subprocess.STDOUT, timeout=60)\n"
        "        except Exception as e:\n"
        "            f.write('gdb: %s\\n' % e)\n"
        "    print('done', flush=True)\n")

    def start_dumper(self):
        """gdb is run by a helper started before any file of the mount is open: a
        process forked later would inherit them, and closing one asks the daemon
        (FLUSH), which never answers when it is deadlocked."""
        gdb = shutil.which("gdb")
        self.dumper = subprocess.Popen([sys.executable, "-c", self.DUMPER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) if gdb else None
        self.gdb = gdb

    def dump_threads(self):
        if not self.dumper or not self.proc or self.proc.poll() is not None:
            return
        path = os.path.join(self.work, "threads.txt")
        self.dumper.stdin.write("%s %d %s\n" % (self.gdb, self.proc.pid, path))
        self.dumper.stdin.flush()
        self.dumper.stdout.readline()
        print("daemon threads dumped to", path, flush=True)

    # ------------------------------------------------------------ operations
    def op_read(self, rng, name):
        if rng.random() < 0.15:
            paths = [os.path.join(self.mnt, p) for p in
                     ("ctl", "version", "error", "log", "net/bridge", "net/subnet", "net/gateway",
                      "net/leases", "images/ctl", "images/error")]
            os.listdir(os.path.join(self.mnt, "vms"))
        else:
            d = self.vm(name)
            paths = [os.path.join(d, e) for e in os.listdir(d)]
        for p in paths:
            try:
                self.read_one(p)
            except OSError as e:
                with self.lock:
                    self.read_errors[(os.path.basename(p), errno.errorcode.get(e.errno))] += 1
                if not (e.errno == errno.ENOENT and p.startswith(os.path.join(self.mnt, "vms"))):
                    raise

    def read_one(self, p):
        base = os.path.basename(p)
        if base in ("clone",):
            return
        fd = os.open(p, os.O_RDONLY)
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):  # the name may be a file again, or not
                os.listdir(fd)
                return
            if base == "events":  # read-only: the history, whole lines, and it ends
                data = b""
                while True:
                    b = os.read(fd, 65536)
                    if not b:
                        break
                    data += b
                for line in data.splitlines():
                    if not line.startswith((b"state ", b"exit ", b"signal ", b"re-adopted")):
                        self.fail("events: line %r" % line[:80])
                        break
                return
            chunks = []
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                chunks.append(b)
                if sum(map(len, chunks)) > 8 << 20:
                    break
            data = b"".join(chunks)
        finally:
            os.close(fd)
        if base in SMALL and len(chunks) > 1 and len(chunks[0]) < 4096:
            self.fail("%s: a read gave %r, the next %r: one read gives a small value whole"
                      % (p, chunks[0], chunks[1][:80]))
        self.check_value(p, base, data)

    def check_value(self, p, base, data):
        parent = os.path.basename(os.path.dirname(p))
        text = data.decode(errors="replace")
        if parent == "vms" or os.path.dirname(os.path.dirname(p)).endswith("/vms"):
            if not data:
                pass  # the VM was removed while its file was open: it reads empty
            elif base in SMALL and (not data.endswith(b"\n") or b"\0" in data):
                self.fail("%s: cut or padded: %r" % (p, data[:200]))
            elif base in GROWING and (not data.endswith(b"\n") or b"\0" in data):
                self.fail("%s: a line cut or padded: %r" % (p, data[-200:]))
            elif base == "state" and text.strip() not in STATES:
                self.fail("%s: %r" % (p, text))
            elif base == "ctl" and not re.match(r"state (\w+)\nverbs[ a-z]*\n$", text):
                self.fail("%s: %r" % (p, text))
            elif base in ("config.json", "metadata", "info") and text.strip():
                try:
                    json.loads(text)
                except ValueError:
                    self.fail("%s is not JSON: %r" % (p, text[:200]))
            elif base == "pid" and text.strip() and not text.strip().isdigit():
                self.fail("%s: %r" % (p, text))
        elif p == os.path.join(self.mnt, "ctl"):
            if not text.startswith("vms "):
                self.fail("root ctl: %r" % text)

    def op_verb(self, rng, name, verb):
        self.write(self.vm(name, "ctl"), verb + "\n")

    def op_config(self, rng, name):
        tok = self.next_token("c")
        t0 = now()
        self.write(self.vm(name, "config.json"), self.config_doc(tok))
        return ("config", tok, t0)

    def op_metadata(self, rng, name):
        tok = self.next_token("m")
        t0 = now()
        self.write(self.vm(name, "metadata"), json.dumps({"token": tok, "pad": "x" * rng.randint(0, 64)}))
        return ("metadata", tok, t0)

    def run_op(self, rng, op, name):
        """Runs one operation; returns None or the (attr, value, t0) it set."""
        if op == "read":
            self.op_read(rng, name)
        elif op in TARGET:
            self.op_verb(rng, name, op)
        elif op == "config":
            return self.op_config(rng, name)
        elif op == "metadata":
            return self.op_metadata(rng, name)
        elif op == "mkdir":
            os.mkdir(self.vm(name))
            return ("exists", True, None)
        elif op == "rmdir":
            os.rmdir(self.vm(name))
            return ("exists", False, None)
        return None

    def worker(self, idx):
        rng = random.Random(self.a.seed * 1000 + idx)
        ops, weights = zip(*MIX)
        me = threading.get_ident()
        while now() < self.stop_at and not self.abort:
            op = rng.choices(ops, weights)[0]
            # half the operations on a few hot VMs, so that threads meet on one VM
            hot = self.names[:max(1, len(self.names) // 12)]
            name = rng.choice(hot if rng.random() < 0.5 else self.names)
            t0 = now()
            with self.lock:
                self.inflight[me] = (op, name, t0)
            outcome = "ok"
            try:
                got = self.run_op(rng, op, name)
                t1 = now()
                if op in TARGET:
                    self.record(name, t0, t1, "state", TARGET[op])
                elif got:
                    attr, value, _ = got
                    self.record(name, t0, t1, attr, value)
                    if op == "mkdir":  # a new VM: created, default config, no metadata
                        self.record(name, t0, t1, "state", "created")
                        self.record(name, t0, t1, "config", None)
                        self.record(name, t0, t1, "metadata", None)
            except Failure as e:
                self.fail("%s %s: %s" % (op, name, e))
                outcome = "failure"
            except OSError as e:
                outcome = errno.errorcode.get(e.errno, str(e.errno))
                if e.errno not in EXPECTED[op]:
                    self.fail("%s %s: unexpected %s (%s)" % (op, name, outcome, e))
            finally:
                dt = now() - t0
                with self.lock:
                    self.inflight.pop(me, None)
                    self.counts[(op, outcome)] += 1
                    self.slowest[op] = max(self.slowest[op], dt)

    def watchdog(self, done):
        while not done.wait(0.25):
            t = now()
            with self.lock:
                late = [(op, name, t - t0) for op, name, t0 in self.inflight.values()
                        if t - t0 > self.a.watchdog]
            if late:
                self.abort = True
                for op, name, dt in late:
                    self.fail("watchdog: %s %s still running after %.1f s" % (op, name, dt))
                self.dump_threads()
                # end the run: a dead daemon makes every waiting operation return
                self.proc.send_signal(signal.SIGKILL)
                return
            if self.proc.poll() is not None:
                self.abort = True
                self.fail("the daemon exited (%s) during the run" % self.proc.returncode)
                return

    # ------------------------------------------------------------ the model
    def candidates(self, name, attr, initial):
        evs = [e for e in self.events.get(name, []) if e[2] == attr]
        if not evs:
            return {initial}
        last = max(evs, key=lambda e: e[1])
        return {e[3] for e in evs if e[1] >= last[0]}

    def check_final(self):
        listed = set(os.listdir(os.path.join(self.mnt, "vms"))) - {"clone"}
        counts = collections.Counter()
        running = {}
        for name in self.names:
            exists = self.candidates(name, "exists", True)
            if (name in listed) not in exists:
                self.fail("%s: exists=%s, the operations that succeeded say %s" %
                          (name, name in listed, sorted(exists)))
            if name not in listed:
                continue
            with open(self.vm(name, "state")) as f:
                st = f.read().strip()
            counts[st] += 1
            want = self.candidates(name, "state", "created")
            if st not in want:
                self.fail("%s: state %s, the operations that succeeded say %s" % (name, st, sorted(want)))
            with open(self.vm(name, "config.json")) as f:
                cfg = json.load(f)
            want = self.candidates(name, "config", None)
            if cfg.get("id") not in want:
                self.fail("%s: config.json id %r, the operations that succeeded say %s" %
                          (name, cfg.get("id"), sorted(map(str, want))))
            with open(self.vm(name, "metadata")) as f:
                md = json.load(f)
            want = self.candidates(name, "metadata", None)
            if md.get("token") not in want:
                self.fail("%s: metadata token %r, the operations that succeeded say %s" %
                          (name, md.get("token"), sorted(map(str, want))))
            with open(self.vm(name, "pid")) as f:
                pid = f.read().strip()
            if st in ("running", "paused"):
                if not pid.isdigit():
                    self.fail("%s: %s without a pid" % (name, st))
                else:
                    running[name] = (int(pid), md)
            elif pid:
                self.fail("%s: %s with pid %s" % (name, st, pid))
        for s in ("starting", "stopping"):
            if counts[s]:
                self.fail("%d VMs still %s after the load ended" % (counts[s], s))
        vmms = self.vmm_pids()
        pids = {p for p, _ in running.values()}
        if set(vmms) != pids:
            self.fail("VMM processes %s, running/paused VMs have pids %s" %
                      (sorted(set(vmms) - pids), sorted(pids - set(vmms))))
        with open(os.path.join(self.mnt, "ctl")) as f:
            line = f.read()
        m = dict(zip(line.split()[0::2], line.split()[1::2]))
        if int(m.get("vms", -1)) != len(listed & set(self.names)):
            self.fail("root ctl says vms %s, %d listed" % (m.get("vms"), len(listed)))
        for s in STATES:
            if int(m.get(s, -1)) != counts[s]:
                self.fail("root ctl says %s %s, the VMs say %d" % (s, m.get(s), counts[s]))
        # what Firecracker held is what is stored: stop them all, read again
        self.write(os.path.join(self.mnt, "ctl"), "stopall\n")
        for name, (pid, md) in running.items():
            with open(self.vm(name, "state")) as f:
                st = f.read().strip()
            with open(self.vm(name, "metadata")) as f:
                after = json.load(f)
            if st != "stopped":
                self.fail("%s: %s after stopall" % (name, st))
            if after != md:
                self.fail("%s: metadata was %s in Firecracker, %s stored" % (name, md, after))
        return counts

    def unmount(self):
        if self.proc.poll() is None:
            subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.fail("smartvmfs did not exit within 60 s of unmount")
                self.dump_threads()
                self.proc.kill()
                self.proc.wait()
        # a dead daemon leaves its mount (ismount cannot tell: ENOTCONN)
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        rc = self.proc.returncode
        if rc != 0:
            self.fail("smartvmfs exited %s" % rc)
        left = self.vmm_pids()
        if left:
            self.fail("processes left behind: %s" % left)
            for p in left:
                os.kill(p, signal.SIGKILL)
        if os.path.exists(self.rt):
            leftovers = [os.path.join(d, x) for d, ds, fs in os.walk(self.rt) for x in ds + fs]
            if leftovers:
                self.fail("runtime files left behind: %s" % leftovers[:10])

    def tsan_reports(self):
        reports = []
        for fn in sorted(os.listdir(self.tsan_dir)):
            with open(os.path.join(self.tsan_dir, fn), errors="replace") as f:
                text = f.read()
            for block in text.split("==================\n"):
                if "ThreadSanitizer" in block and "WARNING" in block:
                    reports.append((fn, block.strip()))
        return reports

    # ------------------------------------------------------------ the run
    def run(self):
        t_setup = now()
        self.start_dumper()
        self.start_daemon()
        for name in self.names:
            os.mkdir(self.vm(name))
            self.write(self.vm(name, "config.json"), self.config_doc(None))
        # the model starts from: every VM exists, created, config id null
        setup = now() - t_setup
        print("mounted, %d VMs made in %.1f s; %d threads for %d s" %
              (len(self.names), setup, self.a.threads, self.a.seconds), flush=True)
        t_load = now()
        self.stop_at = t_load + self.a.seconds
        done = threading.Event()
        wd = threading.Thread(target=self.watchdog, args=(done,), daemon=True)
        wd.start()
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                   for i in range(self.a.threads)]
        for t in threads:
            t.start()
        last = t_load
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=1)
            if now() - last >= 30:
                last = now()
                with self.lock:
                    n = sum(self.counts.values())
                print("  %4.0f s: %d ops" % (now() - t_load, n), flush=True)
        load = now() - t_load
        done.set()
        wd.join()
        total = sum(self.counts.values())
        ok = sum(n for (op, o), n in self.counts.items() if o == "ok")
        print("load: %d ops in %.1f s (%.0f/s), %d succeeded" % (total, load, total / load, ok))
        by_op = collections.defaultdict(dict)
        for (op, o), n in sorted(self.counts.items()):
            by_op[op][o] = n
        for op, _ in MIX:
            print("  %-9s slowest %6.3f s  %s" % (op, self.slowest[op], by_op.get(op, {})))
        if self.read_errors:
            print("  read errors by file: %s" % dict(self.read_errors.most_common(12)))
        counts = {}
        if not self.abort and self.proc.poll() is None:
            t = now()
            counts = self.check_final()
            print("final state checked in %.1f s: %s" % (now() - t, dict(counts)))
        self.unmount()
        reports = self.tsan_reports()
        for fn, block in reports:
            self.failures.append("ThreadSanitizer report in %s" % fn)
            print(block, "\n", flush=True)
        summary = collections.Counter(
            re.search(r"SUMMARY: ThreadSanitizer: (.*)", b).group(1) if "SUMMARY" in b else b[:100]
            for _, b in reports)
        print("ThreadSanitizer reports: %d" % len(reports))
        for s, n in summary.items():
            print("  %dx %s" % (n, s))
        if self.failures:
            print("FAILED: %d problem(s); daemon log %s" % (len(self.failures),
                                                            os.path.join(self.work, "daemon.log")))
            for f in self.failures[:40]:
                print("  -", f)
            return 1
        refused = self.counts[("start", "ENOSPC")]
        if self.a.nofile and not refused:
            print("FAILED: RLIMIT_NOFILE %d, yet no start was refused for it: the run never "
                  "reached the limit" % self.a.nofile)
            return 1
        print("ok: %d ops, %d VMs, %d threads, %.0f s, no race, no deadlock, final state "
              "consistent%s" % (total, len(self.names), self.a.threads, load,
                                ", %d starts refused at RLIMIT_NOFILE %d" % (refused, self.a.nofile)
                                if self.a.nofile else ""))
        if not self.a.workdir and not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--daemon", required=True)
    p.add_argument("--emulator", required=True)
    p.add_argument("--kernel", help="any file: the emulator only needs it to exist")
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--watchdog", type=float, default=10)
    p.add_argument("--workdir")
    p.add_argument("--keep", action="store_true", help="keep the work dir after a success")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--nofile", type=int, default=0,
                   help="the daemon's RLIMIT_NOFILE (soft and hard): run past it")
    a = p.parse_args()
    if not a.kernel:
        a.kernel = os.path.abspath(a.emulator)
    print("stress: seed %d" % a.seed, flush=True)
    s = Stress(a)
    try:
        return s.run()
    except Failure as e:
        print("FAILED:", e)
        return 1
    finally:
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", s.mnt], capture_output=True)
        if s.proc:  # a killed daemon leaves its VMMs: never leave them to the next run
            for pid in s.vmm_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if getattr(s, "dumper", None):
            s.dumper.stdin.close()
            s.dumper.wait()


if __name__ == "__main__":
    sys.exit(main())
