"""Tests of fc-emulator, the Firecracker API test double (DESIGN §5).

Run with:  SMARTVMFS_EMULATOR=/path/to/fc-emulator /usr/bin/python3 -m pytest -q test_emulator.py

Each test starts emulator processes in its own temporary directory; the fixture
kills every process it started and removes the directory.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

EMU = os.environ.get("SMARTVMFS_EMULATOR")
pytestmark = pytest.mark.skipif(
    not EMU or not os.access(EMU, os.X_OK),
    reason="SMARTVMFS_EMULATOR is not set to the fc-emulator executable",
)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket, as a Firecracker client talks."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Drain(threading.Thread):
    """Reads a pipe to its end so the emulator's stdout never fills."""

    def __init__(self, f):
        super().__init__(daemon=True)
        self.f, self.buf, self.cond = f, bytearray(), threading.Condition()

    def run(self):
        while True:
            d = os.read(self.f.fileno(), 65536)
            with self.cond:
                if not d:
                    self.cond.notify_all()
                    return
                self.buf += d
                self.cond.notify_all()

    def wait_for(self, needle, timeout=5):
        end = time.monotonic() + timeout
        with self.cond:
            while needle not in self.buf:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


class Emu:
    def __init__(self, tmp, name, args=(), drain=True):
        self.sock = str(tmp / f"{name}.sock")
        self.proc = subprocess.Popen(
            [EMU, "--api-sock", self.sock, "--id", name, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = Drain(self.proc.stdout) if drain else None
        if self.out:
            self.out.start()

    def wait_socket(self, timeout=5):
        # Like Firecracker, the emulator binds then listens: the path can
        # exist a moment before connections are accepted, so try to connect.
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > end:
                return False
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                return True
            except OSError:
                time.sleep(0.005)

    def request(self, method, path, body=None, headers=None, raw_body=None):
        c = UnixHTTPConnection(self.sock)
        if body is not None:
            raw_body = json.dumps(body)
        hdrs = dict(headers or {})
        if raw_body is not None and "Transfer-Encoding" not in hdrs:
            hdrs.setdefault("Content-Type", "application/json")
        c.request(method, path, body=raw_body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def state(self):
        return self.request("GET", "/")[1]["state"]

    def boot(self, kernel, boot_args="console=ttyS0"):
        assert self.put("/boot-source", {"kernel_image_path": str(kernel), "boot_args": boot_args})[0] == 204
        assert self.put("/actions", {"action_type": "InstanceStart"})[0] == 204

    def stdin(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout=5):
        return self.proc.wait(timeout)


@pytest.fixture
def emu(tmp_path):
    started = []

    def start(name="vm", args=(), drain=True, wait=True):
        e = Emu(tmp_path, name, args, drain)
        started.append(e)
        if wait:
            assert e.wait_socket(), e.proc.stderr.read().decode()
        return e

    yield start
    for e in started:
        if e.proc.poll() is None:
            e.proc.kill()
        e.proc.wait()
        for f in (e.proc.stdin, e.proc.stdout, e.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def kernel(tmp_path):
    """Any ELF image will do: the emulator checks the file, it does not run it."""
    k = tmp_path / "vmlinux"
    k.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57))
    return k


READY = b"smartvm-guest: ready\n"


def test_socket_in_the_way_fails(tmp_path, emu):
    (tmp_path / "vm.sock").write_text("")
    e = emu(args=(), wait=False)
    assert e.wait() == 1
    err = e.proc.stderr.read().decode()
    assert "FailedToBindSocket" in err
    assert (tmp_path / "vm.sock").read_text() == ""  # never removed


def test_version_and_bad_arguments(tmp_path):
    r = subprocess.run([EMU, "--version"], capture_output=True)
    assert r.returncode == 0 and r.stdout.startswith(b"Firecracker v") and b"\n\n" in r.stdout
    r = subprocess.run([EMU, "--bogus"], capture_output=True)
    assert r.returncode == 153 and b"UnexpectedArgument" in r.stderr
    r = subprocess.run([EMU, "--api-sock", str(tmp_path / "x"), "--level", "Loud"], capture_output=True)
    assert r.returncode == 152


def test_boot_flow_console_and_echo(emu, kernel):
    e = emu()
    assert e.request("GET", "/") == (200, {"id": "vm", "state": "Not started",
                                           "vmm_version": e.request("GET", "/version")[1]["firecracker_version"],
                                           "app_name": "Firecracker"})
    e.boot(kernel)
    assert e.state() == "Running"
    assert e.out.wait_for(READY)
    e.stdin(b"hello")
    assert e.out.wait_for(READY + b"hello") or e.out.wait_for(b"hello")
    # pre-boot-only after boot, InstanceStart only once
    st, body = e.put("/actions", {"action_type": "InstanceStart"})
    assert st == 400 and "after starting" in body["fault_message"]
    st, body = e.put("/boot-source", {"kernel_image_path": str(kernel)})
    assert st == 400
    assert e.request("PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert e.state() == "Paused"
    assert e.request("PATCH", "/vm", {"state": "Resumed"})[0] == 204
    assert e.state() == "Running"


def test_q_on_stdin_resets(emu, kernel):
    e = emu()
    e.boot(kernel)
    assert e.out.wait_for(READY)
    e.stdin(b"q")
    assert e.wait() == 0


def test_ctrl_alt_del_resets(emu, kernel):
    e = emu()
    e.boot(kernel)
    assert e.put("/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
    assert e.wait() == 0


def test_nocad_guest_keeps_running(emu, kernel):
    e = emu()
    e.boot(kernel, "console=ttyS0 svmguest.nocad")
    assert e.put("/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
    time.sleep(0.3)
    assert e.proc.poll() is None and e.state() == "Running"


def test_svmguest_exit_resets_after_line(emu, kernel):
    e = emu()
    e.boot(kernel, "svmguest.exit")
    assert e.wait() == 0
    assert e.out.wait_for(READY)


@pytest.mark.parametrize("args,status", [
    ("emu.crash_ms=50", 1),
    ("emu.crash_ms=50 emu.crash_exit=7", 7),
    ("emu.crash_ms=50 emu.crash_signal=9", -9),
])
def test_crash_knobs(emu, kernel, args, status):
    e = emu()
    e.boot(kernel, args)
    assert e.wait() == status


def test_boot_delay(emu, kernel):
    e = emu()
    t = time.monotonic()
    e.boot(kernel, "emu.boot_ms=300")
    assert time.monotonic() - t >= 0.3


def test_preboot_rules_and_paths(emu, tmp_path, kernel):
    e = emu()
    st, body = e.put("/boot-source", {"kernel_image_path": str(tmp_path / "missing")})
    assert st == 400 and "No such file or directory" in body["fault_message"]
    st, body = e.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(tmp_path / "missing"),
                                        "is_root_device": True, "is_read_only": False})
    assert st == 400 and "No such file or directory" in body["fault_message"]
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(4096))
    assert e.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                    "is_root_device": True, "is_read_only": False})[0] == 204
    st, body = e.put("/drives/two", {"drive_id": "two", "path_on_host": str(disk), "is_root_device": True})
    assert st == 400 and "root block device already exists" in body["fault_message"]
    assert e.request("PATCH", "/vm", {"state": "Paused"})[0] == 400
    st, body = e.put("/snapshot/load", {"snapshot_path": str(disk), "mem_file_path": str(disk)})
    assert st == 400 and "not allowed after configuring" in body["fault_message"]


