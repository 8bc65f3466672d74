/*
 * access.c - who may do what once other users can see the mount (allow_other).
 *
 * Without allow_other the kernel lets no one but the mount's owner in, and
 * nothing here applies. With it: a VM belongs to the uid that created it (the
 * kernel's default_permissions already checks the mode bits against the owner we
 * report; this is the same rule for root-run daemons and for callers the mode
 * does not cover), and every host path a user hands the daemon - in config.json
 * or in a verb - must lie under one of the -o paths directories, because the
 * daemon opens it with its own rights.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serve.h"

int fs_may_write_vm(fuse_req_t req, svm_vm *vm)
{
	if (!fsd.allow_other)
		return 0;
	uid_t uid = fuse_req_ctx(req)->uid;
	if (uid == 0 || uid == fsd.mount_uid || uid == svm_vm_owner_uid(vm))
		return 0;
	return EACCES;
}

/* The -o paths directories become the core's host roots: every host path a
 * user names is opened with the VM owner's rights beneath one of them, when it
 * is used (core/base/hostpath.h). Here they are also the early answer to a config
 * write or a verb, and the mount warns of one that other users may write to. */
/* A directory others may write to: what they plant there, any user may name. */
static void warn_if_writable(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	char who[64] = "";
	if (st.st_mode & S_IWOTH)
		snprintf(who, sizeof who, "every user");
	else if ((st.st_mode & S_IWGRP) && st.st_gid != 0)
		snprintf(who, sizeof who, "group %u", (unsigned)st.st_gid);
	else if ((st.st_mode & S_IWUSR) && st.st_uid != 0)
		snprintf(who, sizeof who, "uid %u", (unsigned)st.st_uid);
	if (who[0])
		svm_log(fsd.s, "warning: -o paths: %s is writable by %s (mode %04o): what is planted "
		        "there, any user of this mount may name", dir, who, (unsigned)(st.st_mode & 07777));
}

int fs_paths_init(const char *spec)
{
	if (!fsd.allow_other || !spec)
		return 0;
	size_t cap = 1;
	for (const char *p = spec; *p; p++)
		cap += *p == ':';
	fsd.paths = calloc(cap + 1, sizeof *fsd.paths);
	char *copy = strdup(spec);
	if (!fsd.paths || !copy) {
		free(copy);
		return -1;
	}
	size_t n = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (tok[0] != '/')
			continue; /* only absolute directories make sense */
		if (!(fsd.paths[n] = strdup(tok))) {
			free(copy);
			return -1;
		}
		n++;
	}
	free(copy);
	for (size_t i = 0; i < n; i++)
		warn_if_writable(fsd.paths[i]);
	svm_error err;
	if (svm_set_host_roots(fsd.s, (const char *const *)fsd.paths, &err) != 0) {
		fprintf(stderr, "smartvmfs: -o paths: %s\n", err.message);
		return -1;
	}
	return 0;
}

bool fs_path_allowed(const char *path)
{
	if (!fsd.allow_other)
		return true;
	return svm_host_path_allowed(fsd.s, path);
}

/* Host paths in the config document: every string under a key that names a path
 * (kernelImagePath, initrdPath, pathOnHost, udsPath, logPath, metricsPath, …). */
static bool is_path_key(const char *key)
{
	size_t n = strlen(key);
	return (n >= 4 && !strcmp(key + n - 4, "Path")) || !strcmp(key, "pathOnHost") ||
	       !strcmp(key, "path");
}

static const char *first_bad_path(json_t *v)
{
	const char *key;
	json_t *child;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) {
			if (json_is_string(child) && is_path_key(key)) {
				if (!fs_path_allowed(json_string_value(child)))
					return json_string_value(child);
			} else {
				const char *bad = first_bad_path(child);
				if (bad)
					return bad;
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			const char *bad = first_bad_path(child);
			if (bad)
				return bad;
		}
	}
	return NULL;
}

