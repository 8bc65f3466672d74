/*
 * jail_acl.h - a user's file given to a jailed uid by an entry of its POSIX
 * ACL, for the VMM's life, and taken back (jail_acl.c).
 */
#ifndef SVM_JAIL_ACL_H
#define SVM_JAIL_ACL_H

#include <stdbool.h>

/* What a grant changed, for its revoke: whether the file had an ACL, and its
 * mask's perm then (-1: none). */
typedef struct jail_grant {
	unsigned uid;
	bool had_acl;
	int mask;
} jail_grant;

/* uid may read (and with write, write) the open file fd. 0, or -1 with errno
 * (EOPNOTSUPP: its filesystem keeps no ACLs). */
int jail_acl_grant(int fd, unsigned uid, bool write, jail_grant *g);
/* The grant taken back: uid's entry gone, the mask as it was, and no ACL at
 * all when the file had none (its mode's group bits as they were). */
int jail_acl_revoke(int fd, const jail_grant *g);

#endif
