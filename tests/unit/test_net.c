/*
 * test_net.c - host networking: the seed's NetworkManager tests, then the
 * bridge, TAPs, NAT, leases, leftovers of a crashed run, all inside a private
 * network namespace made first thing (the host's links, addresses and firewall
 * are never touched; a private sysfs mount shows its links). Runs as root;
 * skips otherwise.
 *
 * With SMARTVMFS_EMULATOR a VM is started through the public API with an
 * automatic TAP; with SMARTVMFS_FIRECRACKER and SMARTVMFS_GUEST_KERNEL (and
 * /dev/kvm) a real Firecracker is started on one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "net.h"
#include "net_fw.h"
#include "net_link.h"
#include "net_subnet.h"

static char tmpdir[128];

/* ------------------------------------------------------------ helpers */

static int slurp(const char *path, char *buf, size_t size)
{
	buf[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, size - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* A TAP whose lease ended is parked (or removed) by the mount's parker thread
 * just after the call that ended the lease returns: what a test sees of it
 * comes within a moment (here: 2 s at the most). */
#define EVENTUALLY(cond)                                                           \
	({                                                                         \
		bool ok_ = false;                                                  \
		for (int i_ = 0; i_ < 2000 && !(ok_ = (cond)); i_++)               \
			usleep(1000);                                              \
		ok_;                                                               \
	})

static bool link_exists(const char *name)
{
	char p[128];
	snprintf(p, sizeof p, "/sys/class/net/%s", name);
	return access(p, F_OK) == 0;
}

static bool link_up(const char *name)
{
	char p[128], v[32];
	snprintf(p, sizeof p, "/sys/class/net/%s/flags", name);
	return slurp(p, v, sizeof v) == 0 && (strtoul(v, NULL, 16) & IFF_UP);
}

/* a process holds the TAP's queue (read while the link is up) */
static bool link_carrier(const char *name)
{
	char p[128], v[32];
	snprintf(p, sizeof p, "/sys/class/net/%s/carrier", name);
	return slurp(p, v, sizeof v) == 0 && v[0] == '1';
}

/* a bridge port's STP state (0: disabled), -1 if it is none */
static int brport_state(const char *name)
{
	char p[128], v[32];
	snprintf(p, sizeof p, "/sys/class/net/%s/brport/state", name);
	return slurp(p, v, sizeof v) == 0 ? atoi(v) : -1;
}

/* the bridge a link is a port of, "" if none */
static const char *master_of(const char *name)
{
	static char out[64];
	char p[128], t[256];
	snprintf(p, sizeof p, "/sys/class/net/%s/master", name);
	ssize_t r = readlink(p, t, sizeof t - 1);
	out[0] = '\0';
	if (r > 0) {
		t[r] = '\0';
		snprintf(out, sizeof out, "%s", strrchr(t, '/') + 1);
	}
	return out;
}

static const char *alias_of(const char *name)
{
	static char out[300];
	char p[400];
	snprintf(p, sizeof p, "/sys/class/net/%s/ifalias", name);
	slurp(p, out, sizeof out);
	return out;
}

static bool has_addr(const char *ifname, const char *addr)
{
	struct ifaddrs *ifa, *i;
	bool found = false;
	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN];
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
		found |= !strcmp(a, addr);
	}
	freeifaddrs(ifa);
	return found;
}

/* links in this namespace whose alias contains needle */
static int count_tagged(const char *needle)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			n += strstr(alias_of(de->d_name), needle) != NULL;
	if (d)
		closedir(d);
	return n;
}

static int count_in(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* `iptables -t TABLE -S` through the core's argv runner */
static char *rules(const char *table)
{
	const char *a[] = {"-t", table, "-S", NULL};
	char *out = NULL;
	if (net_fw_run(a, &out, NULL) != 0) {
		free(out);
		return strdup("");
	}
	return out;
}

static int ipt(const char *a1, const char *a2, const char *a3)
{
	const char *a[] = {a1, a2, a3, NULL};
	return net_fw_run(a, NULL, NULL);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(path) * 0 : unlink(path) * 0;
}

static int ip_forward(void) { return net_ip_forward_get(); }

static svm *orch(const char *label, const char *bridge, const char *subnet, const char *dns,
		 const char *firecracker, svm_error *e)
{
	char rundir[256];
	snprintf(rundir, sizeof rundir, "%s/%s", tmpdir, label);
	svm_options o = {
		.firecracker = firecracker ? firecracker : "/bin/true",
		.runtime_dir = rundir,
		.data_dir = tmpdir,
		.bridge = bridge,
		.subnet = subnet,
		.dns = dns,
		.kill_timeout_ms = 500,
	};
	svm *s = svm_new(&o, e);
	if (s)
		svm_adopt(s, NULL); /* what a crashed run left is collected, as a mount does */
	return s;
}

static json_t *cfg_with(const char *ifaces_json, const char *bootargs)
{
	char text[1024];
	snprintf(text, sizeof text,
		 "{\"bootSource\": {\"kernelImagePath\": \"/nonexistent\"%s%s%s},"
		 " \"networkInterfaces\": %s}",
		 bootargs ? ", \"bootArgs\": \"" : "", bootargs ? bootargs : "", bootargs ? "\"" : "",
		 ifaces_json);
	return json_loads(text, 0, NULL);
}

static const char *iface_str(json_t *cfg, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(cfg, "networkInterfaces"), i), key));
}

static const char *bootargs(json_t *cfg)
{
	return json_string_value(json_object_get(json_object_get(cfg, "bootSource"), "bootArgs"));
}

/* ------------------------------------------------------------ the seed's tests */

