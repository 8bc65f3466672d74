"""/net and a VM's net file: automatic TAP/bridge/NAT networking, through the mount.

Networking needs root, and these tests never touch the host: each test makes a
private network namespace held by a `sleep` started with `unshare -n`, and runs
the daemon in it with `nsenter --net=...` (which changes the network namespace
only: `ip netns exec` would also give a new mount namespace and hide the FUSE
mount). Links, addresses and rules are then read inside that namespace.
"""
import errno
import json
import os
import signal
import subprocess
import time

import pytest

import hostfacts
from conftest import (BIN, EMULATOR, FIRECRACKER, GUEST_KERNEL, check_output, need_real_firecracker,
                      start_daemon, stop_daemon, _allowed)

# what networking needs; test_shutdown.py uses them too
# (one mark: root, unshare/nsenter/ip, a private network namespace, /dev/net/tun, iptables)
NET_MARKS = [
    pytest.mark.skipif(hostfacts.networking() is not None, reason=str(hostfacts.networking())),
]
pytestmark = NET_MARKS

NET = [{"ifaceId": "eth0"}]


class NetNS:
    """A private network namespace, alive while its holder sleeps."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "100000"],
                                       stdin=subprocess.DEVNULL)
        path = f"/proc/{self.holder.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.readlink(path) == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare -n did not make a namespace"
            time.sleep(0.01)
        self.path = path

    def wrap(self):
        return ("nsenter", f"--net={self.path}", "--")

    def run(self, *argv):
        r = subprocess.run([*self.wrap(), *argv], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (argv, r.stderr)
        return r.stdout

    def links(self):
        return {l["ifname"]: l for l in json.loads(self.run("ip", "-j", "-d", "link"))}

    def addrs(self):
        out = {}
        for l in json.loads(self.run("ip", "-j", "addr")):
            out[l["ifname"]] = [f'{a["local"]}/{a["prefixlen"]}' for a in l.get("addr_info", [])
                                if a.get("family") == "inet"]
        return out

    def nat_rules(self):
        return [l for l in self.run("iptables", "-w", "-t", "nat", "-S").splitlines()
                if "smartvmfs" in l]

    def rules(self):
        return [l for l in self.run("iptables", "-w", "-S").splitlines() if "smartvmfs" in l]

    def ip_forward(self):
        return self.run("cat", "/proc/sys/net/ipv4/ip_forward").strip()

    def close(self):
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def netns():
    ns = NetNS()
    try:
        yield ns
    finally:
        ns.close()


def mount_in(ns, tmp, kernel, extra=()):
    if not BIN or not os.path.exists(BIN) or not EMULATOR:
        pytest.skip("SMARTVMFS_BIN / SMARTVMFS_EMULATOR not set (run through meson test)")
    return start_daemon(str(tmp), EMULATOR, kernel, extra_opts=extra, wrap=ns.wrap(), checks=False)


@pytest.fixture
def netmnt(request, netns, tmp_path, kernel_file):
    m = mount_in(netns, tmp_path, kernel_file)
    m.ns = netns
    try:
        yield m
    finally:
        stop_daemon(m)
        check_output(m, _allowed(request))


def leases(m):
    out = {}
    for line in m.read("net", "leases").splitlines():
        addr, mac, tap, vm, iface = line.split()
        out[vm] = {"addr": addr, "mac": mac, "tap": tap, "iface": iface}
    return out


def pooled_links(links):
    """The links of the mount's TAP pool (alias "smartvmfs:HASH pool")."""
    return [l for l in links.values() if l.get("ifalias", "").endswith(" pool")]


def start_net_vm(m, name):
    m.make_vm(name, networkInterfaces=NET)
    m.ctl(name, "start")
    assert m.state(name) == "running"


def assert_nothing_left(ns):
    links = ns.links()
    assert set(links) == {"lo"}, f"links left behind: {sorted(links)}"
    assert ns.addrs().get("lo", []) in ([], ["127.0.0.1/8"])
    assert ns.nat_rules() == [] and ns.rules() == []


