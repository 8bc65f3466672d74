/* net_link.c - the kernel side of networking: rtnetlink through libnl-route-3
 * (links, addresses, neighbours) and the tun driver's ioctls for TAPs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/neighbour.h>

#include "base.h"
#include "net.h"
#include "net_link.h"

#define PERMISSION_HINT "creating network links needs CAP_NET_ADMIN (run smartvmfs as root)"

static bool nl_denied(int rc) { return rc == -NLE_PERM || rc == -NLE_NOACCESS; }

struct nl_sock *net_link_open(svm_error *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (rc < 0) {
		nl_socket_free(sk);
		svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "cannot open a netlink socket: %s",
			      nl_geterror(rc));
		return NULL;
	}
	return sk;
}

void net_link_close(struct nl_sock *sk) { nl_socket_free(sk); }

int net_link_index(struct nl_sock *sk, const char *name)
{
	/* the kernel's SIOCGIFINDEX, in the netns of this thread (where sk was
	 * opened): 2.5 us, where an RTM_GETLINK parsed by libnl took 8 to 16 us,
	 * and a start asks for the bridge and its TAP's name */
	(void)sk;
	unsigned idx = if_nametoindex(name);
	if (idx > 0)
		return (int)idx;
	return errno == ENODEV || errno == ENXIO ? 0 : -1;
}

int net_link_kind(struct nl_sock *sk, const char *name, char *kind, size_t len)
{
	struct rtnl_link *l = NULL;
	kind[0] = '\0';
	if (rtnl_link_get_kernel(sk, 0, name, &l) < 0)
		return -1;
	const char *t = rtnl_link_get_type(l);
	snprintf(kind, len, "%s", t ? t : "");
	rtnl_link_put(l);
	return 0;
}

int net_bridge_create(struct nl_sock *sk, const char *name, svm_error *err)
{
	struct rtnl_link *l = rtnl_link_bridge_alloc();
	if (!l)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "bridge %s: out of memory", name);
	rtnl_link_set_name(l, name);
	int rc = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	if (nl_denied(rc))
		return svm_error_set(err, SVM_PERMISSION, "cannot create bridge %s: %s: %s", name,
				     nl_geterror(rc), PERMISSION_HINT);
	if (rc < 0)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "cannot create bridge %s: %s", name,
				     nl_geterror(rc));
	int idx = net_link_index(sk, name);
	if (idx <= 0)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "bridge %s vanished after creation",
				     name);
	return idx;
}

int net_tap_create(const char *name, svm_error *err)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return svm_error_set(err,
				     errno == EACCES || errno == EPERM ? SVM_PERMISSION
								       : SVM_TAP_CREATE_FAILED,
				     "cannot create TAP %s: /dev/net/tun: %s", name, strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	/* TUN_EXCL: an existing device of that name is an error, never shared */
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL); /* 0x9002: the top bit of a short */
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	int rc = ioctl(fd, TUNSETIFF, &ifr);
	int e = errno;
	/* a TAP with no owner lets any uid attach (/dev/net/tun is 0666): root's
	 * alone until a jailed VMM's uid is given it */
	if (rc == 0 && (ioctl(fd, TUNSETOWNER, 0UL) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)) {
		e = errno;
		rc = -1;
		ioctl(fd, TUNSETPERSIST, 0); /* closing then removes it */
	}
	close(fd); /* persistent: it outlives the fd, and Firecracker attaches alone */
	if (rc == 0)
		return 0;
	if (e == EBUSY || e == EEXIST)
		return svm_error_set(err, SVM_TAP_CREATE_FAILED,
				     "cannot create TAP %s: the name is in use by another interface", name);
	if (e == EPERM || e == EACCES)
		return svm_error_set(err, SVM_PERMISSION, "cannot create TAP %s: %s: %s", name,
				     strerror(e), PERMISSION_HINT);
	return svm_error_set(err, SVM_TAP_CREATE_FAILED, "cannot create TAP %s: %s", name,
			     strerror(e));
}

int net_link_setup(struct nl_sock *sk, int ifindex, const char *alias, int master,
		   svm_error *err)
{
	struct rtnl_link *orig = NULL, *chg = NULL;
	int rc = rtnl_link_get_kernel(sk, ifindex, NULL, &orig);
	if (rc >= 0 && !(chg = rtnl_link_alloc()))
		rc = -NLE_NOMEM;
	if (rc >= 0) {
		if (alias)
			rtnl_link_set_ifalias(chg, alias);
		if (master > 0)
			rtnl_link_set_master(chg, master);
		rtnl_link_set_flags(chg, IFF_UP);
		rc = rtnl_link_change(sk, orig, chg, 0);
	}
	char name[NET_IFNAMSIZ] = "?";
	if (orig)
		snprintf(name, sizeof name, "%s", rtnl_link_get_name(orig));
	rtnl_link_put(orig);
	rtnl_link_put(chg);
	if (rc >= 0)
		return 0;
	return svm_error_set(err, nl_denied(rc) ? SVM_PERMISSION : SVM_TAP_CREATE_FAILED,
			     "cannot set up link %s (%s): %s", name,
			     master > 0 ? "alias, bridge port, up" : "alias, up", nl_geterror(rc));
}