static void seed_tests(void)
{
	net_cidr sn;
	svm_error e;
	char a[NET_ADDRSTRLEN];
	uint32_t used[8], ip;

	/* allocateIp() should allocate sequential IPs */
	CHECK(net_subnet_parse("172.30.0.0/24", &sn, &e) == 0, "seed: 172.30.0.0/24 parses");
	for (int i = 0; i < 3; i++) {
		net_alloc_addr(&sn, used, (size_t)i, &ip, &e);
		used[i] = ip;
	}
	CHECK_STR(net_ipv4_str(used[0], a), "172.30.0.2", "seed: first guest .2");
	CHECK_STR(net_ipv4_str(used[1], a), "172.30.0.3", "seed: then .3");
	CHECK_STR(net_ipv4_str(used[2], a), "172.30.0.4", "seed: then .4");
	CHECK_STR(net_ipv4_str(net_gateway_addr(&sn), a), "172.30.0.1", "seed: gateway is .1");
	CHECK_STR(net_ipv4_str(sn.mask, a), "255.255.255.0", "seed: mask of /24");

	/* allocateIp() should normalize non-network CIDR input */
	CHECK(net_subnet_parse("10.20.30.17/29", &sn, &e) == 0, "seed: 10.20.30.17/29 parses");
	CHECK_STR(net_ipv4_str(sn.network, a), "10.20.30.16", "seed: normalised to the network");
	CHECK_STR(net_ipv4_str(net_gateway_addr(&sn), a), "10.20.30.17", "seed: gateway first usable");
	net_alloc_addr(&sn, used, 0, &used[0], &e);
	net_alloc_addr(&sn, used, 1, &used[1], &e);
	CHECK_STR(net_ipv4_str(used[0], a), "10.20.30.18", "seed: normalised: first guest .18");
	CHECK_STR(net_ipv4_str(used[1], a), "10.20.30.19", "seed: normalised: then .19");

	/* allocateIp() should fail when subnet is exhausted */
	CHECK(net_subnet_parse("192.168.100.0/30", &sn, &e) == 0, "seed: /30 parses");
	CHECK(net_alloc_addr(&sn, used, 0, &used[0], &e) == 0, "seed: /30 has one guest");
	CHECK_STR(net_ipv4_str(used[0], a), "192.168.100.2", "seed: /30 guest is .2");
	CHECK(net_alloc_addr(&sn, used, 1, &ip, &e) < 0 && e.code == SVM_IP_EXHAUSTED,
	      "seed: /30 then IP_EXHAUSTED");
	/* beyond the seed: a released address is the next one given */
	CHECK(net_subnet_parse("172.30.0.0/24", &sn, &e) == 0, "reparse /24");
	uint32_t gap[] = {sn.network + 2, sn.network + 4};
	CHECK(net_alloc_addr(&sn, gap, 2, &ip, &e) == 0 && ip == sn.network + 3,
	      "a released address (the gap) is reused first");

	/* constructor should reject invalid subnet input (prefix 1-30) */
	const char *bad_prefix[] = {"10.0.0.0/31", "10.0.0.0/32", "10.0.0.0/0", "10.0.0.0/",
				    "10.0.0.0", "10.0.0.0/24/1", "10.0.0.0/x", "10.0.0.0/ 24", NULL};
	for (int i = 0; bad_prefix[i]; i++) {
		char what[96];
		snprintf(what, sizeof what, "seed: subnet \"%s\" is INVALID_SUBNET", bad_prefix[i]);
		CHECK(net_subnet_parse(bad_prefix[i], &sn, &e) < 0 && e.code == SVM_INVALID_SUBNET, what);
	}
	CHECK(net_subnet_parse("10.0.0.0/1", &sn, &e) == 0 && net_subnet_parse("10.0.0.0/30", &sn, &e) == 0,
	      "seed: prefixes 1 and 30 are accepted");

	/* constructor should reject malformed IPv4 octets */
	const char *bad_octets[] = {"10..0.1/24", "10.0x10.0.1/24", "10.0.0.1 /24", "256.0.0.0/24",
				    "10.0.0/24", "10.0.0.0.0/24", "-1.0.0.0/24", "+1.0.0.0/24", NULL};
	for (int i = 0; bad_octets[i]; i++) {
		char what[96];
		snprintf(what, sizeof what, "seed: octets of \"%s\" are INVALID_SUBNET", bad_octets[i]);
		CHECK(net_subnet_parse(bad_octets[i], &sn, &e) < 0 && e.code == SVM_INVALID_SUBNET, what);
	}

	/* constructor should reject invalid bridge names (and the TAP names' rule) */
	CHECK(net_check_ifname("bad bridge", "bridgeName", &e) < 0 && e.code == SVM_INVALID_INTERFACE_NAME,
	      "seed: 'bad bridge' is INVALID_INTERFACE_NAME");
	CHECK(!net_ifname_valid("") && !net_ifname_valid("sixteen-chars-xx") &&
		      !net_ifname_valid("-lead") && !net_ifname_valid("a/b") && !net_ifname_valid("a:b"),
	      "empty, 16 chars, leading '-', '/', ':' rejected");
	CHECK(net_ifname_valid("svbr0") && net_ifname_valid("fifteen-chars.x") && net_ifname_valid("a_b"),
	      "svbr0, 15 chars, '_' accepted");

	/* generateMac() should generate locally-administered MACs */
	char m1[NET_MACSTRLEN], m2[NET_MACSTRLEN], m3[NET_MACSTRLEN], m4[NET_MACSTRLEN];
	net_mac("vm1", "eth0", m1);
	net_mac("vm1", "eth0", m2);
	net_mac("vm2", "eth0", m3);
	net_mac("vm1", "eth1", m4);
	CHECK_STR(m1, m2, "seed: MAC deterministic");
	CHECK(strcmp(m1, m3) != 0 && strcmp(m1, m4) != 0, "seed: MAC differs per VM and per interface");
	CHECK(!strncmp(m1, "02:", 3), "seed: MAC locally administered 02:");
	CHECK(strlen(m1) == 17 && count_in(m1, ":") == 5, "seed: MAC has six octets");

	/* generateTapName() should respect IFNAMSIZ */
	char t[NET_IFNAMSIZ];
	net_tap_name("very-long-vm-id-here", "eth0", t);
	CHECK(strlen(t) <= 15 && !strncmp(t, "sv", 2), "seed: TAP name within 15 chars, starts sv");
	net_tap_name("vm-id", "eth0", t);
	CHECK_STR(t, "svvmideth0", "seed README: createTapDevice('vm-id','eth0') is svvmideth0");
	net_tap_name("k3x9a0b2", "eth0", t);
	CHECK_STR(t, "svk3x9a0b2eth0", "core id: sv + 8-char id + interface");
	net_tap_name("k3x9a0b2", "net_uplink", t);
	CHECK(strlen(t) == 15 && net_ifname_valid(t), "long interface id cut to 15, still valid");
	char v[NET_IFNAMSIZ];
	net_tap_name_variant(t, 7, v);
	CHECK(strlen(v) == 15 && v[14] == '7' && !strncmp(v, t, 14), "collision variant ends in its number");

	/* getGuestNetworkBootArgs() should format correctly */
	char arg[160];
	uint32_t g, gw, mask;
	net_ipv4_parse("172.30.0.2", &g);
	net_ipv4_parse("172.30.0.1", &gw);
	net_ipv4_parse("255.255.255.0", &mask);
	net_boot_arg(arg, sizeof arg, g, gw, mask, "eth0", NULL);
	CHECK_STR(arg, "ip=172.30.0.2::172.30.0.1:255.255.255.0::eth0:off", "seed: boot args format");
	net_boot_arg(arg, sizeof arg, g, gw, mask, "eth0", "9.9.9.9");
	CHECK_STR(arg, "ip=172.30.0.2::172.30.0.1:255.255.255.0::eth0:off:9.9.9.9", "dns goes in dns0");
	CHECK(net_has_ip_arg("console=ttyS0 ip=dhcp") && net_has_ip_arg("ip=1.2.3.4") &&
		      !net_has_ip_arg("console=ttyS0 nfsip=x") && !net_has_ip_arg(NULL),
	      "an existing ip= word is recognised");
}

