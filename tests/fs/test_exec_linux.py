"""Exec in a real Linux guest: a real Firecracker boots a Linux kernel with
"agent": true, the agent's initrd hands over to an ext4 root filesystem built
here (a static busybox and an init script), and commands run in the guest
through vms/NAME/exec.

Opt-in, as it needs what the default run never has:
  SMARTVMFS_FIRECRACKER        a real Firecracker (and /dev/kvm)
  SMARTVMFS_GUEST_LINUX        a Linux kernel for it (an uncompressed vmlinux ELF)
  SMARTVMFS_GUEST_LINUX_MODULES  optional: the kernel's modules tree (a distribution
                               kernel's virtio and vsock drivers are modules); the
                               ones the guest needs ride in the initrd (docs/exec.md)
and a static busybox (Debian's busybox-static) and mke2fs on the host.
Skipped, saying which is missing, otherwise.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BIN, FIRECRACKER, hostfacts, start_daemon, stop_daemon, check_output

LINUX = os.environ.get("SMARTVMFS_GUEST_LINUX", "")
MODULES = os.environ.get("SMARTVMFS_GUEST_LINUX_MODULES", "")
AGENT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(BIN or "."))),
                         "assets", "agent")
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# what the guest needs before its root: the block device, and vsock for the agent
WANTED_MODULES = ("virtio_mmio", "virtio_blk", "vmw_vsock_virtio_transport")
BOOT_SECONDS = 180  # a nested-virtualisation host boots a distribution kernel slowly


def static_busybox():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            with open(p, "rb") as f:
                head = f.read(8192)
            if head.startswith(b"\x7fELF") and b"ld-linux" not in head:
                return p
    return None


def why_not():
    if not BIN or not os.path.exists(BIN):
        return "SMARTVMFS_BIN is not set (run through meson test)"
    why = hostfacts.real_firecracker(FIRECRACKER)
    if why:
        return why
    if not LINUX:
        return ("opt-in: SMARTVMFS_GUEST_LINUX is not set (a Linux vmlinux to boot, and "
                "SMARTVMFS_GUEST_LINUX_MODULES for its modules)")
    if not os.path.exists(LINUX):
        return f"SMARTVMFS_GUEST_LINUX={LINUX} does not exist"
    if not static_busybox():
        return "no static busybox on the host (Debian: busybox-static) for the root filesystem"
    if not shutil.which("mke2fs"):
        return "mke2fs is missing (e2fsprogs)"
    for f in ("smartvm-init", "smartvm-agent"):
        if not os.path.exists(os.path.join(AGENT_DIR, f)):
            return f"{f} is not built in {AGENT_DIR}"
    return None


def module_order(tree, wanted):
    """The .ko files of `wanted` and what they depend on (modinfo's depends=),
    each after its dependencies; a module built into the kernel is not there."""
    found = {}
    for d, _, files in os.walk(tree):
        for f in files:
            if f.endswith(".ko"):
                found[f[:-3].replace("-", "_")] = os.path.join(d, f)

    def depends(path):
        data = open(path, "rb").read()
        at = data.find(b"\0depends=")
        if at < 0:
            return []
        end = data.index(b"\0", at + 1)
        return [x.replace("-", "_") for x in data[at + 9:end].decode().split(",") if x]

    order, seen = [], set()

    def visit(name):
        if name in seen or name not in found:
            return
        seen.add(name)
        for dep in depends(found[name]):
            visit(dep)
        order.append(found[name])

    for w in wanted:
        visit(w)
    return order


def make_rootfs(tmp):
    """An ext4 image: busybox, its applets as links, and /sbin/init saying it ran."""
    root = os.path.join(tmp, "rootfs")
    for d in ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(static_busybox(), os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "echo", "cat", "uname", "id", "mount", "sleep", "ls", "tr", "pwd"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    init = os.path.join(root, "sbin", "init")
    with open(init, "w") as f:
        f.write("#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sys /sys\n"
                "echo guest-init: up $$\nexec sleep 2147483647\n")
    os.chmod(init, 0o755)
    with open(os.path.join(root, "etc", "hostname"), "w") as f:
        f.write("linux-guest\n")
    img = os.path.join(tmp, "rootfs.ext4")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", root, img, "32M"], check=True,
                   capture_output=True)
    return img


def make_initrd(tmp):
    mods = module_order(MODULES, WANTED_MODULES) if MODULES else []
    out = os.path.join(tmp, "agent-linux.initrd")
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "assets", "agent", "mkinitrd.py"),
                    os.path.join(AGENT_DIR, "smartvm-init"), os.path.join(AGENT_DIR, "smartvm-agent"),
                    out, *mods], check=True)
    return out, mods


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def run(m, name, cmdline, timeout=60):
    """The one-liner form: the command line in, its output and status out."""
    with open(m.vm(name, "exec", "run"), "r+b", buffering=0) as f:
        f.write(cmdline.encode())
        end, out = time.monotonic() + timeout, b""
        while time.monotonic() < end:
            d = f.read()
            if not d:
                return out.decode()
            out += d
    raise AssertionError(f"{cmdline!r}: no end within {timeout} s: {out!r}")


def test_exec_in_a_real_linux_guest(tmp_path, monkeypatch):
    why = why_not()
    if why:
        pytest.skip(why)
    tmp = str(tmp_path)
    img = make_rootfs(tmp)
    initrd, mods = make_initrd(tmp)
    monkeypatch.setenv("SMARTVMFS_AGENT_INITRD", initrd)
    m = start_daemon(tmp, FIRECRACKER, LINUX, checks=False)
    try:
        os.mkdir(m.p("vms", "lx"))
        cfg = {
            "bootSource": {"kernelImagePath": LINUX,
                           "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw"},
            "machineConfig": {"vcpuCount": 1, "memSizeMib": 256},
            "drives": [{"driveId": "rootfs", "pathOnHost": img, "isRootDevice": True,
                        "isReadOnly": False}],
            "agent": True,
        }
        m.write(m.vm("lx", "config.json"), json.dumps(cfg))
        m.ctl("lx", "start")
        assert m.state("lx") == "running"
        console = lambda: m.read("vms", "lx", "console")  # noqa: E731
        # the initrd's /init handed over to the root filesystem's init, as PID 1
        up = wait_for(lambda: "guest-init: up 1" in console() or m.state("lx") != "running",
                      BOOT_SECONDS)
        assert up and m.state("lx") == "running", (
            f"state {m.state('lx')}; console: {console()[-2000:]!r}; the VMM's log: "
            f"{m.read('vms', 'lx', 'log')[-1500:]!r}; error: {m.read('vms', 'lx', 'error')!r}")
        assert "guest-init: up 1" in console(), console()[-3000:]
        assert "smartvm-init:" not in console(), console()[-3000:]  # no module or mount failed
        # the agent listens once vsock is up: a session's timeout covers the wait
        out = run(m, "lx", "uname -s; cat /etc/hostname; id -u; echo err >&2; exit 5",
                  timeout=BOOT_SECONDS)
        assert out == "Linux\nlinux-guest\n0\nerr\nexit 5\n", out
        # the session files, as in tests/fs/test_exec.py, in the real guest
        fd = os.open(m.vm("lx", "exec", "clone"), os.O_RDWR)
        try:
            n = os.read(fd, 64).decode().strip()
            os.write(fd, b"cwd /proc\nrun sh -c 'pwd; kill -9 $$'\n")
            end = time.monotonic() + 60
            while not m.read("vms", "lx", "exec", n, "status").startswith("signal"):
                assert time.monotonic() < end, m.read("vms", "lx", "exec", n, "status")
                time.sleep(0.05)
            assert m.read("vms", "lx", "exec", n, "status") == "signal 9\n"
            assert m.read("vms", "lx", "exec", n, "stdout").startswith("/proc\n")
        finally:
            os.close(fd)
        m.ctl("lx", "kill")
        assert m.state("lx") == "stopped"
    finally:
        stop_daemon(m)
        check_output(m, [])
    print(f"booted {os.path.basename(LINUX)} with {len(mods)} modules in the initrd")
