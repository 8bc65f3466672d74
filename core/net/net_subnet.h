/*
 * net_subnet.h - the pure part of networking (no host access): IPv4 subnets,
 * interface names, TAP names, MACs, the guest's ip= boot argument. The seed's
 * NetworkManager rules, so they can be tested without privileges.
 */
#ifndef SVM_NET_SUBNET_H
#define SVM_NET_SUBNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smartvm.h"

#define NET_IFNAMSIZ 16 /* 15 characters and the NUL, as the kernel's IFNAMSIZ */
#define NET_ADDRSTRLEN 16
#define NET_MACSTRLEN 18

/* Addresses are host byte order throughout; only net_link.c converts. */
typedef struct net_cidr {
	uint32_t network;   /* the input normalised: 10.20.30.17/29 -> 10.20.30.16 */
	uint32_t broadcast;
	uint32_t mask;
	int prefix;         /* 1..30: room for a gateway and at least one guest */
} net_cidr;

/* "A.B.C.D/N". INVALID_SUBNET unless: four dot-separated decimal octets (digits
 * only: no signs, spaces, hex or empty octets) each 0..255, one '/', a decimal
 * prefix 1..30. A host address is normalised to its network. */
int net_subnet_parse(const char *text, net_cidr *out, svm_error *err);
/* Strict dotted decimal (the octet rules above). 0 or -1. */
int net_ipv4_parse(const char *text, uint32_t *out);
/* buf must hold NET_ADDRSTRLEN. Returns buf. */
char *net_ipv4_str(uint32_t addr, char *buf);

/* The first usable address is the gateway (the bridge's), guests start at the
 * second, the last guest is the one before the broadcast. */
static inline uint32_t net_gateway_addr(const net_cidr *sn) { return sn->network + 1; }
static inline uint32_t net_first_guest(const net_cidr *sn) { return sn->network + 2; }
static inline uint32_t net_last_guest(const net_cidr *sn) { return sn->broadcast - 1; }

/* The lowest guest address of sn not in used[0..nused) (used is sorted
 * ascending); IP_EXHAUSTED when none is left. Lowest-free, so the first
 * allocations are the seed's sequential .2, .3, .4 and released addresses
 * are reused. */
int net_alloc_addr(const net_cidr *sn, const uint32_t *used, size_t nused, uint32_t *out,
		   svm_error *err);

/* The seed's interface name rule: [A-Za-z0-9][A-Za-z0-9_.-]{0,14} (its ':' is
 * left out: the kernel refuses it in a name). INVALID_INTERFACE_NAME naming
 * field otherwise. */
bool net_ifname_valid(const char *name);
int net_check_ifname(const char *name, const char *field, svm_error *err);

/* The seed's generateTapName: "sv", then the letters and digits of the VM key,
 * then those of the interface id, cut to 15 characters. With the core's 8-char
 * VM ids: "sv" + id + up to 5 of the interface ("svk3x9a0b2eth0"). */
void net_tap_name(const char *vm_key, const char *iface_id, char out[NET_IFNAMSIZ]);
/* A variant of base for the n-th collision (n >= 1): the end replaced by n. */
void net_tap_name_variant(const char *base, unsigned n, char out[NET_IFNAMSIZ]);

/* The seed's generateMac: deterministic from (VM key, interface id), locally
 * administered unicast, "02:xx:xx:xx:xx:xx". */
void net_mac(const char *vm_key, const char *iface_id, char out[NET_MACSTRLEN]);

/* The seed's getGuestNetworkBootArgs: "ip=GUEST::GATEWAY:MASK::DEV:off", and
 * ":DNS" after it when dns is not NULL (the kernel's dns0 field). Returns the
 * length snprintf would write. */
int net_boot_arg(char *buf, size_t size, uint32_t guest, uint32_t gateway, uint32_t mask,
		 const char *dev, const char *dns);
/* Does the command line carry an ip= argument already (a word starting "ip=")? */
bool net_has_ip_arg(const char *cmdline);

/* FNV-1a, 32 bits: the mount's short identity in tags. */
uint32_t net_hash32(const char *s);

#endif