def test_bad_json_and_unknown_field(emu):
    e = emu()
    st, body = e.request("PUT", "/machine-config", raw_body="{bad")
    assert st == 400 and body["fault_message"].endswith("key must be a string at line 1 column 2.")
    st, body = e.put("/machine-config", {"vcpu_count": 1})
    assert st == 400 and "missing field `mem_size_mib`" in body["fault_message"]
    st, body = e.request("GET", "/nope")
    assert st == 400 and body["fault_message"] == "Invalid request method and/or path: GET nope."


def test_chunked_body_arrives_empty(emu):
    e = emu()
    c = UnixHTTPConnection(e.sock)
    c.putrequest("PUT", "/machine-config")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "application/json")
    c.endheaders()
    data = b'{"vcpu_count":2,"mem_size_mib":256}'
    c.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
    r = c.getresponse()
    assert r.status == 400
    assert json.loads(r.read())["fault_message"] == "Empty PUT request."
    c.close()
    assert e.request("GET", "/machine-config")[1]["vcpu_count"] == 1


def test_mmds_limit_and_payload_limit(emu):
    e = emu(args=("--mmds-size-limit", "1000"))
    assert e.put("/mmds", {"k": "x" * 500})[0] == 204
    st, body = e.put("/mmds", {"k": "x" * 2000})
    assert st == 413 and "MMDS limit exceeded" in body["fault_message"]
    st, body = e.request("PATCH", "/mmds", {"j": "y" * 600})
    assert st == 413
    assert e.request("GET", "/mmds") == (200, {"k": "x" * 500})
    # a body over --http-api-max-payload-size (default 51200) is refused unread
    c = UnixHTTPConnection(e.sock)
    c.request("PUT", "/mmds", body=b'{"k":"' + b"x" * 60000 + b'"}')
    r = c.getresponse()
    assert r.status == 400 and b"larger than the limit of 51200" in r.read()
    c.close()


