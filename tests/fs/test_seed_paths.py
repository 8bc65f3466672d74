"""What the seed does that had no test through the mount (issue 17, point 8).

Each test fails without its behaviour: the hosted manifest's success path
(`-o manifest`, `fetch hosted`, `"image": "hosted"`), `force`, a successful
`balloon`, ROOTFS_CREATE_FAILED, ROOTFS_CLONE_FAILED and `-o noephemeral` end to
end. (BRIDGE_SETUP_FAILED and a successful `netif` are in test_net.py, which has
the network namespace they need; the readiness timeout of a start in test_edges.)
"""
import errno
import hashlib
import json
import os
import stat
import time

import pytest

from conftest import EMULATOR, check_output, start_daemon, stop_daemon, vm_config
from test_images import bundles, expect_errno, images_ctl, mount, server  # noqa: F401 (a fixture)


def hosted_manifest(server, bid, kernel):
    """A manifest served over HTTP, as -o manifest= names one."""
    arts = {}
    for what, data in (("kernel", kernel), ("rootfs", f"rootfs of {bid}\n".encode() * 64)):
        name = f"{bid}-{what}"
        with open(os.path.join(server.files, name), "wb") as f:
            f.write(data)
        arts[what] = {"url": f"{server.base}/files/{name}", "fileName": f"{what}.img",
                      "sha256": hashlib.sha256(data).hexdigest(), "sizeBytes": len(data)}
    doc = {"schemaVersion": 1, "bundleId": bid, "arch": "x86_64", "firecrackerVersion": "v1.15.1",
           "rootfsType": "ext4", "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off", **arts}
    with open(os.path.join(server.files, f"{bid}.json"), "w") as f:
        json.dump(doc, f)
    return f"{server.base}/files/{bid}.json"


