/* net.c - the svm_net object: settings, leases (TAP + MAC + address per VM
 * interface), what a start needs (net_prepare_vm) and gives back, /net/ctl, and
 * the text of the net files. The host side is in net_host.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "net_link.h"
#include "net_priv.h"

/* ------------------------------------------------------------ object */

svm_net *net_new(const net_settings *s, svm_sink *sink, svm_error *err)
{
	net_cidr sn;
	if (net_check_ifname(s->bridge, "bridge", err) < 0 || net_subnet_parse(s->subnet, &sn, err) < 0)
		return NULL;
	uint32_t dns = 0;
	if (s->dns && net_ipv4_parse(s->dns, &dns) < 0) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "dns \"%s\" is not an IPv4 address", s->dns);
		return NULL;
	}
	svm_net *n = calloc(1, sizeof *n);
	if (!n) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&n->mu, NULL);
	n->sink = sink;
	snprintf(n->runtime_dir, sizeof n->runtime_dir, "%s", s->runtime_dir);
	n->sn = sn;
	n->ip_forward_orig = -1;
	n->lock_fd = -1;
	snprintf(n->bridge, sizeof n->bridge, "%s", s->bridge);
	char a[NET_ADDRSTRLEN];
	snprintf(n->subnet_text, sizeof n->subnet_text, "%s/%d", net_ipv4_str(sn.network, a), sn.prefix);
	net_ipv4_str(net_gateway_addr(&sn), n->gateway);
	if (s->dns)
		net_ipv4_str(dns, n->dns);
	/* several mounts may share a host: the identity is this mount's runtime
	 * dir and bridge, hashed short enough for aliases and rule comments */
	char key[PATH_MAX + NET_IFNAMSIZ + 2];
	snprintf(key, sizeof key, "%s\n%s", s->runtime_dir, n->bridge);
	uint32_t h = net_hash32(key);
	snprintf(n->tag, sizeof n->tag, "smartvmfs:%08x", h);
	snprintf(n->lock_path, sizeof n->lock_path, "%s/.net-%08x.lock", s->runtime_dir, h);
	snprintf(n->state_path, sizeof n->state_path, "%s/.net-%08x.state", s->runtime_dir, h);
	net_host_lock(n);
	return n;
}

bool net_owns_identity(svm_net *n)
{
	return n->lock_fd >= 0;
}

void net_collect(svm_net *n)
{
	pthread_mutex_lock(&n->mu);
	net_host_collect(n);
	pthread_mutex_unlock(&n->mu);
}

/* A lease ends: its TAP goes back to the pool (net_pool.c), or is deleted. */
static void lease_remove(svm_net *n, struct nl_sock *sk, size_t i, const char *why)
{
	net_lease *l = &n->leases[i];
	svm_error e;
	if (net_pool_retire(n, l->tap))
		sink_log(n->sink, "net: TAP %s of %s/%s goes back to the pool (%s)", l->tap,
			 l->vm_name, l->iface, why);
	else if (!sk)
		sink_log(n->sink, "net: cannot remove TAP %s: no netlink socket", l->tap);
	else if (net_pool_put(n, sk, l->tap))
		sink_log(n->sink, "net: TAP %s of %s/%s back in the pool as %s (%s)", l->tap,
			 l->vm_name, l->iface, n->pool[n->npool - 1].name, why);
	else if (net_link_delete(sk, l->tap, &e) < 0)
		sink_log(n->sink, "net: %s", e.message);
	else
		sink_log(n->sink, "net: removed TAP %s of %s/%s (%s)", l->tap, l->vm_name, l->iface, why);
	memmove(l, l + 1, (n->nleases - i - 1) * sizeof *l);
	n->nleases--;
}

