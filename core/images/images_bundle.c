/*
 * images_bundle.c - ensuring one bundle: the cache hit (checked by stamp, so it
 * costs a few stat() calls), the re-hash when a stamp changed, and the fetch:
 * both artifacts into a private staging directory, size and SHA-256 checked as
 * the bytes arrive, manifest.json written last, then one rename() makes the
 * bundle appear whole. A failure removes the staging directory: no partial
 * bundle is ever visible.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "images_int.h"

static const char *const label[2] = {"kernel", "rootfs"};

void img_source_free(img_source *src)
{
	free(src->preset);
	free(src->arch);
	free(src->ci_version);
	free(src->fc_version);
	free(src->bundle_id);
	free(src->boot_args);
	free(src->rootfs_type);
	for (int i = 0; i < 2; i++) {
		free(src->art[i].url);
		free(src->art[i].path);
		free(src->art[i].file_name);
		free(src->art[i].sha256);
	}
	json_decref(src->source);
	memset(src, 0, sizeof *src);
}

/* ------------------------------------------------------------ checking */

static const char *sget(const json_t *o, const char *k1, const char *k2)
{
	return json_string_value(json_object_get(k2 ? json_object_get(o, k1) : o, k2 ? k2 : k1));
}

/* Is path a plain file directly inside dir (the seed's isPathInside, stricter). */
static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	return path && !strncmp(path, dir, n) && path[n] == '/' && !strchr(path + n + 1, '/') &&
	       strcmp(path + n + 1, ".") && strcmp(path + n + 1, "..") && path[n + 1];
}

/* 0: intact (stamps in b refreshed where a re-hash proved the bytes unchanged);
 * -1: damaged or incomplete, why says how. */
