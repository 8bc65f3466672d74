/*
 * net.h - host networking for VMs (internal to core): subnet and address
 * leases, TAP devices, the bridge, NAT. The seed's NetworkManager, in C.
 *
 * The orchestrator owns one svm_net. Nothing is created on the host until a VM
 * needs it (net_prepare_vm), so a mount whose VMs have no network interfaces
 * never needs the privileges networking needs.
 */
#ifndef SVM_NET_H
#define SVM_NET_H

#include <jansson.h>
#include "smartvm.h"
#include "svmlog.h"

typedef struct svm_net svm_net;

#define NET_VM_ID_MAX 8 /* the longest VM id a lease keeps (the core's SVM_ID_LEN) */

/* What the orchestrator's options say (copied). */
typedef struct net_settings {
	const char *runtime_dir; /* the lock and state files of this mount's identity */
	const char *bridge, *subnet;
	const char *dns;         /* NULL: none */
} net_settings;

/* Validates the settings (subnet, bridge name) — INVALID_SUBNET,
 * INVALID_INTERFACE_NAME — and takes the identity lock (net_owns_identity).
 * Creates nothing yet; net_collect then collects what an earlier crashed run
 * of this mount left behind. */
svm_net *net_new(const net_settings *s, svm_sink *sink, svm_error *err);
/* Does this mount hold its identity's lock? false: another live mount with the
 * same runtime dir and bridge holds it (nothing of that run is ours to collect
 * or adopt). */
bool net_owns_identity(svm_net *n);
/* After re-adoption (docs/restart.md): removes the TAPs, rules and bridge a
 * crashed run left, except what the re-adopted VMs' leases still need: then the
 * crashed run's bridge, address, rules and ip_forward become this mount's, to
 * be undone at its unmount. Does nothing without the identity lock. */
void net_collect(svm_net *n);
/* The VM's leases as a JSON array [{iface, tap, mac, address, manual}] (for its
 * state file), and the boot-argument note. */
json_t *net_vm_leases_json(svm_net *n, const char *vm_id);
/* Re-adoption: takes over leases a VM's state file lists (a TAP of the crashed
 * run that still exists is kept by net_collect). */
void net_adopt_leases(svm_net *n, const char *vm_id, const char *vm_name, const json_t *leases);
/* Removes every TAP, the bridge (if this mount created it), the NAT/forward rules,
 * and puts ip_forward back as it was. */
void net_free(svm_net *n);
/* The same, and n stays: the next start sets the host up again (svm_purge). */
void net_reset(svm_net *n);

/* Before a VM's VMM is spawned: for each entry of cfg's networkInterfaces,
 * gives it a TAP (hostDevName) unless it names one, a MAC unless it has one, and
 * an address lease; adds the ip= boot argument to cfg's bootSource.bootArgs
 * unless it carries one. cfg is the start's private copy and is modified in
 * place. Leases and TAPs are kept with the VM across restarts. */
int net_prepare_vm(svm_net *n, const char *vm_id, const char *vm_name, json_t *cfg,
		   svm_error *err);
/* A start failed: remove what net_prepare_vm created for this start. */
void net_rollback_vm(svm_net *n, const char *vm_id);
/* The VM is destroyed: remove its TAPs and release its leases for reuse. */
void net_release_vm(svm_net *n, const char *vm_id);

/* A jailed VMM attaches to its TAPs as its own uid: TAP name given to uid
 * (0: root's again, as made). Only a TAP that exists; err may be NULL. */
int net_tap_give(const char *name, unsigned uid, svm_error *err);

/* Text for the files: per VM (its interfaces and the boot argument it got),
 * and for /net: bridge, subnet, gateway, leases (one line per address in use). */
char *net_vm_text(svm_net *n, const char *vm_id);
char *net_leases_text(svm_net *n);
const char *net_bridge(svm_net *n);
const char *net_subnet(svm_net *n);
const char *net_gateway(svm_net *n);
/* This mount's tag, "smartvmfs:XXXXXXXX": the start of its TAPs' and bridge's
 * interface alias and the comment of its firewall rules. */
const char *net_tag(svm_net *n);
/* /net/ctl's "tap VM IFACE" (manual mode: a TAP and its lease ahead of time; one
 * there already is checked) and "untap VM IFACE" (they go again: the caller makes
 * sure the VM's VMM cannot be using them). VMs are named by id, and by name for
 * the lease's text. */
int net_tap(svm_net *n, const char *vm_id, const char *vm_name, const char *iface,
	    svm_error *err);
int net_untap(svm_net *n, const char *vm_id, const char *vm_name, const char *iface,
	      svm_error *err);

#endif