void net_free(svm_net *n)
{
	if (!n)
		return;
	net_pool_stop(n); /* what it did not park yet is removed below */
	pthread_mutex_lock(&n->mu);
	struct nl_sock *sk = net_link_open(NULL);
	net_pool_remove_all(n, sk, "unmount");
	net_host_teardown(n, sk);
	net_link_close(sk);
	net_host_unlock(n);
	pthread_mutex_unlock(&n->mu);
	/* svm_free tried before our files were gone; only if empty */
	rmdir(n->runtime_dir);
	free(n->leases);
	free(n->notes);
	free(n->pool);
	free(n->parking);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

void net_reset(svm_net *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	struct nl_sock *sk = net_link_open(NULL);
	net_pool_remove_all(n, sk, "purge");
	if (n->host_ready || n->bridge_created || n->fw_nat || n->fw_forward)
		net_host_teardown(n, sk);
	net_link_close(sk);
	pthread_mutex_unlock(&n->mu);
}

const char *net_bridge(svm_net *n) { return n->bridge; }
const char *net_subnet(svm_net *n) { return n->subnet_text; }
const char *net_gateway(svm_net *n) { return n->gateway; }
const char *net_tag(svm_net *n) { return n->tag; }

/* ------------------------------------------------------------ leases */

static net_lease *find_lease(svm_net *n, const char *vm_id, const char *iface)
{
	for (size_t i = 0; i < n->nleases; i++)
		if (!strcmp(n->leases[i].vm_id, vm_id) && !strcmp(n->leases[i].iface, iface))
			return &n->leases[i];
	return NULL;
}

static net_lease *find_tap(svm_net *n, const char *tap)
{
	for (size_t i = 0; i < n->nleases; i++)
		if (!strcmp(n->leases[i].tap, tap))
			return &n->leases[i];
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int alloc_addr(svm_net *n, uint32_t *out, svm_error *err)
{
	uint32_t *used = malloc((n->nleases + 1) * sizeof *used);
	if (!used)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	for (size_t i = 0; i < n->nleases; i++)
		used[i] = n->leases[i].addr;
	qsort(used, n->nleases, sizeof *used, cmp_u32);
	int rc = net_alloc_addr(&n->sn, used, n->nleases, out, err);
	free(used);
	return rc;
}

/* A free TAP name: the seed's name for (VM, interface), or a numbered variant
 * when two interface ids of a VM come out the same or the name is taken. */
static int pick_tap_name(svm_net *n, struct nl_sock *sk, const char *vm_id, const char *iface,
			 char out[NET_IFNAMSIZ], svm_error *err)
{
	char base[NET_IFNAMSIZ];
	net_tap_name(vm_id, iface, base);
	snprintf(out, NET_IFNAMSIZ, "%s", base);
	for (unsigned k = 1; k < 100; k++) {
		if (!find_tap(n, out) && net_link_index(sk, out) == 0)
			return 0;
		net_tap_name_variant(base, k, out);
	}
	return svm_error_set(err, SVM_TAP_CREATE_FAILED, "no free TAP name like %s", base);
}

/* The TAP of l (tagged, a port of the bridge, up): a pooled one taken up
 * again, else a new one. */
static int tap_build(svm_net *n, struct nl_sock *sk, const net_lease *l, svm_error *err)
{
	char alias[256];
	snprintf(alias, sizeof alias, "%s vm=%s name=%s iface=%s", n->tag, l->vm_id, l->vm_name,
		 l->iface);
	if (net_pool_take(n, sk, l->tap, alias) > 0)
		return 0;
	if (net_tap_create(l->tap, err) < 0)
		return -1;
	int idx = net_link_index(sk, l->tap);
	if (idx <= 0 || net_link_setup(sk, idx, alias, n->bridge_index, err) < 0) {
		if (idx <= 0)
			svm_error_set(err, SVM_TAP_CREATE_FAILED, "TAP %s vanished after creation",
				      l->tap);
		net_link_delete(sk, l->tap, NULL);
		return -1;
	}
	return 0;
}

/* A new lease for (vm, iface): tap is the name to use, or NULL for the
 * generated one. */
static net_lease *lease_new(svm_net *n, struct nl_sock *sk, const char *vm_id,
			    const char *vm_name, const char *iface, const char *tap, bool manual,
			    svm_error *err)
{
	if (net_host_ensure(n, sk, err) < 0)
		return NULL;
	net_lease l = {.manual = manual, .pending = !manual};
	snprintf(l.vm_id, sizeof l.vm_id, "%s", vm_id);
	snprintf(l.vm_name, sizeof l.vm_name, "%s", vm_name);
	snprintf(l.iface, sizeof l.iface, "%s", iface);
	if (tap)
		snprintf(l.tap, sizeof l.tap, "%s", tap);
	else if (pick_tap_name(n, sk, vm_id, iface, l.tap, err) < 0)
		return NULL;
	if (net_check_ifname(l.tap, "TAP name", err) < 0 || alloc_addr(n, &l.addr, err) < 0)
		return NULL;
	net_mac(vm_id, iface, l.mac);
	if (svm_grow(&n->leases, &n->cap, n->nleases + 1, sizeof *n->leases) < 0) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	if (tap_build(n, sk, &l, err) < 0)
		return NULL;
	/* the address may have been another guest's: forget its old MAC */
	net_neigh_flush(sk, n->bridge_index, l.addr);
	n->leases[n->nleases] = l;
	char a[NET_ADDRSTRLEN];
	sink_log(n->sink, "net: TAP %s for %s/%s: %s %s", l.tap, vm_name, iface, net_ipv4_str(l.addr, a),
		l.mac);
	if (++n->nleases > n->peak)
		n->peak = n->nleases;
	return &n->leases[n->nleases - 1];
}

/* At each start a lease's TAP must exist and be a port of the bridge: either
 * may have been removed by hand since. */
static int lease_check(svm_net *n, struct nl_sock *sk, net_lease *l, svm_error *err)
{
	if (net_host_ensure(n, sk, err) < 0)
		return -1;
	int idx = net_link_index(sk, l->tap);
	if (idx > 0)
		return net_link_setup(sk, idx, NULL, n->bridge_index, err); /* no-op if so */
	sink_log(n->sink, "net: TAP %s of %s/%s was gone: creating it again", l->tap, l->vm_name,
		l->iface);
	return tap_build(n, sk, l, err);
}

static void note_set(svm_net *n, const char *vm_id, const char *text)
{
	size_t i;
	for (i = 0; i < n->nnotes && strcmp(n->notes[i].vm_id, vm_id); i++)
		;
	if (i == n->nnotes) {
		if (!text)
			return;
		net_note *v = realloc(n->notes, (n->nnotes + 1) * sizeof *v);
		if (!v)
			return;
		n->notes = v;
		n->nnotes++;
		snprintf(n->notes[i].vm_id, sizeof n->notes[i].vm_id, "%s", vm_id);
	}
	if (text) {
		snprintf(n->notes[i].text, sizeof n->notes[i].text, "%s", text);
	} else {
		n->notes[i] = n->notes[--n->nnotes];
	}
}

static void remove_vm_leases(svm_net *n, struct nl_sock *sk, const char *vm_id, bool pending_only,
			     const char *why)
{
	for (size_t i = n->nleases; i-- > 0;)
		if (!strcmp(n->leases[i].vm_id, vm_id) && (!pending_only || n->leases[i].pending))
			lease_remove(n, sk, i, why);
}

/* ------------------------------------------------------------ a start */

/* One interface: its lease (new, existing, or none when hostDevName names a
 * link that is not ours: honoured as given). */
static int prepare_iface(svm_net *n, struct nl_sock *sk, const char *id, const char *name,
			 json_t *iface, net_lease **out, svm_error *err)
{
	const char *ifid = json_string_value(json_object_get(iface, "ifaceId"));
	const char *host = json_string_value(json_object_get(iface, "hostDevName"));
	if (!ifid)
		return svm_error_set(err, SVM_INVALID_CONFIG, "a network interface has no ifaceId");
	net_lease *l = find_lease(n, id, ifid);
	*out = NULL;
	if (host) {
		net_lease *owner = find_tap(n, host);
		if (owner && owner != l)
			return svm_error_set(err, SVM_TAP_CREATE_FAILED,
					     "%s: hostDevName %s is in use by %s/%s", ifid, host,
					     owner->vm_name, owner->iface);
		if (l && strcmp(l->tap, host)) {
			/* the config now names another TAP: the old one goes */
			lease_remove(n, sk, (size_t)(l - n->leases), "hostDevName changed");
			l = NULL;
		}
		if (!l) {
			int idx = net_link_index(sk, host);
			if (idx > 0) {
				sink_log(n->sink, "net: %s/%s uses %s as given (not made by smartvmfs)",
					name, ifid, host);
				return 0;
			}
			if (idx < 0)
				return svm_error_set(err, SVM_TAP_CREATE_FAILED, "cannot look up %s",
						     host);
		}
	}
	/* a lease made just now is there and on the bridge; an older one may
	 * have lost its TAP or its bridge since */
	if (!l) {
		if (!(l = lease_new(n, sk, id, name, ifid, host, false, err)))
			return -1;
	} else if (lease_check(n, sk, l, err) < 0) {
		return -1;
	}
	json_object_set_new(iface, "hostDevName", json_string(l->tap));
	const char *mac = json_string_value(json_object_get(iface, "guestMac"));
	if (mac)
		snprintf(l->mac, sizeof l->mac, "%s", mac); /* honoured; shown as used */
	else
		json_object_set_new(iface, "guestMac", json_string(l->mac));
	*out = l;
	return 0;
}

/* The seed's getGuestNetworkBootArgs for the first interface that has a lease,
 * unless the boot arguments carry an ip= already. */
static void add_boot_arg(svm_net *n, const char *id, json_t *cfg, const net_lease *l, size_t index)
{
	json_t *boot = json_object_get(cfg, "bootSource");
	const char *args = json_string_value(json_object_get(boot, "bootArgs"));
	char arg[160], dev[24], text[160];
	snprintf(dev, sizeof dev, "eth%zu", index); /* attached in config order */
	net_boot_arg(arg, sizeof arg, l->addr, net_gateway_addr(&n->sn), n->sn.mask, dev,
		     n->dns[0] ? n->dns : NULL);
	if (!args) {
		snprintf(text, sizeof text, "none (bootArgs absent: Firecracker's defaults kept)");
	} else if (net_has_ip_arg(args)) {
		snprintf(text, sizeof text, "none (bootArgs carry their own ip=)");
	} else {
		size_t len = strlen(args) + strlen(arg) + 2;
		char *all = malloc(len);
		if (all) {
			snprintf(all, len, "%s%s%s", args, args[0] ? " " : "", arg);
			json_object_set_new(boot, "bootArgs", json_string(all));
			free(all);
		}
		snprintf(text, sizeof text, "%s", arg);
	}
	note_set(n, id, text);
}

int net_prepare_vm(svm_net *n, const char *id, const char *name, json_t *cfg, svm_error *err)
{
	json_t *ifaces = json_object_get(cfg, "networkInterfaces");
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nleases; i++)
		if (!strcmp(n->leases[i].vm_id, id))
			n->leases[i].pending = false; /* kept by an earlier start */
	note_set(n, id, NULL);
	if (!json_array_size(ifaces)) {
		pthread_mutex_unlock(&n->mu);
		return 0; /* no privileges needed, nothing built */
	}
	net_pool_drain(n);
	struct nl_sock *sk = net_link_open(err);
	int rc = sk ? 0 : -1;
	size_t i, first = 0;
	json_t *iface;
	net_lease first_lease = {0}; /* a copy: later leases may move the array */
	bool have_first = false;
	json_array_foreach(ifaces, i, iface) {
		net_lease *l = NULL;
		if (rc < 0 || (rc = prepare_iface(n, sk, id, name, iface, &l, err)) < 0)
			break;
		if (l && !have_first) {
			first_lease = *l;
			have_first = true;
			first = i;
		}
	}
	if (rc == 0 && have_first)
		add_boot_arg(n, id, cfg, &first_lease, first);
	if (rc < 0 && sk)
		remove_vm_leases(n, sk, id, true, "start failed");
	net_link_close(sk);
	pthread_mutex_unlock(&n->mu);
	return rc;
}

void net_rollback_vm(svm_net *n, const char *id)
{
	pthread_mutex_lock(&n->mu);
	struct nl_sock *sk = net_link_open(NULL);
	remove_vm_leases(n, sk, id, true, "start failed");
	net_link_close(sk);
	pthread_mutex_unlock(&n->mu);
}

void net_release_vm(svm_net *n, const char *id)
{
	pthread_mutex_lock(&n->mu);
	note_set(n, id, NULL);
	bool any = false;
	for (size_t i = 0; i < n->nleases; i++)
		any |= !strcmp(n->leases[i].vm_id, id);
	if (any) {
		struct nl_sock *sk = net_link_open(NULL);
		remove_vm_leases(n, sk, id, false, "VM destroyed");
		net_link_close(sk);
	}
	pthread_mutex_unlock(&n->mu);
}

/* ------------------------------------------------------------ re-adoption */

json_t *net_vm_leases_json(svm_net *n, const char *id)
{
	json_t *o = json_object(), *v = json_array();
	char a[NET_ADDRSTRLEN];
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->nleases; i++) {
		const net_lease *l = &n->leases[i];
		if (strcmp(l->vm_id, id))
			continue;
		json_array_append_new(v, json_pack("{s:s, s:s, s:s, s:s, s:b}", "iface", l->iface,
						   "tap", l->tap, "mac", l->mac, "address",
						   net_ipv4_str(l->addr, a), "manual", l->manual));
	}
	for (size_t i = 0; i < n->nnotes; i++)
		if (!strcmp(n->notes[i].vm_id, id))
			json_object_set_new(o, "bootarg", json_string(n->notes[i].text));
	pthread_mutex_unlock(&n->mu);
	json_object_set_new(o, "interfaces", v);
	return o;
}