/* The settings reach net_new through svm_new: errors come from there. */
static void settings_tests(void)
{
	svm_error e;
	CHECK(!orch("bad1", "bad bridge", NULL, NULL, NULL, &e) && e.code == SVM_INVALID_INTERFACE_NAME,
	      "svm_new: bridge 'bad bridge' is INVALID_INTERFACE_NAME");
	CHECK(!orch("bad2", NULL, "10.0.0.0/31", NULL, NULL, &e) && e.code == SVM_INVALID_SUBNET,
	      "svm_new: subnet /31 is INVALID_SUBNET");
	CHECK(!orch("bad3", NULL, NULL, "8.8.8", NULL, &e) && e.code == SVM_INVALID_ARGUMENT,
	      "svm_new: dns '8.8.8' is INVALID_ARGUMENT");
	svm *s = orch("good", NULL, "10.20.30.17/29", NULL, NULL, &e);
	CHECK(s != NULL, "svm_new with a host-address subnet");
	if (!s)
		return;
	CHECK_STR(net_subnet(s->net), "10.20.30.16/29", "net_subnet normalised");
	CHECK_STR(net_gateway(s->net), "10.20.30.17", "net_gateway first usable");
	CHECK_STR(net_bridge(s->net), "svbr0", "net_bridge default svbr0");
	CHECK(!link_exists("svbr0"), "nothing created by svm_new alone");
	svm_free(s);
}

/* ------------------------------------------------------------ host tests */

static svm_vm *vm_new_named(svm *s, const char *name)
{
	svm_error e;
	svm_vm *vm = svm_create_vm(s, name, &e);
	if (!vm)
		printf("# svm_create_vm %s: %s\n", name, e.message);
	return vm;
}

static void prepare_ok(svm *s, svm_vm *vm, json_t *cfg, const char *what)
{
	svm_error e = {0};
	int rc = net_prepare_vm(s->net, vm->id, vm->name, cfg, &e);
	if (rc < 0)
		printf("# %s: %s\n", what, e.message);
	CHECK(rc == 0, what);
}