def test_net_files(netmnt):
    m = netmnt
    assert m.read("net", "bridge") == "svbr0\n"
    assert m.read("net", "subnet") == "172.30.0.0/24\n"
    assert m.read("net", "gateway") == "172.30.0.1\n"
    assert m.read("net", "leases") == ""
    assert sorted(os.listdir(m.p("net"))) == ["bridge", "ctl", "gateway", "leases", "subnet"]
    assert oct(os.stat(m.p("net", "ctl")).st_mode & 0o777) == "0o200"
    assert os.stat(m.p("net", "gateway")).st_size == len("172.30.0.1\n")
    # nothing is built before a VM asks for a network
    assert set(m.ns.links()) == {"lo"}


def test_three_vms_bridge_taps_nat(netmnt):
    m, ns = netmnt, netmnt.ns
    for n in ("a", "b", "c"):
        start_net_vm(m, n)
    ls = leases(m)
    assert sorted(ls) == ["a", "b", "c"]
    assert sorted(l["addr"] for l in ls.values()) == ["172.30.0.2", "172.30.0.3", "172.30.0.4"]
    links = ns.links()
    br = links["svbr0"]
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in br["flags"]
    assert ns.addrs()["svbr0"] == ["172.30.0.1/24"]
    for vm, l in ls.items():
        tap = links[l["tap"]]
        assert tap["linkinfo"]["info_kind"] == "tun"
        assert tap.get("master") == "svbr0", tap
        assert "UP" in tap["flags"]
        assert len(l["tap"]) <= 15
        # the VM's net file: its lease and the ip= its start gave the guest
        net = m.read("vms", vm, "net")
        assert f'eth0 {l["tap"]} {l["mac"]} {l["addr"]}/24 gateway 172.30.0.1\n' in net
        assert f'bootarg ip={l["addr"]}::172.30.0.1:255.255.255.0::eth0:off\n' in net
        # config.json is the user's, untouched
        assert "ip=" not in m.read("vms", vm, "config.json")
    nat = ns.nat_rules()
    assert len(nat) == 1, nat
    assert "-s 172.30.0.0/24 ! -o svbr0" in nat[0] and "MASQUERADE" in nat[0]
    assert ns.ip_forward() == "1"

    # destroy one: its TAP leaves b (its name goes) for the pool, clean, and the
    # next VM takes it and its address
    gone = ls["b"]
    ifindex = links[gone["tap"]]["ifindex"]
    m.ctl("b", "kill")
    os.rmdir(m.p("vms", "b"))
    links = ns.links()
    assert gone["tap"] not in links
    assert "b" not in leases(m)
    pooled = pooled_links(links)
    assert [l["ifindex"] for l in pooled] == [ifindex]
    # parked up, without carrier (no process holds it): the bridge keeps the
    # port disabled (its link watch hears of the carrier within a second)
    assert "NO-CARRIER" in pooled[0]["flags"] and pooled[0].get("master") == "svbr0", pooled
    deadline = time.monotonic() + 3
    while (ns.links()[pooled[0]["ifname"]]["linkinfo"]["info_slave_data"]["state"] != "disabled"
           and time.monotonic() < deadline):
        time.sleep(0.02)
    port = ns.links()[pooled[0]["ifname"]]["linkinfo"]["info_slave_data"]
    assert port["state"] == "disabled", port
    start_net_vm(m, "d")
    d = leases(m)["d"]
    assert d["addr"] == gone["addr"]
    links = ns.links()
    assert pooled_links(links) == []
    tap = links[d["tap"]]
    assert tap["ifindex"] == ifindex  # the pooled TAP, taken up again
    assert "UP" in tap["flags"] and tap.get("master") == "svbr0"
    assert " name=d " in tap["ifalias"]
    assert len(ns.nat_rules()) == 1

    # unmount: no link, address or rule of ours is left, ip_forward as it was
    stop_daemon(m)
    assert_nothing_left(ns)
    assert ns.ip_forward() == "0"