void net_adopt_leases(svm_net *n, const char *id, const char *name, const json_t *doc)
{
	const json_t *v = json_object_get(doc, "interfaces");
	const char *note = json_string_value(json_object_get(doc, "bootarg"));
	size_t i;
	const json_t *e;
	pthread_mutex_lock(&n->mu);
	json_array_foreach(v, i, e) {
		const char *iface = json_string_value(json_object_get(e, "iface"));
		const char *tap = json_string_value(json_object_get(e, "tap"));
		const char *mac = json_string_value(json_object_get(e, "mac"));
		const char *addr = json_string_value(json_object_get(e, "address"));
		net_lease l = {.manual = json_is_true(json_object_get(e, "manual"))};
		/* what a crashed run wrote is checked like any input: a bad entry is
		 * dropped (its TAP is then collected), never half taken */
		if (!iface || !tap || !mac || !addr || net_ipv4_parse(addr, &l.addr) < 0 ||
		    l.addr < net_first_guest(&n->sn) || l.addr > net_last_guest(&n->sn) ||
		    net_check_ifname(tap, "TAP name", NULL) < 0 || strlen(mac) >= sizeof l.mac ||
		    strlen(iface) >= sizeof l.iface || find_tap(n, tap) ||
		    find_lease(n, id, iface))
			continue;
		snprintf(l.vm_id, sizeof l.vm_id, "%s", id);
		snprintf(l.vm_name, sizeof l.vm_name, "%s", name);
		snprintf(l.iface, sizeof l.iface, "%s", iface);
		snprintf(l.tap, sizeof l.tap, "%s", tap);
		snprintf(l.mac, sizeof l.mac, "%s", mac);
		if (svm_grow(&n->leases, &n->cap, n->nleases + 1, sizeof *n->leases) < 0)
			break;
		n->leases[n->nleases++] = l;
		if (n->nleases > n->peak)
			n->peak = n->nleases;
	}
	pthread_mutex_unlock(&n->mu);
	if (note) {
		pthread_mutex_lock(&n->mu);
		note_set(n, id, note);
		pthread_mutex_unlock(&n->mu);
	}
}

