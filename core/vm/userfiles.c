/*
 * userfiles.c - a start's host files, opened with the VM owner's rights and held
 * until the VMM has them (userfiles.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "stagerule.h"
#include "userfiles.h"

#define LINK_SUFFIX ".host"

struct userfiles {
	svm_vm *vm;
	hostpath_who who;
	int *fd;
	size_t n, cap;
	char **links; /* made in the runtime dir, removed at free */
	size_t nlinks;
};

/* ------------------------------------------------------------ holding */

userfiles *userfiles_new(svm_vm *vm, svm_error *err)
{
	userfiles *uf = calloc(1, sizeof *uf);
	if (!uf) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	uf->vm = vm;
	hostpath_who_of(vm_owner(vm), &uf->who);
	return uf;
}

void userfiles_free(userfiles *uf)
{
	if (!uf)
		return;
	for (size_t i = 0; i < uf->nlinks; i++) {
		unlink(uf->links[i]);
		free(uf->links[i]);
	}
	for (size_t i = 0; i < uf->n; i++)
		close(uf->fd[i]);
	free(uf->links);
	free(uf->fd);
	free(uf);
}

const hostpath_who *userfiles_who(const userfiles *uf)
{
	return &uf->who;
}

int userfiles_hold(userfiles *uf, int fd, char *name, size_t len, svm_error *err)
{
	if (svm_grow(&uf->fd, &uf->cap, uf->n + 1, sizeof *uf->fd) < 0) {
		close(fd);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	uf->fd[uf->n++] = fd;
	hostpath_fd_name(fd, name, len);
	return 0;
}

int userfiles_open(userfiles *uf, const char *what, const char *path, int flags, char *name,
		   size_t len, svm_error *err)
{
	/* a base image of the cache (an "image" config's kernel and rootfs, or a
	 * user naming one) is the daemon's to open, beneath the cache; anything
	 * else the owner's, beneath the host roots */
	svm *s = uf->vm->s;
	bool cached = s->cache_root && hostpath_roots_cover(s->cache_root, path);
	hostpath_who self;
	if (cached)
		hostpath_who_of(svm_euid(), &self);
	int fd = hostpath_open(cached ? s->cache_root : s->roots, cached ? &self : &uf->who, what,
			       path, flags, 0, err);
	if (fd < 0)
		return -1;
	return userfiles_hold(uf, fd, name, len, err);
}

static bool is_held(const userfiles *uf, const char *path)
{
	char name[64];
	for (size_t i = 0; i < uf->n; i++) {
		hostpath_fd_name(uf->fd[i], name, sizeof name);
		if (!strcmp(name, path))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ the config's files */

/* Opens the file at obj.key (if any) and puts its name there. Kernels are
 * regular files; drives regular files or block devices. */
static int open_key(userfiles *uf, json_t *obj, const char *key, const char *what, int flags,
		    bool device_ok, svm_error *err)
{
	const char *path = json_string_value(json_object_get(obj, key));
	if (!path || !*path || is_held(uf, path))
		return 0;
	char name[64];
	if (userfiles_open(uf, what, path, flags, name, sizeof name, err) < 0)
		return -1;
	struct stat st;
	if (fstat(uf->fd[uf->n - 1], &st) < 0 || !(S_ISREG(st.st_mode) || (device_ok && S_ISBLK(st.st_mode))))
		return svm_error_set(err, SVM_INVALID_CONFIG, "%s %s: not a regular file%s", what, path,
				     device_ok ? " or a block device" : "");
	json_object_set_new(obj, key, json_string(name));
	return 0;
}

int userfiles_open_config(userfiles *uf, json_t *cfg, svm_error *err)
{
	json_t *boot = json_object_get(cfg, "bootSource");
	if (open_key(uf, boot, "kernelImagePath", "kernel", O_RDONLY, false, err) < 0 ||
	    open_key(uf, boot, "initrdPath", "initrd", O_RDONLY, false, err) < 0)
		return -1;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(cfg, "drives"), i, d) {
		char what[128];
		snprintf(what, sizeof what, "drive %s", json_string_value(json_object_get(d, "driveId")));
		/* a staged drive's source is only read; one used in place is opened as
		 * the VMM will open it */
		bool ro = json_is_true(json_object_get(d, "isReadOnly")) || stage_wanted(uf->vm->s, d);
		if (open_key(uf, d, "pathOnHost", what, ro ? O_RDONLY : O_RDWR, true, err) < 0)
			return -1;
	}
	/* pmem devices are never staged: opened as the VMM maps them */
	json_array_foreach(json_object_get(cfg, "pmem"), i, d) {
		char what[128];
		snprintf(what, sizeof what, "pmem %s", json_string_value(json_object_get(d, "id")));
		bool ro = json_is_true(json_object_get(d, "readOnly"));
		if (open_key(uf, d, "pathOnHost", what, ro ? O_RDONLY : O_RDWR, true, err) < 0)
			return -1;
	}
	return 0;
}

/* Makes RUNDIR/KIND-ID.host a link to target (atomically replacing one there). */
static int make_link(userfiles *uf, const char *kind, const char *id, const char *target, char *out,
		     size_t len, svm_error *err)
{
	char tmp[PATH_MAX];
	int n = snprintf(out, len, "%s/%s-%s" LINK_SUFFIX, uf->vm->rundir, kind, id);
	if (n < 0 || (size_t)n >= len || (size_t)snprintf(tmp, sizeof tmp, "%s.new", out) >= sizeof tmp)
		return svm_error_set(err, SVM_NAME_TOO_LONG, "drive %s: runtime path too long", id);
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, out) < 0) {
		int e = errno;
		unlink(tmp);
		return svm_error_set(err, e == ENOSPC ? SVM_NO_SPACE : SVM_START_FAILED,
				     "drive %s: %s: %s", id, out, strerror(e));
	}
	char **p = realloc(uf->links, (uf->nlinks + 1) * sizeof *p);
	char *copy = strdup(out);
	if (!p || !copy) {
		free(copy);
		if (p)
			uf->links = p;
		unlink(out);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	uf->links = p;
	uf->links[uf->nlinks++] = copy;
	return 0;
}

int userfiles_link_in_place(userfiles *uf, json_t *cfg, svm_error *err)
{
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(cfg, "drives"), i, d) {
		const char *path = json_string_value(json_object_get(d, "pathOnHost"));
		const char *id = json_string_value(json_object_get(d, "driveId"));
		if (!path || !id || !is_held(uf, path))
			continue;
		char link[PATH_MAX];
		if (make_link(uf, "drive", id, path, link, sizeof link, err) < 0)
			return -1;
		json_object_set_new(d, "pathOnHost", json_string(link));
	}
	json_array_foreach(json_object_get(cfg, "pmem"), i, d) {
		const char *path = json_string_value(json_object_get(d, "pathOnHost"));
		const char *id = json_string_value(json_object_get(d, "id"));
		char link[PATH_MAX];
		if (!path || !id || !is_held(uf, path))
			continue;
		if (make_link(uf, "pmem", id, path, link, sizeof link, err) < 0)
			return -1;
		json_object_set_new(d, "pathOnHost", json_string(link));
	}
	return 0;
}