static int check_bundle(svm_images *im, json_t *b, bool full, char *why, size_t whylen)
{
	const char *dir = sget(b, "bundleDir", NULL);
	const char *keys[2] = {"kernelImagePath", "rootfsPath"};
	const char *sums[2] = {"kernelSha256", "rootfsSha256"};
	const char *sizes[2] = {"kernelBytes", "rootfsBytes"};
	json_t *stamps = json_object_get(b, "stamps");
	if (!json_is_object(stamps)) {
		stamps = json_object();
		json_object_set_new(b, "stamps", stamps);
	}
	for (int i = 0; i < 2; i++) {
		const char *path = sget(b, keys[i], NULL);
		const char *sum = sget(b, "checksums", sums[i]);
		const json_t *size = json_object_get(json_object_get(b, "sizes"), sizes[i]);
		struct stat st;
		if (!inside(dir, path)) {
			img_fmt(why, whylen, "cached %s path escapes the bundle directory", label[i]);
			return -1;
		}
		if (!img_hex64(sum) || !json_is_integer(size)) {
			img_fmt(why, whylen, "cached bundle is missing %s", !img_hex64(sum) ? "checksums" : "sizes");
			return -1;
		}
		if (stat(path, &st) < 0) {
			img_fmt(why, whylen, "cached %s %s: %s", label[i], path, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			img_fmt(why, whylen, "cached %s %s is not a file", label[i], path);
			return -1;
		}
		if (st.st_size != json_integer_value(size)) {
			img_fmt(why, whylen, "cached %s size mismatch (%lld, expected %lld)", label[i],
				 (long long)st.st_size, (long long)json_integer_value(size));
			return -1;
		}
		json_t *stamp = json_object_get(stamps, label[i]);
		if (!full && img_stamp_matches(stamp, &st))
			continue; /* untouched since it was verified: no re-hash */
		char hex[65];
		if (img_sha256_file(im, path, hex) < 0) {
			img_fmt(why, whylen, "cannot read cached %s: %s", label[i], strerror(errno));
			return -1;
		}
		if (strcasecmp(hex, sum) != 0) {
			img_fmt(why, whylen, "cached %s SHA256 mismatch (%s, expected %s)", label[i], hex, sum);
			return -1;
		}
		json_object_set_new(stamps, label[i], img_stamp_of(&st));
	}
	return 0;
}

static int write_manifest(const json_t *b, const char *dir, bool sync)
{
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/manifest.json", dir);
	char *text = json_dumps(b, JSON_INDENT(2));
	if (!text)
		return -1;
	size_t n = strlen(text);
	char *withnl = realloc(text, n + 2);
	if (!withnl) {
		free(text);
		return -1;
	}
	memcpy(withnl + n, "\n", 2);
	int rc = img_write_file(path, withnl, sync);
	free(withnl);
	return rc;
}

/* A use: the access time the retention goes by. */
static void touch(svm_images *im, json_t *b)
{
	char *now = img_iso_now();
	json_object_set_new(b, "lastAccessedAt", json_string(now));
	free(now);
	if (write_manifest(b, sget(b, "bundleDir", NULL), false) == 0)
		img_emit(im, IMAGES_EV_CHANGED, sget(b, "bundleId", NULL));
}

/* ------------------------------------------------------------ fetching */

struct prog {
	svm_images *im;
	const char *id;
	int which;
};

static int on_progress(void *ud, uint64_t done, uint64_t total)
{
	struct prog *p = ud;
	img_flight_progress(p->im, p->id, p->which, done, total);
	return atomic_load(&p->im->cancelled) ? -1 : 0; /* the mount is ending */
}

/* Copies a local artifact, hashing it; holes stay holes (SEEK_DATA/SEEK_HOLE)
 * and are hashed as the zeros they read as. */
static int copy_path(const char *from, int out, char *hex, uint64_t *bytes, struct prog *pr,
		     char *msg, size_t msglen)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	struct stat st;
	bool ok = in >= 0 && fstat(in, &st) == 0;
	if (!ok || !S_ISREG(st.st_mode)) {
		img_fmt(msg, msglen, "%s: %s", from, ok ? "not a regular file" : strerror(errno));
		if (in >= 0)
			close(in);
		return -1;
	}
	size_t cap = 1 << 20;
	char *buf = malloc(cap), *zero = calloc(1, cap);
	img_hasher *h = img_hasher_new();
	int rc = buf && zero && h ? 0 : -1;
	off_t off = 0, size = st.st_size;
	while (rc == 0 && off < size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = size; /* a hole to the end */
		else if (data < 0)
			data = off; /* no SEEK_DATA here: all data */
		for (; off < data; off += (off_t)(data - off < (off_t)cap ? data - off : (off_t)cap))
			img_hasher_update(h, zero, (size_t)(data - off < (off_t)cap ? data - off : (off_t)cap));
		if (off >= size)
			break;
		off_t hole = lseek(in, off, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		while (rc == 0 && off < hole) {
			size_t want = (size_t)(hole - off < (off_t)cap ? hole - off : (off_t)cap);
			ssize_t n = pread(in, buf, want, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || svm_pwrite_all(out, buf, (size_t)n, off) < 0) {
				img_fmt(msg, msglen, "copy of %s: %s", from, n == 0 ? "file shrank" : strerror(errno));
				rc = -1;
				break;
			}
			img_hasher_update(h, buf, (size_t)n);
			off += n;
			on_progress(pr, (uint64_t)off, (uint64_t)size);
		}
	}
	if (rc == 0 && ftruncate(out, size) < 0) {
		img_fmt(msg, msglen, "copy of %s: %s", from, strerror(errno));
		rc = -1;
	}
	on_progress(pr, (uint64_t)off, (uint64_t)size);
	img_hasher_final(h, hex);
	free(buf);
	free(zero);
	close(in);
	*bytes = (uint64_t)off;
	return rc;
}

/* One artifact into staging/<file_name>; *hex and *st describe what was kept. */
static int prepare_artifact(svm_images *im, const img_source *src, int i, const char *staging,
			    char *hex, struct stat *st, char *msg, size_t msglen)
{
	const img_artifact *a = &src->art[i];
	char target[PATH_MAX];
	img_fmt(target, sizeof target, "%s/%s", staging, a->file_name);
	int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		img_fmt(msg, msglen, "%s: %s", target, strerror(errno));
		return -1;
	}
	struct prog pr = {im, src->bundle_id, i};
	uint64_t bytes = 0;
	int rc;
	if (a->url) {
		rc = img_http_download(a->url, fd, a->size, hex, &bytes, on_progress, &pr, NULL, msg,
				       msglen);
	} else if (a->path) {
		rc = copy_path(a->path, fd, hex, &bytes, &pr, msg, msglen);
	} else {
		img_fmt(msg, msglen, "Artifact requires url or sourcePath");
		rc = -1;
	}
	if (rc == 0 && a->size >= 0 && bytes != (uint64_t)a->size) {
		img_fmt(msg, msglen, "Artifact %s size mismatch: expected %lld, got %llu", target,
			 (long long)a->size, (unsigned long long)bytes);
		rc = -1;
	}
	if (rc == 0 && a->sha256 && strcasecmp(a->sha256, hex) != 0) {
		img_fmt(msg, msglen, "Artifact %s SHA256 mismatch: expected %s, got %s", target,
			 a->sha256, hex);
		rc = -1;
	}
	/* on disk before the bundle is declared complete: a stamp must describe
	 * bytes that survive a crash */
	if (rc == 0 && (fsync(fd) < 0 || fstat(fd, st) < 0)) {
		img_fmt(msg, msglen, "%s: %s", target, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

static json_t *bundle_record(svm_images *im, const img_source *src, char hex[2][65],
			     struct stat st[2])
{
	char dir[PATH_MAX], k[PATH_MAX], r[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->cache_dir, src->bundle_id);
	img_fmt(k, sizeof k, "%s/%s", dir, src->art[0].file_name);
	img_fmt(r, sizeof r, "%s/%s", dir, src->art[1].file_name);
	char *now = img_iso_now();
	/* the seed's IBaseImageBundle, field for field, then our stamps */
	json_t *b = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:O, s:{s:s, s:s}, "
		"s:{s:I, s:I}, s:s, s:s, s:{s:o, s:o}}",
		"preset", src->preset, "arch", src->arch, "ciVersion", src->ci_version,
		"firecrackerVersion", src->fc_version, "bundleId", src->bundle_id, "bundleDir", dir,
		"kernelImagePath", k, "rootfsPath", r, "rootfsType", src->rootfs_type,
		"rootfsIsReadOnly", src->rootfs_ro, "bootArgs", src->boot_args, "source", src->source,
		"checksums", "kernelSha256", hex[0], "rootfsSha256", hex[1], "sizes", "kernelBytes",
		(json_int_t)st[0].st_size, "rootfsBytes", (json_int_t)st[1].st_size, "createdAt", now,
		"lastAccessedAt", now, "stamps", "kernel", img_stamp_of(&st[0]), "rootfs",
		img_stamp_of(&st[1]));
	free(now);
	return b;
}

/* Staging -> CACHE/ID in one rename (an older copy is moved aside first). */
static int put_in_place(svm_images *im, const char *id, const char *staging, char *msg,
			size_t msglen)
{
	char dir[PATH_MAX], old[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->cache_dir, id);
	if (rename(staging, dir) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST) {
		img_fmt(msg, msglen, "rename to %s: %s", dir, strerror(errno));
		return -1;
	}
	img_fmt(old, sizeof old, "%s/.%s.replaced-XXXXXX", im->cache_dir, id);
	if (!mkdtemp(old) || rename(dir, old) < 0 || rename(staging, dir) < 0) {
		img_fmt(msg, msglen, "replace %s: %s", dir, strerror(errno));
		rmdir(old);
		return -1;
	}
	img_rm_rf(old);
	return 0;
}

/* Downloads the bundle of src (the bundle lock is held). */
static json_t *build(svm_images *im, const img_source *src, svm_error *err)
{
	const char *id = src->bundle_id;
	char staging[PATH_MAX], msg[1024] = "";
	char hex[2][65];
	struct stat st[2];
	img_fmt(staging, sizeof staging, "%s/.%s.partial-XXXXXX", im->cache_dir, id);
	img_flight_begin(im, id);
	json_t *b = NULL;
	if (!mkdtemp(staging)) {
		img_fmt(msg, sizeof msg, "%s: %s", staging, strerror(errno));
		staging[0] = '\0';
		goto fail;
	}
	chmod(staging, 0755);
	for (int i = 0; i < 2; i++)
		if (prepare_artifact(im, src, i, staging, hex[i], &st[i], msg, sizeof msg) < 0)
			goto fail;
	b = bundle_record(im, src, hex, st);
	if (!b || write_manifest(b, staging, true) < 0) {
		img_fmt(msg, sizeof msg, "cannot write %s/manifest.json", staging);
		goto fail;
	}
	if (put_in_place(im, id, staging, msg, sizeof msg) < 0)
		goto fail;
	img_flight_end(im, id);
	sink_log(im->sink, "images: bundle %s ready (%s %lld bytes, %s %lld bytes)", id,
		src->art[0].file_name, (long long)st[0].st_size, src->art[1].file_name,
		(long long)st[1].st_size);
	img_emit(im, IMAGES_EV_CHANGED, id);
	return b;
fail:
	json_decref(b);
	if (staging[0])
		img_rm_rf(staging);
	img_flight_end(im, id);
	svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED,
		      "Failed to prepare base image bundle %s: %s", id, msg);
	sink_log(im->sink, "images: %s", err ? err->message : msg);
	char dir[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->cache_dir, id);
	if (access(dir, F_OK) < 0)
		img_emit(im, IMAGES_EV_REMOVED, id);
	return NULL;
}

/* Does the cached bundle b still match what src asks for (a manifest republished
 * under the same bundleId with new artifacts must not be served stale)? */
static bool matches_source(const json_t *b, const img_source *src)
{
	const char *sums[2] = {"kernelSha256", "rootfsSha256"};
	for (int i = 0; i < 2; i++)
		if (src->art[i].sha256 &&
		    strcasecmp(src->art[i].sha256, sget(b, "checksums", sums[i]) ?: "") != 0)
			return false;
	return true;
}

static json_t *ensure(svm_images *im, const img_source *src, bool force, bool full,
		      svm_error *err)
{
	const char *id = src->bundle_id;
	if (!img_valid_name(id)) {
		svm_error_set(err, SVM_INVALID_BASE_IMAGE_MANIFEST, "bundle id \"%s\" is not usable", id);
		return NULL;
	}
	if (img_mkdir_p(im->cache_dir, 0755) < 0) {
		svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED, "cannot create %s: %s", im->cache_dir,
			      strerror(errno));
		return NULL;
	}
	/* single flight: a second fetch of the same bundle waits here, then finds it */
	int lk = img_lock_bundle(im, id, true);
	if (lk < 0) {
		svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED, "cannot lock bundle %s: %s", id,
			      strerror(errno));
		return NULL;
	}
	json_t *b = force ? NULL : img_read_bundle(im, id);
	if (b) {
		char why[512];
		if (!matches_source(b, src)) {
			sink_log(im->sink, "images: bundle %s: its source changed; fetching it again", id);
		} else if (check_bundle(im, b, full, why, sizeof why) == 0) {
			touch(im, b);
			img_unlock_bundle(lk);
			img_prune(im, id, NULL, NULL);
			return b;
		} else {
			sink_log(im->sink, "warning: bundle %s: %s; fetching it again", id, why);
		}
		json_decref(b);
	}
	b = build(im, src, err);
	img_unlock_bundle(lk);
	if (b)
		img_prune(im, id, NULL, NULL);
	return b;
}

