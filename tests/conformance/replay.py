#!/usr/bin/python3
"""Replay the conformance scenarios (cases.json) against a Firecracker-compatible binary.

Each scenario runs in a fresh VMM process, spawned as
    BINARY --api-sock TMP/api-N.sock --id conf-N [scenario args]
with stdin a pipe (the guest's serial input), stdout and stderr drained. Its steps are
HTTP requests over the Unix socket (one connection per request, raw HTTP/1.1 so that
malformed requests can be sent too), serial input, waits for console output, sleeps.
After every request the replayer asks `GET /` for the state (or notes that the process
has exited, with its exit status).

The observed table is JSON: one entry per scenario, one row per step:
    {"step": NAME, "method", "path", "status": INT|null, "has_fault": BOOL,
     "state": "Not started"|"Running"|"Paused"|"exited"|"no answer",
     "exit": INT|null, "keys": [top-level keys of a 200 JSON body],
     "has_error": BOOL (an HTTP-level {"error": ...} body),
     "fault_message": TEXT (fault_message or error; informational, never compared)}

Usage:
    /usr/bin/python3 tests/conformance/replay.py --binary PATH --kernel PATH --out FILE
        [--cases cases.json] [--only SCENARIO ...] [--compare RECORDED.json] [--preboot]

--preboot replays each scenario only up to its first "boot_side" step, the part a
Firecracker answers without /dev/kvm, and compares only that part.

Only the standard library is used.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = os.path.join(HERE, "cases.json")

# Columns compared between a recorded table and an observed one.
COMPARED = ("status", "has_fault", "has_error", "state", "exit", "keys", "found", "alive")

REQUEST_TIMEOUT = 10.0
SOCKET_WAIT = 10.0


class Drain(threading.Thread):
    """Reads a pipe to its end, keeping everything (the VMM must never block on it)."""

    def __init__(self, f):
        super().__init__(daemon=True)
        self.f = f
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False

    def run(self):
        fd = self.f.fileno()
        while True:
            try:
                d = os.read(fd, 65536)
            except OSError:
                d = b""
            with self.cond:
                if not d:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += d
                self.cond.notify_all()

    def wait_for(self, needle, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while needle not in self.buf:
                left = end - time.monotonic()
                if left <= 0 or self.eof:
                    return needle in self.buf
                self.cond.wait(left)
            return True


class Subst:
    """Placeholder substitution: {kernel}, {tmp}, {pad:N} (N bytes of 'x')."""

    PAD = re.compile(r"\{pad:(\d+)\}")

    def __init__(self, kernel, tmp):
        self.kernel = kernel
        self.tmp = tmp

    def s(self, text):
        text = text.replace("{kernel}", self.kernel).replace("{tmp}", self.tmp)
        return self.PAD.sub(lambda m: "x" * int(m.group(1)), text)

    def value(self, v):
        if isinstance(v, str):
            return self.s(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {self.s(k): self.value(x) for k, x in v.items()}
        return v

    def sanitize(self, text):
        if text is None:
            return None
        text = text.replace(self.tmp, "{tmp}")
        if self.kernel:
            text = text.replace(self.kernel, "{kernel}")
        return text


def http_request(sock_path, method, path, body=None, headers=None,
                 content_length=True, timeout=REQUEST_TIMEOUT):
    """One raw HTTP/1.1 request on a fresh AF_UNIX connection.

    Returns (status, body_bytes) or (None, error_text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        hdrs = {"Host": "localhost", "Accept": "application/json"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            if content_length:
                hdrs["Content-Length"] = str(len(body))
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        s.sendall(head.encode() + (body or b""))
        resp = http.client.HTTPResponse(s, method=method)
        resp.begin()
        data = resp.read() if resp.status not in (204, 304) else b""
        parsed = parse_body(data)
        if isinstance(parsed, dict) and "error" in parsed:
            # An HTTP-level rejection ({"error": ...}, not {"fault_message": ...}):
            # Firecracker may go on parsing the rest of what was sent as further
            # requests and answer each. Read until it is quiet before closing;
            # closing under its writes can kill Firecracker v1.14.2 (SIGSYS).
            drain_quietly(s)
        return resp.status, data
    except (OSError, http.client.HTTPException) as e:
        return None, "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()


def drain_quietly(s, quiet=0.3, limit=5.0):
    end = time.monotonic() + limit
    s.settimeout(quiet)
    try:
        while time.monotonic() < end:
            if not s.recv(65536):
                return
    except OSError:
        return


def parse_body(data):
    try:
        return json.loads(data.decode()) if data else None
    except (ValueError, UnicodeDecodeError):
        return None


class Vmm:
    def __init__(self, binary, tmp, index, args, sub, netns=False, cli_logger=True):
        self.sock = os.path.join(tmp, "api-%d.sock" % index)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        argv = netns_prefix() if netns else []
        argv += [binary, "--api-sock", self.sock, "--id", "conf-%d" % index]
        if cli_logger:
            # As the core runs it: log lines go to a file, not into the console.
            self.log = os.path.join(tmp, "fc-%d.log" % index)
            open(self.log, "wb").close()
            argv += ["--log-path", self.log, "--level", "Info"]
        argv += [sub.s(a) for a in args]
        self.proc = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = Drain(self.proc.stdout)
        self.err = Drain(self.proc.stderr)
        self.out.start()
        self.err.start()
        end = time.monotonic() + SOCKET_WAIT
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("VMM did not create its API socket (exit %r): %s" % (
                    self.proc.poll(), bytes(self.err.buf[-2000:]).decode(errors="replace")))
            time.sleep(0.005)
        # the path exists a moment before listen() (bind, then listen): wait until a
        # connection is accepted, so a slow start (a sanitizer build, a loaded
        # machine) is not recorded as a refused request
        while True:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.sock)
                break
            except ConnectionRefusedError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise
                time.sleep(0.002)
            finally:
                probe.close()

    def exit_status(self):
        rc = self.proc.poll()
        if rc is None:
            return None
        return rc if rc >= 0 else 128 - rc  # a signal N reads as 128+N

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.exit_status()

    def state(self):
        rc = self.exit_status()
        if rc is not None:
            return "exited"
        status, data = http_request(self.sock, "GET", "/")
        body = parse_body(data) if status == 200 else None
        if isinstance(body, dict) and "state" in body:
            return body["state"]
        rc = self.exit_status()  # it may have died meanwhile
        if rc is not None:
            return "exited"
        return "no answer"

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.out.join(2)
        self.err.join(2)


def netns_prefix():
    """Scenarios that create TAPs run in a private network namespace, so they never
    touch the host's links: `unshare -n` as root, `unshare -rn` otherwise."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("unshare(1) is needed for the network scenarios")
    return [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-rn"]


def make_files(tmp, files):
    for name, spec in (files or {}).items():
        p = os.path.join(tmp, name)
        if os.path.exists(p):
            continue
        if spec == "fifo":
            os.mkfifo(p)
        else:
            with open(p, "wb") as f:
                f.truncate(int(spec))


def run_step(vmm, step, sub):
    row = {"step": step["name"]}
    if "compare" in step:
        row["compare"] = step["compare"]  # only these columns are compared
    if "serial" in step:
        try:
            vmm.proc.stdin.write(sub.s(step["serial"]).encode())
            vmm.proc.stdin.flush()
            row["written"] = True
        except OSError:
            row["written"] = False
        return row
    if "console" in step:
        row["console"] = step["console"]
        row["found"] = vmm.out.wait_for(sub.s(step["console"]).encode(),
                                        step.get("timeout", 5.0))
        return row
    if "sleep" in step:
        time.sleep(step["sleep"])
        row["alive"] = vmm.proc.poll() is None
        return row
    if "wait_exit" in step:
        row["exit"] = vmm.wait_exit(step["wait_exit"])
        row["state"] = vmm.state()
        return row

    method, path = step["method"], sub.s(step["path"])
    row["method"], row["path"] = method, step["path"]
    if "body" in step:
        body = json.dumps(sub.value(step["body"])).encode()
    elif "raw" in step:
        body = sub.s(step["raw"]).encode()
    else:
        body = None
    if vmm.exit_status() is not None:
        status, data = None, "process has exited"
    else:
        status, data = http_request(vmm.sock, method, path, body,
                                    sub.value(step.get("headers")),
                                    content_length=step.get("content_length", True),
                                    timeout=step.get("timeout", REQUEST_TIMEOUT))
    row["status"] = status
    parsed = parse_body(data) if status is not None else None
    row["has_fault"] = isinstance(parsed, dict) and "fault_message" in parsed
    # HTTP-level rejections (bad method, framing, over-size payload) carry "error"
    row["has_error"] = isinstance(parsed, dict) and "error" in parsed
    if row["has_fault"]:
        row["fault_message"] = sub.sanitize(str(parsed["fault_message"]))
    elif row["has_error"]:
        row["fault_message"] = sub.sanitize(str(parsed["error"]))
    elif status is None:
        row["error"] = data
    if status == 200 and isinstance(parsed, dict):
        row["keys"] = sorted(parsed.keys())
    if "then_wait_exit" in step:
        vmm.wait_exit(step["then_wait_exit"])
    elif "then_sleep" in step:
        time.sleep(step["then_sleep"])
    row["state"] = vmm.state()
    row["exit"] = vmm.exit_status()
    return row


def boot_side_from(scen):
    """The name of the scenario's first step that needs a VM to be built (/dev/kvm),
    or None when the whole scenario is pre-boot."""
    return next((st["name"] for st in scen["steps"] if st.get("boot_side")), None)


def run_scenario(binary, kernel, tmp, index, scen, log=None, debug=False, preboot=False):
    """preboot: replay only the steps before the boot side (a host without KVM)."""
    sub = Subst(kernel, tmp)
    make_files(tmp, scen.get("files"))
    vmm = Vmm(binary, tmp, index, scen.get("args", []), sub,
              scen.get("netns", False), scen.get("cli_logger", True))
    rows = []
    try:
        for step in scen["steps"]:
            if preboot and step.get("boot_side"):
                break
            row = run_step(vmm, step, sub)
            rows.append(row)
            if log:
                log(scen["name"], row)
    finally:
        alive = vmm.proc.poll() is None
        exit_status = vmm.exit_status()
        vmm.close()
    res = {"name": scen["name"], "steps": rows, "alive_at_end": alive, "exit": exit_status}
    if preboot and boot_side_from(scen):
        res["boot_side_from"] = boot_side_from(scen)  # not replayed: compare the rest only
    if scen.get("compare_end") is False:
        res["compare_end"] = False  # the process's fate is not deterministic
    err = bytes(vmm.err.buf[-2000:]).decode(errors="replace").strip()
    if err:
        res["stderr"] = sub.sanitize(err)  # informational
    if debug:
        res["console"] = sub.sanitize(bytes(vmm.out.buf[-8000:]).decode(errors="replace"))
    return res


def load_cases(path=DEFAULT_CASES):
    with open(path) as f:
        return json.load(f)


def run_all(binary, kernel, cases, only=None, log=None, keep_tmp=False, debug=False,
            preboot=False):
    """Runs every scenario (in order: later ones may use files earlier ones wrote,
    e.g. a snapshot) in one shared temp dir. Returns the observed table. preboot:
    each scenario stops before its boot side, and one that starts with it is left
    out (a host without /dev/kvm)."""
    tmp = tempfile.mkdtemp(prefix="svm-conf-")
    try:
        out = []
        for i, scen in enumerate(cases["scenarios"]):
            if only and scen["name"] not in only:
                continue
            if preboot and scen["steps"][0].get("boot_side"):
                continue
            out.append(run_scenario(os.path.abspath(binary), os.path.abspath(kernel),
                                    tmp, i, scen, log, debug, preboot))
        return {"format": 1, "scenarios": out}
    finally:
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def describe(row):
    if "method" in row:
        return "%s %s" % (row["method"], row["path"])
    for k in ("serial", "console", "sleep", "wait_exit"):
        if k in row:
            return k
    return ""


def row_diffs(r, o, columns=COMPARED):
    """Differences between a recorded row r and an observed row o (list of text)."""
    diffs = []
    if o is None:
        return ["step not observed"]
    for c in (r.get("compare", columns) if columns is COMPARED else columns):
        if (c in r or c in o) and r.get(c) != o.get(c):
            diffs.append("%s: expected %r, got %r" % (c, r.get(c), o.get(c)))
    return diffs


def compare(recorded, observed, columns=COMPARED):
    """Row-by-row comparison. Returns a list of readable mismatch lines (empty: equal)."""
    problems = []
    obs = {s["name"]: s for s in observed["scenarios"]}
    for rs in recorded["scenarios"]:
        os_ = obs.get(rs["name"])
        if os_ is None:
            problems.append("scenario %s: not observed" % rs["name"])
            continue
        orows = {r["step"]: r for r in os_["steps"]}
        cut = os_.get("boot_side_from")
        for r in rs["steps"]:
            if r["step"] == cut:
                break  # the boot side was not replayed (no /dev/kvm)
            o = orows.get(r["step"])
            if o is None:
                problems.append("%s / %s: step not observed" % (rs["name"], r["step"]))
                continue
            diffs = row_diffs(r, o, columns)
            if diffs:
                line = "%s / %s (%s %s): %s" % (
                    rs["name"], r["step"], r.get("method", ""), r.get("path", ""),
                    "; ".join(diffs))
                if r.get("fault_message") or o.get("fault_message") or o.get("error"):
                    line += "\n      recorded fault: %r\n      observed fault: %r" % (
                        r.get("fault_message"), o.get("fault_message") or o.get("error"))
                problems.append(line)
        for c in ("alive_at_end", "exit"):
            if rs.get("compare_end", True) and not cut and rs.get(c) != os_.get(c):
                problems.append("%s: scenario %s expected %r, got %r" % (
                    rs["name"], c, rs.get(c), os_.get(c)))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="firecracker or fc-emulator")
    ap.add_argument("--kernel", required=True, help="guest kernel (the tiny guest ELF)")
    ap.add_argument("--out", help="write the observed table here (JSON)")
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--only", nargs="*", help="run only these scenarios")
    ap.add_argument("--compare", help="a recorded table to compare with")
    ap.add_argument("--label", help="a note stored in the table (e.g. the binary's version)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, snapshots)")
    ap.add_argument("--debug", action="store_true", help="put each scenario's console tail in the table")
    ap.add_argument("--preboot", action="store_true",
                    help="replay only what needs no /dev/kvm: each scenario up to its boot side")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    def log(name, row):
        if a.verbose:
            print("%-22s %-28s %-40s %s %s %s" % (
                name, row["step"], describe(row), row.get("status", row.get("found", "")),
                row.get("state", ""), row.get("fault_message", row.get("error", ""))),
                file=sys.stderr)

    table = run_all(a.binary, a.kernel, load_cases(a.cases), a.only, log,
                    a.keep_tmp, a.debug, a.preboot)
    if a.label:
        table["label"] = a.label
    if a.out:
        with open(a.out, "w") as f:
            json.dump(table, f, indent=1, sort_keys=True)
            f.write("\n")
    if a.compare:
        with open(a.compare) as f:
            problems = compare(json.load(f), table)
        for p in problems:
            print(p)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