def test_hosted_manifest_fetch_force_and_boot(tmp_path, kernel_file, server):
    kernel = open(kernel_file, "rb").read()  # an ELF: the emulator boots it
    url = hosted_manifest(server, "hostedone", kernel)
    m = mount(tmp_path, kernel_file, server, extra=(f"manifest={url}",))
    m.server = server
    try:
        images_ctl(m, "fetch hosted")
        assert bundles(m) == ["hostedone"]
        assert "hosted hostedone\n" in m.read("images", "ctl")
        # a VM of the hosted image boots from the cached bundle
        os.mkdir(m.p("vms", "web"))
        m.write(m.vm("web", "config.json"),
                json.dumps({"image": "hosted", "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}))
        m.ctl("web", "start")
        assert m.state("web") == "running"
        m.ctl("web", "kill")
        # fetched again: the cache answers; with force, the artifacts are downloaded again
        gets = server.stats().get("/files/hostedone-kernel", 0)
        images_ctl(m, "fetch hosted")
        assert server.stats().get("/files/hostedone-kernel", 0) == gets
        images_ctl(m, "fetch hosted force")
        assert server.stats().get("/files/hostedone-kernel", 0) == gets + 1
        assert m.read("images", "hostedone", "status") == "ready\n"
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_balloon_verb_on_a_guest_with_a_driver(mnt):
    """balloon MIB on a running VM whose guest drives its balloon (the emulator's
    emu.balloon): the target changes, and the statistics say so."""
    mnt.make_vm("web", "emu.balloon", balloon={"amountMib": 0, "deflateOnOom": False,
                                               "statsPollingIntervalS": 1})
    mnt.ctl("web", "start")
    mnt.ctl("web", "balloon 32")
    stats = json.loads(mnt.read("vms", "web", "balloon"))
    assert stats["target_mib"] == 32, stats
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "balloon lots")
    assert e.value.errno == errno.EINVAL


@pytest.mark.daemon_output(r"Failed to create blank rootfs")
def test_rootfs_create_failed(tmp_path, kernel_file):
    """mkfs.ext4 fails (here one first on the daemon's PATH that says no): blank is
    ROOTFS_CREATE_FAILED (EIO), its reason in images/error, nothing left."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "mkfs.ext4"
    fake.write_text("#!/bin/sh\necho 'mkfs.ext4: Device size reported to be zero' >&2\nexit 1\n")
    fake.chmod(0o755)
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False,
                     wrap=("env", f"PATH={bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"))
    try:
        expect_errno(lambda: images_ctl(m, "blank scratch 8"), errno.EIO)
        err = m.read("images", "error")
        assert "Failed to create blank rootfs" in err and "Device size reported to be zero" in err
        assert "(ROOTFS_CREATE_FAILED)" in err
        assert os.listdir(m.p("images", "rootfs")) == []
        assert [f for f in os.listdir(os.path.join(m.datadir, "rootfs"))] == []
    finally:
        stop_daemon(m)
    check_output(m, [r"Failed to create blank rootfs"])


def test_rootfs_clone_failed(mnt, tmp_path):
    """A source the daemon cannot open (here a file of the mount itself that refuses
    a read-only open): ROOTFS_CLONE_FAILED (EIO); a FIFO named as the source is
    refused at once (not a regular file), never waited on."""
    expect_errno(lambda: images_ctl(mnt, f"clone {mnt.p('vms', 'clone')} c1"), errno.EIO)
    assert "(ROOTFS_CLONE_FAILED)" in mnt.read("images", "error")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    expect_errno(lambda: images_ctl(mnt, f"clone {fifo} c2"), errno.ENOENT)
    assert "not a regular file" in mnt.read("images", "error")
    assert os.listdir(mnt.p("images", "rootfs")) == []


def test_noephemeral_uses_drives_in_place(tmp_path, kernel_file):
    """-o noephemeral: a writable drive is not staged; the VMM has the source file
    itself open, read-write, and nothing is copied into the runtime dir."""
    m = start_daemon(str(tmp_path), EMULATOR, kernel_file, checks=False, extra_opts=["noephemeral"])
    try:
        disk = tmp_path / "disk.img"
        disk.write_bytes(os.urandom(1 << 20))
        m.make_vm("web", drives=[{"driveId": "rootfs", "pathOnHost": str(disk),
                                  "isRootDevice": True, "isReadOnly": False}])
        m.ctl("web", "start")
        rundir = m.read("vms", "web", "runtime").strip()
        assert not [f for f in os.listdir(rundir) if f.startswith("drive-")], os.listdir(rundir)
        pid = int(m.read("vms", "web", "pid"))
        held = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target == str(disk):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    held[fd] = int(re_flags(f.read()), 8)
        assert held, "the VMM does not have the source open"
        assert any(fl & os.O_ACCMODE == os.O_RDWR for fl in held.values()), held
    finally:
        stop_daemon(m)
    check_output(m, [])


def re_flags(fdinfo):
    for line in fdinfo.splitlines():
        if line.startswith("flags:"):
            return line.split()[1]
    return "0"


def vmm_config(m, name):
    """GET /vm/config of the VM's VMM, through its API socket: what it was told."""
    import http.client
    import socket

    class Unix(http.client.HTTPConnection):
        def __init__(self, path):
            super().__init__("localhost", timeout=5)
            self.unix_path = path

        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(self.unix_path)

    c = Unix(os.path.join(m.read("vms", name, "runtime").strip(), "fc.sock"))
    c.request("GET", "/vm/config")
    body = json.loads(c.getresponse().read())
    c.close()
    return body


def test_balloon_hinting_mmds_imds_and_logger_module_reach_the_vmm(mnt):
    """The config fields of Firecracker's API that were missing (issue 17): a
    balloon's freePageHinting and freePageReporting, MMDS imdsCompat, and the
    logger's module (Firecracker's --module)."""
    mnt.make_vm("web", balloon={"amountMib": 0, "deflateOnOom": False, "freePageHinting": True,
                                "freePageReporting": True},
                logger={"level": "Debug", "module": "api_server"})
    mnt.ctl("web", "start")
    got = vmm_config(mnt, "web")
    assert got["balloon"]["free_page_hinting"] is True
    assert got["balloon"]["free_page_reporting"] is True
    pid = int(mnt.read("vms", "web", "pid"))
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[argv.index(b"--module") + 1] == b"api_server"
    cfg = json.loads(mnt.read("vms", "web", "config.json"))
    assert cfg["balloon"]["freePageHinting"] is True  # stored as written
    # checked as every field is (another VM: a running one's config is EBUSY)
    os.mkdir(mnt.vm("other"))
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("other", "config.json"), json.dumps({**cfg, "balloon": {
            "amountMib": 0, "deflateOnOom": False, "freePageHinting": "yes"}}))
    assert e.value.errno == errno.EINVAL
    assert "balloon.freePageHinting" in mnt.read("vms", "other", "error")
    mmds = {**cfg, "networkInterfaces": [{"ifaceId": "eth0"}],
            "mmds": {"networkInterfaces": ["eth0"], "version": "V2", "imdsCompat": True}}
    mnt.write(mnt.vm("other", "config.json"), json.dumps(mmds))
    assert json.loads(mnt.read("vms", "other", "config.json"))["mmds"]["imdsCompat"] is True


def test_balloon_hinting_verb_and_status(mnt):
    """hinting start [ack] | hinting stop and the `hinting` file: Firecracker's free
    page hinting of a balloon with freePageHinting. The project's guest has no
    balloon driver, so a run is refused as Firecracker v1.14.2 refuses it ("Device
    not activated yet"); without freePageHinting it is "not enabled"."""
    mnt.make_vm("web", balloon={"amountMib": 0, "deflateOnOom": False, "freePageHinting": True})
    assert mnt.read("vms", "web", "hinting") == ""  # not running
    mnt.ctl("web", "start")
    assert json.loads(mnt.read("vms", "web", "hinting")) == {"host_cmd": 0, "guest_cmd": None}
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "hinting start ack")
    assert e.value.errno == errno.EIO
    assert "Device not activated yet" in mnt.read("vms", "web", "error")
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "hinting sometimes")
    assert e.value.errno == errno.EINVAL
    mnt.make_vm("plain", balloon={"amountMib": 0, "deflateOnOom": False})
    mnt.ctl("plain", "start")
    assert mnt.read("vms", "plain", "hinting") == ""
    with pytest.raises(OSError) as e:
        mnt.ctl("plain", "hinting stop")
    assert "Attempting to use hinting when not enabled" in mnt.read("vms", "plain", "error")


