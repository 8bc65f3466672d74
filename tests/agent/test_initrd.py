"""The agent's initrd (assets/agent: smartvm-init, mkinitrd.py), without a VM:
the archive is read back as the kernel unpacks it, and its /init is run as PID 1
of a fresh PID and mount namespace, chrooted into the unpacked files, with a
root= that names a directory (bind-mounted: the test's stand-in for a root
device). It must mount that root, hand over to it as switch_root does, start
the agent inside it and exec the root's init as PID 1 — which here is a script
that writes down what it sees.

Needs root and unshare(1); skips otherwise."""
import os
import shutil
import stat
import subprocess
import sys

import pytest

INITRD = os.environ.get("SMARTVMFS_AGENT_INITRD", "")
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

needs = pytest.mark.skipif(
    not INITRD or not os.path.exists(INITRD), reason="SMARTVMFS_AGENT_INITRD is not built")


def read_newc(data):
    """[(name, mode, bytes)] of a newc cpio archive, checking its format."""
    out, at = [], 0
    while True:
        assert data[at:at + 6] == b"070701", f"bad magic at {at}"
        f = [int(data[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[at + 110:at + 110 + namesize - 1].decode()
        assert data[at + 110 + namesize - 1] == 0
        at += 110 + namesize
        at += -at % 4
        body = data[at:at + size]
        at += size
        at += -at % 4
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body))


@needs
def test_the_archive():
    files = {n: (m, b) for n, m, b in read_newc(open(INITRD, "rb").read())}
    assert set(files) == {"dev", "proc", "sys", "newroot", "init", "smartvm-agent"}
    for n in ("init", "smartvm-agent"):
        m, b = files[n]
        assert stat.S_ISREG(m) and m & 0o111 and b.startswith(b"\x7fELF"), n
        # static: a guest gives it no libraries (no PT_INTERP program header)
        assert b"/lib64/ld-linux" not in b[:4096], n
    assert all(stat.S_ISDIR(files[d][0]) for d in ("dev", "proc", "sys", "newroot"))


@needs
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount and PID namespaces)")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) is missing")
def test_hand_over_to_the_root_filesystem(tmp_path):
    ramfs = tmp_path / "initramfs"
    ramfs.mkdir()
    for name, mode, body in read_newc(open(INITRD, "rb").read()):
        p = ramfs / name
        if stat.S_ISDIR(mode):
            p.mkdir()
        else:
            p.write_bytes(body)
            p.chmod(stat.S_IMODE(mode))
    (ramfs / "hostroot").mkdir()
    result = tmp_path / "result"
    init = tmp_path / "fake-init"
    # the root filesystem's init: PID 1, with the agent beside it
    init.write_text(f"""#!/bin/sh
mount -t proc proc /proc
echo "pid $$" > {result}
i=0
while [ $i -lt 100 ]; do
  for p in /proc/[0-9]*; do
    if [ "$(cat $p/comm 2>/dev/null)" = smartvm-agent ]; then
      echo "agent $(readlink $p/root) ppid $(awk '/^PPid/ {{print $2}}' $p/status)" >> {result}
      exit 0
    fi
  done
  sleep 0.05; i=$((i+1))
done
echo "no agent" >> {result}
""")
    init.chmod(0o755)
    cmdline = f"console=ttyS0 root=/hostroot rw init={init}"
    r = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "/bin/sh", "-c",
         f"mount --rbind / {ramfs}/hostroot && exec chroot {ramfs} /init"],
        env={"SMARTVM_INIT_CMDLINE": cmdline, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True, text=True, timeout=60)
    got = result.read_text() if result.exists() else ""
    assert got.startswith("pid 1\n"), (got, r.stdout, r.stderr)
    # the agent runs in the root filesystem (its root is /, not the initrd's)
    # as a child of the initrd's init, which became the real init (PID 1)
    assert "agent / ppid 1" in got, (got, r.stdout, r.stderr)
    # the initrd's files were freed at the hand-over
    assert not (ramfs / "init").exists() and not (ramfs / "smartvm-agent").exists()


@needs
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount and PID namespaces)")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) is missing")
def test_no_root_says_why(tmp_path):
    ramfs = tmp_path / "initramfs"
    ramfs.mkdir()
    for name, mode, body in read_newc(open(INITRD, "rb").read()):
        p = ramfs / name
        if stat.S_ISDIR(mode):
            p.mkdir()
        else:
            p.write_bytes(body)
            p.chmod(stat.S_IMODE(mode))
    r = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "chroot",
         str(ramfs), "/init"],
        env={"SMARTVM_INIT_CMDLINE": "console=ttyS0", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "no root= on the kernel command line" in r.stderr, r


@needs
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount and PID namespaces)")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) is missing")
def test_modules_ride_along_and_a_bad_one_is_said(tmp_path):
    """An initrd with /modules (mkinitrd.py MODULE...): each is offered to the
    kernel before the root is mounted, with its NAME.KEY=VALUE words of the
    command line; one the kernel refuses is said, and the hand-over goes on."""
    build = os.path.dirname(INITRD)
    bogus = tmp_path / "bogus_mod.ko"
    bogus.write_bytes(b"not an ELF module")
    initrd = tmp_path / "with-modules.initrd"
    subprocess.run([sys.executable, os.path.join(SRC, "assets", "agent", "mkinitrd.py"),
                    os.path.join(build, "initrd-init"), os.path.join(build, "initrd-agent"),
                    str(initrd), str(bogus)], check=True)
    names = [n for n, m, b in read_newc(open(initrd, "rb").read())]
    assert "modules/01-bogus_mod.ko" in names
    ramfs = tmp_path / "initramfs"
    ramfs.mkdir()
    for name, mode, body in read_newc(open(initrd, "rb").read()):
        p = ramfs / name
        if stat.S_ISDIR(mode):
            p.mkdir()
        else:
            p.write_bytes(body)
            p.chmod(stat.S_IMODE(mode))
    (ramfs / "hostroot").mkdir()
    result = tmp_path / "result"
    init = tmp_path / "fake-init"
    init.write_text(f"#!/bin/sh\necho \"pid $$\" > {result}\n")
    init.chmod(0o755)
    r = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "/bin/sh", "-c",
         f"mount --rbind / {ramfs}/hostroot && exec chroot {ramfs} /init"],
        env={"SMARTVM_INIT_CMDLINE": f"root=/hostroot rw bogus-mod.x=1 init={init}",
             "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert "smartvm-init: module bogus_mod: " in r.stderr, r
    assert result.read_text() == "pid 1\n", r
