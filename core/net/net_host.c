/* net_host.c - the host side shared by all VMs of a mount: the bridge and its
 * gateway address, ip_forward, the NAT and FORWARD rules; a state file that
 * says what was done, so what a crashed run left is found and undone at the
 * next mount (DESIGN §6). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "net_fw.h"
#include "net_link.h"
#include "net_priv.h"

#define CAP_NET_ADMIN_BIT 12

/* ------------------------------------------------------------ the rules */

/* DESIGN §6: masquerade what leaves by any other link than the bridge; this
 * survives a change of uplink, and guest-to-guest traffic is not NATed. */
static net_rule nat_rule(const svm_net *n)
{
	return (net_rule){"nat", "POSTROUTING", false,
			  {"-s", n->subnet_text, "!", "-o", n->bridge, "-j", "MASQUERADE", NULL}};
}

/* Where the FORWARD policy drops (Docker sets it): guests out, replies in. */
static net_rule fwd_out_rule(const svm_net *n)
{
	return (net_rule){"filter", "FORWARD", true, {"-i", n->bridge, "-j", "ACCEPT", NULL}};
}

static net_rule fwd_in_rule(const svm_net *n)
{
	return (net_rule){"filter",
			  "FORWARD",
			  true,
			  {"-o", n->bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j",
			   "ACCEPT", NULL}};
}

/* ------------------------------------------------------------ state file */

/* Rewritten after each step of the setup, removed when all is undone. */
static void state_write(svm_net *n)
{
	if (n->lock_fd < 0)
		return; /* another live mount owns the identity's state */
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.new", n->state_path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "bridge=%s %s\n", n->bridge, n->bridge_created ? "created" : "existing");
	if (n->addr_added)
		fprintf(f, "addr=%s/%d\n", n->gateway, n->sn.prefix);
	if (n->ip_forward_orig >= 0)
		fprintf(f, "ip_forward=%d\n", n->ip_forward_orig);
	if (n->fw_nat || n->fw_forward)
		fprintf(f, "rules=1\n");
	if (fclose(f) == 0)
		rename(tmp, n->state_path);
}

static bool has_net_admin(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	if (!f)
		return true; /* cannot tell: let the kernel answer */
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps & (1ull << CAP_NET_ADMIN_BIT);
}

/* ------------------------------------------------------------ setup */

static int setup_bridge(svm_net *n, struct nl_sock *sk, svm_error *err)
{
	int idx = net_link_index(sk, n->bridge);
	if (idx < 0)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "cannot look up bridge %s",
				     n->bridge);
	char alias[64];
	snprintf(alias, sizeof alias, "%s bridge", n->tag);
	if (idx == 0) {
		idx = net_bridge_create(sk, n->bridge, err);
		if (idx < 0)
			return -1;
		n->bridge_created = true;
		state_write(n);
		sink_log(n->sink, "net: created bridge %s", n->bridge);
	} else {
		/* a link of that name that is no bridge (a TAP, a NIC) cannot take ports */
		char kind[32];
		if (net_link_kind(sk, n->bridge, kind, sizeof kind) == 0 && strcmp(kind, "bridge") != 0)
			return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED,
					     "%s exists and is not a bridge (%s): choose another name "
					     "with -o bridge=NAME", n->bridge, *kind ? kind : "a device");
		sink_log(n->sink, "net: using the existing bridge %s (left in place at unmount)",
			n->bridge);
	}
	n->bridge_index = idx;
	/* only a bridge of ours gets our tag: an existing one keeps its alias */
	if (net_link_setup(sk, idx, n->bridge_created ? alias : NULL, 0, err) < 0) {
		err->code = err->code == SVM_PERMISSION ? SVM_PERMISSION : SVM_BRIDGE_SETUP_FAILED;
		return -1;
	}
	bool added;
	if (net_addr_add(sk, idx, net_gateway_addr(&n->sn), n->sn.prefix, n->sn.broadcast, &added,
			 err) < 0)
		return -1;
	n->addr_added = added && !n->bridge_created; /* ours goes with the bridge */
	state_write(n);
	return 0;
}