CPU_TEMPLATE = {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
    {"register": "ecx", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}],
    "msr_modifiers": []}


def test_custom_cpu_template(mnt):
    """cpuConfig: a custom CPU template in Firecracker's own format, checked for
    its shape at the write and sent as PUT /cpu-config before boot."""
    mnt.make_vm("web", cpuConfig=CPU_TEMPLATE)
    mnt.ctl("web", "start")
    assert mnt.state("web") == "running"
    assert "/cpu-config" in mnt.read("vms", "web", "log")  # the VMM was sent it
    assert json.loads(mnt.read("vms", "web", "config.json"))["cpuConfig"] == CPU_TEMPLATE
    os.mkdir(mnt.vm("bad"))
    for bad, says in ((["not", "an", "object"], "must be an object"),
                      ({"cpuid_modifiers": {}}, "cpuConfig.cpuid_modifiers must be an array"),
                      ({"cpuid_modifers": []}, 'unknown field "cpuConfig.cpuid_modifers"')):
        cfg = vm_config(mnt.kernel, cpuConfig=bad)
        with pytest.raises(OSError) as e:
            mnt.write(mnt.vm("bad", "config.json"), json.dumps(cfg))
        assert e.value.errno == errno.EINVAL
        assert says in mnt.read("vms", "bad", "error")


