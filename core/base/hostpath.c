/*
 * hostpath.c - opening a host path a user named, with that user's rights (see
 * hostpath.h).
 *
 * Why per-thread credentials: the daemon is one process serving many users;
 * setfsuid/setfsgid/setgroups as raw system calls change the calling thread only
 * (glibc's wrappers of setgroups would change every thread), and the kernel then
 * checks every step of the path walk, and the open itself, as that user - links
 * included. Changing the fsuid away from 0 also drops CAP_DAC_OVERRIDE and its
 * kin for the thread, and they come back with the fsuid.
 *
 * Why openat2: a root is a directory the administrator allows (-o paths); the
 * walk starts at its descriptor and RESOLVE_BENEATH refuses any ".." or link that
 * leaves it, at open time, so nothing planted between a check and the open
 * matters. RESOLVE_NO_MAGICLINKS always: /proc/self/fd/N, walked by a thread of
 * the daemon, is the daemon's own files.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "hostpath.h"

#define OVERFLOW_GID 65534

void hostpath_who_of(uid_t uid, hostpath_who *w)
{
	memset(w, 0, sizeof *w);
	w->uid = uid;
	if (uid == svm_euid()) {
		/* the daemon's own rights, which hostpath_as never changes: no look
		 * into the user database (5 us, three or four times a restore); its
		 * group is the one its own files get */
		w->gid = getegid();
		return;
	}
	w->gid = OVERFLOW_GID;
	char buf[4096];
	struct passwd pw, *res = NULL;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res)
		return;
	w->gid = pw.pw_gid;
	/* the groups count only where hostpath_as takes the uid's rights: a root
	 * daemon acting for another uid (a user's daemon acts as itself only) */
	if (svm_euid() != 0)
		return;
	int n = HOSTPATH_GROUPS_MAX;
	if (getgrouplist(pw.pw_name, pw.pw_gid, w->groups, &n) < 0)
		n = HOSTPATH_GROUPS_MAX; /* more than we keep: the first ones */
	w->ngroups = n;
}

/* ------------------------------------------------------------ roots */

struct hostpath_roots {
	size_t n;
	char **path;   /* as given, without trailing '/' */
	int *fd;       /* O_PATH|O_DIRECTORY */
};

hostpath_roots *hostpath_roots_new(const char *const *roots, svm_error *err)
{
	if (!roots)
		return NULL; /* no rule: any absolute path */
	hostpath_roots *r = calloc(1, sizeof *r);
	size_t n = 0;
	while (roots && roots[n])
		n++;
	if (!r || !(r->path = calloc(n + 1, sizeof *r->path)) || !(r->fd = calloc(n + 1, sizeof *r->fd))) {
		hostpath_roots_free(r);
		svm_error_set(err, SVM_NO_SPACE, "host roots: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *p = roots[i];
		size_t len = strlen(p);
		while (len > 1 && p[len - 1] == '/')
			len--;
		int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (p[0] != '/' || fd < 0) {
			/* a root that is not there is no root: nothing lies under it */
			if (fd >= 0)
				close(fd);
			continue;
		}
		r->path[r->n] = strndup(p, len);
		r->fd[r->n++] = fd;
	}
	return r; /* none at all: no host path is allowed */
}

void hostpath_roots_free(hostpath_roots *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->path[i]);
		close(r->fd[i]);
	}
	free(r->path);
	free(r->fd);
	free(r);
}

/* The root path lies under, and the rest of path after it ("." if none). */
static int root_of(const hostpath_roots *r, const char *path, const char **rest)
{
	for (size_t i = 0; r && i < r->n; i++) {
		size_t len = strlen(r->path[i]);
		if (!strcmp(r->path[i], "/")) {
			len = 0;
		} else if (strncmp(path, r->path[i], len) != 0 || (path[len] != '/' && path[len] != '\0')) {
			continue;
		}
		const char *p = path + len;
		while (*p == '/')
			p++;
		*rest = *p ? p : ".";
		return (int)i;
	}
	return -1;
}

