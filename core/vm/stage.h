/*
 * stage.h - ephemeral staging of writable drives into a VM's runtime directory
 * (internal to core), so a guest never writes to a cached or source image.
 */
#ifndef SVM_STAGE_H
#define SVM_STAGE_H

#include <jansson.h>
#include <stdbool.h>
#include "smartvm.h"
#include "stagerule.h"

/* Before a VM's VMM is spawned: copies each writable drive (unless the global
 * no_ephemeral option or the drive's "ephemeral": false says not to; read-only
 * drives only when "ephemeral": true) into vm's runtime directory and points
 * cfg's pathOnHost at the copy. cfg is the start's private copy. On failure,
 * nothing staged remains. */
int stage_drives(svm_vm *vm, json_t *cfg, svm_error *err);
/* Removes every staged copy of vm (after its VMM ended, or a failed start). */
void stage_cleanup(svm_vm *vm);
/* Its record only, for a VM whose runtime dir is gone already (nothing to
 * scan for: removed empty). */
void stage_forget(svm_vm *vm);

/* The copy staging makes, for one file: src to a new file dst (created
 * O_EXCL|O_NOFOLLOW, mode 0600): a reflink where the filesystem offers one, else
 * the data extents only (holes and zero blocks stay holes), after a check that
 * the copy fits in dst's filesystem (SVM_NO_SPACE). On failure dst does not exist.
 * For keeping a staged drive with a snapshot, or cloning an image. */
int stage_copy(const char *src, const char *dst, svm_error *err);

/* The same copy into dst, a file the caller made (with its owner's rights, in a
 * directory of theirs); name is for messages. On failure dst is the caller's to
 * remove. */
int stage_copy_into(const char *src, int dst, const char *name, svm_error *err);

#endif
