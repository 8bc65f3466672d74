"""The emulator's host side of Firecracker's hybrid vsock, with the project's
agent playing the guest (tests/emulator/vsock_host.c): CONNECT/OK on the
device's Unix socket once the guest runs, the connection ended when nobody
listens on the port, and real commands run by the agent behind it."""

import os
import socket
import time

import pytest

import agentclient
from test_emulator import Emu, emu, kernel  # noqa: F401 (fixtures)


def boot_with_vsock(emu, kernel, tmp_path, boot_args="console=ttyS0"):  # noqa: F811
    e = emu()
    uds = str(tmp_path / "v.sock")
    assert e.put("/vsock", {"guest_cid": 3, "uds_path": uds})[0] == 204
    e.boot(kernel, boot_args)
    return e, uds


def test_connect_ok_and_a_command(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path)
    s = socket.socket(socket.AF_UNIX)
    s.connect(uds)
    s.sendall(b"CONNECT 5252\n")
    line = s.recv(64)
    assert line.startswith(b"OK ") and line.endswith(b"\n")
    assert int(line[3:]) >= 1 << 30  # Firecracker's host-side port numbers
    s.close()
    out, err, status = agentclient.run(uds, ["sh", "-c", "cat; echo oops >&2; exit 7"], stdin=b"in\n")
    assert (out, err, status) == (b"in\n", b"oops\n", "exit 7")


def test_nobody_listening_ends_the_connection(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path)
    with pytest.raises(ConnectionResetError):
        agentclient.connect(uds, port=1234)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(uds)
    s.sendall(b"HELLO\n")
    assert s.recv(64) == b""  # not a connect command: ended
    s.close()


def test_noagent_knob(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path, "console=ttyS0 emu.noagent")
    with pytest.raises(ConnectionResetError):
        agentclient.connect(uds)


def test_agent_errors_signals_and_the_end_of_the_vmm(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path)
    out, err, status = agentclient.run(uds, ["/nonexistent/prog"])
    assert status.startswith("error ") and "No such file" in status
    # a signal to the command's group
    s = agentclient.connect(uds)
    s.sendall(agentclient.spawn_frame(["sleep", "30"]))
    got = agentclient.frames(s)
    t, p = next(got)
    assert t == agentclient.STARTED
    pid = int.from_bytes(p, "big")
    s.sendall(agentclient.frame(agentclient.SIGNAL, (15).to_bytes(4, "big")))
    assert [(t, p) for t, p in got][-1] == (agentclient.EXIT, (1).to_bytes(4, "big") + (15).to_bytes(4, "big"))
    s.close()
    # the VMM's end ends what its guest ran
    s = agentclient.connect(uds)
    s.sendall(agentclient.spawn_frame(["sleep", "30"]))
    t, p = next(agentclient.frames(s))
    pid = int.from_bytes(p, "big")
    os.kill(pid, 0)
    e.proc.kill()
    e.proc.wait()
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the command outlived the VMM")
    s.close()


def test_put_and_get_a_file(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path)
    target = str(tmp_path / "put.bin")
    data = os.urandom(200000)
    s = agentclient.connect(uds)
    s.sendall(agentclient.frame(agentclient.PUT, (0o640).to_bytes(4, "big") + target.encode() + b"\0"))
    for i in range(0, len(data), 65536):
        s.sendall(agentclient.frame(agentclient.DATA, data[i:i + 65536]))
    s.sendall(agentclient.frame(agentclient.DATA))
    assert [t for t, p in agentclient.frames(s)] == [agentclient.DONE]
    s.close()
    assert open(target, "rb").read() == data
    assert os.stat(target).st_mode & 0o777 == 0o640
    s = agentclient.connect(uds)
    s.sendall(agentclient.frame(agentclient.GET, target.encode() + b"\0"))
    got = list(agentclient.frames(s))
    s.close()
    assert all(t == agentclient.DATA for t, p in got) and got[-1][1] == b""
    assert b"".join(p for t, p in got) == data
    s = agentclient.connect(uds)
    s.sendall(agentclient.frame(agentclient.GET, b"/nonexistent\0"))
    (t, p), = list(agentclient.frames(s))
    s.close()
    assert t == agentclient.ERROR and b"No such file" in p


def test_a_bad_first_frame_is_refused(emu, kernel, tmp_path):  # noqa: F811
    e, uds = boot_with_vsock(emu, kernel, tmp_path)
    s = agentclient.connect(uds)
    s.sendall(b"\x00\x01\x00\x00\xff\xff\xff\xff")  # a SPAWN of 4 GiB
    (t, p), = list(agentclient.frames(s))
    s.close()
    assert t == agentclient.ERROR and b"longer than the protocol allows" in p