/* A ".." component: where it leads is decided by the walk, not by the text. */
static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

bool hostpath_roots_cover(const hostpath_roots *r, const char *path)
{
	const char *rest;
	if (!path || path[0] != '/')
		return false;
	if (r && has_dotdot(path))
		return false;
	return !r || root_of(r, path, &rest) >= 0;
}

/* ------------------------------------------------------------ rights */

struct saved {
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t *groups;
};

static void restore(struct saved *sv)
{
	syscall(SYS_setfsuid, sv->fsuid);
	syscall(SYS_setfsgid, sv->fsgid);
	if (sv->ngroups >= 0)
		syscall(SYS_setgroups, sv->ngroups, sv->groups);
	free(sv->groups);
}

static int become(const hostpath_who *who, struct saved *sv)
{
	sv->groups = NULL;
	sv->ngroups = -1;
	sv->fsuid = (uid_t)syscall(SYS_setfsuid, -1);
	sv->fsgid = (gid_t)syscall(SYS_setfsgid, -1);
	int n = (int)syscall(SYS_getgroups, 0, NULL);
	if (n < 0 || !(sv->groups = calloc((size_t)n + 1, sizeof(gid_t))) ||
	    (sv->ngroups = (int)syscall(SYS_getgroups, n, sv->groups)) < 0) {
		free(sv->groups);
		errno = ENOMEM;
		return -1;
	}
	if (syscall(SYS_setgroups, who->ngroups, who->groups) < 0) {
		free(sv->groups);
		errno = EPERM;
		return -1;
	}
	syscall(SYS_setfsgid, who->gid);
	syscall(SYS_setfsuid, who->uid);
	/* setfsuid says nothing of failure: ask again */
	if ((uid_t)syscall(SYS_setfsuid, -1) != who->uid || (gid_t)syscall(SYS_setfsgid, -1) != who->gid) {
		restore(sv);
		errno = EPERM;
		return -1;
	}
	return 0;
}

int hostpath_as(const hostpath_who *who, int (*fn)(void *), void *arg)
{
	if (who->uid == svm_euid() && who->uid == 0)
		return fn(arg); /* root's own paths: nothing to take */
	if (svm_euid() != 0) {
		if (who->uid != svm_euid()) {
			errno = EPERM; /* a user's daemon cannot act as another user */
			return -1;
		}
		return fn(arg);
	}
	struct saved sv;
	if (become(who, &sv) < 0)
		return -1;
	int rc = fn(arg);
	int e = errno;
	restore(&sv);
	errno = e;
	return rc;
}

/* ------------------------------------------------------------ opening */

struct open_args {
	int dirfd;
	const char *rest;
	struct open_how how;
};

static int do_open(void *p)
{
	struct open_args *a = p;
	long fd;
	do
		fd = syscall(SYS_openat2, a->dirfd, a->rest, &a->how, sizeof a->how);
	while (fd < 0 && errno == EINTR);
	return (int)fd;
}

static svm_code code_of(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return SVM_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EXDEV:
	case ELOOP:
		return SVM_PERMISSION;
	case ENOSPC:
	case EDQUOT:
	case EMFILE: /* shortages, as everywhere (ENOSPC) */
	case ENFILE:
	case ENOMEM:
		return SVM_NO_SPACE;
	case ENAMETOOLONG:
		return SVM_NAME_TOO_LONG;
	case EEXIST:
		return SVM_EXISTS;
	default:
		return SVM_INVALID_CONFIG;
	}
}

/* Files of the kernel's own (the daemon's memory, its descriptors, its
 * settings) are never a user's drive or kernel, whatever their mode says. */
static bool kernel_owned(int fd)
{
	struct statfs fs;
	if (fstatfs(fd, &fs) < 0)
		return true;
	switch ((unsigned long)fs.f_type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case BPF_FS_MAGIC:
		return true;
	default:
		return false;
	}
}