static int setup_forwarding(svm_net *n, svm_error *err)
{
	int cur = net_ip_forward_get();
	if (cur != 1) {
		if (net_ip_forward_set(1) < 0)
			return svm_error_set(err, errno == EACCES || errno == EPERM ? SVM_PERMISSION
										    : SVM_BRIDGE_SETUP_FAILED,
					     "cannot turn on net.ipv4.ip_forward: %s", strerror(errno));
		n->ip_forward_orig = cur < 0 ? 0 : cur;
		state_write(n);
		sink_log(n->sink, "net: turned on net.ipv4.ip_forward (was %d)", n->ip_forward_orig);
	}
	/* recorded before adding, so a crash in between still finds them */
	n->fw_nat = true;
	state_write(n);
	net_rule r = nat_rule(n);
	if (net_fw_ensure(&r, n->tag, err) < 0)
		return -1;
	bool drops = false;
	if (net_fw_forward_drops(&drops, err) < 0)
		return -1;
	if (drops) {
		n->fw_forward = true;
		net_rule in = fwd_in_rule(n), out = fwd_out_rule(n);
		if (net_fw_ensure(&in, n->tag, err) < 0 || net_fw_ensure(&out, n->tag, err) < 0)
			return -1;
	}
	sink_log(n->sink, "net: NAT for %s out of any link but %s%s", n->subnet_text, n->bridge,
		drops ? "; FORWARD policy drops: accept rules added for the bridge" : "");
	return 0;
}

int net_host_ensure(svm_net *n, struct nl_sock *sk, svm_error *err)
{
	if (n->host_ready) {
		int idx = net_link_index(sk, n->bridge);
		if (idx == n->bridge_index)
			return 0;
		/* someone removed it under us: build it again */
		sink_log(n->sink, "net: bridge %s disappeared; setting it up again", n->bridge);
		n->host_ready = false;
		n->bridge_created = false;
	}
	if (!has_net_admin())
		return svm_error_set(err, SVM_PERMISSION,
				     "networking needs CAP_NET_ADMIN to create bridge %s and TAP devices "
				     "(run smartvmfs as root, or give VMs a hostDevName that exists)",
				     n->bridge);
	if (setup_bridge(n, sk, err) < 0 || setup_forwarding(n, err) < 0) {
		char msg[sizeof err->message];
		snprintf(msg, sizeof msg, "%s", err->message);
		net_host_teardown(n, sk);
		if (err->code != SVM_PERMISSION)
			err->code = SVM_BRIDGE_SETUP_FAILED;
		snprintf(err->message, sizeof err->message, "%s", msg);
		return -1;
	}
	n->host_ready = true;
	return 0;
}

void net_host_teardown(svm_net *n, struct nl_sock *sk)
{
	if (n->fw_forward) {
		net_rule in = fwd_in_rule(n), out = fwd_out_rule(n);
		net_fw_remove(&in, n->tag);
		net_fw_remove(&out, n->tag);
	}
	if (n->fw_nat) {
		net_rule r = nat_rule(n);
		net_fw_remove(&r, n->tag);
	}
	if (n->fw_nat || n->fw_forward)
		sink_log(n->sink, "net: removed the NAT%s rules", n->fw_forward ? " and FORWARD" : "");
	if (n->ip_forward_orig >= 0) {
		if (net_ip_forward_set(n->ip_forward_orig) == 0)
			sink_log(n->sink, "net: net.ipv4.ip_forward put back to %d", n->ip_forward_orig);
		else
			sink_log(n->sink, "net: cannot put net.ipv4.ip_forward back to %d: %s",
				n->ip_forward_orig, strerror(errno));
	}
	if (n->addr_added && n->bridge_index > 0)
		net_addr_del(sk, n->bridge_index, net_gateway_addr(&n->sn), n->sn.prefix);
	if (n->bridge_created) {
		svm_error e;
		if (net_link_delete(sk, n->bridge, &e) < 0)
			sink_log(n->sink, "net: %s", e.message);
		else
			sink_log(n->sink, "net: removed bridge %s", n->bridge);
	}
	n->fw_nat = n->fw_forward = n->addr_added = n->bridge_created = n->host_ready = false;
	n->ip_forward_orig = -1;
	n->bridge_index = 0;
	if (n->lock_fd >= 0)
		unlink(n->state_path);
}

void net_host_unlock(svm_net *n)
{
	if (n->lock_fd < 0)
		return;
	unlink(n->lock_path);
	close(n->lock_fd);
	n->lock_fd = -1;
}

/* ------------------------------------------------------------ leftovers */

static void log_rule(void *ud, const char *rule)
{
	sink_log(ud, "net: removed a rule left by a crashed run: %s", rule);
}

/* Re-adopted VMs use the crashed run's host setup: it becomes ours, recorded
 * in our state file and undone at our unmount as if we had made it. */
static void inherit_state(svm_net *n, struct nl_sock *sk, const char *bridge, bool created,
			  uint32_t addr, int fwd, bool rules)
{
	if (strcmp(bridge, n->bridge) != 0)
		return; /* not this identity's bridge: nothing to take over */
	n->bridge_created = created;
	n->addr_added = addr != 0 && !created;
	n->ip_forward_orig = fwd;
	n->fw_nat = n->fw_forward = rules;
	n->bridge_index = net_link_index(sk, n->bridge);
	/* a bridge removed meanwhile is set up again at the next start */
	n->host_ready = n->bridge_index > 0 && rules;
	state_write(n);
	sink_log(n->sink, "net: kept bridge %s, its address and rules for the re-adopted VMs",
		n->bridge);
}

