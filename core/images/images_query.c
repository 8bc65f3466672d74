/*
 * images_query.c - what the /images/ tree shows: the bundle list, one bundle's
 * facts, its status and the preset pointers. Nothing here touches the network
 * or hashes: each answer costs a readdir, a small JSON read and a stat or two.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "images_int.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool contains(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* A cache entry is listed once its manifest is there (a bundle being written
 * has none yet). */
static bool is_bundle(void *ud, const char *dir, const struct dirent *de)
{
	(void)ud;
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/%s/manifest.json", dir, de->d_name);
	return img_valid_name(de->d_name) && access(path, F_OK) == 0;
}

char **images_list(svm_images *im, size_t *count)
{
	size_t n = 0;
	char **v = svm_dir_names(im->cache_dir, is_bundle, NULL, &n);
	size_t cap = n + 1;
	/* and those being downloaded: their status shows the progress */
	pthread_mutex_lock(&im->mu);
	for (size_t i = 0; v && i < im->nflights; i++) {
		if (contains(v, n, im->flights[i].id))
			continue;
		if (svm_grow(&v, &cap, n + 2, sizeof *v) < 0)
			break;
		v[n++] = strdup(im->flights[i].id);
	}
	pthread_mutex_unlock(&im->mu);
	if (!v)
		return NULL;
	v[n] = NULL;
	qsort(v, n, sizeof *v, cmp_str);
	if (count)
		*count = n;
	return v;
}

static char *jdup(const json_t *b, const char *key)
{
	const char *s = json_string_value(json_object_get(b, key));
	return strdup(s ? s : "");
}

int images_bundle_info(svm_images *im, const char *id, images_bundle *out, svm_error *err)
{
	memset(out, 0, sizeof *out);
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/%s/manifest.json", im->cache_dir, id ? id : "");
	if (!img_valid_name(id))
		return svm_error_set(err, SVM_NOT_FOUND, "no cached bundle %s", id ? id : "");
	/* one read: the text shown is the text the fields come from */
	FILE *f = fopen(path, "re");
	if (!f)
		return svm_error_set(err, SVM_NOT_FOUND, "no cached bundle %s", id);
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	if (fstat(fileno(f), &st) == 0 && st.st_size < IMG_MAX_MANIFEST_BYTES) {
		text = calloc(1, (size_t)st.st_size + 1);
		len = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
	}
	fclose(f);
	json_t *b = text ? json_loadb(text, len, 0, NULL) : NULL;
	if (!json_is_object(b)) {
		free(text);
		json_decref(b);
		return svm_error_set(err, SVM_NOT_FOUND, "no cached bundle %s", id);
	}
	text[len] = '\0';
	out->manifest_json = text;
	out->id = strdup(id);
	img_fmt(path, sizeof path, "%s/%s", im->cache_dir, id);
	out->dir = strdup(path);
	out->preset = jdup(b, "preset");
	out->arch = jdup(b, "arch");
	out->kernel = jdup(b, "kernelImagePath");
	out->rootfs = jdup(b, "rootfsPath");
	out->boot_args = jdup(b, "bootArgs");
	out->rootfs_type = jdup(b, "rootfsType");
	out->fc_version = jdup(b, "firecrackerVersion");
	out->rootfs_read_only = json_is_true(json_object_get(b, "rootfsIsReadOnly"));
	json_t *sizes = json_object_get(b, "sizes");
	out->kernel_bytes = (uint64_t)json_integer_value(json_object_get(sizes, "kernelBytes"));
	out->rootfs_bytes = (uint64_t)json_integer_value(json_object_get(sizes, "rootfsBytes"));
	out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	json_decref(b);
	return 0;
}

void images_bundle_clear(images_bundle *b)
{
	free(b->id);
	free(b->dir);
	free(b->preset);
	free(b->arch);
	free(b->kernel);
	free(b->rootfs);
	free(b->boot_args);
	free(b->rootfs_type);
	free(b->fc_version);
	free(b->manifest_json);
	memset(b, 0, sizeof *b);
}

static void progress_text(char *buf, size_t len, const img_flight *f)
{
	char t[2][32];
	for (int i = 0; i < 2; i++) {
		if (f->total[i])
			img_fmt(t[i], sizeof t[i], "%llu", (unsigned long long)f->total[i]);
		else
			img_fmt(t[i], sizeof t[i], "?");
	}
	img_fmt(buf, len, "kernel %llu/%s\nrootfs %llu/%s\n", (unsigned long long)f->done[0], t[0],
		 (unsigned long long)f->done[1], t[1]);
}