/* ------------------------------------------------------------ /net/ctl */

static int check_iface(const char *iface, svm_error *err)
{
	if (!svm_config_id_valid(iface))
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "interface id \"%s\": 1 to 64 letters, digits or underscores", iface);
	return 0;
}

int net_tap(svm_net *n, const char *id, const char *name, const char *iface, svm_error *err)
{
	if (check_iface(iface, err) < 0)
		return -1;
	pthread_mutex_lock(&n->mu);
	net_pool_drain(n);
	struct nl_sock *sk = net_link_open(err);
	int rc = -1;
	if (sk) {
		net_lease *l = find_lease(n, id, iface);
		if (l)
			rc = lease_check(n, sk, l, err); /* there already: fine */
		else
			rc = lease_new(n, sk, id, name, iface, NULL, true, err) ? 0 : -1;
	}
	net_link_close(sk);
	pthread_mutex_unlock(&n->mu);
	return rc;
}

int net_untap(svm_net *n, const char *id, const char *name, const char *iface, svm_error *err)
{
	if (check_iface(iface, err) < 0)
		return -1;
	pthread_mutex_lock(&n->mu);
	int rc = 0;
	net_lease *l = find_lease(n, id, iface);
	if (!l) {
		rc = svm_error_set(err, SVM_NOT_FOUND, "untap: %s has no TAP for %s", name, iface);
	} else {
		struct nl_sock *sk = net_link_open(NULL);
		lease_remove(n, sk, (size_t)(l - n->leases), "untap");
		net_link_close(sk);
	}
	pthread_mutex_unlock(&n->mu);
	return rc;
}

