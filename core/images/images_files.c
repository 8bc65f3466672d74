/*
 * images_files.c - the seed's ImageManager file helpers, for DATADIR/kernels and
 * DATADIR/rootfs: blank (an empty ext4 image), clone (a copy of a rootfs) and
 * import (a download). Each builds a hidden temporary file beside the target and
 * renames it into place with RENAME_NOREPLACE: a failure leaves nothing, and an
 * existing name is never overwritten (EEXIST).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "images_int.h"

#define MAX_BLANK_MIB (1024u * 1024u) /* 1 TiB */

/* DIR/NAME and DIR/.NAME.partial-XXXXXX (created, fd returned). */
static int make_temp(svm_images *im, const char *sub, const char *name, char *target,
		     char *tmp, size_t len, svm_code code, svm_error *err)
{
	char dir[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->data_dir, sub);
	if (!img_valid_name(name))
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "\"%s\" is not a file name ([A-Za-z0-9._-]+, not starting with a dot)", name);
	img_fmt(target, len, "%s/%s", dir, name);
	if (access(target, F_OK) == 0)
		return svm_error_set(err, SVM_EXISTS, "%s exists", target);
	if (img_mkdir_p(dir, 0755) < 0)
		return svm_error_set(err, code, "cannot create %s: %s", dir, strerror(errno));
	img_fmt(tmp, len, "%s/.%s.partial-XXXXXX", dir, name);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return svm_error_set(err, code, "cannot create %s: %s", tmp, strerror(errno));
	fchmod(fd, 0644);
	return fd;
}

static int place(const char *tmp, const char *target, svm_code code, svm_error *err)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) == 0)
		return 0;
	int e = errno;
	unlink(tmp);
	return svm_error_set(err, e == EEXIST ? SVM_EXISTS : code, "%s: %s", target, strerror(e));
}

char *images_blank(svm_images *im, const char *name, unsigned mib, svm_error *err)
{
	char target[PATH_MAX], tmp[PATH_MAX], msg[768];
	if (mib == 0 || mib > MAX_BLANK_MIB) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "blank: size %u MiB: 1 to %u", mib, MAX_BLANK_MIB);
		return NULL;
	}
	char *mkfs = img_which("mkfs.ext4");
	if (!mkfs) {
		svm_error_set(err, SVM_ROOTFS_CREATE_FAILED,
			      "Failed to create blank rootfs: mkfs.ext4 not found (install e2fsprogs)");
		return NULL;
	}
	int fd = make_temp(im, "rootfs", name, target, tmp, sizeof tmp, SVM_ROOTFS_CREATE_FAILED, err);
	if (fd < 0) {
		free(mkfs);
		return NULL;
	}
	/* sparse: the seed wrote MIB of zeros with dd; a hole reads the same */
	int rc = ftruncate(fd, (off_t)mib * 1024 * 1024);
	close(fd);
	if (rc < 0) {
		svm_error_set(err, SVM_ROOTFS_CREATE_FAILED, "Failed to create blank rootfs: %s: %s", tmp,
			      strerror(errno));
		unlink(tmp);
		free(mkfs);
		return NULL;
	}
	char *argv[] = {mkfs, "-q", "-F", tmp, NULL};
	rc = img_run(argv, -1, 0, msg, sizeof msg);
	free(mkfs);
	if (rc < 0) {
		unlink(tmp);
		svm_error_set(err, SVM_ROOTFS_CREATE_FAILED, "Failed to create blank rootfs: %s", msg);
		return NULL;
	}
	if (place(tmp, target, SVM_ROOTFS_CREATE_FAILED, err) < 0)
		return NULL;
	sink_log(im->sink, "images: blank rootfs %s (%u MiB)", target, mib);
	return strdup(target);
}

/* Data segments only (SEEK_DATA/SEEK_HOLE); copy_file_range lets the kernel copy
 * (and share extents where it can). */
