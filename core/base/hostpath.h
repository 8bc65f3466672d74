/*
 * hostpath.h - opening a host path a user named, with that user's rights.
 *
 * The daemon usually runs as root; a VM belongs to a user. Every path the user
 * names (config.json, a verb's argument, a snapshot directory) is opened here,
 * as the VM's owner (per-thread fsuid/fsgid/groups), below one of the host roots
 * the front end allows (openat2 RESOLVE_BENEATH from the root's descriptor, so no
 * link or ".." leads out), and the open file is what the daemon and the VMM use
 * afterwards (/proc/PID/fd/N): no swap between check and use changes the file.
 */
#ifndef SVM_HOSTPATH_H
#define SVM_HOSTPATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "smartvm.h"

#define HOSTPATH_GROUPS_MAX 64

/* whose rights a path is opened with */
typedef struct hostpath_who {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[HOSTPATH_GROUPS_MAX];
} hostpath_who;

/* The rights of uid: its passwd entry's group and supplementary groups (a uid
 * without an entry: the overflow group and no others); the daemon's own uid:
 * its effective gid and no groups, as hostpath_as never takes them then. */
void hostpath_who_of(uid_t uid, hostpath_who *w);

/* The roots (NULL: any absolute path; an empty list: none) and the descriptors
 * they are opened through. NULL is also returned, with err set, when out of memory. */
typedef struct hostpath_roots hostpath_roots;
hostpath_roots *hostpath_roots_new(const char *const *roots, svm_error *err);
void hostpath_roots_free(hostpath_roots *r);
/* Whether path lies under a root as written (no resolution: the open decides the rest). */
bool hostpath_roots_cover(const hostpath_roots *r, const char *path);

/* Opens path as who (see above): flags as open(2), O_CLOEXEC added. what names the
 * path in the error ("drive rootfs", "snapshot directory"). Returns the fd, or -1
 * with err set (SVM_PERMISSION, SVM_NOT_FOUND, ...). */
int hostpath_open(const hostpath_roots *r, const hostpath_who *who, const char *what,
		  const char *path, int flags, mode_t mode, svm_error *err);

/* Runs fn(arg) with who's file-system rights on this thread; returns fn's result,
 * or -1 with errno EPERM when the daemon cannot take them (it is not root). */
int hostpath_as(const hostpath_who *who, int (*fn)(void *), void *arg);

/* Inside a directory already open (dirfd), one name, as who, never through a
 * link: openat (O_NOFOLLOW added), unlinkat, mkdirat. -1 with errno on failure. */
int hostpath_openat(const hostpath_who *who, int dirfd, const char *name, int flags, mode_t mode);
int hostpath_unlinkat(const hostpath_who *who, int dirfd, const char *name);
int hostpath_mkdirat(const hostpath_who *who, int dirfd, const char *name, mode_t mode);

/* "/proc/PID/fd/N": a name of the open file fd for another process of ours. */
void hostpath_fd_name(int fd, char *out, size_t len);

#endif
