/*
 * images.h - Firecracker binaries and base-image bundles (internal to core):
 * the seed's ImageManager and BaseImageManager in C, plus the operations of
 * /images/ctl.
 *
 * Layout on disk (the seed's, so a smartvm 1.3.1 can share the directories):
 *   DATADIR/bin/VERSION/{firecracker,jailer}   release binaries, mode 0755
 *   DATADIR/kernels/NAME, DATADIR/rootfs/NAME   import, blank, clone
 *   CACHE/ID/manifest.json                      one bundle (seed's IBaseImageBundle
 *   CACHE/ID/<kernel>, CACHE/ID/<rootfs>         plus "stamps", see docs/images.md)
 *   CACHE/.preset-latest, CACHE/.preset-lts      the bundle each preset last resolved to
 *   CACHE/.ID.lock                               single flight (flock) per bundle
 *   CACHE/.ID.partial-XXXXXX                     a download in progress (never a bundle)
 *
 * Settings: images_settings (copied by images_new), from the orchestrator's
 * options.
 *
 * Every function is thread-safe. Functions that download block the calling thread;
 * none of them holds a lock of the orchestrator or of a VM while it waits.
 */
#ifndef SVM_IMAGES_H
#define SVM_IMAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "smartvm.h"
#include "svmlog.h"

typedef struct svm_images svm_images;

typedef struct images_settings {
	const char *data_dir, *cache_dir, *arch;
	const char *manifest;       /* -o manifest, or NULL */
	const char *firecracker;    /* -o firecracker: the one binary, or NULL */
	const char *fc_version;     /* -o fcversion, or NULL */
	const char *default_config; /* -o config's JSON (its bootArgs count as a default) */
	const char *releases_url, *ci_bucket_url; /* NULL: the defaults */
	unsigned max_images;        /* 0: 2 */
	/* A host path a user names in /images/ctl (a local manifest, a clone's
	 * source) is taken only where this says (the mount's -o paths). */
	bool (*path_allowed)(void *ud, const char *path);
	void *path_ud;
} images_settings;

/* Validates the settings (INVALID_BASE_IMAGE_CACHE_LIMIT, ...); touches no network.
 * Lines go to sink. */
svm_images *images_new(const images_settings *set, svm_sink *sink, svm_error *err);
void images_free(svm_images *im);
/* The mount is ending: every transfer stops. */
void images_cancel(svm_images *im);

/* Before a VM starts: if cfg has "image", ensures that bundle (downloading it if
 * needed) and fills bootSource.kernelImagePath, bootSource.bootArgs and a root
 * drive from it, where cfg does not already say them (explicit fields win).
 * cfg is the start's private copy, modified in place. *version gets the
 * bundle's Firecracker version (malloc'd) or NULL.
 *   "latest"/"lts": the bundle the preset last resolved to, if it is cached
 *   (no network then); else the preset is resolved and fetched.
 *   "hosted": the -o manifest bundle. Anything else: a cached bundle id, or the id
 *   of the -o manifest bundle.
 * The bundle taken is held for the caller (*held, malloc'd, NULL without an image):
 * it gives it back with images_release when its VMM has ended. */
int images_apply(svm_images *im, json_t *cfg, char **version, char **held, svm_error *err);

/* The VMM binary to start: the configured -o firecracker, or the cached (and, on
 * first use, downloaded) release for the configured -o fcversion, else version,
 * else the newest cached release, else the latest release. Returns a malloc'd path. */
char *images_firecracker(svm_images *im, const char *version, svm_error *err);

/* Bundles in use by a VM are never pruned or evicted: a VM holds the bundle that
 * images_apply gave it from its start until its VMM has ended (holds are counted). */
void images_hold(svm_images *im, const char *bundle_id);
void images_release(svm_images *im, const char *bundle_id);

/* ------------------------------------------------ the /images/ctl operations */

/* One line written to /images/ctl:
 *   fetch latest | fetch lts | fetch hosted | fetch manifest PATH-OR-URL [force]
 *   (force also after latest/lts/hosted) | verify ID | prune | evict ID |
 *   blank NAME MIB | clone SRC NAME | import kernel|rootfs URL NAME
 * A failure is also kept as the "last failure" of images_summary().
 * An unknown verb: INVALID_ARGUMENT 'unknown control message "LINE"'. */
int images_ctl(svm_images *im, const char *line, svm_error *err);

/* fetch latest|lts|hosted: resolves the preset (network) and ensures its bundle;
 * *bundle_id (may be NULL) gets its id. force downloads again even if cached. */
int images_fetch(svm_images *im, const char *preset, bool force, char **bundle_id,
		 svm_error *err);
/* The same for another arch's Firecracker CI bundle (latest, lts; NULL: this
 * host's): fetched into the cache, never made this host's preset. */
int images_fetch_arch(svm_images *im, const char *preset, const char *arch, bool force,
		      char **bundle_id, svm_error *err);
/* fetch manifest PATH-OR-URL (http:// or https:// is a URL, anything else a path). */
int images_fetch_manifest(svm_images *im, const char *path_or_url, bool force,
			  char **bundle_id, svm_error *err);
/* Re-hashes both artifacts of a cached bundle whatever their stamps say; a
 * mismatch is logged and the bundle fetched again from its recorded source. */