static void host_tests(void)
{
	svm_error e;
	net_ip_forward_set(0);
	CHECK_INT(ipt("-P", "FORWARD", "DROP"), 0, "namespace FORWARD policy set to DROP");
	svm *s = orch("main", NULL, NULL, NULL, NULL, &e);
	CHECK(s != NULL, "orchestrator for host tests");
	if (!s)
		return;
	svm_vm *a = vm_new_named(s, "a"), *b = vm_new_named(s, "b");
	if (!a || !b)
		return;

	/* a VM without interfaces needs nothing */
	json_t *none = cfg_with("[]", "console=ttyS0");
	prepare_ok(s, a, none, "prepare without interfaces");
	CHECK(!link_exists("svbr0") && ip_forward() == 0, "no interfaces: no bridge, ip_forward untouched");
	json_decref(none);

	/* automatic mode */
	json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0 reboot=k");
	prepare_ok(s, a, ca, "prepare VM a with { ifaceId: eth0 }");
	char tap_a[NET_IFNAMSIZ], mac_a[NET_MACSTRLEN];
	net_tap_name(svm_vm_id(a), "eth0", tap_a);
	net_mac(svm_vm_id(a), "eth0", mac_a);
	CHECK(link_exists("svbr0") && link_up("svbr0"), "bridge svbr0 created and up");
	CHECK(has_addr("svbr0", "172.30.0.1"), "bridge has the gateway 172.30.0.1");
	CHECK_STR(iface_str(ca, 0, "hostDevName"), tap_a, "hostDevName is sv + VM id + eth0");
	CHECK_STR(iface_str(ca, 0, "guestMac"), mac_a, "guestMac is the deterministic MAC");
	CHECK(link_exists(tap_a) && link_up(tap_a), "TAP created and up");
	CHECK_STR(master_of(tap_a), "svbr0", "TAP enslaved to svbr0");
	char p[128], flags[32];
	snprintf(p, sizeof p, "/sys/class/net/%s/tun_flags", tap_a);
	CHECK(slurp(p, flags, sizeof flags) == 0 && (strtoul(flags, NULL, 16) & 0x1002) == 0x1002,
	      "it is a TAP with IFF_NO_PI");
	snprintf(p, sizeof p, "/sys/class/net/%s/carrier", tap_a);
	CHECK(slurp(p, flags, sizeof flags) == 0 && !strcmp(flags, "0"), "no process holds the TAP");
	char want_alias[128];
	snprintf(want_alias, sizeof want_alias, "vm=%s name=a iface=eth0", svm_vm_id(a));
	CHECK(!strncmp(alias_of(tap_a), "smartvmfs:", 10) && strstr(alias_of(tap_a), want_alias),
	      "TAP alias names the mount and the VM");
	CHECK_STR(bootargs(ca), "console=ttyS0 reboot=k ip=172.30.0.2::172.30.0.1:255.255.255.0::eth0:off",
		  "ip= boot argument added");
	CHECK_INT(ip_forward(), 1, "ip_forward on");

	/* a second VM: next address, and the rules are not duplicated */
	json_t *cb = cfg_with("[{\"ifaceId\": \"eth0\"}, {\"ifaceId\": \"net1\", \"guestMac\": \"02:00:00:00:00:77\"}]",
			      "console=ttyS0 ip=dhcp");
	prepare_ok(s, b, cb, "prepare VM b with two interfaces");
	CHECK_STR(bootargs(cb), "console=ttyS0 ip=dhcp", "bootArgs with an ip= are left alone");
	CHECK_STR(iface_str(cb, 1, "guestMac"), "02:00:00:00:00:77", "explicit guestMac honoured");
	char *nat = rules("nat"), *filt = rules("filter");
	CHECK_INT(count_in(nat, "-s 172.30.0.0/24 ! -o svbr0"), 1, "NAT rule present exactly once after two VMs");
	CHECK_INT(count_in(nat, "-j MASQUERADE"), 1, "one MASQUERADE");
	CHECK_INT(count_in(filt, "-A FORWARD -i svbr0"), 1, "FORWARD accept out of the bridge (policy DROP)");
	CHECK_INT(count_in(filt, "-A FORWARD -o svbr0"), 1, "FORWARD accept of replies into the bridge");
	free(nat);
	free(filt);
	char *leases = net_leases_text(s->net);
	char want[256];
	snprintf(want, sizeof want, "172.30.0.2 %s %s a eth0\n", mac_a, tap_a);
	CHECK(!strncmp(leases, want, strlen(want)), "leases: first line ADDR MAC TAP VM IFACE");
	CHECK_INT(count_in(leases, "\n"), 3, "leases: three addresses in use");
	CHECK(strstr(leases, "172.30.0.4 02:00:00:00:00:77 ") != NULL, "leases show the MAC in use");
	free(leases);
	char *vt = net_vm_text(s->net, a->id);
	snprintf(want, sizeof want,
		 "eth0 %s %s 172.30.0.2/24 gateway 172.30.0.1\nbootarg ip=172.30.0.2::172.30.0.1:255.255.255.0::eth0:off\n",
		 tap_a, mac_a);
	CHECK_STR(vt, want, "per-VM net text");
	free(vt);

	/* a restart keeps the lease: same TAP, same address */
	json_t *ca2 = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	prepare_ok(s, a, ca2, "prepare VM a again (restart)");
	CHECK_STR(iface_str(ca2, 0, "hostDevName"), tap_a, "restart: same TAP");
	CHECK(strstr(bootargs(ca2), "ip=172.30.0.2:") != NULL, "restart: same address");
	json_decref(ca2);

	/* removed by hand between starts: the TAP comes back, on the bridge */
	struct nl_sock *hs = net_link_open(&e);
	net_link_delete(hs, tap_a, NULL);
	ca2 = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	prepare_ok(s, a, ca2, "prepare VM a after its TAP was deleted by hand");
	CHECK(link_exists(tap_a) && !strcmp(master_of(tap_a), "svbr0"), "TAP made again, on the bridge");
	json_decref(ca2);
	net_link_close(hs);

	/* explicit hostDevName: ours if it does not exist, as given if it does */
	svm_vm *c = vm_new_named(s, "c");
	json_t *cc = cfg_with("[{\"ifaceId\": \"eth0\", \"hostDevName\": \"mytap0\"}]", "console=ttyS0");
	prepare_ok(s, c, cc, "prepare VM c with hostDevName mytap0");
	CHECK(link_exists("mytap0") && !strcmp(master_of("mytap0"), "svbr0"), "mytap0 created on the bridge");
	CHECK(strstr(bootargs(cc), "ip=172.30.0.5:") != NULL, "mytap0 got the next address");
	json_decref(cc);
	struct nl_sock *sk = net_link_open(&e);
	CHECK(net_tap_create("foreign0", &e) == 0, "a foreign TAP made outside the core");
	svm_vm *d = vm_new_named(s, "d");
	json_t *cd = cfg_with("[{\"ifaceId\": \"eth0\", \"hostDevName\": \"foreign0\"}]", "console=ttyS0");
	prepare_ok(s, d, cd, "prepare VM d with an existing foreign hostDevName");
	CHECK_STR(iface_str(cd, 0, "hostDevName"), "foreign0", "foreign TAP used as given");
	CHECK(iface_str(cd, 0, "guestMac") == NULL && !strcmp(master_of("foreign0"), "") &&
		      !strcmp(bootargs(cd), "console=ttyS0"),
	      "foreign TAP: not enslaved, no MAC or ip= added");
	json_decref(cd);

	/* a TAP name in use by another VM */
	json_t *cu = cfg_with("[{\"ifaceId\": \"eth0\", \"hostDevName\": \"mytap0\"}]", "console=ttyS0");
	CHECK(net_prepare_vm(s->net, d->id, d->name, cu, &e) < 0 && e.code == SVM_TAP_CREATE_FAILED &&
		      strstr(e.message, "in use"),
	      "hostDevName of another VM's TAP: TAP_CREATE_FAILED, in use");
	json_decref(cu);

	/* roll back removes what that start made, and only that */
	svm_vm *r = vm_new_named(s, "r");
	json_t *cr = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	prepare_ok(s, r, cr, "prepare VM r");
	const char *tap_r = iface_str(cr, 0, "hostDevName");
	char tr[NET_IFNAMSIZ];
	snprintf(tr, sizeof tr, "%s", tap_r ? tap_r : "");
	CHECK(link_exists(tr), "r's TAP exists");
	net_rollback_vm(s->net, r->id);
	CHECK(EVENTUALLY(!link_exists(tr)), "rollback removes r's new TAP");
	net_rollback_vm(s->net, a->id);
	CHECK(link_exists(tap_a), "rollback of a keeps the TAP of an earlier start");
	json_decref(cr);

	/* /net/ctl: manual mode */
	CHECK(svm_net_ctl(s, "tap r eth0", &e) == 0, "ctl: tap r eth0");
	char tap_r2[NET_IFNAMSIZ];
	net_tap_name(svm_vm_id(r), "eth0", tap_r2);
	CHECK(link_exists(tap_r2) && !strcmp(master_of(tap_r2), "svbr0"), "ctl: TAP made ahead, on the bridge");
	CHECK(svm_net_ctl(s, "tap r eth0", &e) == 0, "ctl: tap again is fine");
	cr = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	prepare_ok(s, r, cr, "prepare r after ctl tap");
	CHECK_STR(iface_str(cr, 0, "hostDevName"), tap_r2, "start uses the TAP made by ctl");
	net_rollback_vm(s->net, r->id);
	CHECK(link_exists(tap_r2), "a failed start keeps the ctl TAP");
	json_decref(cr);
	CHECK(svm_net_ctl(s, "frob 3", &e) < 0 && e.code == SVM_INVALID_ARGUMENT &&
		      !strcmp(e.message, "unknown control message \"frob 3\""),
	      "ctl: unknown message echoed");
	CHECK(svm_net_ctl(s, "tap nosuch eth0", &e) < 0 && e.code == SVM_NOT_FOUND, "ctl: no such VM");
	CHECK(svm_net_ctl(s, "tap r bad-id", &e) < 0 && e.code == SVM_INVALID_ARGUMENT, "ctl: bad iface id");
	CHECK(svm_net_ctl(s, "tap r", &e) < 0 && e.code == SVM_INVALID_ARGUMENT, "ctl: missing iface");

	/* release and reuse: addresses and TAP names */
	CHECK(svm_remove_vm(s, "a", &e) == 0, "remove VM a");
	CHECK(EVENTUALLY(!link_exists(tap_a)), "a's TAP removed with it");
	CHECK(svm_remove_vm(s, "c", &e) == 0, "remove VM c");
	CHECK(EVENTUALLY(!link_exists("mytap0")), "mytap0 removed with c");
	svm_vm *f = vm_new_named(s, "f");
	json_t *cf = cfg_with("[{\"ifaceId\": \"eth0\", \"hostDevName\": \"mytap0\"}]", "console=ttyS0");
	prepare_ok(s, f, cf, "prepare VM f reusing the name mytap0");
	CHECK(strstr(bootargs(cf), "ip=172.30.0.2:") != NULL, "f got a's released address 172.30.0.2");
	CHECK(link_exists("mytap0"), "TAP name mytap0 reused");
	json_decref(cf);
	leases = net_leases_text(s->net);
	CHECK(strstr(leases, " f eth0\n") && !strstr(leases, " a eth0\n"), "leases follow the release");
	free(leases);

	/* net_free undoes everything */
	svm_vm_unref(a);
	svm_vm_unref(b);
	svm_vm_unref(c);
	svm_vm_unref(d);
	svm_vm_unref(r);
	svm_vm_unref(f);
	json_decref(ca);
	json_decref(cb);
	char tag[24];
	snprintf(tag, sizeof tag, "%s", net_tag(s->net));
	svm_free(s);
	CHECK(!link_exists("svbr0"), "unmount: bridge removed");
	CHECK_INT(count_tagged(tag), 0, "unmount: no tagged link left");
	CHECK(!link_exists("mytap0") && !link_exists(tap_r2), "unmount: TAPs removed");
	CHECK(link_exists("foreign0"), "unmount: the foreign TAP is left alone");
	nat = rules("nat");
	filt = rules("filter");
	CHECK(!strstr(nat, "smartvmfs") && !strstr(filt, "smartvmfs"), "unmount: rules removed");
	CHECK(strstr(filt, "-P FORWARD DROP") != NULL, "unmount: FORWARD policy as it was");
	free(nat);
	free(filt);
	CHECK_INT(ip_forward(), 0, "unmount: ip_forward put back to 0");
	net_link_delete(sk, "foreign0", NULL);
	net_link_close(sk);
	ipt("-P", "FORWARD", "ACCEPT");
}

