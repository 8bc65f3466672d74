/*
 * stagerule.h - which drives are staged: the seed's rule, pure, for staging
 * (stage.c) and for the files below it that open a drive's source (userfiles.c).
 */
#ifndef SVM_STAGERULE_H
#define SVM_STAGERULE_H

#include <jansson.h>
#include <stdbool.h>

#include "internal.h"

/* Whether a drive of cfg is staged (the rule of stage_drives, the seed's):
 * the global opt-out first, then the drive's "ephemeral"; a read-only drive
 * only when it asks for it (the guest cannot write to it). Inline: a pure rule
 * the files below staging ask too. */
static inline bool stage_wanted(const svm *s, const json_t *drive)
{
	if (s->opt.no_ephemeral)
		return false;
	const json_t *eph = json_object_get(drive, "ephemeral");
	if (json_is_false(eph))
		return false;
	if (json_is_true(json_object_get(drive, "isReadOnly")))
		return json_is_true(eph);
	return true;
}

#endif