/* Stamps as they were recorded (no hashing: "changed" only says a re-hash is due). */
static bool stamps_hold(svm_images *im, const char *id)
{
	json_t *b = img_read_bundle(im, id);
	if (!b)
		return false;
	static const char *const keys[2] = {"kernelImagePath", "rootfsPath"};
	static const char *const lab[2] = {"kernel", "rootfs"};
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		struct stat st;
		const char *p = json_string_value(json_object_get(b, keys[i]));
		ok = p && stat(p, &st) == 0 &&
		     img_stamp_matches(json_object_get(json_object_get(b, "stamps"), lab[i]), &st);
	}
	json_decref(b);
	return ok;
}

char *images_status(svm_images *im, const char *id, svm_error *err)
{
	char buf[256];
	pthread_mutex_lock(&im->mu);
	img_flight *f = NULL;
	for (size_t i = 0; id && i < im->nflights; i++)
		if (!strcmp(im->flights[i].id, id))
			f = &im->flights[i];
	if (f)
		progress_text(buf, sizeof buf, f);
	pthread_mutex_unlock(&im->mu);
	if (f)
		return strdup(buf);
	char path[PATH_MAX];
	img_fmt(path, sizeof path, "%s/%s/manifest.json", im->cache_dir, id ? id : "");
	if (!img_valid_name(id) || access(path, F_OK) < 0) {
		svm_error_set(err, SVM_NOT_FOUND, "no bundle %s", id ? id : "");
		return NULL;
	}
	return strdup(stamps_hold(im, id) ? "ready\n" : "changed\n");
}

char *images_preset_target(svm_images *im, const char *preset)
{
	if (!preset || (strcmp(preset, "latest") && strcmp(preset, "lts") && strcmp(preset, "hosted")))
		return NULL;
	return img_preset_get(im, preset);
}

char *images_summary(svm_images *im)
{
	size_t n = 0, used = 0, cap = 1024;
	char *out = calloc(1, cap);
	char **ids = images_list(im, &n);
	for (size_t i = 0; out && i < n + 8; i++) {
		char line[1024] = "";
		if (i < n) {
			char *st = images_status(im, ids[i], NULL);
			if (st) {
				for (char *p = st; *p; p++)
					if (*p == '\n')
						*p = p[1] ? ' ' : '\0';
			}
			img_fmt(line, sizeof line, "%s %s\n", ids[i], st ? st : "gone");
			free(st);
		} else if (i < n + 3) {
			static const char *const presets[] = {"latest", "lts", "hosted"};
			char *t = img_preset_get(im, presets[i - n]);
			if (t)
				img_fmt(line, sizeof line, "%s %s\n", presets[i - n], t);
			free(t);
		} else if (i == n + 3) {
			pthread_mutex_lock(&im->mu);
			if (im->last_failure)
				img_fmt(line, sizeof line, "last failure: %s\n", im->last_failure);
			pthread_mutex_unlock(&im->mu);
		} else if (i == n + 4) {
			/* where, and how many: the cache and its retention limit */
			img_fmt(line, sizeof line, "cache %s maximages %u\n", im->cache_dir, im->max_images);
		} else if (i == n + 5) {
			char *v = images_fc_versions(im);
			if (v && *v)
				img_fmt(line, sizeof line, "firecracker %s\n", v);
			free(v);
		} else if (i == n + 6) {
			pthread_mutex_lock(&im->mu);
			if (im->last_prune)
				img_fmt(line, sizeof line, "last prune: evicted %s\n", im->last_prune);
			pthread_mutex_unlock(&im->mu);
		} else if (i == n + 7) {
			pthread_mutex_lock(&im->mu);
			if (im->fc_progress)
				img_fmt(line, sizeof line, "firecracker downloading %s\n", im->fc_progress);
			pthread_mutex_unlock(&im->mu);
		}
		size_t l = strlen(line);
		if (used + l + 1 > cap) {
			char *no = realloc(out, cap = (used + l + 1) * 2);
			if (!no)
				break;
			out = no;
		}
		memcpy(out + used, line, l + 1);
		used += l;
	}
	svm_strv_free(ids);
	return out;
}