/* the one link whose alias is exactly "TAG pool", "" if none */
static const char *pooled_link(const char *tag)
{
	static char out[64];
	char want[64];
	snprintf(want, sizeof want, "%s pool", tag);
	out[0] = '\0';
	DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && !strcmp(alias_of(de->d_name), want))
			snprintf(out, sizeof out, "%.15s", de->d_name);
	if (d)
		closedir(d);
	return out;
}

static unsigned long tun_flags(const char *name)
{
	char p[128], v[32];
	snprintf(p, sizeof p, "/sys/class/net/%s/tun_flags", name);
	return slurp(p, v, sizeof v) == 0 ? strtoul(v, NULL, 16) : 0;
}

/* A fd attached to the TAP's queue, as a VMM holds it (flags: the VMM's). */
static int hold_tap(const char *name, short flags)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = {.ifr_flags = flags};
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A destroyed VM's TAP goes back to the pool, clean, and the next lease takes
 * it; a pooled TAP a process holds is never given; unmount leaves none. */
static void pool_tests(void)
{
	svm_error e;
	svm *s = orch("pool", "svbr5", "10.77.0.0/24", NULL, NULL, &e);
	CHECK(s != NULL, "pool: orchestrator");
	if (!s)
		return;
	char tag[24], tap_a[NET_IFNAMSIZ], tap_b[NET_IFNAMSIZ], tap_c[NET_IFNAMSIZ];
	snprintf(tag, sizeof tag, "%s", net_tag(s->net));
	svm_vm *a = vm_new_named(s, "a"), *b = vm_new_named(s, "b"), *c = vm_new_named(s, "c");
	json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
	prepare_ok(s, a, ca, "pool: prepare a");
	snprintf(tap_a, sizeof tap_a, "%s", iface_str(ca, 0, "hostDevName"));
	unsigned ia = if_nametoindex(tap_a);
	/* as a VMM leaves it: its features set, then its queue closed */
	int fd = hold_tap(tap_a, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	CHECK(fd >= 0 && (tun_flags(tap_a) & IFF_VNET_HDR), "pool: a's VMM set VNET_HDR");
	close(fd);
	CHECK(svm_remove_vm(s, "a", &e) == 0, "pool: remove a");
	/* one netlink request parks it, but sysfs may show its new name a moment
	 * before its flags */
	EVENTUALLY(pooled_link(tag)[0] && !link_exists(tap_a));
	const char *p = pooled_link(tag);
	char pooled[NET_IFNAMSIZ];
	snprintf(pooled, sizeof pooled, "%s", p);
	CHECK(!link_exists(tap_a) && pooled[0] && if_nametoindex(pooled) == ia,
	      "pool: a's TAP parked under a pool name, a's name gone");
	/* the bridge hears of the lost carrier from the kernel's link watch,
	 * within a second */
	CHECK(!link_carrier(pooled) && !strcmp(master_of(pooled), "svbr5") &&
	      EVENTUALLY(brport_state(pooled) == 0),
	      "pool: parked without carrier, a disabled port of the bridge");

	json_t *cb = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
	prepare_ok(s, b, cb, "pool: prepare b");
	snprintf(tap_b, sizeof tap_b, "%s", iface_str(cb, 0, "hostDevName"));
	CHECK(if_nametoindex(tap_b) == ia && !pooled_link(tag)[0], "pool: b took the pooled TAP");
	CHECK(link_up(tap_b) && !strcmp(master_of(tap_b), "svbr5") && strstr(alias_of(tap_b), "name=b "),
	      "pool: b's TAP is up, on the bridge, tagged for b");
	CHECK_INT((int)tun_flags(tap_b), IFF_TAP | IFF_NO_PI | IFF_PERSIST,
		  "pool: b's TAP has a fresh TAP's flags (no VNET_HDR)");

	/* a pooled TAP that a process still holds is not given to c */
	CHECK(svm_remove_vm(s, "b", &e) == 0, "pool: remove b");
	EVENTUALLY(pooled_link(tag)[0] && !link_exists(tap_b));
	snprintf(pooled, sizeof pooled, "%s", pooled_link(tag));
	fd = hold_tap(pooled, IFF_TAP | IFF_NO_PI);
	json_t *cc = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
	prepare_ok(s, c, cc, "pool: prepare c while the pooled TAP is held");
	snprintf(tap_c, sizeof tap_c, "%s", iface_str(cc, 0, "hostDevName"));
	CHECK(fd >= 0 && if_nametoindex(tap_c) != ia && !link_exists(pooled),
	      "pool: c got a new TAP, the held one was removed");
	if (fd >= 0)
		close(fd);
	svm_vm_unref(a);
	svm_vm_unref(b);
	svm_vm_unref(c);
	json_decref(ca);
	json_decref(cb);
	json_decref(cc);
	CHECK(svm_remove_vm(s, "c", &e) == 0 && EVENTUALLY(pooled_link(tag)[0]), "pool: c's TAP parked");
	svm_free(s);
	CHECK_INT(count_tagged(tag), 0, "pool: unmount leaves no leased or pooled TAP");
	CHECK(!link_exists("svbr5"), "pool: unmount removes the bridge");
}

/* dns, exhaustion, and the FORWARD policy ACCEPT case in a second mount */
static void small_subnet_tests(void)
{
	svm_error e;
	net_ip_forward_set(1); /* already on: must stay on */
	svm *s = orch("small", "svbr2", "10.99.0.0/30", "9.9.9.9", NULL, &e);
	CHECK(s != NULL, "orchestrator on a /30 with dns");
	if (!s)
		return;
	svm_vm *a = vm_new_named(s, "a"), *b = vm_new_named(s, "b");
	json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	prepare_ok(s, a, ca, "prepare on /30");
	CHECK_STR(bootargs(ca), "console=ttyS0 ip=10.99.0.2::10.99.0.1:255.255.255.252::eth0:off:9.9.9.9",
		  "dns option in ip=");
	json_t *cb = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	CHECK(net_prepare_vm(s->net, b->id, b->name, cb, &e) < 0 && e.code == SVM_IP_EXHAUSTED, "second VM on /30: IP_EXHAUSTED");
	CHECK_INT(count_tagged(net_tag(s->net)), 2, "the failed prepare left no TAP (bridge + one TAP tagged)");
	char *filt = rules("filter");
	CHECK(!strstr(filt, "svbr2"), "FORWARD policy ACCEPT: no accept rules added");
	free(filt);
	json_decref(ca);
	json_decref(cb);
	svm_vm_unref(a);
	svm_vm_unref(b);
	svm_free(s);
	CHECK_INT(ip_forward(), 1, "ip_forward that was on stays on");
	net_ip_forward_set(0);
}

/* A bridge that existed before the mount is used and left in place. */
static void existing_bridge_tests(void)
{
	svm_error e;
	struct nl_sock *sk = net_link_open(&e);
	int idx = net_bridge_create(sk, "prebr0", &e);
	CHECK(idx > 0, "a bridge made before the mount");
	svm *s = orch("pre", "prebr0", "10.77.0.0/24", NULL, NULL, &e);
	svm_vm *a = s ? vm_new_named(s, "a") : NULL;
	json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "console=ttyS0");
	if (a)
		prepare_ok(s, a, ca, "prepare on the existing bridge");
	const char *tap = iface_str(ca, 0, "hostDevName");
	CHECK(tap && !strcmp(master_of(tap), "prebr0"), "TAP enslaved to the existing bridge");
	CHECK(has_addr("prebr0", "10.77.0.1") && link_up("prebr0"), "gateway address added, bridge up");
	CHECK(!strstr(alias_of("prebr0"), "smartvmfs"), "the existing bridge is not tagged as ours");
	json_decref(ca);
	svm_vm_unref(a);
	svm_free(s);
	CHECK(link_exists("prebr0"), "unmount: the existing bridge is left in place");
	CHECK(!has_addr("prebr0", "10.77.0.1"), "unmount: the address we added is removed");
	net_link_delete(sk, "prebr0", NULL);
	net_link_close(sk);
	net_ip_forward_set(0);
}