def test_killed_vmm_releases_tap_address_and_staged_drive(netmnt, tmp_path):
    """kill -9 of a VMM: `error` says so at once; its staged drive goes with the
    process, and its TAP and address when the VM is destroyed."""
    m = netmnt
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(8 << 20)
    m.make_vm("web", networkInterfaces=NET,
              drives=[{"driveId": "data", "pathOnHost": str(disk), "isRootDevice": False}])
    m.ctl("web", "start")
    rundir = m.read("vms", "web", "runtime").strip()
    staged = os.path.join(rundir, "drive-data.img")
    assert os.path.exists(staged)
    lease = leases(m)["web"]
    assert lease["tap"] in m.ns.links()
    os.kill(int(m.read("vms", "web", "pid")), signal.SIGKILL)
    m.wait_state("web", "error")
    assert "signal 9" in m.read("vms", "web", "error")
    assert not os.path.exists(staged)
    os.rmdir(m.p("vms", "web"))
    assert lease["tap"] not in m.ns.links()
    assert "web" not in leases(m)
    assert not os.path.exists(rundir)
    assert os.path.getsize(disk) == 8 << 20  # the user's file is untouched


def test_net_file_follows_state(netmnt):
    m = netmnt
    m.make_vm("web", networkInterfaces=NET)
    assert m.read("vms", "web", "net") == ""
    m.ctl("web", "start")
    net = m.read("vms", "web", "net")
    assert "bootarg ip=172.30.0.2::" in net
    assert os.stat(m.vm("web", "net")).st_size == len(net)
    m.ctl("web", "stop")
    # the lease stays with the VM across restarts: same address next time
    m.ctl("web", "start")
    assert "172.30.0.2/24" in m.read("vms", "web", "net")


@pytest.mark.daemon_output(r"unknown control message", r"no such VM", r"error")
def test_net_ctl(netmnt):
    m, ns = netmnt, netmnt.ns
    m.make_vm("web", networkInterfaces=[{"ifaceId": "net1"}])
    r = m.sh("echo 'tap web net1' > net/ctl")
    assert r.returncode == 0, r.stderr
    ls = leases(m)
    assert ls["web"]["iface"] == "net1"
    assert ls["web"]["tap"] in ns.links()
    # written again: fine, the same lease
    m.write(m.p("net", "ctl"), "tap web net1\n")
    assert leases(m) == ls
    # the start takes the lease made ahead of time
    m.ctl("web", "start")
    assert leases(m) == ls
    with pytest.raises(OSError) as e:
        m.write(m.p("net", "ctl"), "frob web\n")
    assert e.value.errno == errno.EINVAL
    assert 'unknown control message "frob web"' in m.read("error")
    with pytest.raises(OSError) as e:
        m.write(m.p("net", "ctl"), "tap nosuchvm eth0\n")
    assert e.value.errno == errno.ENOENT
    assert "net/ctl tap nosuchvm eth0" in m.read("error")
    # untap: not while the VMM may use it; once stopped, the TAP and lease go
    tap = ls["web"]["tap"]
    with pytest.raises(OSError) as e:
        m.write(m.p("net", "ctl"), "untap web net1\n")
    assert e.value.errno == errno.EBUSY
    assert "its VMM uses the TAP" in m.read("error")
    m.ctl("web", "kill")
    m.write(m.p("net", "ctl"), "untap web net1\n")
    assert "web" not in leases(m) and tap not in ns.links()
    with pytest.raises(OSError) as e:
        m.write(m.p("net", "ctl"), "untap web net1\n")
    assert e.value.errno == errno.ENOENT


def test_dns_option(netns, tmp_path, kernel_file):
    m = mount_in(netns, tmp_path, kernel_file, extra=("dns=10.9.8.7",))
    try:
        start_net_vm(m, "web")
        assert "::eth0:off:10.9.8.7\n" in m.read("vms", "web", "net")
    finally:
        stop_daemon(m)
    check_output(m, [])


