/*
 * images_int.h - what the images_*.c files share: the object, the resolved
 * source of a bundle, and the helpers each file provides.
 */
#ifndef SVM_IMAGES_INT_H
#define SVM_IMAGES_INT_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base.h"
#include "images.h"

#define IMG_DEFAULT_RELEASES_URL "https://github.com/firecracker-microvm/firecracker/releases"
#define IMG_DEFAULT_CI_BUCKET_URL "https://s3.amazonaws.com/spec.ccfc.min"
#define IMG_LTS_CI_VERSION "v1.7"
#define IMG_LTS_FC_VERSION "v1.7.0"
#define IMG_MAX_MANIFEST_BYTES (1024 * 1024)

enum { IMG_KERNEL = 0, IMG_ROOTFS = 1 };

/* A download in progress (the status file of a bundle being fetched). */
typedef struct img_flight {
	char *id;
	uint64_t done[2], total[2]; /* total 0: not known yet */
	uint64_t last_emit_ns;
	int refs;                   /* fetches of this id in this process */
} img_flight;

typedef struct img_hold {
	char *bundle_id;
	int count;
} img_hold;

struct svm_images {
	svm_sink *sink;
	char *data_dir, *cache_dir, *arch, *manifest, *releases_url, *ci_bucket_url;
	char *firecracker, *fc_version_opt, *default_config;
	bool (*path_allowed)(void *ud, const char *path);
	void *path_ud;
	unsigned max_images;
	atomic_bool cancelled; /* the mount is ending: every transfer stops */
	pthread_mutex_t mu; /* guards everything below */
	img_flight *flights;
	size_t nflights;
	img_hold *holds;
	size_t nholds;
	char *last_failure;
	char *last_prune;     /* what the last prune evicted ("a b", "nothing") */
	char *fc_progress;    /* a Firecracker release downloading: "vX.Y.Z DONE/TOTAL" */
	images_event_fn hook;
	void *hook_ud;
	uint64_t hashes; /* artifacts hashed from disk (tests: a cache hit hashes none) */
};

/* One artifact of a bundle, where it comes from and what it must be. */
typedef struct img_artifact {
	char *url;       /* download from ... */
	char *path;      /* ... or copy from */
	char *file_name; /* its name in the bundle dir */
	char *sha256;    /* expected, lowercase hex, or NULL */
	int64_t size;    /* expected, or -1 */
} img_artifact;

/* A bundle resolved, before anything is downloaded (seed: IResolvedBaseImageSource). */
typedef struct img_source {
	char *preset, *arch, *ci_version, *fc_version, *bundle_id, *boot_args, *rootfs_type;
	bool rootfs_ro;
	img_artifact art[2];
	json_t *source; /* the bundle's "source" object */
} img_source;

void img_source_free(img_source *src);

/* snprintf without GCC's truncation warnings: our paths are bounded (images_new
 * refuses directories that could overflow PATH_MAX with an id and a file name),
 * and a message may be cut. Returns what snprintf returns. */
int img_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* images.c: events, flights, holds */
void img_emit(svm_images *im, images_event ev, const char *id);
bool img_in_use(svm_images *im, const char *id);
/* A download of id runs: its status shows progress (nested begins are counted). */
void img_flight_begin(svm_images *im, const char *id);
void img_flight_end(svm_images *im, const char *id);
bool img_flight_active(svm_images *im, const char *id);
void img_flight_progress(svm_images *im, const char *id, int which, uint64_t done,
			 uint64_t total);
bool img_valid_name(const char *name); /* [A-Za-z0-9_-][A-Za-z0-9._-]*, <= 200 */

/* images_http.c: libcurl transfers; every error is a message in msg (no code) */
typedef int (*img_progress_fn)(void *ud, uint64_t done, uint64_t total);
/* GET url into memory (at most max bytes); fails on status >= 400 (*status gets it). */
char *img_http_get(const char *url, size_t max, size_t *len, long *status, char *msg,
		   size_t msglen);
/* HEAD url following redirects; the effective URL (malloc'd). */
char *img_http_effective_url(const char *url, char *msg, size_t msglen);
/* GET url into fd, hashing into sha_hex (65 bytes) as it goes; expected < 0: not
 * known. Fails on status >= 400, a short or long body, a size != expected. */
int img_http_download(const char *url, int fd, int64_t expected, char *sha_hex,
		      uint64_t *bytes, img_progress_fn fn, void *ud, long *status, char *msg,
		      size_t msglen);

/* images_hash.c: SHA-256 (libcrypto EVP) and stamps */
typedef struct img_hasher img_hasher;
img_hasher *img_hasher_new(void);
void img_hasher_update(img_hasher *h, const void *buf, size_t len);
void img_hasher_final(img_hasher *h, char *hex); /* frees h; hex: 65 bytes */
int img_sha256_file(svm_images *im, const char *path, char *hex);
json_t *img_stamp_of(const struct stat *st);
bool img_stamp_matches(const json_t *stamp, const struct stat *st);
bool img_hex64(const char *s);
void img_lower(char *s);

/* images_ci.c: the Firecracker CI presets */
int img_latest_fc_version(svm_images *im, char *out, size_t outlen, svm_error *err);
char *images_fc_versions(svm_images *im);
int img_resolve_preset(svm_images *im, const char *preset, const char *arch, img_source *src,
		       svm_error *err);
char *img_boot_args(const char *arch, const char *rootfs_type);
char *img_sanitize(const char *s); /* [^A-Za-z0-9._-] -> _ */

/* images_manifest.c: hosted manifests */
int img_resolve_manifest(svm_images *im, const char *path_or_url, img_source *src,
			 svm_error *err);
bool img_version_ok(const char *v); /* v1.2.3 */
int img_validate_manifest(const json_t *m, const char *arch, bool remote, svm_error *err);

/* images_bundle.c: the cache */
/* Ensures the bundle of src (downloads it unless cached and intact, or force).
 * Returns its manifest (new reference). */
json_t *img_ensure(svm_images *im, img_source *src, bool force, svm_error *err);
/* A cached bundle by id: checked by stamp (re-hashed if changed, fetched again from
 * its recorded source if damaged), its access time updated. */
json_t *img_ensure_cached(svm_images *im, const char *id, bool full_verify, svm_error *err);
json_t *img_read_bundle(svm_images *im, const char *id); /* complete bundle or NULL */
int img_prune(svm_images *im, const char *keep, char ***evicted, svm_error *err);
int img_evict(svm_images *im, const char *id, bool explicit_op, svm_error *err);
/* flock on CACHE/.locks/ID.lock: the fd, or -1 (busy when !wait) */
int img_lock_bundle(svm_images *im, const char *id, bool wait);
void img_unlock_bundle(int fd);
char *img_preset_get(svm_images *im, const char *preset);
void img_preset_set(svm_images *im, const char *preset, const char *id);
int img_rm_rf(const char *path);
int img_mkdir_p(const char *path, mode_t mode);
int img_write_file(const char *path, const char *text, bool sync);
char *img_iso_now(void);

/* images_fc.c */
char *img_which(const char *prog); /* absolute path of a program, or NULL */

/* images_proc.c: child processes from an argv */
/* Runs argv with stdin /dev/null; stdout to out_fd (or /dev/null if < 0), at most
 * out_cap bytes (0: no cap) when out_fd >= 0; stderr's tail into msg. Returns
 * 0 when it exits 0. */
int img_run(char *const argv[], int out_fd, uint64_t out_cap, char *msg, size_t msglen);

#endif