int images_verify(svm_images *im, const char *id, svm_error *err);
/* Applies the retention limit now. *evicted (may be NULL) gets the evicted ids,
 * NULL-terminated (svm_strv_free). */
int images_prune(svm_images *im, char ***evicted, svm_error *err);
/* prune [keep ID]: the same, never evicting keep (NULL: none); what it evicted
 * goes to the log and to the summary's "last prune" line. */
int images_prune_keeping(svm_images *im, const char *keep, svm_error *err);
/* firecracker VERSION|latest: the release binary in DATADIR/bin/VERSION, fetched
 * if missing (whatever -o firecracker says). Returns its path (malloc'd). */
char *images_fetch_firecracker(svm_images *im, const char *version, svm_error *err);
/* Removes one cached bundle. NOT_FOUND if absent; INVALID_STATE (EBUSY) while a
 * VM uses it or a fetch of it runs. */
int images_evict(svm_images *im, const char *id, svm_error *err);
/* DATADIR/rootfs/NAME: an empty sparse ext4 image of mib MiB (mkfs.ext4).
 * Returns its path. EXISTS if NAME is taken; ROOTFS_CREATE_FAILED. */
char *images_blank(svm_images *im, const char *name, unsigned mib, svm_error *err);
/* DATADIR/rootfs/NAME: a copy of SRC (an absolute path, a name in DATADIR/rootfs,
 * or a cached bundle id / latest / lts for its rootfs), reflinked where the
 * filesystem can, else copied sparse. ROOTFS_CLONE_FAILED, NOT_FOUND, EXISTS. */
char *images_clone(svm_images *im, const char *src, const char *name, svm_error *err);
/* kind "kernel" or "rootfs": downloads URL to DATADIR/kernels/NAME or
 * DATADIR/rootfs/NAME. DOWNLOAD_FAILED, EXISTS. With sha256 (64 hex digits, else
 * INVALID_ARGUMENT) a download of other bytes is DOWNLOAD_FAILED and leaves
 * nothing; images_import() takes none. */
char *images_import_checked(svm_images *im, const char *kind, const char *url, const char *name,
			    const char *sha256, svm_error *err);
char *images_import(svm_images *im, const char *kind, const char *url, const char *name,
		    svm_error *err);

/* ---------------------------------------------------------- what is there */

/* Ids of the cached bundles and of those being downloaded, sorted,
 * NULL-terminated (svm_strv_free). */
char **images_list(svm_images *im, size_t *count);

typedef struct images_bundle {
	char *id, *dir, *preset, *arch;
	char *kernel, *rootfs;       /* absolute host paths */
	char *boot_args, *rootfs_type, *fc_version;
	bool rootfs_read_only;
	uint64_t kernel_bytes, rootfs_bytes;
	char *manifest_json;         /* manifest.json as it is on disk */
	int64_t mtime_ns;            /* of manifest.json (changes on each use) */
} images_bundle;
/* A cached (complete) bundle; NOT_FOUND otherwise. No network, no hashing; does
 * not count as a use. Free with images_bundle_clear. */
int images_bundle_info(svm_images *im, const char *id, images_bundle *out, svm_error *err);
void images_bundle_clear(images_bundle *b);

/* The status file: while downloading "kernel DONE/TOTAL\nrootfs DONE/TOTAL\n"
 * (TOTAL "?" when not known yet), then "ready\n"; "changed\n" when an artifact's
 * stamp no longer matches (it is re-hashed at its next use). NULL + NOT_FOUND. */
char *images_status(svm_images *im, const char *id, svm_error *err);
/* "latest" or "lts": the id of the cached bundle the preset last resolved to, or
 * NULL. No network. */
char *images_preset_target(svm_images *im, const char *preset);
/* The read side of /images/ctl: one line per bundle ("ID ready", "ID kernel 5/9
 * rootfs 0/?"), "latest ID", "lts ID", and "last failure: ..." if any. */
char *images_summary(svm_images *im);
/* The newest Firecracker version under DATADIR/bin ("v1.15.1"), or NULL. No network. */
char *images_cached_fc_version(svm_images *im);
/* Parses a retention limit (-o maximages): a positive integer, else
 * INVALID_BASE_IMAGE_CACHE_LIMIT. */
int images_parse_cache_limit(const char *text, unsigned *out, svm_error *err);

/* What changed, for the filesystem to invalidate its cached attributes. */
typedef enum images_event {
	IMAGES_EV_STATUS,  /* id's status changed (progress, rate-limited; ready; failed) */
	IMAGES_EV_ADDED,   /* bundle id appeared in the cache (or in progress) */
	IMAGES_EV_REMOVED, /* bundle id left the cache (evicted, pruned, failed) */
	IMAGES_EV_CHANGED, /* bundle id's manifest.json changed (a use, a re-fetch) */
	IMAGES_EV_PRESET,  /* id is "latest" or "lts": it points elsewhere now */
	IMAGES_EV_CTL,     /* the summary changed (last failure); id is NULL */
} images_event;
/* fn runs on the thread doing the work, with no lock of images held; it must not
 * block nor call back into images. */
typedef void (*images_event_fn)(void *ud, images_event ev, const char *id);
void images_set_hook(svm_images *im, images_event_fn fn, void *ud);

#endif
