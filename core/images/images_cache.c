/*
 * images_cache.c - the bundle cache as a directory: reading bundle manifests,
 * the preset pointers, retention (least recently used first) and eviction.
 *
 * Every change to CACHE/ID happens under CACHE/.locks/ID.lock (flock), so two
 * threads or two processes never build, replace or remove the same bundle at
 * once. A bundle directory appears and disappears by rename(), so a reader sees
 * a complete bundle or none.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "jsonfile.h"
#include "images_int.h"

/* ------------------------------------------------------------ fs helpers */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int img_rm_rf(const char *path)
{
	/* FTW_PHYS: never follow a symlink out of the tree being removed */
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT ? 0 : -1;
}

int img_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	img_fmt(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

int img_write_file(const char *path, const char *text, bool sync)
{
	char tmp[PATH_MAX];
	img_fmt(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int rc = (w == (ssize_t)n && fchmod(fd, 0644) == 0 && (!sync || fsync(fd) == 0)) ? 0 : -1;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

char *img_iso_now(void)
{
	/* the seed's Date.toISOString(): 2024-01-03T00:00:00.000Z */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char buf[64];
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	img_fmt(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return strdup(buf);
}

/* ------------------------------------------------------------ bundles */

json_t *img_read_bundle(svm_images *im, const char *id)
{
	if (!img_valid_name(id))
		return NULL;
	char path[PATH_MAX], dir[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->cache_dir, id);
	img_fmt(path, sizeof path, "%s/manifest.json", dir);
	json_t *b = svm_json_load_path(path, 1u << 20, JSON_DECODE_ANY, NULL);
	if (!json_is_object(b) || !json_is_string(json_object_get(b, "kernelImagePath")) ||
	    !json_is_string(json_object_get(b, "rootfsPath"))) {
		json_decref(b);
		return NULL;
	}
	/* as the seed: the directory it was found in is its bundleDir */
	json_object_set_new(b, "bundleDir", json_string(dir));
	return b;
}

int img_lock_bundle(svm_images *im, const char *id, bool wait)
{
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/.locks", im->cache_dir);
	img_mkdir_p(path, 0755);
	img_fmt(path, sizeof path, "%s/.locks/%s.lock", im->cache_dir, id);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

void img_unlock_bundle(int fd)
{
	if (fd >= 0)
		close(fd); /* closing drops the flock */
}

typedef struct cached {
	char *id;
	const char *accessed;
	int64_t mtime_ns;
	json_t *b;
} cached;

static void cached_free(cached *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		json_decref(v[i].b);
	}
	free(v);
}

/* Every complete bundle (a directory with a readable manifest.json). */
static cached *list_bundles(svm_images *im, size_t *count)
{
	*count = 0;
	DIR *d = opendir(im->cache_dir);
	if (!d)
		return NULL;
	cached *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		json_t *b = img_read_bundle(im, e->d_name);
		if (!b)
			continue;
		if (svm_grow(&v, &cap, n + 1, sizeof *v) < 0) {
			json_decref(b);
			break;
		}
		char mpath[PATH_MAX];
		struct stat st;
		img_fmt(mpath, sizeof mpath, "%s/%s/manifest.json", im->cache_dir, e->d_name);
		v[n].id = strdup(e->d_name);
		v[n].b = b;
		v[n].accessed = json_string_value(json_object_get(b, "lastAccessedAt"));
		if (!v[n].accessed)
			v[n].accessed = "";
		v[n].mtime_ns = stat(mpath, &st) == 0
					? (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec
					: 0;
		n++;
	}
	closedir(d);
	*count = n;
	return v;
}

static const char *sort_keep;

/* newest access first; ISO 8601 times of one format sort as strings; ties by
 * the manifest's mtime (two uses within one millisecond) */
static int by_recency(const void *pa, const void *pb)
{
	const cached *a = pa, *b = pb;
	if (sort_keep) {
		if (!strcmp(a->id, sort_keep))
			return -1;
		if (!strcmp(b->id, sort_keep))
			return 1;
	}
	int c = strcmp(b->accessed, a->accessed);
	if (c)
		return c;
	return a->mtime_ns < b->mtime_ns ? 1 : a->mtime_ns > b->mtime_ns ? -1 : strcmp(a->id, b->id);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

int img_prune(svm_images *im, const char *keep, char ***evicted, svm_error *err)
{
	(void)err;
	if (evicted)
		*evicted = calloc(1, sizeof **evicted);
	size_t n;
	cached *v = list_bundles(im, &n);
	pthread_mutex_lock(&sort_mu); /* qsort has no user pointer: keep is a static */
	sort_keep = keep;
	qsort(v, n, sizeof *v, by_recency);
	sort_keep = NULL;
	pthread_mutex_unlock(&sort_mu);
	size_t nev = 0;
	for (size_t i = im->max_images; i < n; i++) {
		if (img_in_use(im, v[i].id)) {
			sink_log(im->sink, "warning: base image cache is over its limit of %u bundle(s), but "
				       "%s is in use by a running VM: kept", im->max_images, v[i].id);
			continue;
		}
		sink_log(im->sink, "warning: base image cache stores at most %u bundle(s). Evicting %s "
			       "from %s/%s. Configure maximages to change this behavior.",
			im->max_images, v[i].id, im->cache_dir, v[i].id);
		svm_error e2;
		if (img_evict(im, v[i].id, false, &e2) < 0) {
			sink_log(im->sink, "warning: could not evict %s: %s", v[i].id, e2.message);
			continue;
		}
		if (evicted) {
			char **nv = realloc(*evicted, (nev + 2) * sizeof *nv);
			if (nv) {
				*evicted = nv;
				nv[nev++] = strdup(v[i].id);
				nv[nev] = NULL;
			}
		}
	}
	cached_free(v, n);
	return 0;
}

int img_evict(svm_images *im, const char *id, bool explicit_op, svm_error *err)
{
	if (!img_valid_name(id))
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "evict: \"%s\" is not a bundle id", id);
	char dir[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/%s", im->cache_dir, id);
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return svm_error_set(err, SVM_NOT_FOUND, "no cached bundle %s", id);
	if (img_in_use(im, id))
		return svm_error_set(err, SVM_INVALID_STATE, "bundle %s is in use by a running VM", id);
	int lk = img_lock_bundle(im, id, false);
	if (lk < 0 || img_flight_active(im, id)) {
		img_unlock_bundle(lk);
		return svm_error_set(err, SVM_INVALID_STATE, "bundle %s is being fetched", id);
	}
	/* checked again under the lock: a start may have taken it meanwhile */
	if (img_in_use(im, id)) {
		img_unlock_bundle(lk);
		return svm_error_set(err, SVM_INVALID_STATE, "bundle %s is in use by a running VM", id);
	}
	/* out of sight first (one rename), then removed at leisure */
	char gone[PATH_MAX];
	img_fmt(gone, sizeof gone, "%s/.%s.evicted-XXXXXX", im->cache_dir, id);
	int rc = 0;
	if (!mkdtemp(gone) || rename(dir, gone) < 0) {
		rc = svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED, "cannot remove %s: %s", dir,
				   strerror(errno));
		rmdir(gone);
	} else {
		img_rm_rf(gone);
	}
	img_unlock_bundle(lk);
	if (rc == 0) {
		if (explicit_op)
			sink_log(im->sink, "images: evicted %s", id);
		img_emit(im, IMAGES_EV_REMOVED, id);
		static const char *const presets[] = {"latest", "lts", "hosted"};
		for (size_t i = 0; i < 3; i++) {
			char path[PATH_MAX], cur[256] = "";
			img_fmt(path, sizeof path, "%s/.preset-%s", im->cache_dir, presets[i]);
			FILE *f = fopen(path, "re");
			if (f) {
				if (fgets(cur, sizeof cur, f))
					cur[strcspn(cur, "\n")] = '\0';
				fclose(f);
			}
			if (!strcmp(cur, id)) {
				unlink(path);
				img_emit(im, IMAGES_EV_PRESET, presets[i]);
			}
		}
	}
	return rc;
}

/* ------------------------------------------------------------ presets */

char *img_preset_get(svm_images *im, const char *preset)
{
	char path[PATH_MAX], id[256] = "";
	img_fmt(path, sizeof path, "%s/.preset-%s", im->cache_dir, preset);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	if (!fgets(id, sizeof id, f))
		id[0] = '\0';
	fclose(f);
	id[strcspn(id, "\n")] = '\0';
	img_fmt(path, sizeof path, "%s/%s/manifest.json", im->cache_dir, id);
	if (!img_valid_name(id) || access(path, F_OK) < 0)
		return NULL;
	return strdup(id);
}

void img_preset_set(svm_images *im, const char *preset, const char *id)
{
	char path[PATH_MAX], text[300];
	char *cur = img_preset_get(im, preset);
	bool same = cur && !strcmp(cur, id);
	free(cur);
	if (same)
		return;
	img_fmt(path, sizeof path, "%s/.preset-%s", im->cache_dir, preset);
	img_fmt(text, sizeof text, "%s\n", id);
	if (img_write_file(path, text, false) == 0)
		img_emit(im, IMAGES_EV_PRESET, preset);
}