def test_bad_dns_refuses_mount(tmp_path):
    if not BIN or not os.path.exists(BIN):
        pytest.skip("SMARTVMFS_BIN not set")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "-f", "-o", f"firecracker={EMULATOR},dns=not-an-address,"
                        f"runtimedir={tmp_path}/rt,datadir={tmp_path}/data", str(mnt)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "dns" in r.stderr
    assert not os.path.ismount(mnt)


def vmm_pids(m):
    pids = []
    for name in os.listdir(m.p("vms")):
        if name == "clone":
            continue
        pid = m.read("vms", name, "pid").strip()
        if pid:
            pids.append(int(pid))
    return pids


@pytest.mark.daemon_output(r"left by a crashed run", r"a crashed run had changed it", r"dead mount")
def test_crashed_run_collected(request, netns, tmp_path, kernel_file):
    m = mount_in(netns, tmp_path, kernel_file)
    for n in ("a", "b", "p"):
        start_net_vm(m, n)
    # p's TAP is in the pool when the daemon dies: collected by its tag too
    m.ctl("p", "kill")
    os.rmdir(m.p("vms", "p"))
    pool = [l["ifname"] for l in pooled_links(netns.links())]
    assert len(pool) == 1
    taps = [l["tap"] for l in leases(m).values()] + pool
    assert set(taps) <= set(netns.links())
    crashed_dirs = {os.path.basename(m.read("vms", n, "runtime").strip()) for n in ("a", "b")}
    # the daemon and every VMM die at once, as in a power cut of the daemon
    pids = vmm_pids(m)
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"
              for p in pids):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert set(taps) <= set(netns.links())  # left behind, as a crash leaves them
    assert len(netns.nat_rules()) == 1

    # mount again in the same namespace, same runtime dir: the leftovers go
    m2 = mount_in(netns, tmp_path, kernel_file)
    try:
        log = m2.read("log")
        for tap in taps:
            assert f"removed TAP {tap} left by a crashed run" in log, log
        assert "left by a crashed run" in log and "svbr0" in log
        for d in crashed_dirs:  # the VMs' runtime dirs are collected too
            assert f"(id {d}) of a killed daemon" in log, log
            assert not os.path.exists(os.path.join(m2.runtime, d))
        assert_nothing_left(netns)
        # and networking works again
        start_net_vm(m2, "c")
        assert leases(m2)["c"]["addr"] == "172.30.0.2"
    finally:
        stop_daemon(m2, check=False)
    assert m2.proc.returncode == 0
    assert_nothing_left(netns)
    # the crashed run's per-VM runtime dirs went at the second mount, and the
    # runtime dir itself at its clean unmount
    assert not os.path.exists(m2.runtime), os.listdir(m2.runtime)
    check_output(m2, _allowed(request))


def test_real_firecracker_with_tap(request, netns, tmp_path):
    """A real Firecracker booting the tiny guest with an automatic TAP (the
    VMM holds the TAP open: carrier), inside the private namespace."""
    need_real_firecracker()
    m = start_daemon(str(tmp_path), FIRECRACKER, GUEST_KERNEL, wrap=netns.wrap(), checks=False)
    try:
        start_net_vm(m, "tiny")
        l = leases(m)["tiny"]
        deadline = time.monotonic() + 10
        while "smartvm-guest: ready" not in m.read("vms", "tiny", "console"):
            assert time.monotonic() < deadline, m.read("vms", "tiny", "console")
            time.sleep(0.05)
        tap = netns.links()[l["tap"]]
        assert tap.get("master") == "svbr0"
        assert "NO-CARRIER" not in tap["flags"], tap  # Firecracker holds it open
        assert f'bootarg ip={l["addr"]}::172.30.0.1:' in m.read("vms", "tiny", "net")
        m.ctl("tiny", "stop")
    finally:
        stop_daemon(m)
    assert_nothing_left(netns)
    check_output(m, _allowed(request))


