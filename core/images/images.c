/*
 * images.c - the images object and its operations: settings, the event hook,
 * and what the core and /images/ctl call (fetch, apply, verify, prune, evict).
 * The state every images file shares (flights, holds, events) is in
 * images_state.c; the work itself is in the other images_*.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "images_int.h"
#include "safedir.h"

#define MAX_DIR_LEN 3000 /* + "/" + id (200) + "/" + file name (200) + suffixes < PATH_MAX */

static char *dup_or(const char *v, const char *def)
{
	return strdup(v && *v ? v : def);
}

/* "https://host/path/" -> "https://host/path": URLs are joined with '/' */
static char *url_setting(const char *v, const char *def)
{
	char *u = dup_or(v, def);
	size_t n = u ? strlen(u) : 0;
	while (n > 1 && u[n - 1] == '/')
		u[--n] = '\0';
	return u;
}

svm_images *images_new(const images_settings *o, svm_sink *sink, svm_error *err)
{
	if (o->max_images > INT_MAX) {
		svm_error_set(err, SVM_INVALID_BASE_IMAGE_CACHE_LIMIT,
			      "maxStoredBaseImages must be a positive integer");
		return NULL;
	}
	if (strlen(o->data_dir) > MAX_DIR_LEN || strlen(o->cache_dir) > MAX_DIR_LEN) {
		svm_error_set(err, SVM_NAME_TOO_LONG, "data dir or image cache path over %d bytes",
			      MAX_DIR_LEN);
		return NULL;
	}
	/* The cache's manifests name the kernels and rootfs VMs boot, and its
	 * default lies in the data dir; one set elsewhere (-o imagecache=/tmp/...)
	 * gets the same care: a real directory, ours, 0700 - never one another
	 * user planted (a symlink, their directory) to feed us bundles. */
	if (safedir_make(o->cache_dir, err) < 0)
		return NULL;
	svm_images *im = calloc(1, sizeof *im);
	if (!im) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	im->sink = sink;
	pthread_mutex_init(&im->mu, NULL);
	im->data_dir = strdup(o->data_dir);
	im->cache_dir = strdup(o->cache_dir);
	im->arch = strdup(o->arch);
	im->manifest = o->manifest ? strdup(o->manifest) : NULL;
	im->firecracker = o->firecracker ? strdup(o->firecracker) : NULL;
	im->fc_version_opt = o->fc_version ? strdup(o->fc_version) : NULL;
	im->default_config = o->default_config ? strdup(o->default_config) : NULL;
	im->path_allowed = o->path_allowed;
	im->path_ud = o->path_ud;
	im->releases_url = url_setting(o->releases_url, IMG_DEFAULT_RELEASES_URL);
	im->ci_bucket_url = url_setting(o->ci_bucket_url, IMG_DEFAULT_CI_BUCKET_URL);
	im->max_images = o->max_images ? o->max_images : 2;
	return im;
}

void images_cancel(svm_images *im)
{
	atomic_store(&im->cancelled, true);
}

void images_free(svm_images *im)
{
	if (!im)
		return;
	for (size_t i = 0; i < im->nflights; i++)
		free(im->flights[i].id);
	for (size_t i = 0; i < im->nholds; i++)
		free(im->holds[i].bundle_id);
	free(im->flights);
	free(im->holds);
	free(im->last_failure);
	free(im->last_prune);
	free(im->fc_progress);
	free(im->data_dir);
	free(im->cache_dir);
	free(im->arch);
	free(im->manifest);
	free(im->firecracker);
	free(im->fc_version_opt);
	free(im->default_config);
	free(im->releases_url);
	free(im->ci_bucket_url);
	pthread_mutex_destroy(&im->mu);
	free(im);
}

void images_set_hook(svm_images *im, images_event_fn fn, void *ud)
{
	pthread_mutex_lock(&im->mu);
	im->hook = fn;
	im->hook_ud = ud;
	pthread_mutex_unlock(&im->mu);
}

/* ------------------------------------------------------------ operations */

static bool is_preset(const char *w)
{
	return !strcmp(w, "latest") || !strcmp(w, "lts") || !strcmp(w, "hosted");
}

static char *take_id(json_t *b)
{
	return strdup(json_string_value(json_object_get(b, "bundleId")));
}

int images_fetch_manifest(svm_images *im, const char *where, bool force, char **bundle_id,
			  svm_error *err)
{
	img_source src = {0};
	json_t *b = NULL;
	if (img_resolve_manifest(im, where, &src, err) == 0)
		b = img_ensure(im, &src, force, err);
	img_source_free(&src);
	if (!b)
		return -1;
	if (bundle_id)
		*bundle_id = take_id(b);
	json_decref(b);
	return 0;
}