/* ------------------------------------------------------------ text */

static int cmp_lease(const void *a, const void *b)
{
	return cmp_u32(&((const net_lease *)a)->addr, &((const net_lease *)b)->addr);
}

/* Appends to a malloc'd string; on failure the text is kept as it was. */
static void append(char **buf, size_t *len, const char *line)
{
	size_t add = strlen(line);
	char *nb = realloc(*buf, *len + add + 1);
	if (!nb)
		return;
	memcpy(nb + *len, line, add + 1);
	*buf = nb;
	*len += add;
}

char *net_leases_text(svm_net *n)
{
	pthread_mutex_lock(&n->mu);
	net_lease *v = malloc((n->nleases + 1) * sizeof *v);
	size_t count = v ? n->nleases : 0;
	if (count)
		memcpy(v, n->leases, count * sizeof *v);
	pthread_mutex_unlock(&n->mu);
	qsort(v, count, sizeof *v, cmp_lease);
	char *buf = strdup(""), line[256], a[NET_ADDRSTRLEN];
	size_t len = 0;
	for (size_t i = 0; buf && i < count; i++) {
		snprintf(line, sizeof line, "%s %s %s %s %s\n", net_ipv4_str(v[i].addr, a), v[i].mac,
			 v[i].tap, v[i].vm_name, v[i].iface);
		append(&buf, &len, line);
	}
	free(v);
	return buf;
}

char *net_vm_text(svm_net *n, const char *id)
{
	char *buf = strdup(""), line[320], a[NET_ADDRSTRLEN];
	size_t len = 0;
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; buf && i < n->nleases; i++) {
		const net_lease *l = &n->leases[i];
		if (strcmp(l->vm_id, id))
			continue;
		snprintf(line, sizeof line, "%s %s %s %s/%d gateway %s\n", l->iface, l->tap, l->mac,
			 net_ipv4_str(l->addr, a), n->sn.prefix, n->gateway);
		append(&buf, &len, line);
	}
	for (size_t i = 0; buf && i < n->nnotes; i++)
		if (!strcmp(n->notes[i].vm_id, id)) {
			snprintf(line, sizeof line, "bootarg %s\n", n->notes[i].text);
			append(&buf, &len, line);
		}
	pthread_mutex_unlock(&n->mu);
	return buf;
}
