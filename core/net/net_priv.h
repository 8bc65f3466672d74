/*
 * net_priv.h - the svm_net object, shared by net.c (leases, the VM side) and
 * net_host.c (bridge, NAT, ip_forward, leftovers of a crashed run).
 */
#ifndef SVM_NET_PRIV_H
#define SVM_NET_PRIV_H

#include <limits.h>
#include <pthread.h>

#include "base.h"
#include "net.h"
#include "net_subnet.h"

struct nl_sock;

/* One TAP and its address, held for one interface of one VM until the VM is
 * destroyed (kept across restarts, so a VM keeps its address and its TAP name,
 * which a snapshot restore needs). */
typedef struct net_lease {
	char vm_id[NET_VM_ID_MAX + 1];
	char vm_name[72];
	char iface[72];
	char tap[NET_IFNAMSIZ];
	char mac[NET_MACSTRLEN];
	uint32_t addr;
	bool manual;  /* made by /net/ctl "tap" */
	bool pending; /* made by the start in progress: its roll back removes it */
} net_lease;

/* A TAP in the pool (net_pool.c): parked, clean, for the next lease. */
typedef struct net_pooled {
	char name[NET_IFNAMSIZ];
	int ifindex;
} net_pooled;

/* What the last prepare gave a VM's boot arguments, for its net file. */
typedef struct net_note {
	char vm_id[NET_VM_ID_MAX + 1];
	char text[160];
} net_note;

struct svm_net {
	svm_sink *sink;
	char runtime_dir[PATH_MAX];
	pthread_mutex_t mu;  /* guards everything below */
	net_cidr sn;
	char bridge[NET_IFNAMSIZ];
	char subnet_text[40], gateway[NET_ADDRSTRLEN];
	char dns[NET_ADDRSTRLEN]; /* "" when none */
	/* the mount's identity in link aliases and rule comments:
	 * "smartvmfs:XXXXXXXX", a hash of the runtime dir and the bridge */
	char tag[24];
	char lock_path[PATH_MAX], state_path[PATH_MAX];
	int lock_fd;         /* flock'd while the mount lives; -1: another live mount
	                        holds this identity (nothing collected, no state file) */

	/* the host setup: done on first need, undone exactly at net_free */
	bool host_ready;
	int bridge_index;
	bool bridge_created; /* else it existed before: left in place */
	bool addr_added;     /* the gateway address was added by us */
	bool fw_nat, fw_forward;
	int ip_forward_orig; /* -1: not changed by us */

	net_lease *leases;
	size_t nleases, cap;
	net_note *notes;
	size_t nnotes;

	/* the pool of clean TAPs (net_pool.c) */
	net_pooled *pool;
	size_t npool, pool_cap;
	size_t peak;           /* the most leases held at once: the pool's bound */
	unsigned pool_serial;  /* names of parked TAPs */
	/* TAPs whose lease ended, on their way into the pool: the parker thread
	 * parks them (net_pool.c), as a park's rename costs an RCU grace period
	 * that a VM's kill and rmdir need not wait for */
	char (*parking)[NET_IFNAMSIZ];
	size_t nparking, parking_cap;
	pthread_cond_t parking_cv; /* the parker waits for work; a take for a park */
	pthread_t parker;
	bool parker_started, parker_stop;
	bool parking_busy;     /* the parker parks one, n->mu let go meanwhile */
};

/* net_pool.c (n->mu held by the caller) */
/* A TAP whose lease ends into the pool: true if parked there, false if the
 * caller is to delete it (no room, or the kernel refused). */
bool net_pool_put(svm_net *n, struct nl_sock *sk, const char *tap);
/* The same, parked by the parker thread after the caller's return (made
 * fresh there, or deleted if a process holds it); the TAP is root's already.
 * false: the caller does it now (net_pool_put). */
bool net_pool_retire(svm_net *n, const char *tap);
/* Waits until the parker parked what was retired (n->mu is let go meanwhile:
 * the caller holds no pointer into n's arrays). Before any lease is made: a
 * retired TAP still has its VM's name, which the new lease may want, and
 * once parked the new lease takes it instead of making one. */
void net_pool_drain(svm_net *n);
/* A pooled TAP made name (alias, bridge port, up): its ifindex, or 0 when the
 * pool has none to give (the caller creates one). */
int net_pool_take(svm_net *n, struct nl_sock *sk, const char *name, const char *alias);
/* Unmount, purge: every leased, parking and pooled TAP deleted, side by side;
 * the leases and the pool are then empty. */
void net_pool_remove_all(svm_net *n, struct nl_sock *sk, const char *why);
/* Ends the parker thread (n->mu not held); what it left is remove_all's. */
void net_pool_stop(svm_net *n);

/* net_host.c */
/* Takes the identity lock (lock_fd stays -1 if another live mount holds it). */
void net_host_lock(svm_net *n);
/* Removes what a crashed run left, but the TAPs of n->leases (re-adopted VMs),
 * whose bridge, address, rules and ip_forward it takes over instead. */
void net_host_collect(svm_net *n);
/* Bridge with the gateway address, up; ip_forward on; NAT and FORWARD rules.
 * Once; checks the bridge is still there on later calls. Undoes its partial
 * work on failure. Called with n->mu held. */
int net_host_ensure(svm_net *n, struct nl_sock *sk, svm_error *err);
/* Undoes net_host_ensure; releases the identity lock. n->mu held. */
void net_host_teardown(svm_net *n, struct nl_sock *sk);
void net_host_unlock(svm_net *n);

#endif
