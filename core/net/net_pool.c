/* net_pool.c - the mount's pool of clean TAPs (docs/networking.md).
 *
 * The kernel's delete of a TAP takes ~20 ms (RCU grace periods), ten times a
 * whole start on the emulator; a rename takes ~0.15 ms. So a TAP whose lease
 * ends (VM destroyed, start rolled back, untap) is not deleted but parked, by
 * the parker thread just after: attached and detached once (its flags those of
 * a fresh TAP, root's; one a process holds is deleted instead), renamed
 * out of any VM's name (sv-HHHHHH-NNNNN, a character no VM's TAP name has),
 * tagged "TAG pool", kept a port of the bridge, left up (a down waits for an
 * RCU grace period; without carrier the bridge port is disabled, its learned
 * addresses forgotten). The next lease takes it, if it is still named so and
 * no process holds it (carrier): renamed, tagged, up, in one request. The pool
 * holds at most as many TAPs as the mount ever had leased at
 * once, so it never holds more than the mount needed; unmount and purge delete
 * it with the leased ones, a crashed run's is collected by its tag. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_link.h"
#include "net_priv.h"

/* Room in the pool's array for one more (n->mu held). */
static bool pool_grow_locked(svm_net *n)
{
	if (n->npool < n->pool_cap)
		return true;
	size_t cap = n->pool_cap ? n->pool_cap * 2 : 8;
	net_pooled *v = realloc(n->pool, cap * sizeof *v);
	if (!v)
		return false;
	n->pool = v;
	n->pool_cap = cap;
	return true;
}

/* The name and alias of the next parked TAP (n->mu held). */
static void pool_name_locked(svm_net *n, char name[NET_IFNAMSIZ], char alias[64])
{
	snprintf(name, NET_IFNAMSIZ, "sv-%.6s-%05u", n->tag + 10, n->pool_serial++ % 100000);
	snprintf(alias, 64, "%s pool", n->tag);
}

bool net_pool_put(svm_net *n, struct nl_sock *sk, const char *tap)
{
	/* the lease (or the parking entry) is still counted: room while pool +
	 * leases + parking <= peak */
	if (!sk || n->npool + n->nleases + n->nparking > n->peak || !pool_grow_locked(n))
		return false;
	int idx = net_link_index(sk, tap);
	/* root's again while parked: the jailed uid it was given to may not attach */
	if (idx <= 0 || net_tap_reclaim(tap) != 0)
		return false;
	net_pooled p = {.ifindex = idx};
	char alias[64];
	pool_name_locked(n, p.name, alias);
	if (net_link_park(sk, idx, p.name, alias) < 0)
		return false;
	n->pool[n->npool++] = p;
	return true;
}

/* The parker: parks what lease_remove retired (root's already), one at a time,
 * the TAP work outside n->mu (a park's detach and rename each wait for an RCU
 * grace period, which a kill or a start need not wait behind); the one it
 * works on is "busy". */