/* A run that dies without cleanup (a child that _exits), then a fresh mount
 * with the same runtime dir and bridge collects what it left. */
static void crash_tests(void)
{
	net_ip_forward_set(0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		svm_error e;
		svm *s = orch("crash", NULL, NULL, NULL, NULL, &e);
		svm_vm *a = s ? svm_create_vm(s, "a", NULL) : NULL;
		svm_vm *b = s ? svm_create_vm(s, "b", NULL) : NULL;
		json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
		json_t *cb = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
		int ok = a && b && net_prepare_vm(s->net, a->id, a->name, ca, &e) == 0 &&
			 net_prepare_vm(s->net, b->id, b->name, cb, &e) == 0;
		_exit(ok ? 0 : 1); /* no svm_free: a crash */
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "crashed run built two TAPs and left");
	char *nat = rules("nat");
	bool left = link_exists("svbr0") && strstr(nat, "smartvmfs") && ip_forward() == 1;
	free(nat);
	CHECK(left, "crashed run left bridge, rule, ip_forward on");
	svm_error e;
	svm *s = orch("crash", NULL, NULL, NULL, NULL, &e);
	CHECK(s != NULL, "a fresh mount on the same runtime dir");
	if (!s)
		return;
	CHECK_INT(count_tagged(net_tag(s->net)), 0, "leftover TAPs and bridge collected by tag");
	CHECK(!link_exists("svbr0"), "leftover bridge removed");
	nat = rules("nat");
	char *filt = rules("filter");
	CHECK(!strstr(nat, "smartvmfs") && !strstr(filt, "smartvmfs"), "leftover rules removed");
	free(nat);
	free(filt);
	CHECK_INT(ip_forward(), 0, "ip_forward put back as the crashed run found it");
	char *log = svm_log_text(s);
	CHECK_INT(count_in(log, "removed TAP "), 2, "log names the two TAPs removed");
	CHECK(strstr(log, "removed bridge svbr0") && strstr(log, "removed a rule left by a crashed run"),
	      "log names the bridge and the rule removed");
	free(log);
	svm_free(s);
}