/* The state file of a crashed run: its rules, ip_forward, an address it added
 * to a bridge that was not its own. */
static void collect_state(svm_net *n, struct nl_sock *sk)
{
	FILE *f = fopen(n->state_path, "re");
	if (!f)
		return;
	char line[256], bridge[NET_IFNAMSIZ] = "", how[16] = "";
	int fwd = -1;
	bool rules = false;
	uint32_t addr = 0;
	int prefix = 0;
	while (fgets(line, sizeof line, f)) {
		char a[NET_ADDRSTRLEN + 4];
		if (sscanf(line, "bridge=%15s %15s", bridge, how) >= 1 ||
		    sscanf(line, "ip_forward=%d", &fwd) == 1)
			continue;
		if (!strncmp(line, "rules=1", 7))
			rules = true;
		else if (sscanf(line, "addr=%18[0-9.]/%d", a, &prefix) == 2 && net_ipv4_parse(a, &addr) < 0)
			addr = 0;
	}
	fclose(f);
	if (n->nleases > 0 && bridge[0]) {
		inherit_state(n, sk, bridge, !strcmp(how, "created"), addr, fwd, rules);
		return;
	}
	if (rules) {
		int k = net_fw_collect("nat", n->tag, log_rule, n->sink);
		int j = net_fw_collect("filter", n->tag, log_rule, n->sink);
		if (k < 0 || j < 0)
			sink_log(n->sink, "net: a crashed run left firewall rules tagged %s, but iptables "
				      "could not list them",
				n->tag);
	}
	if (fwd >= 0 && net_ip_forward_get() != fwd && net_ip_forward_set(fwd) == 0)
		sink_log(n->sink, "net: net.ipv4.ip_forward put back to %d (a crashed run had changed it)",
			fwd);
	int idx = addr && bridge[0] ? net_link_index(sk, bridge) : 0;
	if (idx > 0 && net_addr_del(sk, idx, addr, prefix) == 0) {
		char a[NET_ADDRSTRLEN];
		sink_log(n->sink, "net: removed address %s/%d a crashed run added to bridge %s",
			net_ipv4_str(addr, a), prefix, bridge);
	}
	unlink(n->state_path);
}

static bool leased(const svm_net *n, const char *tap)
{
	for (size_t i = 0; i < n->nleases; i++)
		if (!strcmp(n->leases[i].tap, tap))
			return true;
	return false;
}

static void collect_links(svm_net *n, struct nl_sock *sk)
{
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%s ", n->tag);
	net_link_info *l = NULL;
	int count = net_links_tagged(sk, prefix, &l);
	svm_error e;
	/* TAPs first: the bridge goes only when no port is left */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < count; i++) {
			if (l[i].bridge != (pass == 1))
				continue;
			if (pass == 0 && leased(n, l[i].name))
				continue; /* a re-adopted VM's */
			if (pass == 1 && n->nleases > 0 && !strcmp(l[i].name, n->bridge))
				continue; /* the re-adopted VMs' bridge: taken over */
			if (pass == 0 && l[i].carrier) {
				sink_log(n->sink, "net: kept %s (%s): a process still has it open", l[i].name,
					l[i].alias);
				continue;
			}
			if (pass == 1 && net_link_ports(sk, l[i].ifindex) > 0) {
				sink_log(n->sink, "net: kept bridge %s of a crashed run: it still has ports",
					l[i].name);
				continue;
			}
			if (net_link_delete(sk, l[i].name, &e) < 0)
				sink_log(n->sink, "net: cannot remove %s left by a crashed run: %s", l[i].name,
					e.message);
			else
				sink_log(n->sink, "net: removed %s %s left by a crashed run (%s)",
					pass ? "bridge" : "TAP", l[i].name, l[i].alias);
		}
	free(l);
}

void net_host_lock(svm_net *n)
{
	n->lock_fd = open(n->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (n->lock_fd >= 0 && flock(n->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		close(n->lock_fd);
		n->lock_fd = -1;
		sink_log(n->sink, "net: another live mount uses runtime dir %s with bridge %s: its "
			      "links and VMs are not collected",
			n->runtime_dir, n->bridge);
	}
}

void net_host_collect(svm_net *n)
{
	if (n->lock_fd < 0)
		return;
	/* the lock is ours: any link tagged with this identity, and any state
	 * file, is what a run that ended without its cleanup left (but what the
	 * re-adopted VMs use) */
	struct nl_sock *sk = net_link_open(NULL);
	if (!sk)
		return;
	collect_links(n, sk);
	collect_state(n, sk);
	net_link_close(sk);
}