int images_fetch(svm_images *im, const char *preset, bool force, char **bundle_id,
		 svm_error *err)
{
	return images_fetch_arch(im, preset, NULL, force, bundle_id, err);
}

int images_fetch_arch(svm_images *im, const char *preset, const char *arch, bool force,
		      char **bundle_id, svm_error *err)
{
	img_source src = {0};
	json_t *b = NULL;
	if (arch && strcmp(arch, "x86_64") != 0 && strcmp(arch, "aarch64") != 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "fetch: arch \"%s\": x86_64 or aarch64",
				     arch);
	bool other = arch && strcmp(arch, im->arch) != 0;
	if (other && strcmp(preset, "latest") != 0 && strcmp(preset, "lts") != 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "fetch %s: arch is for the Firecracker "
				     "CI presets (latest, lts); a manifest names its own", preset);
	if (!strcmp(preset, "hosted")) {
		if (!im->manifest)
			return svm_error_set(err, SVM_BASE_IMAGE_MANIFEST_FAILED,
					     "The hosted base image preset requires manifestUrl, "
					     "manifestPath, or a manager-level hosted manifest option "
					     "(-o manifest=PATH-OR-URL)");
		if (img_resolve_manifest(im, im->manifest, &src, err) == 0)
			b = img_ensure(im, &src, force, err);
	} else if (!strcmp(preset, "latest") || !strcmp(preset, "lts")) {
		if (img_resolve_preset(im, preset, arch ? arch : im->arch, &src, err) == 0)
			b = img_ensure(im, &src, force, err);
	} else {
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "fetch: \"%s\": latest, lts, hosted or manifest PATH-OR-URL", preset);
	}
	img_source_free(&src);
	if (!b)
		return -1;
	char *id = take_id(b);
	json_decref(b);
	if (!other)
		img_preset_set(im, preset, id); /* another arch's is not this host's latest */
	else
		sink_log(im->sink, "images: %s for %s fetched as %s (not this host's %s)", preset, arch, id,
			preset);
	if (bundle_id)
		*bundle_id = id;
	else
		free(id);
	return 0;
}

/* "latest"/"lts"/"hosted": the remembered bundle, else resolved now; an id: the
 * cached bundle, else the -o manifest bundle if it has that id. */
static json_t *bundle_for(svm_images *im, const char *word, svm_error *err)
{
	if (is_preset(word)) {
		char *id = img_preset_get(im, word);
		json_t *b = NULL;
		if (id) {
			b = img_ensure_cached(im, id, false, err);
			free(id);
			if (b)
				return b;
		}
		if (images_fetch(im, word, false, &id, err) < 0)
			return NULL;
		b = img_read_bundle(im, id);
		free(id);
		if (!b)
			svm_error_set(err, SVM_BASE_IMAGE_PREPARE_FAILED, "bundle of %s vanished", word);
		return b;
	}
	json_t *rec = img_read_bundle(im, word);
	if (rec) {
		json_decref(rec);
		return img_ensure_cached(im, word, false, err);
	}
	if (im->manifest) {
		img_source src = {0};
		json_t *b = NULL;
		if (img_resolve_manifest(im, im->manifest, &src, err) == 0 && !strcmp(src.bundle_id, word))
			b = img_ensure(im, &src, false, err);
		else if (src.bundle_id)
			svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
				      "base image \"%s\" is not cached (the configured manifest is %s)",
				      word, src.bundle_id);
		img_source_free(&src);
		return b;
	}
	svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
		      "base image \"%s\" is not cached (fetch it first: fetch latest | lts | "
		      "manifest PATH-OR-URL)", word);
	return NULL;
}

/* The boot args a new VM gets unless told otherwise: such args are a default,
 * not a choice, and must not hide the image's (a squashfs root needs its "ro
 * rootfstype=squashfs"). */
static bool default_boot_args(svm_images *im, const char *args)
{
	json_t *d = svm_config_default();
	const char *def = json_string_value(json_object_get(json_object_get(d, "bootSource"), "bootArgs"));
	bool same = def && !strcmp(def, args);
	json_decref(d);
	if (!same && im->default_config) {
		d = json_loads(im->default_config, 0, NULL);
		def = json_string_value(json_object_get(json_object_get(d, "bootSource"), "bootArgs"));
		same = def && !strcmp(def, args);
		json_decref(d);
	}
	return same;
}