def test_purge_is_the_seeds_cleanup(netmnt):
    """/ctl purge: every VM killed and removed, every TAP, the bridge and the NAT
    rules gone, with the mount still there; a later start builds it all again.
    (/ctl cleanup only kills: the VMs stay, stopped.)"""
    m, ns = netmnt, netmnt.ns
    start_net_vm(m, "a")
    start_net_vm(m, "b")
    m.make_vm("idle")
    m.ctl("a", "pause")
    assert "svbr0" in ns.links() and ns.nat_rules()
    m.write(m.p("ctl"), "purge\n")
    assert os.listdir(m.p("vms")) == ["clone"]
    assert [d for d in os.listdir(m.runtime) if not d.startswith(".")] == []
    assert_nothing_left(ns)
    assert m.read("net", "leases") == ""
    assert "purge: every VM removed, the network taken down" in m.read("log")
    start_net_vm(m, "again")
    assert "svbr0" in ns.links()


def test_netif_update_on_a_running_vm(netmnt):
    """netif IFACE JSON: the rate limiters of a running VM's interface change (the
    seed's updateNetworkInterface); an unknown interface is Firecracker's 400."""
    m = netmnt
    start_net_vm(m, "a")
    iface = leases(m)["a"]["iface"]
    m.ctl("a", 'netif %s {"rxRateLimiter": {"bandwidth": {"size": 100000, "refillTime": 100}}, '
               '"txRateLimiter": {"ops": {"size": 500, "refillTime": 1000}}}' % iface)
    assert m.read("vms", "a", "error") == ""
    with pytest.raises(OSError) as e:
        m.ctl("a", 'netif nosuch {"rxRateLimiter": {"bandwidth": {"size": 1, "refillTime": 1}}}')
    assert e.value.errno == errno.EIO
    assert "(API_ERROR, HTTP 400)" in m.read("vms", "a", "error")


@pytest.mark.daemon_output(r"error", r"bridge")
def test_bridge_setup_failed(netmnt):
    """A link of another kind already holds the bridge's name: BRIDGE_SETUP_FAILED
    (EIO), said in `error`; nothing is left half-made, and the link is untouched."""
    m, ns = netmnt, netmnt.ns
    ns.run("ip", "tuntap", "add", "svbr0", "mode", "tap")  # a TAP, not a bridge
    m.make_vm("a", networkInterfaces=NET)
    with pytest.raises(OSError) as e:
        m.ctl("a", "start")
    assert e.value.errno == errno.EIO
    assert "(BRIDGE_SETUP_FAILED)" in m.read("vms", "a", "error")
    assert m.state("a") == "created"
    assert ns.links()["svbr0"].get("linkinfo", {}).get("info_kind") == "tun"
    assert ns.nat_rules() == [] and m.read("net", "leases") == ""
    ns.run("ip", "tuntap", "del", "svbr0", "mode", "tap")


def test_no_other_uid_may_attach_to_a_vms_tap(netmnt):
    """/dev/net/tun is open to all on most hosts, and a TAP with no owner lets any uid attach:
    the mount's TAPs are root's, so a local user cannot put itself on the bridge."""
    start_net_vm(netmnt, "a")
    tap = leases(netmnt)["a"]["tap"]
    netmnt.ctl("a", "stop")  # its TAP is free now, and still on the bridge
    # /dev/net/tun is opened first (it is 0666 on most hosts), then the uid drops
    code = ("import fcntl,os,struct\n"
            "fd=os.open('/dev/net/tun',os.O_RDWR)\n"
            "os.setgroups([]); os.setresgid(65534,65534,65534); os.setresuid(65534,65534,65534)\n"
            f"fcntl.ioctl(fd,0x400454ca,struct.pack('16sH','{tap}'.encode(),0x1002))\n")
    r = subprocess.run([*netmnt.ns.wrap(), "/usr/bin/python3", "-c", code],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    data = netmnt.ns.links()[tap]["linkinfo"]["info_data"]
    assert data.get("user") in (0, "0", "root")
