/*
 * seal.h - the daemon's seal on the snapshots it makes.
 *
 * A snapshot's device state (vmstate) names host files the VMM opens, as root,
 * when it is loaded; its config.json names files the daemon stages. Neither may
 * come from a user: a restore loads only what this daemon wrote, for that owner.
 * The seal is an HMAC-SHA256, under a key of the data dir (DATADIR/seal.key,
 * 0600, made on first use), of the owner, the runtime dir the VMM ran in and the
 * SHA-256 of vmstate and of config.json; origin.json carries it.
 */
#ifndef SVM_SEAL_H
#define SVM_SEAL_H

#include <sys/types.h>

#include "internal.h"

#define SEAL_HEX 65 /* 64 hex digits and the NUL */

/* out: the seal of these (hashes in hex). */
int seal_make(svm *s, uid_t owner, const char *rundir, const char *vmstate_sha,
	      const char *config_sha, char out[SEAL_HEX], svm_error *err);
/* Whether seal is the seal of these. */
bool seal_check(svm *s, uid_t owner, const char *rundir, const char *vmstate_sha,
		const char *config_sha, const char *seal);

#endif
