/*
 * snapfiles.c - a snapshot's directory and its files (snapfiles.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "jsonfile.h"
#include "fileio.h"
#include "quota.h"
#include "seal.h"
#include "snapfiles.h"

#define ORIGIN_MAX (64 * 1024)
#define CONFIG_MAX (1024 * 1024)
#define VMSTATE_MAX (256ull * 1024 * 1024)

static svm_code code_of(int e)
{
	return e == ENOENT || e == ENOTDIR ? SVM_NOT_FOUND
	       : e == EACCES || e == EPERM || e == ELOOP || e == EXDEV ? SVM_PERMISSION
	       : e == ENOSPC || e == EDQUOT || e == EMFILE || e == ENFILE || e == ENOMEM ? SVM_NO_SPACE
	       : e == ENAMETOOLONG ? SVM_NAME_TOO_LONG
							: SVM_API_ERROR;
}

static int fail(snapdir *d, const char *name, int e, svm_error *err)
{
	return svm_error_set(err, code_of(e), "snapshot %s/%s: %s", d->path, name,
			     e == ELOOP ? "is a link" : strerror(e));
}

/* ------------------------------------------------------------ the directory */

/* A path's directory, made by the owner if missing (the last name only: the
 * parent must exist). */
static int open_user_dir(svm_vm *vm, snapdir *d, const char *arg, bool create, svm_error *err)
{
	const hostpath_roots *roots = vm->s->roots;
	int fd = hostpath_open(roots, &d->who, "snapshot directory", arg, O_DIRECTORY | O_RDONLY, 0, err);
	if (fd >= 0 || !create || err->code != SVM_NOT_FOUND)
		return fd;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", arg);
	size_t n = strlen(parent);
	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash || !slash[1])
		return -1;
	char name[NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", slash + 1);
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	svm_error_clear(err);
	int pfd = hostpath_open(roots, &d->who, "snapshot directory", parent, O_DIRECTORY | O_PATH, 0, err);
	if (pfd < 0)
		return -1;
	if (hostpath_mkdirat(&d->who, pfd, name, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		close(pfd);
		return svm_error_set(err, code_of(e), "snapshot directory %s: %s", arg, strerror(e));
	}
	fd = hostpath_openat(&d->who, pfd, name, O_DIRECTORY | O_RDONLY, 0);
	int e = errno;
	close(pfd);
	if (fd < 0)
		return svm_error_set(err, code_of(e), "snapshot directory %s: %s", arg, strerror(e));
	return fd;
}

static int make_dir(const char *path, svm_error *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return svm_error_set(err, code_of(errno), "%s: %s", path, strerror(errno));
	return 0;
}

/* Which uid a snapshot of the store was made for (origin.json), or -1. */
static long long owner_of(snapdir *d)
{
	int fd = hostpath_openat(&d->who, d->dfd, d->origin, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	json_t *o = svm_json_load_fd(fd, ORIGIN_MAX + CONFIG_MAX, 0, NULL);
	close(fd);
	long long uid = json_is_integer(json_object_get(o, "owner"))
			       ? json_integer_value(json_object_get(o, "owner")) : -1;
	json_decref(o);
	return uid;
}

static void names(snapdir *d, const char *state, const char *origin, bool embed)
{
	snprintf(d->state, sizeof d->state, "%s", state);
	snprintf(d->origin, sizeof d->origin, "%s", origin);
	d->embed_config = embed;
}

int snapdir_open_file(svm_vm *vm, const char *path, snapdir *d, svm_error *err)
{
	memset(d, 0, sizeof *d);
	d->dfd = -1;
	const char *slash = strrchr(path, '/');
	if (path[0] != '/' || !slash || !slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, "..") ||
	    strlen(slash + 1) + 6 > NAME_MAX)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "snapshot file %s: not an absolute "
				     "path of a file", path);
	snprintf(d->path, sizeof d->path, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	char origin[NAME_MAX + 1];
	snprintf(origin, sizeof origin, "%s.seal", slash + 1);
	names(d, slash + 1, origin, true);
	hostpath_who_of(vm_owner(vm), &d->who);
	d->dfd = hostpath_open(vm->s->roots, &d->who, "snapshot file's directory", d->path,
			       O_DIRECTORY | O_RDONLY, 0, err);
	return d->dfd < 0 ? -1 : 0;
}

int snapdir_open(svm_vm *vm, const char *arg, bool create, snapdir *d, svm_error *err)
{
	memset(d, 0, sizeof *d);
	d->dfd = -1;
	names(d, "vmstate", "origin.json", false);
	if (strchr(arg, '/')) {
		if ((size_t)snprintf(d->path, sizeof d->path, "%s", arg) >= sizeof d->path - 64)
			return svm_error_set(err, SVM_NAME_TOO_LONG, "snapshot path too long");
		hostpath_who_of(vm_owner(vm), &d->who);
		d->dfd = open_user_dir(vm, d, arg, create, err);
		return d->dfd < 0 ? -1 : 0;
	}
	d->named = true; /* a NAME the caller checked (svm_name_valid) */
	if (create && quota_may_keep_snapshot(vm->s, vm_owner(vm), err) < 0)
		return -1;
	hostpath_who_of(svm_euid(), &d->who);
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s/snapshots", vm->s->data_dir);
	snprintf(d->path, sizeof d->path, "%s/snapshots/%s/%s", vm->s->data_dir, vm->name, arg);
	if (create) {
		char vmdir[PATH_MAX + 80];
		snprintf(vmdir, sizeof vmdir, "%s/%s", base, vm->name);
		if (make_dir(base, err) < 0 || make_dir(vmdir, err) < 0 || make_dir(d->path, err) < 0)
			return -1;
	}
	d->dfd = open(d->path, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (d->dfd < 0)
		return svm_error_set(err, code_of(errno), "snapshot %s: %s", d->path, strerror(errno));
	/* one owner's NAME is not another's to write over (a VM of the same name,
	 * made by someone else after the first was removed) */
	long long was = create ? owner_of(d) : -1;
	uid_t owner = vm_owner(vm);
	if (was >= 0 && (uid_t)was != owner && owner != 0) {
		snapdir_close(d);
		return svm_error_set(err, SVM_PERMISSION, "snapshot %s of %s belongs to uid %lld: "
				     "choose another name", arg, vm->name, was);
	}
	return 0;
}

void snapdir_close(snapdir *d)
{
	for (size_t i = 0; i < d->nfresh; i++) {
		char tmp[NAME_MAX + 8];
		snprintf(tmp, sizeof tmp, "%s.new", d->fresh[i]);
		if (d->dfd >= 0)
			hostpath_unlinkat(&d->who, d->dfd, tmp);
		free(d->fresh[i]);
	}
	free(d->fresh);
	d->fresh = NULL;
	d->nfresh = 0;
	if (d->dfd >= 0)
		close(d->dfd);
	d->dfd = -1;
}

struct rename_args {
	int dfd;
	const char *from, *to;
};

static int do_rename(void *p)
{
	struct rename_args *a = p;
	return renameat(a->dfd, a->from, a->dfd, a->to);
}

int snapdir_commit(snapdir *d, svm_error *err)
{
	for (size_t i = 0; i < d->nfresh; i++) {
		char tmp[NAME_MAX + 8];
		snprintf(tmp, sizeof tmp, "%s.new", d->fresh[i]);
		struct rename_args a = {d->dfd, tmp, d->fresh[i]};
		if (hostpath_as(&d->who, do_rename, &a) < 0)
			return fail(d, d->fresh[i], errno, err);
		free(d->fresh[i]);
		d->fresh[i] = NULL;
		/* done: close must not remove it */
		memmove(&d->fresh[i], &d->fresh[i + 1], (d->nfresh - i - 1) * sizeof *d->fresh);
		d->nfresh--;
		i--;
	}
	return 0;
}

/* ------------------------------------------------------------ files */

int snapdir_fresh(snapdir *d, const char *name, svm_error *err)
{
	char tmp[NAME_MAX + 8];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", name) >= sizeof tmp - 3)
		return fail(d, name, ENAMETOOLONG, err);
	char **p = realloc(d->fresh, (d->nfresh + 1) * sizeof *p);
	if (!p)
		return fail(d, name, ENOMEM, err);
	d->fresh = p;
	/* made new (O_EXCL: a link planted at the name is never followed); one a
	 * crashed snapshot left, or such a link, is removed and the name made
	 * again (removing first cost every snapshot a failed unlink per file) */
	int fd = hostpath_openat(&d->who, d->dfd, tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST) {
		if (hostpath_unlinkat(&d->who, d->dfd, tmp) < 0 && errno != ENOENT)
			return fail(d, tmp, errno, err);
		fd = hostpath_openat(&d->who, d->dfd, tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	}
	if (fd < 0)
		return fail(d, tmp, errno, err);
	if (!(d->fresh[d->nfresh] = strdup(name))) {
		close(fd);
		hostpath_unlinkat(&d->who, d->dfd, tmp);
		return fail(d, name, ENOMEM, err);
	}
	d->nfresh++;
	return fd;
}

int snapdir_file(snapdir *d, const char *name, svm_error *err)
{
	int fd = hostpath_openat(&d->who, d->dfd, name, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		fail(d, name, e, err);
		errno = e;
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		svm_error_set(err, SVM_INVALID_ARGUMENT, "snapshot %s/%s: not a regular file", d->path, name);
		errno = EINVAL;
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		fail(d, name, e, err);
		errno = e;
		return -1;
	}
	return fd;
}

int snapdir_write(snapdir *d, const char *name, const char *text, svm_error *err)
{
	if (!text)
		return svm_error_set(err, SVM_NO_SPACE, "snapshot %s/%s: out of memory", d->path, name);
	int fd = snapdir_fresh(d, name, err);
	if (fd < 0)
		return -1;
	int rc = svm_write_all(fd, text, strlen(text));
	int e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0)
		return fail(d, name, e, err); /* its .new goes at close */
	return 0;
}

/* ------------------------------------------------------------ hashing */

static void to_hex(const unsigned char *md, unsigned n, char hex[SEAL_HEX])
{
	svm_hex(md, n < 32 ? n : 32, hex);
}

static void sha_text(const char *text, size_t len, char hex[SEAL_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(text, len, md, &n, EVP_sha256(), NULL);
	to_hex(md, n, hex);
}

/* The SHA-256 of fd's bytes from offset 0 (copied to copy_fd too unless -1). */
static int sha_fd(int fd, int copy_fd, char hex[SEAL_HEX])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	/* on the op thread's stack (2 MiB), whose pages stay: a fresh 64 KiB from
	 * malloc at each restore cost its page faults (11 of the 51 us a restore
	 * spent copying a 16 KiB device state) */
	char buf[1 << 16];
	int rc = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -1;
	off_t off = 0;
	while (rc == 0) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (unsigned long long)off + (unsigned long long)n > VMSTATE_MAX) {
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (copy_fd >= 0 && svm_write_all(copy_fd, buf, (size_t)n) < 0)
			rc = -1;
		off += n;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &n) == 1)
		to_hex(md, n, hex);
	else
		rc = -1;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int snapdir_seal(snapdir *d, svm_vm *vm, int vmstate_fd, const char *config_text,
		 const char *vmm_rundir, svm_error *err)
{
	char vsha[SEAL_HEX], csha[SEAL_HEX], seal[SEAL_HEX];
	uid_t owner = vm_owner(vm);
	if (sha_fd(vmstate_fd, -1, vsha) < 0)
		return svm_error_set(err, SVM_API_ERROR, "snapshot %s/vmstate: cannot read it back",
				     d->path);
	sha_text(config_text, strlen(config_text), csha);
	if (seal_make(vm->s, owner, vmm_rundir, vsha, csha, seal, err) < 0)
		return -1;
	json_t *o = json_pack("{s:s, s:I, s:s}", "runtimeDir", vmm_rundir, "owner", (json_int_t)owner,
			      "seal", seal);
	if (o && d->embed_config)
		json_object_set_new(o, "config", json_string(config_text));
	char *text = o ? json_dumps(o, 0) : NULL;
	int rc = snapdir_write(d, d->origin, text, err);
	free(text);
	json_decref(o);
	return rc;
}

/* Reads a whole small file of the snapshot. */
static char *read_small(snapdir *d, const char *name, size_t max, char hex[SEAL_HEX], svm_error *err)
{
	int fd = snapdir_file(d, name, err);
	if (fd < 0)
		return NULL;
	errno = 0;
	char *buf = malloc(max + 1);
	size_t len = 0;
	int e = buf ? 0 : ENOMEM;
	while (buf && len <= max) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			e = errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (e) {
		free(buf);
		fail(d, name, e, err);
		errno = e;
		return NULL;
	}
	if (!buf || len > max) {
		free(buf);
		svm_error_set(err, SVM_TOO_LARGE, "snapshot %s/%s: larger than %zu bytes", d->path, name, max);
		return NULL;
	}
	buf[len] = '\0';
	if (hex)
		sha_text(buf, len, hex);
	return buf;
}

int snapdir_verify(snapdir *d, svm_vm *vm, snap_checked *out, svm_error *err)
{
	memset(out, 0, sizeof *out);
	out->vmstate_fd = -1;
	uid_t vm_uid = vm_owner(vm);
	char *origin = read_small(d, d->origin, ORIGIN_MAX + CONFIG_MAX, NULL, err);
	if (!origin && errno == ENOENT) {
		/* a device state without a seal is not one of ours */
		int fd = snapdir_file(d, d->state, err);
		if (fd < 0)
			return -1;
		close(fd);
		return svm_error_set(err, SVM_PERMISSION, "snapshot %s has no %s: not made by "
				     "smartvmfs, so not restored", d->embed_config ? d->state : d->path,
				     d->origin);
	}
	if (!origin)
		return -1;
	json_t *o = json_loads(origin, 0, NULL);
	free(origin);
	const char *rd = json_string_value(json_object_get(o, "runtimeDir"));
	const char *seal = json_string_value(json_object_get(o, "seal"));
	json_t *ow = json_object_get(o, "owner");
	if (!rd || rd[0] != '/' || strstr(rd, "/..") || strlen(rd) >= SVM_SOCK_MAX || !seal ||
	    !json_is_integer(ow)) {
		json_decref(o);
		return svm_error_set(err, SVM_PERMISSION, "snapshot %s: origin.json has no seal of this "
				     "daemon (made by an older smartvmfs, or not by one): refusing to "
				     "restore it", d->path);
	}
	uid_t owner = (uid_t)json_integer_value(ow);
	snprintf(out->rundir, sizeof out->rundir, "%s", rd);
	char seal_copy[SEAL_HEX];
	snprintf(seal_copy, sizeof seal_copy, "%s", seal);
	const char *embedded = json_string_value(json_object_get(o, "config"));
	char *config = d->embed_config && embedded ? strdup(embedded) : NULL;
	json_decref(o);
	if (d->embed_config && !config)
		return svm_error_set(err, SVM_PERMISSION, "snapshot %s/%s: no config in its seal: "
				     "refusing to restore it", d->path, d->origin);
	if (owner != vm_uid && vm_uid != 0) {
		free(config);
		return svm_error_set(err, SVM_PERMISSION, "snapshot %s was made by uid %u's VM: only "
				     "that user (or root) may restore it", d->path, (unsigned)owner);
	}
	char vsha[SEAL_HEX], csha[SEAL_HEX];
	out->config = config;
	int src = snapdir_file(d, d->state, err);
	if (src < 0)
		goto bad;
	out->vmstate_fd = memfd_create("vmstate", MFD_CLOEXEC);
	int rc = out->vmstate_fd < 0 ? -1 : sha_fd(src, out->vmstate_fd, vsha);
	close(src);
	if (rc < 0) {
		svm_error_set(err, out->vmstate_fd < 0 ? SVM_NO_SPACE : SVM_TOO_LARGE,
			      "snapshot %s/vmstate: cannot read it (or larger than %llu MiB)", d->path,
			      VMSTATE_MAX >> 20);
		goto bad;
	}
	if (out->config)
		sha_text(out->config, strlen(out->config), csha);
	else if (!(out->config = read_small(d, "config.json", CONFIG_MAX, csha, err)))
		goto bad;
	if (!seal_check(vm->s, owner, out->rundir, vsha, csha, seal_copy)) {
		svm_error_set(err, SVM_PERMISSION, "snapshot %s: its seal does not match (changed since "
			      "it was made, or made by another daemon): refusing to restore it", d->path);
		goto bad;
	}
	return 0;
bad:
	if (out->vmstate_fd >= 0)
		close(out->vmstate_fd);
	out->vmstate_fd = -1;
	free(out->config);
	out->config = NULL;
	return -1;
}