static void *parker_main(void *arg)
{
	svm_net *n = arg;
	pthread_mutex_lock(&n->mu);
	while (!n->parker_stop) {
		if (!n->nparking) {
			pthread_cond_wait(&n->parking_cv, &n->mu);
			continue;
		}
		net_pooled p = {0};
		char tap[NET_IFNAMSIZ], alias[64];
		memcpy(tap, n->parking[--n->nparking], sizeof tap);
		n->parking_busy = true;
		/* counted as parking still: room while pool + leases + it <= peak */
		bool room = n->npool + n->nleases + n->nparking + 1 <= n->peak && pool_grow_locked(n);
		pool_name_locked(n, p.name, alias);
		pthread_mutex_unlock(&n->mu);

		struct nl_sock *sk = net_link_open(NULL);
		p.ifindex = sk ? net_link_index(sk, tap) : 0;
		/* fresh (a fresh TAP's features) and held by no process, or deleted */
		bool parked = room && p.ifindex > 0 && net_tap_reclaim(tap) == 0 &&
			      net_link_park(sk, p.ifindex, p.name, alias) == 0;
		svm_error e;
		if (!parked && sk && net_link_delete(sk, tap, &e) < 0)
			sink_log(n->sink, "net: %s", e.message);
		else if (!parked && !sk)
			sink_log(n->sink, "net: cannot park or remove TAP %s: no netlink socket", tap);

		pthread_mutex_lock(&n->mu);
		/* a put of its own (a TAP retire could not take) may have used the room */
		if (parked && pool_grow_locked(n))
			n->pool[n->npool++] = p;
		else if (parked)
			net_link_delete(sk, p.name, NULL);
		net_link_close(sk);
		n->parking_busy = false;
		pthread_cond_broadcast(&n->parking_cv); /* drains, remove_all */
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

bool net_pool_retire(svm_net *n, const char *tap)
{
	/* root's already: a jail gives its TAPs back at its VMM's end, and no other
	 * TAP of ours is ever another uid's; the parker makes it fresh (the detach
	 * waits for an RCU grace period: 0.1-0.3 ms that a kill need not wait) */
	if (n->parker_stop)
		return false; /* the caller decides */
	if (n->nparking == n->parking_cap) {
		size_t cap = n->parking_cap ? n->parking_cap * 2 : 8;
		char(*v)[NET_IFNAMSIZ] = realloc(n->parking, cap * sizeof *v);
		if (!v)
			return false;
		n->parking = v;
		n->parking_cap = cap;
	}
	if (!n->parker_started) {
		pthread_cond_init(&n->parking_cv, NULL);
		if (pthread_create(&n->parker, NULL, parker_main, n) != 0) {
			pthread_cond_destroy(&n->parking_cv);
			return false;
		}
		n->parker_started = true;
	}
	snprintf(n->parking[n->nparking++], NET_IFNAMSIZ, "%s", tap);
	pthread_cond_broadcast(&n->parking_cv);
	return true;
}

void net_pool_stop(svm_net *n)
{
	pthread_mutex_lock(&n->mu);
	bool started = n->parker_started;
	n->parker_stop = true;
	if (started)
		pthread_cond_broadcast(&n->parking_cv);
	pthread_mutex_unlock(&n->mu);
	if (started) {
		pthread_join(n->parker, NULL);
		pthread_cond_destroy(&n->parking_cv);
	}
}

void net_pool_drain(svm_net *n)
{
	while ((n->nparking && !n->parker_stop) || n->parking_busy)
		pthread_cond_wait(&n->parking_cv, &n->mu);
}

int net_pool_take(svm_net *n, struct nl_sock *sk, const char *name, const char *alias)
{
	while (n->npool) {
		net_pooled p = n->pool[--n->npool];
		/* by index and name (a TAP deleted or replaced by hand is not
		 * ours), and held by no process: made root's and fresh when it
		 * was parked (net_tap_reclaim), and only root may attach since */
		if (net_link_unpark(sk, p.ifindex, p.name, name, alias, n->bridge_index) == 0)
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
	while (n->parking_busy) /* the one being parked: in the pool after */
		pthread_cond_wait(&n->parking_cv, &n->mu);
	size_t count = n->nleases + n->npool + n->nparking;
	char (*names)[NET_IFNAMSIZ] = calloc(count ? count : 1, sizeof *names);
	int *rc = calloc(count ? count : 1, sizeof *rc);
	if (!names || !rc || !sk) {
		/* one by one then, as far as it goes */
		for (size_t i = 0; sk && i < n->nleases; i++)
			net_link_delete(sk, n->leases[i].tap, NULL);
		for (size_t i = 0; sk && i < n->npool; i++)
			net_link_delete(sk, n->pool[i].name, NULL);
		for (size_t i = 0; sk && i < n->nparking; i++)
			net_link_delete(sk, n->parking[i], NULL);
		if (!sk)
			sink_log(n->sink, "net: cannot remove the TAPs: no netlink socket");
	} else {
		for (size_t i = 0; i < n->nleases; i++)
			memcpy(names[i], n->leases[i].tap, NET_IFNAMSIZ);
		for (size_t i = 0; i < n->npool; i++)
			memcpy(names[n->nleases + i], n->pool[i].name, NET_IFNAMSIZ);
		for (size_t i = 0; i < n->nparking; i++)
			memcpy(names[n->nleases + n->npool + i], n->parking[i], NET_IFNAMSIZ);
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
	n->nleases = n->npool = n->nparking = 0;
	n->peak = 0;
}