json_t *img_ensure(svm_images *im, img_source *src, bool force, svm_error *err)
{
	return ensure(im, src, force, false, err);
}

/* What a bundle's own manifest says about where it came from. */
static int source_of(svm_images *im, const json_t *b, img_source *src, svm_error *err)
{
	(void)im;
	const json_t *so = json_object_get(b, "source");
	const char *sums[2] = {"kernelSha256", "rootfsSha256"};
	const char *sizes[2] = {"kernelBytes", "rootfsBytes"};
	const char *paths[2] = {"kernelImagePath", "rootfsPath"};
	src->preset = strdup(sget(b, "preset", NULL) ?: "hosted");
	src->arch = strdup(sget(b, "arch", NULL) ?: "");
	src->ci_version = strdup(sget(b, "ciVersion", NULL) ?: "");
	src->fc_version = strdup(sget(b, "firecrackerVersion", NULL) ?: "");
	src->bundle_id = strdup(sget(b, "bundleId", NULL) ?: "");
	src->boot_args = strdup(sget(b, "bootArgs", NULL) ?: "");
	src->rootfs_type = strdup(sget(b, "rootfsType", NULL) ?: "ext4");
	src->rootfs_ro = json_is_true(json_object_get(b, "rootfsIsReadOnly"));
	src->source = json_deep_copy(so ? so : json_object());
	for (int i = 0; i < 2; i++) {
		char key[32], url[4096];
		const char *p = sget(b, paths[i], NULL);
		const char *slash = p ? strrchr(p, '/') : NULL;
		src->art[i].file_name = strdup(slash ? slash + 1 : label[i]);
		img_fmt(key, sizeof key, "%sUrl", label[i]);
		const char *u = sget(so, key, NULL);
		img_fmt(key, sizeof key, "%sKey", label[i]);
		const char *bucket = sget(so, "bucketUrl", NULL), *k = sget(so, key, NULL);
		if (!u && bucket && k) {
			img_fmt(url, sizeof url, "%s/%s", bucket, k);
			u = url;
		}
		img_fmt(key, sizeof key, "%sSourcePath", label[i]);
		const char *sp = sget(so, key, NULL);
		src->art[i].url = u ? strdup(u) : NULL;
		src->art[i].path = !u && sp ? strdup(sp) : NULL;
		const char *sum = sget(b, "checksums", sums[i]);
		src->art[i].sha256 = img_hex64(sum) ? strdup(sum) : NULL;
		img_lower(src->art[i].sha256);
		const json_t *sz = json_object_get(json_object_get(b, "sizes"), sizes[i]);
		src->art[i].size = json_is_integer(sz) ? (int64_t)json_integer_value(sz) : -1;
		if (!src->art[i].url && !src->art[i].path)
			return svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED,
					     "bundle %s does not say where its %s came from",
					     src->bundle_id, label[i]);
	}
	return 0;
}