def test_pmem_devices(mnt, tmp_path):
    """pmem: virtio-pmem devices, their files opened as the owner's and handed to
    the VMM open (the VMM holds nothing else); id and root device checked with the
    drives; Firecracker's refusals (a file that is not there) at start."""
    img = tmp_path / "pmem.img"
    img.write_bytes(b"\0" * (2 << 20))
    mnt.make_vm("web", pmem=[{"id": "p0", "pathOnHost": str(img), "readOnly": True}])
    mnt.ctl("web", "start")
    got = vmm_config(mnt, "web")["pmem"]
    assert [(p["id"], p["read_only"], p["root_device"]) for p in got] == [("p0", True, False)]
    # handed over by the stable name a snapshot keeps; gone once the VMM had it
    rundir = mnt.read("vms", "web", "runtime").strip()
    assert got[0]["path_on_host"] == os.path.join(rundir, "pmem-p0.host")
    assert not os.path.lexists(got[0]["path_on_host"])
    os.mkdir(mnt.vm("bad"))
    for pm, says in (([{"id": "p0", "pathOnHost": str(img)}, {"id": "p0", "pathOnHost": str(img)}],
                      'pmem[1].id "p0" is already used'),
                     ([{"id": "p-0", "pathOnHost": str(img)}], "pmem[0].id"),
                     ([{"id": "p0"}], "pmem[0].pathOnHost is required")):
        with pytest.raises(OSError) as e:
            mnt.write(mnt.vm("bad", "config.json"), json.dumps(vm_config(mnt.kernel, pmem=pm)))
        assert e.value.errno == errno.EINVAL
        assert says in mnt.read("vms", "bad", "error")
    two_roots = vm_config(mnt.kernel, pmem=[{"id": "p0", "pathOnHost": str(img), "rootDevice": True}],
                          drives=[{"driveId": "d", "pathOnHost": str(img), "isRootDevice": True}])
    with pytest.raises(OSError):
        mnt.write(mnt.vm("bad", "config.json"), json.dumps(two_roots))
    assert "Only one root drive is allowed" in mnt.read("vms", "bad", "error")
    mnt.write(mnt.vm("bad", "config.json"), json.dumps(vm_config(
        mnt.kernel, pmem=[{"id": "p0", "pathOnHost": str(tmp_path / "gone")}])))
    with pytest.raises(OSError) as e:
        mnt.ctl("bad", "start")
    assert e.value.errno == errno.ENOENT
    assert mnt.state("bad") == "created"


def test_memory_hotplug(mnt):
    """memoryHotplug: the region (Firecracker's rules checked at the write), the
    hotplug MIB verb and the live hotplug file. The project's guest has no
    virtio-mem driver: the device never becomes active, and a request is refused
    as Firecracker v1.14.2 refuses it."""
    mnt.make_vm("web", memoryHotplug={"totalSizeMib": 1024, "slotSizeMib": 128, "blockSizeMib": 2})
    assert mnt.read("vms", "web", "hotplug") == ""
    mnt.ctl("web", "start")
    state = json.loads(mnt.read("vms", "web", "hotplug"))
    assert state == {"total_size_mib": 1024, "slot_size_mib": 128, "block_size_mib": 2,
                     "plugged_size_mib": 0, "requested_size_mib": 0}
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "hotplug 256")
    assert e.value.errno == errno.EIO
    assert "Device is not active" in mnt.read("vms", "web", "error")
    with pytest.raises(OSError) as e:
        mnt.ctl("web", "hotplug lots")
    assert e.value.errno == errno.EINVAL
    os.mkdir(mnt.vm("bad"))
    for hp, says in (({"totalSizeMib": 0}, "totalSizeMib must not be lower than slotSizeMib (128)"),
                     ({"totalSizeMib": 1000}, "totalSizeMib must be a multiple of slotSizeMib (128)"),
                     ({"totalSizeMib": 1024, "blockSizeMib": 3}, "blockSizeMib must be a power of 2"),
                     ({"totalSizeMib": 1024, "slotSizeMib": 64}, "slotSizeMib must not be lower than 128")):
        with pytest.raises(OSError) as e:
            mnt.write(mnt.vm("bad", "config.json"), json.dumps(vm_config(mnt.kernel, memoryHotplug=hp)))
        assert e.value.errno == errno.EINVAL
        assert says in mnt.read("vms", "bad", "error")


def test_serial_out_path_gets_a_copy_of_the_console(mnt, tmp_path):
    """serial.serialOutPath: every byte of the console, also in that file (created
    0600); the console file itself keeps working."""
    out = tmp_path / "serial.out"
    mnt.make_vm("web", serial={"serialOutPath": str(out)})
    mnt.ctl("web", "start")
    deadline = time.monotonic() + 10
    while "smartvm-guest: ready" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline, "no copy of the console"
        time.sleep(0.02)
    assert "smartvm-guest: ready" in mnt.read("vms", "web", "console")
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    os.mkdir(mnt.vm("bad"))
    with pytest.raises(OSError) as e:
        mnt.write(mnt.vm("bad", "config.json"),
                  json.dumps(vm_config(mnt.kernel, serial={"serialOutPath": "relative"})))
    assert e.value.errno == errno.EINVAL
