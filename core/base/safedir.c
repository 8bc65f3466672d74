/*
 * safedir.c - creating the daemon's own directories safely.
 *
 * The data dir defaults to a path under /tmp and the runtime dir to one under
 * /dev/shm: world-writable places where another user could plant a symlink or a
 * directory of their own first. So every directory on the way that we did not
 * find in a trusted state is refused with a clear error, and the directory itself
 * must be a real directory, ours, and 0700.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "safedir.h"

/* A component on the way: a directory owned by us or root, and,
 * if others may write to it, with the sticky bit (like /tmp and /dev/shm):
 * without it anyone who may write there can rename our directory away and put a
 * symlink in its place after we looked - even in a directory of our own. */
static int check_parent(const char *path, const struct stat *st, svm_error *err)
{
	/* A symlink on the way (/var/run -> /run) is as safe as its owner: one of
	 * ours or root's is followed (the directory it leads to is judged as any
	 * other), one of another user's is refused. Only the owner of a symlink
	 * in a sticky directory may replace it. */
	struct stat to;
	if (S_ISLNK(st->st_mode) && (st->st_uid == 0 || st->st_uid == svm_euid())) {
		if (stat(path, &to) < 0)
			return svm_error_set(err, SVM_START_FAILED, "%s: %s", path, strerror(errno));
		st = &to;
	}
	if (S_ISLNK(st->st_mode))
		return svm_error_set(err, SVM_PERMISSION,
				     "%s is a symlink of uid %u, not of us or root: refusing to use it",
				     path, (unsigned)st->st_uid);
	if (!S_ISDIR(st->st_mode))
		return svm_error_set(err, SVM_PERMISSION, "%s is not a directory (a symlink?): refusing to use it", path);
	if (st->st_uid != 0 && st->st_uid != svm_euid())
		return svm_error_set(err, SVM_PERMISSION, "%s belongs to uid %u, not to us or root: refusing to use it",
				     path, (unsigned)st->st_uid);
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
		return svm_error_set(err, SVM_PERMISSION,
				     "%s is writable by others and not sticky (mode %04o): refusing to use it",
				     path, (unsigned)(st->st_mode & 07777));
	return 0;
}

int safedir_make(const char *path, svm_error *err)
{
	char buf[4096];
	if (!path || path[0] != '/' || strlen(path) >= sizeof buf)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "directory \"%s\" must be an absolute path",
				     path ? path : "");
	snprintf(buf, sizeof buf, "%s", path);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	for (char *p = buf + 1;; p++) {
		bool last = *p == '\0';
		if (*p != '/' && !last)
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, last ? 0700 : 0755) < 0 && errno != EEXIST) {
			int e = errno;
			svm_error_set(err, e == EACCES || e == EPERM ? SVM_PERMISSION : e == ENOSPC ? SVM_NO_SPACE : SVM_START_FAILED,
				      "cannot create %s: %s", buf, strerror(e));
			return -1;
		}
		struct stat st;
		if (lstat(buf, &st) < 0)
			return svm_error_set(err, SVM_START_FAILED, "%s: %s", buf, strerror(errno));
		if (!last) {
			if (check_parent(buf, &st, err) < 0)
				return -1;
			*p = saved;
			continue;
		}
		if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode))
			return svm_error_set(err, SVM_PERMISSION, "%s is not a directory (a symlink?): refusing to use it", buf);
		if (st.st_uid != svm_euid())
			return svm_error_set(err, SVM_PERMISSION, "%s belongs to uid %u, not to us (uid %u): refusing to use it",
					     buf, (unsigned)st.st_uid, (unsigned)svm_euid());
		/* ours: make it private if it was not (an older run, a umask) */
		if ((st.st_mode & 07777) != 0700 && chmod(buf, 0700) < 0)
			return svm_error_set(err, SVM_PERMISSION, "chmod 0700 %s: %s", buf, strerror(errno));
		return 0;
	}
}