static int copy_sparse(int in, int out, off_t size)
{
	if (ftruncate(out, size) < 0)
		return -1;
	off_t off = 0;
	while (off < size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -1;
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		off_t in_off = data, out_off = data;
		while (in_off < hole) {
			ssize_t n = copy_file_range(in, &in_off, out, &out_off, (size_t)(hole - in_off), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
		}
		off = hole;
	}
	return 0;
}

static char *clone_source(svm_images *im, const char *src)
{
	if (src[0] == '/')
		return strdup(src);
	char *id = (!strcmp(src, "latest") || !strcmp(src, "lts") || !strcmp(src, "hosted"))
			   ? img_preset_get(im, src)
			   : strdup(src);
	json_t *b = id ? img_read_bundle(im, id) : NULL;
	free(id);
	if (b) {
		char *p = strdup(json_string_value(json_object_get(b, "rootfsPath")));
		json_decref(b);
		return p;
	}
	if (!img_valid_name(src))
		return NULL;
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/rootfs/%s", im->data_dir, src);
	return strdup(path);
}

char *images_clone(svm_images *im, const char *src, const char *name, svm_error *err)
{
	char target[PATH_MAX], tmp[PATH_MAX];
	char *from = clone_source(im, src);
	/* O_NONBLOCK: a FIFO named as the source must not hold the command */
	int in = from ? open(from, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	struct stat st;
	if (in >= 0 && fstat(in, &st) == 0 && S_ISREG(st.st_mode))
		fcntl(in, F_SETFL, fcntl(in, F_GETFL) & ~O_NONBLOCK);
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		svm_error_set(err, in < 0 && errno != ENOENT ? SVM_ROOTFS_CLONE_FAILED : SVM_NOT_FOUND,
			      "Failed to clone rootfs: %s: %s", from ? from : src,
			      in < 0 ? strerror(errno) : "not a regular file");
		if (in >= 0)
			close(in);
		free(from);
		return NULL;
	}
	int out = make_temp(im, "rootfs", name, target, tmp, sizeof tmp, SVM_ROOTFS_CLONE_FAILED, err);
	if (out < 0) {
		close(in);
		free(from);
		return NULL;
	}
	/* a reflink costs nothing on btrfs/xfs; elsewhere a sparse copy */
	bool reflinked = ioctl(out, FICLONE, in) == 0;
	int rc = reflinked ? 0 : copy_sparse(in, out, st.st_size);
	int e = errno;
	if (rc == 0 && fsync(out) < 0) {
		rc = -1;
		e = errno;
	}
	close(in);
	close(out);
	if (rc < 0) {
		unlink(tmp);
		svm_error_set(err, e == ENOSPC ? SVM_NO_SPACE : SVM_ROOTFS_CLONE_FAILED,
			      "Failed to clone rootfs: %s: %s", from, strerror(e));
		free(from);
		return NULL;
	}
	if (place(tmp, target, SVM_ROOTFS_CLONE_FAILED, err) < 0) {
		free(from);
		return NULL;
	}
	sink_log(im->sink, "images: cloned %s to %s (%s)", from, target, reflinked ? "reflink" : "copy");
	free(from);
	return strdup(target);
}

char *images_import(svm_images *im, const char *kind, const char *url, const char *name,
		    svm_error *err)
{
	return images_import_checked(im, kind, url, name, NULL, err);
}

/* The transfer goes on until the mount ends (svm_images_cancel). */
static int until_cancelled(void *ud, uint64_t done, uint64_t total)
{
	(void)done;
	(void)total;
	return atomic_load(&((svm_images *)ud)->cancelled) ? -1 : 0;
}

char *images_import_checked(svm_images *im, const char *kind, const char *url, const char *name,
			    const char *sha256, svm_error *err)
{
	char target[PATH_MAX], tmp[PATH_MAX], msg[1024], hex[65], want[65] = "";
	const char *sub = !strcmp(kind, "kernel") ? "kernels" : !strcmp(kind, "rootfs") ? "rootfs" : NULL;
	if (!sub) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "import: \"%s\": kernel or rootfs", kind);
		return NULL;
	}
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "import: \"%s\" is not an http(s) URL", url);
		return NULL;
	}
	if (sha256) {
		if (!img_hex64(sha256)) {
			svm_error_set(err, SVM_INVALID_ARGUMENT,
				      "import: sha256 \"%s\" must be 64 hex digits", sha256);
			return NULL;
		}
		img_fmt(want, sizeof want, "%s", sha256);
		img_lower(want);
	}
	int fd = make_temp(im, sub, name, target, tmp, sizeof tmp, SVM_DOWNLOAD_FAILED, err);
	if (fd < 0)
		return NULL;
	uint64_t bytes = 0;
	int rc = img_http_download(url, fd, -1, hex, &bytes, until_cancelled, im, NULL, msg, sizeof msg);
	if (rc == 0 && fsync(fd) < 0) {
		img_fmt(msg, sizeof msg, "%s: %s", tmp, strerror(errno));
		rc = -1;
	}
	close(fd);
	if (rc == 0 && *want && strcmp(hex, want) != 0) {
		img_fmt(msg, sizeof msg, "sha256 %s, expected %s", hex, want);
		rc = -1;
	}
	if (rc < 0) {
		unlink(tmp);
		svm_error_set(err, SVM_DOWNLOAD_FAILED, "Failed to download %s from %s: %s", kind, url,
			      msg);
		return NULL;
	}
	if (place(tmp, target, SVM_DOWNLOAD_FAILED, err) < 0)
		return NULL;
	sink_log(im->sink, "images: imported %s %s (%llu bytes, sha256 %s%s)", kind, target,
		(unsigned long long)bytes, hex, *want ? ", as expected" : ", not checked: none given");
	return strdup(target);
}