int hostpath_open(const hostpath_roots *r, const hostpath_who *who, const char *what,
		  const char *path, int flags, mode_t mode, svm_error *err)
{
	if (!path || path[0] != '/')
		return svm_error_set(err, SVM_INVALID_CONFIG, "%s %s: not an absolute path", what,
				     path ? path : "(none)");
	struct open_args a = {.dirfd = AT_FDCWD, .rest = path};
	if (r) {
		int i = root_of(r, path, &a.rest);
		if (i < 0)
			return svm_error_set(err, SVM_PERMISSION, "%s %s: not under -o paths", what, path);
		a.dirfd = r->fd[i];
		a.how.resolve = RESOLVE_BENEATH;
	}
	a.how.resolve |= RESOLVE_NO_MAGICLINKS;
	/* O_NONBLOCK: a FIFO named as a file must not hold this thread */
	a.how.flags = (unsigned long long)(flags | O_CLOEXEC);
	if (!(flags & O_PATH)) /* openat2 takes no other flag with O_PATH */
		a.how.flags |= O_NOCTTY | O_NONBLOCK;
	a.how.mode = (flags & O_CREAT) ? mode : 0;
	int fd = hostpath_as(who, do_open, &a);
	if (fd < 0) {
		int e = errno;
		const char *why = e == EXDEV ? "leads out of -o paths (a link or ..)"
				  : e == ELOOP ? "is or passes a link it may not follow"
				  : strerror(e);
		if (e == EPERM && svm_euid() != 0 && who->uid != svm_euid())
			why = "the daemon is not root, so it cannot open it with its owner's rights";
		return svm_error_set(err, code_of(e), "%s %s: %s", what, path, why);
	}
	if (kernel_owned(fd)) {
		close(fd);
		return svm_error_set(err, SVM_PERMISSION, "%s %s: a file of the kernel's (proc, sysfs): "
				     "refused", what, path);
	}
	if (!(flags & (O_NONBLOCK | O_PATH))) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			int e = errno;
			close(fd);
			return svm_error_set(err, code_of(e), "%s %s: %s", what, path, strerror(e));
		}
	}
	return fd;
}

void hostpath_fd_name(int fd, char *out, size_t len)
{
	snprintf(out, len, "/proc/%d/fd/%d", (int)getpid(), fd);
}

/* ------------------------------------------------------------ one name in a directory */

struct at_args {
	int op; /* 0 open, 1 unlink, 2 mkdir */
	int dirfd;
	const char *name;
	struct open_how how;
	mode_t mode;
};

static int do_at(void *p)
{
	struct at_args *a = p;
	if (a->op == 1)
		return unlinkat(a->dirfd, a->name, 0);
	if (a->op == 2)
		return mkdirat(a->dirfd, a->name, a->mode);
	long fd;
	do
		fd = syscall(SYS_openat2, a->dirfd, a->name, &a->how, sizeof a->how);
	while (fd < 0 && errno == EINTR);
	return (int)fd;
}

static int run_at(const hostpath_who *who, struct at_args *a)
{
	if (!a->name[0] || strchr(a->name, '/') || !strcmp(a->name, ".") || !strcmp(a->name, "..")) {
		errno = EINVAL;
		return -1;
	}
	return hostpath_as(who, do_at, a);
}

int hostpath_openat(const hostpath_who *who, int dirfd, const char *name, int flags, mode_t mode)
{
	struct at_args a = {.op = 0, .dirfd = dirfd, .name = name};
	a.how.flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC);
	if (!(flags & O_PATH))
		a.how.flags |= O_NOCTTY;
	a.how.mode = (flags & O_CREAT) ? mode : 0;
	a.how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	return run_at(who, &a);
}

int hostpath_unlinkat(const hostpath_who *who, int dirfd, const char *name)
{
	struct at_args a = {.op = 1, .dirfd = dirfd, .name = name};
	return run_at(who, &a);
}

int hostpath_mkdirat(const hostpath_who *who, int dirfd, const char *name, mode_t mode)
{
	struct at_args a = {.op = 2, .dirfd = dirfd, .name = name, .mode = mode};
	return run_at(who, &a);
}