/* A host interface a config names (hostDevName): any link of the host, the
 * daemon's own bridge or another user's TAP among them. Only root may. */
static const char *named_host_link(json_t *doc)
{
	json_t *ifs = json_object_get(doc, "networkInterfaces"), *nif;
	size_t i;
	json_array_foreach(ifs, i, nif) {
		const char *dev = json_string_value(json_object_get(nif, "hostDevName"));
		if (dev && *dev)
			return dev;
	}
	return NULL;
}

int fs_config_paths_allowed(const char *text, size_t len, uid_t owner, svm_error *err)
{
	if (!fsd.allow_other)
		return 0;
	json_t *doc = json_loadb(text, len, 0, NULL);
	if (!doc)
		return 0; /* not JSON: the core says why */
	const char *bad = first_bad_path(doc), *link = owner != 0 ? named_host_link(doc) : NULL;
	int rc = 0;
	if (bad)
		rc = svm_error_set(err, SVM_PERMISSION, "host path %s is not under -o paths", bad);
	else if (link)
		rc = svm_error_set(err, SVM_PERMISSION, "hostDevName %s names a host interface, which "
		                   "only root may (allow_other): leave it out, and the daemon makes the "
		                   "VM's TAP", link);
	json_decref(doc);
	return rc;
}

/* The core asks at each start and restore (svm_options.check_config). */
int fs_check_config_at_start(void *ud, uid_t owner, const char *json, size_t len, svm_error *err)
{
	(void)ud;
	return fs_config_paths_allowed(json, len, owner, err);
}

/* ------------------------------------------------------------ the shared error file */

/* The root error file is every user's: with allow_other, one user's failures
 * (a loop of bad mkdirs) may not push out everyone else's lines. Each user other
 * than root and the mount's owner has a bucket of SHARED_BURST lines, refilled
 * one per SHARED_REFILL_S; what is left out is counted and said with the next
 * line that goes in. */
#define SHARED_BURST 20
#define SHARED_REFILL_S 2

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket {
	uid_t uid;
	double tokens;
	uint64_t last_ns;
	unsigned dropped;
} *buckets;
static size_t nbuckets;

static struct bucket *bucket_of(uid_t uid, uint64_t now)
{
	for (size_t i = 0; i < nbuckets; i++)
		if (buckets[i].uid == uid)
			return &buckets[i];
	struct bucket *b = realloc(buckets, (nbuckets + 1) * sizeof *b);
	if (!b)
		return NULL;
	buckets = b;
	buckets[nbuckets] = (struct bucket){uid, SHARED_BURST, now, 0};
	return &buckets[nbuckets++];
}

void fs_note_shared_error(fuse_req_t req, const char *cmd, const svm_error *err)
{
	uid_t uid = req ? fuse_req_ctx(req)->uid : 0;
	if (!fsd.allow_other || uid == 0 || uid == fsd.mount_uid) {
		svm_note_error(fsd.s, cmd, err);
		return;
	}
	uint64_t now = fs_now_ns();
	pthread_mutex_lock(&shared_lock);
	struct bucket *b = bucket_of(uid, now);
	unsigned dropped = 0;
	bool ok = true;
	if (b) {
		b->tokens += (double)(now - b->last_ns) / 1e9 / SHARED_REFILL_S;
		if (b->tokens > SHARED_BURST)
			b->tokens = SHARED_BURST;
		b->last_ns = now;
		ok = b->tokens >= 1;
		if (ok) {
			b->tokens -= 1;
			dropped = b->dropped;
			b->dropped = 0;
		} else {
			b->dropped++;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	if (!ok)
		return;
	if (!dropped) {
		svm_note_error(fsd.s, cmd, err);
		return;
	}
	char with[1200];
	snprintf(with, sizeof with, "%s (and %u earlier failures of uid %u, not shown)", cmd, dropped,
	         (unsigned)uid);
	svm_note_error(fsd.s, with, err);
}
