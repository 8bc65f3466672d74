/*
 * net_fw.h - the firewall side of networking: iptables rules (NAT masquerade,
 * FORWARD accepts) and net.ipv4.ip_forward.
 *
 * iptables is started from an argv (svm_run, svmspawn.h), never a shell. Debian 12's
 * iptables is the nf_tables frontend (iptables-nft), so the rules land in the
 * same tables Docker and firewalld use. Every rule carries a comment with the
 * mount's tag, so the rules of a crashed run are found by tag.
 */
#ifndef SVM_NET_FW_H
#define SVM_NET_FW_H

#include <stdbool.h>

#include "smartvm.h"

/* A rule: table, chain, whether it goes first in the chain (-I) or last (-A),
 * and its match/target words (NULL-terminated, without the comment). */
typedef struct net_rule {
	const char *table, *chain;
	bool insert;
	const char *spec[16];
} net_rule;

/* The iptables binary ("/usr/sbin/iptables"), or NULL when not installed. */
const char *net_fw_binary(void);

/* Runs iptables -w ARGS; the exit status (0..255), -1 when it could not be run
 * (err says why: BRIDGE_SETUP_FAILED, "iptables is not installed" included).
 * *out (if not NULL) gets stdout and stderr (malloc'd). */
int net_fw_run(const char *const args[], char **out, svm_error *err);

/* -C first, then -I/-A: never a duplicate. */
int net_fw_ensure(const net_rule *r, const char *tag, svm_error *err);
/* -D until -C says it is gone (earlier duplicates included). */
void net_fw_remove(const net_rule *r, const char *tag);
/* Does `iptables -S FORWARD` say the policy is DROP (or REJECT-like)? */
int net_fw_forward_drops(bool *drops, svm_error *err);
/* Deletes every rule in table whose comment is tag; calls found(ud, rule text)
 * for each one removed. Returns the count, -1 if iptables could not list. */
int net_fw_collect(const char *table, const char *tag,
		   void (*found)(void *ud, const char *rule), void *ud);

/* net.ipv4.ip_forward: 0/1, or -1 with errno. */
int net_ip_forward_get(void);
int net_ip_forward_set(int value);

#endif
