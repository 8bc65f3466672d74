/*
 * net_link.h - links, addresses, neighbours through libnl-route-3 (netlink),
 * and TAP creation through /dev/net/tun. Never `ip`.
 *
 * Every call takes an open rtnetlink socket (net_link_open); callers serialise
 * use of one socket. Addresses are host byte order.
 */
#ifndef SVM_NET_LINK_H
#define SVM_NET_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "net_subnet.h"

struct nl_sock;

struct nl_sock *net_link_open(svm_error *err);
void net_link_close(struct nl_sock *sk);

/* ifindex of name; 0 if there is no such link; -1 on another error. */
int net_link_index(struct nl_sock *sk, const char *name);
/* The link's kind ("bridge", "tun", "veth"; "" for a plain device); -1 if none. */
int net_link_kind(struct nl_sock *sk, const char *name, char *kind, size_t len);

/* A new bridge (fails if the name exists). PERMISSION when not allowed,
 * BRIDGE_SETUP_FAILED otherwise. Returns its ifindex. */
int net_bridge_create(struct nl_sock *sk, const char *name, svm_error *err);

/* A persistent TAP: IFF_TAP|IFF_NO_PI|IFF_TUN_EXCL, TUNSETPERSIST, fd closed
 * (a held queue makes Firecracker's attach fail with EBUSY). TAP_CREATE_FAILED
 * when the name is in use, PERMISSION when not allowed. */
int net_tap_create(const char *name, svm_error *err);

/* One RTM_NEWLINK on an existing link: the alias (when not NULL), the master
 * (when > 0), and IFF_UP. */
int net_link_setup(struct nl_sock *sk, int ifindex, const char *alias, int master,
		   svm_error *err);

/* Deletes a link by name; 0 also when it is already gone. */
int net_link_delete(struct nl_sock *sk, const char *name, svm_error *err);
/* Deletes count links at once, from several threads: rc[i] is 0 when names[i]
 * is gone. The kernel's delete of a link is slow (~20 ms of RCU waits), and
 * the waits of deletes made side by side overlap. */
void net_links_delete(const char (*names)[NET_IFNAMSIZ], size_t count, int *rc);

/* A TAP a VMM has left, before it is parked: attached and detached once
 * (IFF_TAP|IFF_NO_PI, so the features a VMM set are reset to a fresh TAP's),
 * root's again (a jailed uid it was given to may no longer attach); -1 (EBUSY)
 * if a process still holds its queue, so it is never shared. */
int net_tap_reclaim(const char *name);
/* A TAP into the pool: renamed, the alias given (one RTM_NEWLINK). Left up: a
 * down waits for an RCU grace period, and a TAP no process holds has no
 * carrier, so the bridge keeps its port disabled and has forgotten the
 * addresses it learned there (as at a down). */
int net_link_park(struct nl_sock *sk, int ifindex, const char *name, const char *alias);
/* Out of the pool: the link at ifindex, still named pooled and held by no
 * process (no carrier), renamed, the alias, the master (> 0), up (one
 * RTM_GETLINK, one RTM_NEWLINK); -1 otherwise. */
int net_link_unpark(struct nl_sock *sk, int ifindex, const char *pooled, const char *name,
		    const char *alias, int master);

/* addr/prefix on ifindex. *added says whether it was added (false: it was
 * there already, so it is not ours to remove). */
int net_addr_add(struct nl_sock *sk, int ifindex, uint32_t addr, int prefix, uint32_t broadcast,
		 bool *added, svm_error *err);
int net_addr_del(struct nl_sock *sk, int ifindex, uint32_t addr, int prefix);

/* Removes the neighbour (ARP) entry for addr on ifindex, if any: a reused
 * address must not be answered from the old guest's MAC. */
void net_neigh_flush(struct nl_sock *sk, int ifindex, uint32_t addr);

/* The links whose alias starts with prefix. */
typedef struct net_link_info {
	char name[NET_IFNAMSIZ];
	char alias[256];
	int ifindex, master;
	bool carrier;   /* a TAP with carrier has a process attached */
	bool bridge;
} net_link_info;
/* *out is malloc'd (free it); returns the count, -1 on error. */
int net_links_tagged(struct nl_sock *sk, const char *prefix, net_link_info **out);
/* How many links have ifindex as their master. */
int net_link_ports(struct nl_sock *sk, int ifindex);

#endif
