"""A minimal direct client of the guest agent (core/base/agentproto.h), over
Firecracker's hybrid vsock: connect to the device's Unix socket, send
"CONNECT <port>\\n", read "OK <port>\\n", then speak frames. The tests use it to
reach the agent without smartvmfs in between, and the bench as the reference
that an exec session through the mount is compared with."""

import socket
import struct

PORT = 5252
SPAWN, STDIN, SIGNAL, PUT, GET, DATA = 1, 2, 3, 4, 5, 6
STARTED, STDOUT, STDERR, EXIT, ERROR, DONE = 16, 17, 18, 19, 20, 21


def frame(t, payload=b""):
    return struct.pack(">HHI", t, 0, len(payload)) + payload


def spawn_frame(argv, env=(), cwd="", uid=None, gid=None):
    flags = (1 if uid is not None else 0) | (2 if gid is not None else 0)
    p = struct.pack(">IIIII", flags, uid or 0, gid or 0, len(argv), len(env))
    for s in [cwd, *argv, *env]:
        p += s.encode() + b"\0"
    return frame(SPAWN, p)


def connect(uds, port=PORT, timeout=10):
    """The connection past its OK line, or an OSError (nobody listens: the
    connection ends without OK)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            s.close()
            raise ConnectionResetError(f"vsock port {port}: no answer (nobody listens)")
        line += c
    if not line.startswith(b"OK "):
        s.close()
        raise ConnectionError(f"vsock port {port}: {line!r}")
    return s


def frames(sock):
    """Yields (type, payload) until the connection ends."""
    buf = b""
    while True:
        while len(buf) >= 8:
            t, _, n = struct.unpack(">HHI", buf[:8])
            if len(buf) < 8 + n:
                break
            yield t, buf[8:8 + n]
            buf = buf[8 + n:]
        d = sock.recv(65536)
        if not d:
            return
        buf += d


def run(uds, argv, stdin=b"", env=(), cwd=""):
    """Runs argv in the guest: (stdout, stderr, status) with status "exit N",
    "signal N" or "error TEXT"."""
    s = connect(uds)
    try:
        s.sendall(spawn_frame(argv, env, cwd) + (frame(STDIN, stdin) if stdin else b"") + frame(STDIN))
        out, err, status = b"", b"", None
        for t, p in frames(s):
            if t == STDOUT:
                out += p
            elif t == STDERR:
                err += p
            elif t == EXIT:
                how, code = struct.unpack(">II", p)
                status = f"{'signal' if how else 'exit'} {code}"
            elif t == ERROR:
                status = "error " + p[4:].decode()
        return out, err, status
    finally:
        s.close()