def test_snapshot_round_trip_in_fresh_process(emu, tmp_path, kernel):
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(4096))
    a = emu("a")
    assert a.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})[0] == 204
    assert a.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                    "is_root_device": True, "is_read_only": False})[0] == 204
    a.boot(kernel, "svmguest.nocad")
    snap, mem = tmp_path / "vm.snap", tmp_path / "vm.mem"
    st, body = a.put("/snapshot/create", {"snapshot_path": str(snap), "mem_file_path": str(mem)})
    assert st == 400 and "while running" in body["fault_message"]
    assert a.request("PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert a.put("/snapshot/create", {"snapshot_path": str(snap), "mem_file_path": str(mem),
                                      "snapshot_type": "Full"})[0] == 204
    assert mem.stat().st_size == 64 << 20
    assert mem.stat().st_blocks * 512 < (1 << 20)  # sparse
    a.proc.kill()

    b = emu("b")
    assert b.put("/snapshot/load", {"snapshot_path": str(snap), "mem_file_path": str(mem),
                                    "resume_vm": True,
                                    "network_overrides": []})[0] == 204
    assert b.state() == "Running"
    assert b.request("GET", "/machine-config")[1]["mem_size_mib"] == 64
    assert b.put("/snapshot/load", {"snapshot_path": str(snap), "mem_file_path": str(mem)})[0] == 400
    # the restored guest is the same guest: it still ignores Ctrl-Alt-Del
    assert b.put("/actions", {"action_type": "SendCtrlAltDel"})[0] == 204
    time.sleep(0.2)
    assert b.proc.poll() is None

    c = emu("c")
    assert c.put("/snapshot/load", {"snapshot_path": str(snap),
                                    "mem_backend": {"backend_type": "File", "backend_path": str(mem)}})[0] == 204
    assert c.state() == "Paused"

    # only emulator snapshots are accepted, and a failed restore ends the process
    d = emu("d")
    st, body = d.put("/snapshot/load", {"snapshot_path": str(disk), "mem_file_path": str(mem)})
    assert st == 400 and "fc-emulator" in body["fault_message"]
    assert d.wait() == 1


def test_sigterm_kills_and_leaves_socket(emu):
    e = emu()
    e.proc.send_signal(signal.SIGTERM)
    assert e.wait() == -signal.SIGTERM
    assert os.path.exists(e.sock)


def test_logger_fifo_and_metrics(emu, tmp_path, kernel):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    metrics = tmp_path / "metrics"
    # Firecracker opens the FIFO read-write and non-blocking: it starts with no reader
    e = emu(args=("--log-path", str(fifo), "--metrics-path", str(metrics)))
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        time.sleep(0.05)
        lines = os.read(fd, 65536).decode()
        assert "Running Firecracker v" in lines and "API server started." in lines
        st, body = e.put("/actions", {"action_type": "FlushMetrics"})
        assert st == 400 and "before starting" in body["fault_message"]
        st, body = e.put("/metrics", {"metrics_path": str(metrics)})
        assert st == 400 and "Reinitialization of metrics not allowed" in body["fault_message"]
        e.boot(kernel)
        assert e.put("/actions", {"action_type": "FlushMetrics"})[0] == 204
        rows = [json.loads(x) for x in metrics.read_text().splitlines()]
        assert len(rows) == 2 and "utc_timestamp_ms" in rows[0] and "vmm" in rows[0]
        time.sleep(0.05)
        assert "The API server received a Put request on \"/actions\"" in os.read(fd, 65536).decode()
    finally:
        os.close(fd)
    assert not e.out.buf.startswith(b"20")  # log lines went to the FIFO, not the console


def test_undrained_stdout_never_blocks_the_api(emu, kernel):
    e = emu(drain=False)  # nobody reads the console
    e.boot(kernel)
    chunk = b"x" * 65536
    for _ in range(40):  # 2.5 MiB of echo, far beyond any pipe buffer
        e.stdin(chunk)
    t = time.monotonic()
    assert e.state() == "Running"
    assert time.monotonic() - t < 1


def test_stdin_eof_does_not_spin(emu, kernel):
    e = emu()
    e.boot(kernel)
    e.proc.stdin.close()
    time.sleep(0.5)
    with open(f"/proc/{e.proc.pid}/stat") as f:
        utime, stime = (int(x) for x in f.read().split()[13:15])
    assert utime + stime < 10  # clock ticks: a busy loop would burn ~50
    assert e.state() == "Running"


def test_console_log_lines_without_logger(emu, kernel):
    # Without a logger Firecracker writes its log lines to stdout, the console.
    e = emu()
    assert e.out.wait_for(b"Running Firecracker v")
    e.boot(kernel)
    assert e.out.wait_for(b"The API server received a Put request on \"/actions\"")


def test_closed_console_pipes_do_not_spin(emu, kernel):
    # epoll reports HUP/ERR on a dead pipe whatever the mask: the loop must
    # drop such fds, whether the guest runs or is paused.
    e = emu(drain=False)
    e.proc.stdout.close()
    e.boot(kernel)
    e.proc.stdin.close()
    assert e.request("PATCH", "/vm", {"state": "Paused"})[0] == 204
    time.sleep(0.3)
    assert e.request("PATCH", "/vm", {"state": "Resumed"})[0] == 204
    time.sleep(0.3)
    with open(f"/proc/{e.proc.pid}/stat") as f:
        utime, stime = (int(x) for x in f.read().split()[13:15])
    assert utime + stime < 10
    assert e.state() == "Running"