/* Without CAP_NET_ADMIN: a clear PERMISSION before anything is built. */
static void permission_tests(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		syscall(SYS_capget, &h, d);
		d[0].effective &= ~(1u << CAP_NET_ADMIN);
		if (syscall(SYS_capset, &h, d) < 0)
			_exit(3);
		svm_error e;
		svm *s = orch("perm", NULL, NULL, NULL, NULL, &e);
		svm_vm *a = s ? svm_create_vm(s, "a", NULL) : NULL;
		json_t *ca = cfg_with("[{\"ifaceId\": \"eth0\"}]", "x");
		int rc = a ? net_prepare_vm(s->net, a->id, a->name, ca, &e) : 0;
		bool clear = rc < 0 && e.code == SVM_PERMISSION && strstr(e.message, "CAP_NET_ADMIN");
		if (rc < 0)
			printf("# without CAP_NET_ADMIN: %s\n", e.message);
		fflush(stdout);
		_exit(clear && !link_exists("svbr0") ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no CAP_NET_ADMIN: PERMISSION naming it, nothing built");
}

/* A start through the public API: the emulator, or a real Firecracker. */
static void start_test(const char *label, const char *binary, const char *kernel)
{
	svm_error e;
	svm *s = orch(label, NULL, NULL, NULL, binary, &e);
	CHECK(s != NULL, "orchestrator for a start");
	if (!s)
		return;
	svm_vm *vm = vm_new_named(s, "web");
	char cfg[1024];
	snprintf(cfg, sizeof cfg,
		 "{\"bootSource\": {\"kernelImagePath\": \"%s\", \"bootArgs\": \"console=ttyS0 reboot=k panic=1 pci=off\"},"
		 " \"machineConfig\": {\"vcpuCount\": 1, \"memSizeMib\": 128},"
		 " \"networkInterfaces\": [{\"ifaceId\": \"eth0\"}]}",
		 kernel);
	CHECK(svm_vm_set_config_json(vm, cfg, strlen(cfg), &e) == 0, "config with { ifaceId: eth0 }");
	svm_request rq = {.verb = SVM_V_START};
	int rc = svm_vm_do(vm, &rq, &e);
	if (rc < 0)
		printf("# start (%s): %s\n", label, e.message);
	char what[96];
	snprintf(what, sizeof what, "%s: start with an automatic TAP succeeds", label);
	CHECK(rc == 0 && svm_vm_state(vm) == SVM_RUNNING, what);
	char tap[NET_IFNAMSIZ], p[128], v[16];
	net_tap_name(svm_vm_id(vm), "eth0", tap);
	snprintf(p, sizeof p, "/sys/class/net/%s/carrier", tap);
	if (!strcmp(label, "firecracker")) {
		CHECK(slurp(p, v, sizeof v) == 0 && !strcmp(v, "1"), "firecracker: has the TAP open (carrier)");
	}
	char *vt = net_vm_text(s->net, vm->id);
	CHECK(strstr(vt, tap) && strstr(vt, "bootarg ip=172.30.0.2::172.30.0.1:255.255.255.0::eth0:off"),
	      "VM net text names its TAP and boot argument");
	free(vt);
	char *cfgnow = svm_vm_config_json(vm);
	CHECK(cfgnow && !strstr(cfgnow, "hostDevName") && !strstr(cfgnow, "ip=172"),
	      "the stored config.json is unchanged");
	free(cfgnow);
	rq.verb = SVM_V_KILL;
	svm_vm_do(vm, &rq, &e);
	CHECK(link_exists(tap), "stopped VM keeps its TAP");
	svm_vm_unref(vm);
	svm_free(s);
	CHECK(!link_exists(tap) && !link_exists("svbr0"), "unmount after a start removes TAP and bridge");
}

/* A snapshot of a VM with an automatic TAP restored into another VM (a clone):
 * the device state names the first VM's TAP, which it still holds; the clone
 * gets its own through network_overrides. */
static void clone_test(const char *label, const char *binary, const char *kernel)
{
	svm_error e;
	char name[64], what[128];
	snprintf(name, sizeof name, "clone-%s", label);
	svm *s = orch(name, NULL, NULL, NULL, binary, &e);
	CHECK(s != NULL, "orchestrator for a clone");
	if (!s)
		return;
	svm_vm *a = vm_new_named(s, "a"), *b = vm_new_named(s, "b");
	char cfg[1024], snap[256];
	snprintf(cfg, sizeof cfg,
		 "{\"bootSource\": {\"kernelImagePath\": \"%s\", \"bootArgs\": \"console=ttyS0 reboot=k panic=1 pci=off\"},"
		 " \"machineConfig\": {\"vcpuCount\": 1, \"memSizeMib\": 128},"
		 " \"networkInterfaces\": [{\"ifaceId\": \"eth0\"}]}",
		 kernel);
	snprintf(snap, sizeof snap, "%s/snap-%s", tmpdir, label);
	CHECK(svm_vm_set_config_json(a, cfg, strlen(cfg), &e) == 0, "clone: config with an automatic TAP");
	svm_request start = {.verb = SVM_V_START}, pause = {.verb = SVM_V_PAUSE}, kill_ = {.verb = SVM_V_KILL};
	svm_request snapshot = {.verb = SVM_V_SNAPSHOT, .argc = 1, .argv = {snap}};
	svm_request restore = {.verb = SVM_V_RESTORE, .argc = 2, .argv = {snap, "resume"}};
	int rc = svm_vm_do(a, &start, &e);
	if (rc == 0)
		rc = svm_vm_do(a, &pause, &e);
	if (rc == 0)
		rc = svm_vm_do(a, &snapshot, &e);
	if (rc < 0)
		printf("# start, pause, snapshot (%s): %s\n", label, e.message);
	snprintf(what, sizeof what, "%s: start, pause and snapshot a VM with a TAP", label);
	CHECK(rc == 0, what);
	rc = svm_vm_do(b, &restore, &e);
	if (rc < 0)
		printf("# restore into b (%s): %s\n", label, e.message);
	snprintf(what, sizeof what, "%s: restore its snapshot into another VM (a still holds its TAP)", label);
	CHECK(rc == 0 && svm_vm_state(b) == SVM_RUNNING, what);
	char tap_a[NET_IFNAMSIZ], tap_b[NET_IFNAMSIZ], p[128], v[16];
	net_tap_name(svm_vm_id(a), "eth0", tap_a);
	net_tap_name(svm_vm_id(b), "eth0", tap_b);
	CHECK(link_exists(tap_a) && link_exists(tap_b), "clone: each VM has its own TAP");
	svm_api_reply r = {0};
	rc = svm_api_call(b->api, "GET", "/vm/config", NULL, &r, &e);
	const char *dev = json_string_value(json_object_get(
		json_array_get(json_object_get(r.json, "network-interfaces"), 0), "host_dev_name"));
	snprintf(what, sizeof what, "clone: b's VMM uses b's TAP %s (network_overrides): %s", tap_b,
		 dev ? dev : "?");
	CHECK(rc == 0 && dev && !strcmp(dev, tap_b), what);
	svm_api_reply_clear(&r);
	if (!strcmp(label, "firecracker")) {
		snprintf(p, sizeof p, "/sys/class/net/%s/carrier", tap_b);
		CHECK(slurp(p, v, sizeof v) == 0 && !strcmp(v, "1"), "firecracker: the clone has its TAP open");
	}
	svm_vm_do(b, &kill_, &e);
	svm_vm_do(a, &kill_, &e);
	svm_vm_unref(a);
	svm_vm_unref(b);
	svm_free(s);
	CHECK(!link_exists(tap_a) && !link_exists(tap_b), "clone: unmount removes both TAPs");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	seed_tests();
	if (geteuid() != 0 || unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		char why[160];
		snprintf(why, sizeof why, "unshare(CLONE_NEWNET) needs root (%s)", strerror(errno));
		check_skip("host networking tests", why);
		return check_done();
	}
	/* from here on, only this private namespace is touched. sysfs shows the
	 * links of the namespace that mounted it: a private mount of it, in a
	 * private mount namespace, shows ours */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("sysfs", "/sys", "sysfs", 0, NULL) < 0) {
		printf("Bail out! cannot mount a private sysfs: %s\n", strerror(errno));
		return 1;
	}
	svm_error e;
	struct nl_sock *sk = net_link_open(&e);
	CHECK(sk && net_link_setup(sk, 1, NULL, 0, &e) == 0, "lo up in the private namespace");
	net_link_close(sk);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/svm-net-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	settings_tests();
	int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tun >= 0)
		close(tun);
	if (!net_fw_binary()) {
		check_skip("host networking tests", "iptables is not installed here: no NAT for the "
			   "guests (apt-get install iptables)");
	} else if (tun < 0) {
		char why[160];
		snprintf(why, sizeof why, "/dev/net/tun is not usable here (%s): TAPs cannot be made "
			 "(modprobe tun)", strerror(errno));
		check_skip("host networking tests", why);
	} else {
		host_tests();
		pool_tests();
		small_subnet_tests();
		existing_bridge_tests();
		crash_tests();
		permission_tests();
		const char *emu = getenv("SMARTVMFS_EMULATOR");
		if (emu && *emu && access(emu, X_OK) == 0)
		{
			start_test("emulator", emu, "/bin/true");
			clone_test("emulator", emu, "/bin/true");
		} else
			check_skip("emulator start", "SMARTVMFS_EMULATOR is not set");
		const char *fc = getenv("SMARTVMFS_FIRECRACKER"), *gk = getenv("SMARTVMFS_GUEST_KERNEL");
		if (!fc || !*fc || !gk || !*gk)
			check_skip("real Firecracker start", "SMARTVMFS_FIRECRACKER is not set: no real "
				   "Firecracker to run");
		else if (access("/dev/kvm", R_OK | W_OK) < 0)
			check_skip("real Firecracker start", check_no_kvm());
		else {
			start_test("firecracker", fc, gk);
			clone_test("firecracker", fc, gk);
		}
	}
	/* children that exited without cleanup (on purpose) left files behind */
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