/* Attached without TUN_EXCL (the device exists) and, with owner >= 0, given to
 * that uid: a TAP with an owner lets that uid attach, besides CAP_NET_ADMIN; 0
 * is root's, as good as none. */
static int tap_attach(const char *name, long owner)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	/* no TUN_EXCL: the device exists; EBUSY if a process still holds its queue */
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	int rc = ioctl(fd, TUNSETIFF, &ifr);
	if (rc == 0 && owner >= 0)
		rc = ioctl(fd, TUNSETOWNER, (unsigned long)owner);
	int e = errno;
	close(fd); /* persistent: detaching leaves it, with the flags just set */
	errno = e;
	return rc < 0 ? -1 : 0;
}

int net_tap_give(const char *name, unsigned uid, svm_error *err)
{
	/* TUNSETIFF makes a TAP of a name no device has: only one that exists */
	if (if_nametoindex(name) == 0)
		return err ? svm_error_set(err, SVM_TAP_CREATE_FAILED, "TAP %s: no such interface", name)
			   : -1;
	if (tap_attach(name, uid) == 0)
		return 0;
	return err ? svm_error_set(err, errno == EPERM ? SVM_PERMISSION : SVM_TAP_CREATE_FAILED,
				   "cannot give TAP %s to uid %u: %s", name, uid, strerror(errno))
		   : -1;
}

int net_tap_reclaim(const char *name)
{
	return tap_attach(name, 0); /* and no jailed uid's any more */
}

/* IFF_LOWER_UP of <linux/if.h>, which cannot be included beside <net/if.h> */
#define LINK_CARRIER 0x10000

/* One RTM_NEWLINK on ifindex: name, alias, master (> 0), and up when asked
 * (never down: see net_link_park). With expect, the link must still be named
 * so and have no carrier (a TAP has carrier while a process holds its queue,
 * and the flag shows while it is up): else -1. */
static int link_change(struct nl_sock *sk, int ifindex, const char *expect, const char *name,
		       const char *alias, int master, bool up)
{
	struct rtnl_link *orig = NULL, *chg = NULL;
	int rc = rtnl_link_get_kernel(sk, ifindex, NULL, &orig);
	if (rc >= 0 && expect) {
		if (strcmp(rtnl_link_get_name(orig), expect))
			rc = -NLE_OBJ_NOTFOUND;
		else if (rtnl_link_get_flags(orig) & LINK_CARRIER)
			rc = -NLE_BUSY;
	}
	if (rc >= 0 && !(chg = rtnl_link_alloc()))
		rc = -NLE_NOMEM;
	if (rc >= 0) {
		if (name && strcmp(name, rtnl_link_get_name(orig)))
			rtnl_link_set_name(chg, name);
		rtnl_link_set_ifalias(chg, alias);
		if (master > 0)
			rtnl_link_set_master(chg, master);
		if (up)
			rtnl_link_set_flags(chg, IFF_UP);
		rc = rtnl_link_change(sk, orig, chg, 0);
	}
	rtnl_link_put(orig);
	rtnl_link_put(chg);
	return rc < 0 ? -1 : 0;
}

int net_link_park(struct nl_sock *sk, int ifindex, const char *name, const char *alias)
{
	return link_change(sk, ifindex, NULL, name, alias, 0, false);
}

int net_link_unpark(struct nl_sock *sk, int ifindex, const char *pooled, const char *name,
		    const char *alias, int master)
{
	return link_change(sk, ifindex, pooled, name, alias, master, true);
}

int net_link_delete(struct nl_sock *sk, const char *name, svm_error *err)
{
	struct rtnl_link *l = rtnl_link_alloc();
	if (!l)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	rtnl_link_set_name(l, name);
	int rc = rtnl_link_delete(sk, l);
	rtnl_link_put(l);
	if (rc >= 0 || rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV)
		return 0;
	return svm_error_set(err, nl_denied(rc) ? SVM_PERMISSION : SVM_TAP_CREATE_FAILED,
			     "cannot delete link %s: %s", name, nl_geterror(rc));
}

static struct nl_addr *v4(uint32_t addr, int prefix)
{
	uint32_t be = htonl(addr);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, sizeof be);
	if (a && prefix >= 0)
		nl_addr_set_prefixlen(a, prefix);
	return a;
}