json_t *img_ensure_cached(svm_images *im, const char *id, bool full_verify, svm_error *err)
{
	/* a look before the lock: asking for a bundle that is not there leaves no
	 * lock file behind (the lock is taken, and the bundle read again, below) */
	json_t *seen = img_read_bundle(im, id);
	int lk = seen ? img_lock_bundle(im, id, true) : -1;
	json_decref(seen);
	json_t *b = lk >= 0 ? img_read_bundle(im, id) : NULL;
	if (!b) {
		img_unlock_bundle(lk);
		svm_error_set(err, SVM_NOT_FOUND, "no cached bundle %s", id);
		return NULL;
	}
	char why[512];
	if (check_bundle(im, b, full_verify, why, sizeof why) == 0) {
		touch(im, b);
		img_unlock_bundle(lk);
		img_prune(im, id, NULL, NULL);
		return b;
	}
	img_unlock_bundle(lk);
	sink_log(im->sink, "warning: bundle %s: %s; fetching it again", id, why);
	/* repaired from where it came from, against the checksums it was made with */
	img_source src = {0};
	json_t *fresh = NULL;
	if (source_of(im, b, &src, err) == 0)
		fresh = ensure(im, &src, true, false, err);
	img_source_free(&src);
	json_decref(b);
	return fresh;
}