static void fill_config(svm_images *im, json_t *cfg, const json_t *b)
{
	json_t *bs = json_object_get(cfg, "bootSource");
	if (!json_is_object(bs)) {
		bs = json_object();
		json_object_set_new(cfg, "bootSource", bs);
	}
	const char *kernel = json_string_value(json_object_get(bs, "kernelImagePath"));
	if (!kernel || !*kernel)
		json_object_set(bs, "kernelImagePath", json_object_get(b, "kernelImagePath"));
	const char *args = json_string_value(json_object_get(bs, "bootArgs"));
	if (!args || !*args || default_boot_args(im, args))
		json_object_set(bs, "bootArgs", json_object_get(b, "bootArgs"));
	json_t *drives = json_object_get(cfg, "drives");
	if (!json_is_array(drives)) {
		drives = json_array();
		json_object_set_new(cfg, "drives", drives);
	}
	size_t i;
	json_t *d;
	bool have_root = false, id_taken = false;
	json_array_foreach(drives, i, d) {
		have_root |= json_is_true(json_object_get(d, "isRootDevice"));
		const char *did = json_string_value(json_object_get(d, "driveId"));
		id_taken |= did && !strcmp(did, "rootfs");
	}
	if (have_root)
		return;
	json_array_insert_new(drives, 0,
			      json_pack("{s:s, s:O, s:b, s:O}", "driveId", id_taken ? "image_rootfs" : "rootfs",
					"pathOnHost", json_object_get(b, "rootfsPath"), "isRootDevice", 1,
					"isReadOnly", json_object_get(b, "rootfsIsReadOnly")));
}

int images_apply(svm_images *im, json_t *cfg, char **version, char **held, svm_error *err)
{
	*version = NULL;
	*held = NULL;
	const char *image = json_string_value(json_object_get(cfg, "image"));
	if (!image)
		return 0;
	if (!img_valid_name(image))
		return svm_error_set(err, SVM_INVALID_CONFIG, "image \"%s\" is not a bundle id", image);
	json_t *b = bundle_for(im, image, err);
	if (!b)
		return -1;
	const char *id = json_string_value(json_object_get(b, "bundleId"));
	fill_config(im, cfg, b);
	*held = id ? strdup(id) : NULL;
	images_hold(im, *held);
	const char *v = json_string_value(json_object_get(b, "firecrackerVersion"));
	*version = v && *v ? strdup(v) : NULL;
	json_decref(b);
	return 0;
}

int images_verify(svm_images *im, const char *id, svm_error *err)
{
	json_t *b = img_ensure_cached(im, id, true, err);
	if (!b)
		return -1;
	json_decref(b);
	sink_log(im->sink, "images: bundle %s verified", id);
	return 0;
}

int images_prune(svm_images *im, char ***evicted, svm_error *err)
{
	return img_prune(im, NULL, evicted, err);
}

int images_prune_keeping(svm_images *im, const char *keep, svm_error *err)
{
	char **ev = NULL;
	if (img_prune(im, keep, &ev, err) < 0) {
		svm_strv_free(ev);
		return -1;
	}
	/* what it evicted, said in the log and in the read-out of images/ctl */
	size_t len = 1;
	for (size_t i = 0; ev && ev[i]; i++)
		len += strlen(ev[i]) + 1;
	char *list = calloc(1, len + 8);
	for (size_t i = 0; list && ev && ev[i]; i++) {
		if (i)
			strcat(list, " ");
		strcat(list, ev[i]);
	}
	if (list && !*list)
		strcpy(list, "nothing");
	sink_log(im->sink, "images: prune%s%s evicted %s", keep ? " keeping " : "", keep ? keep : "",
		list ? list : "?");
	pthread_mutex_lock(&im->mu);
	free(im->last_prune);
	im->last_prune = list;
	pthread_mutex_unlock(&im->mu);
	svm_strv_free(ev);
	return 0;
}

int images_evict(svm_images *im, const char *id, svm_error *err)
{
	return img_evict(im, id, true, err);
}

int images_parse_cache_limit(const char *text, unsigned *out, svm_error *err)
{
	char *end = NULL;
	errno = 0;
	long long v = text && *text && isdigit((unsigned char)*text) ? strtoll(text, &end, 10) : -1;
	if (v < 1 || v > INT_MAX || errno || !end || *end)
		return svm_error_set(err, SVM_INVALID_BASE_IMAGE_CACHE_LIMIT,
				     "maxStoredBaseImages must be a positive integer (got \"%s\")",
				     text ? text : "");
	*out = (unsigned)v;
	return 0;
}