int userfiles_link_drive(userfiles *uf, const char *id, const char *path, bool read_only,
			 char *out, size_t len, svm_error *err)
{
	char what[128], name[64];
	snprintf(what, sizeof what, "drive %s", id);
	if (userfiles_open(uf, what, path, read_only ? O_RDONLY : O_RDWR, name, sizeof name, err) < 0)
		return -1;
	struct stat st;
	if (fstat(uf->fd[uf->n - 1], &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return svm_error_set(err, SVM_INVALID_CONFIG, "%s %s: not a regular file or a block "
				     "device", what, path);
	return make_link(uf, "drive", id, name, out, len, err);
}

/* ------------------------------------------------------------ sockets */

struct sock_check {
	int dirfd;
	const char *name;
	int e;
};

static int check_and_clear(void *p)
{
	struct sock_check *c = p;
	/* AT_EACCESS: as this thread's fs rights, the owner's now */
	if (syscall(SYS_faccessat2, c->dirfd, "", W_OK | X_OK, AT_EACCESS | AT_EMPTY_PATH) < 0) {
		c->e = errno;
		return -1;
	}
	struct stat st;
	if (fstatat(c->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		c->e = EEXIST;
		return -1;
	}
	if (unlinkat(c->dirfd, c->name, 0) < 0 && errno != ENOENT) {
		c->e = errno;
		return -1;
	}
	return 0;
}

int userfiles_check_socket_path(svm_vm *vm, const char *path, svm_error *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || !slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
		return svm_error_set(err, SVM_INVALID_CONFIG, "vsock.udsPath %s: not a file path", path);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	hostpath_who who;
	hostpath_who_of(vm_owner(vm), &who);
	int dfd = hostpath_open(vm->s->roots, &who, "vsock.udsPath directory", dir,
				O_PATH | O_DIRECTORY, 0, err);
	if (dfd < 0)
		return -1;
	struct sock_check c = {dfd, slash + 1, 0};
	int rc = hostpath_as(&who, check_and_clear, &c);
	close(dfd);
	if (rc < 0 && c.e == EEXIST)
		return svm_error_set(err, SVM_INVALID_CONFIG, "vsock.udsPath %s exists and is not a "
				     "socket: refusing to remove it", path);
	if (rc < 0)
		return svm_error_set(err, SVM_PERMISSION, "vsock.udsPath %s: its owner cannot make a "
				     "socket in %s: %s", path, dir, strerror(c.e ? c.e : errno));
	return 0;
}

/* ------------------------------------------------------------ the VM's socket */

int userfiles_give_vsock(svm_vm *vm, const char *path)
{
	uid_t owner = vm_owner(vm);
	if (!path || owner == svm_euid() || svm_euid() != 0)
		return 0;
	size_t n = strlen(vm->rundir);
	if (!strncmp(path, vm->rundir, n) && path[n] == '/') {
		/* the owner passes through (no listing) to the one file that is theirs */
		chmod(vm->s->runtime_dir, 0711);
		chmod(vm->rundir, 0711);
	}
	/* the socket the VMM made, by the descriptor checked (a name swapped in
	 * between changes nothing) */
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -1;
	int rc = 0;
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == svm_euid()) {
		hostpath_who who;
		hostpath_who_of(owner, &who);
		char name[64];
		snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
		if (fchownat(fd, "", owner, who.gid, AT_EMPTY_PATH) < 0 || chmod(name, 0600) < 0)
			rc = -1;
	}
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}