static struct rtnl_addr *addr_obj(int ifindex, uint32_t addr, int prefix)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = v4(addr, prefix);
	if (!a || !local) {
		rtnl_addr_put(a);
		nl_addr_put(local);
		return NULL;
	}
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	rtnl_addr_set_local(a, local);
	rtnl_addr_set_prefixlen(a, prefix);
	nl_addr_put(local);
	return a;
}

int net_addr_add(struct nl_sock *sk, int ifindex, uint32_t addr, int prefix, uint32_t broadcast,
		 bool *added, svm_error *err)
{
	char text[NET_ADDRSTRLEN];
	*added = false;
	struct rtnl_addr *a = addr_obj(ifindex, addr, prefix);
	struct nl_addr *bc = v4(broadcast, -1);
	int rc = a && bc ? 0 : -NLE_NOMEM;
	if (rc == 0) {
		rtnl_addr_set_broadcast(a, bc);
		rc = rtnl_addr_add(sk, a, NLM_F_EXCL);
	}
	rtnl_addr_put(a);
	nl_addr_put(bc);
	if (rc == -NLE_EXIST)
		return 0;
	if (rc < 0)
		return svm_error_set(err, nl_denied(rc) ? SVM_PERMISSION : SVM_BRIDGE_SETUP_FAILED,
				     "cannot add address %s/%d: %s", net_ipv4_str(addr, text), prefix,
				     nl_geterror(rc));
	*added = true;
	return 0;
}

int net_addr_del(struct nl_sock *sk, int ifindex, uint32_t addr, int prefix)
{
	struct rtnl_addr *a = addr_obj(ifindex, addr, prefix);
	int rc = a ? rtnl_addr_delete(sk, a, 0) : -NLE_NOMEM;
	rtnl_addr_put(a);
	return rc < 0 ? -1 : 0;
}

void net_neigh_flush(struct nl_sock *sk, int ifindex, uint32_t addr)
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *dst = v4(addr, -1);
	if (n && dst) {
		rtnl_neigh_set_ifindex(n, ifindex);
		rtnl_neigh_set_family(n, AF_INET);
		rtnl_neigh_set_dst(n, dst);
		rtnl_neigh_delete(sk, n, 0); /* no entry is the common case: not an error */
	}
	nl_addr_put(dst);
	rtnl_neigh_put(n);
}

int net_links_tagged(struct nl_sock *sk, const char *prefix, net_link_info **out)
{
	struct nl_cache *cache = NULL;
	*out = NULL;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
		return -1;
	size_t n = 0, cap = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *alias = rtnl_link_get_ifalias(l);
		if (!alias || strncmp(alias, prefix, strlen(prefix)))
			continue;
		if (svm_grow(out, &cap, n + 1, sizeof **out) < 0)
			break;
		net_link_info *li = &(*out)[n++];
		memset(li, 0, sizeof *li);
		snprintf(li->name, sizeof li->name, "%s", rtnl_link_get_name(l));
		snprintf(li->alias, sizeof li->alias, "%s", alias);
		li->ifindex = rtnl_link_get_ifindex(l);
		li->master = rtnl_link_get_master(l);
		li->carrier = rtnl_link_get_carrier(l) != 0;
		li->bridge = rtnl_link_is_bridge(l) != 0;
	}
	nl_cache_free(cache);
	return (int)n;
}

int net_link_ports(struct nl_sock *sk, int ifindex)
{
	struct nl_cache *cache = NULL;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
		return -1;
	int n = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o))
		if (rtnl_link_get_master((struct rtnl_link *)o) == ifindex)
			n++;
	nl_cache_free(cache);
	return n;
}

struct delete_share {
	const char (*names)[NET_IFNAMSIZ];
	int *rc;
	size_t count, next;
	pthread_mutex_t mu;
};

static void *delete_worker(void *arg)
{
	struct delete_share *d = arg;
	struct nl_sock *sk = net_link_open(NULL);
	for (;;) {
		pthread_mutex_lock(&d->mu);
		size_t i = d->next < d->count ? d->next++ : d->count;
		pthread_mutex_unlock(&d->mu);
		if (i == d->count)
			break;
		d->rc[i] = sk ? net_link_delete(sk, d->names[i], NULL) : -1;
	}
	net_link_close(sk);
	return NULL;
}

void net_links_delete(const char (*names)[NET_IFNAMSIZ], size_t count, int *rc)
{
	/* a link's delete waits for RCU grace periods outside the RTNL lock, so
	 * deletes from several sockets at once overlap those waits */
	enum { WORKERS = 8 };
	struct delete_share d = {.names = names, .rc = rc, .count = count};
	pthread_mutex_init(&d.mu, NULL);
	pthread_t th[WORKERS];
	size_t started = 0;
	while (started < WORKERS && started < count &&
	       pthread_create(&th[started], NULL, delete_worker, &d) == 0)
		started++;
	if (started == 0)
		delete_worker(&d);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&d.mu);
}
