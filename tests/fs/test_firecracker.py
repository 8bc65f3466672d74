"""The same tree on a real Firecracker booting the tiny guest.

Runs when SMARTVMFS_FIRECRACKER names a Firecracker binary (and /dev/kvm and
the guest kernel are there); skipped, saying why, otherwise.
"""
import os
import subprocess
import time


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def console(m, name):
    return m.read("vms", name, "console")


def test_boot_console_echo_stop(fc_mnt):
    m = fc_mnt
    m.make_vm("tiny")
    r = m.sh("echo start > vms/tiny/ctl && cat vms/tiny/state")
    assert r.returncode == 0, r.stderr + m.read("vms", "tiny", "error")
    assert r.stdout == "running\n"
    assert wait_for(lambda: "smartvm-guest: ready" in console(m, "tiny"))
    m.write(m.vm("tiny", "console"), "echo me\n")
    assert wait_for(lambda: "echo me" in console(m, "tiny"))
    info = m.read("vms", "tiny", "info")
    assert '"Running"' in info
    assert m.read("vms", "tiny", "stat").startswith("pid ")
    r = m.sh("echo stop > vms/tiny/ctl && cat vms/tiny/state", timeout=30)
    assert r.stdout == "stopped\n", r.stderr
    assert m.read("vms", "tiny", "error") == ""  # a graceful end, no failure


def test_events_and_tail_on_real_vm(fc_mnt):
    m = fc_mnt
    m.make_vm("tiny")
    # a read-write open: its reads wait for the next events
    cat = subprocess.Popen(["bash", "-c", 'exec 3<>"$1"; exec cat <&3', "-", m.vm("tiny", "events")],
                           stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert cat.stdout.readline() == "state created\n"
        m.ctl("tiny", "start")
        assert cat.stdout.readline() == "state starting\n"
        assert cat.stdout.readline() == "state running\n"
        m.write(m.vm("tiny", "console"), "q")  # the guest resets: Firecracker exits 0
        lines = [cat.stdout.readline() for _ in range(2)]
        assert "exit 0\n" in lines and "state stopped\n" in lines
    finally:
        cat.kill()
        cat.wait()
    assert m.state("tiny") == "stopped"


def test_pause_resume_kill_real(fc_mnt):
    m = fc_mnt
    m.started_vm("tiny")
    m.ctl("tiny", "pause")
    assert m.state("tiny") == "paused"
    m.ctl("tiny", "resume")
    m.ctl("tiny", "kill")
    assert m.state("tiny") == "stopped"
