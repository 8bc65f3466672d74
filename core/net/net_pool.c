/* net_pool.c - the mount's pool of clean TAPs (docs/networking.md).
 *
 * The kernel's delete of a TAP takes ~20 ms (RCU grace periods), ten times a
 * whole start on the emulator; a rename, a down and an up take ~0.3 ms. So a
 * TAP whose lease ends (VM destroyed, start rolled back, untap) is not deleted
 * but parked: down, renamed out of any VM's name (sv-HHHHHH-NNNNN, a character
 * no VM's TAP name has), tagged "TAG pool", kept a port of the bridge. The next
 * lease takes it: detached and attached once (its flags those of a fresh TAP;
 * a TAP a process still holds is never taken), renamed, tagged, up, in one
 * request. The pool holds at most as many TAPs as the mount ever had leased at
 * once, so it never holds more than the mount needed; unmount and purge delete
 * it with the leased ones, a crashed run's is collected by its tag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_link.h"
#include "net_priv.h"

bool net_pool_put(svm_net *n, struct nl_sock *sk, const char *tap)
{
	/* the lease is still counted in nleases: room while pool + leases <= peak */
	if (!sk || n->npool + n->nleases > n->peak)
		return false;
	if (n->npool == n->pool_cap) {
		size_t cap = n->pool_cap ? n->pool_cap * 2 : 8;
		net_pooled *v = realloc(n->pool, cap * sizeof *v);
		if (!v)
			return false;
		n->pool = v;
		n->pool_cap = cap;
	}
	int idx = net_link_index(sk, tap);
	/* root's again while parked: the jailed uid it was given to may not attach */
	if (idx <= 0 || net_tap_reclaim(tap) != 0)
		return false;
	net_pooled p = {.ifindex = idx};
	char alias[64];
	snprintf(p.name, sizeof p.name, "sv-%.6s-%05u", n->tag + 10, n->pool_serial++ % 100000);
	snprintf(alias, sizeof alias, "%s pool", n->tag);
	if (net_link_park(sk, idx, p.name, alias) < 0)
		return false;
	n->pool[n->npool++] = p;
	return true;
}

int net_pool_take(svm_net *n, struct nl_sock *sk, const char *name, const char *alias)
{
	while (n->npool) {
		net_pooled p = n->pool[--n->npool];
		/* by name and index: a TAP deleted or replaced by hand is not ours */
		if (net_link_index(sk, p.name) == p.ifindex && net_tap_reclaim(p.name) == 0 &&
		    net_link_unpark(sk, p.ifindex, name, alias, n->bridge_index) == 0)
			return p.ifindex;
		sink_log(n->sink, "net: pooled TAP %s could not be taken up again: removed", p.name);
		if (net_link_index(sk, p.name) == p.ifindex)
			net_link_delete(sk, p.name, NULL);
		else if (net_link_index(sk, name) == p.ifindex)
			net_link_delete(sk, name, NULL); /* renamed before the failure */
	}
	return 0;
}

void net_pool_remove_all(svm_net *n, struct nl_sock *sk, const char *why)
{
	size_t count = n->nleases + n->npool;
	char (*names)[NET_IFNAMSIZ] = calloc(count ? count : 1, sizeof *names);
	int *rc = calloc(count ? count : 1, sizeof *rc);
	if (!names || !rc || !sk) {
		/* one by one then, as far as it goes */
		for (size_t i = 0; sk && i < n->nleases; i++)
			net_link_delete(sk, n->leases[i].tap, NULL);
		for (size_t i = 0; sk && i < n->npool; i++)
			net_link_delete(sk, n->pool[i].name, NULL);
		if (!sk)
			sink_log(n->sink, "net: cannot remove the TAPs: no netlink socket");
	} else {
		for (size_t i = 0; i < n->nleases; i++)
			memcpy(names[i], n->leases[i].tap, NET_IFNAMSIZ);
		for (size_t i = 0; i < n->npool; i++)
			memcpy(names[n->nleases + i], n->pool[i].name, NET_IFNAMSIZ);
		net_links_delete((const char (*)[NET_IFNAMSIZ])names, count, rc);
		for (size_t i = 0; i < count; i++) {
			const net_lease *l = i < n->nleases ? &n->leases[i] : NULL;
			if (rc[i] < 0)
				sink_log(n->sink, "net: cannot delete link %s", names[i]);
			else if (l)
				sink_log(n->sink, "net: removed TAP %s of %s/%s (%s)", l->tap, l->vm_name,
					 l->iface, why);
			else
				sink_log(n->sink, "net: removed pooled TAP %s (%s)", names[i], why);
		}
	}
	free(names);
	free(rc);
	n->nleases = n->npool = 0;
	n->peak = 0;
}
