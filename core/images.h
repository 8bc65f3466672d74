/*
 * images.h - Firecracker binaries and base-image bundles (internal to core):
 * the seed's ImageManager and BaseImageManager in C.
 */
#ifndef SVM_IMAGES_H
#define SVM_IMAGES_H

#include <jansson.h>
#include "smartvm.h"

typedef struct svm_images svm_images;

/* Validates the settings (INVALID_BASE_IMAGE_CACHE_LIMIT, ...); touches no network. */
svm_images *images_new(svm *s, svm_error *err);
void images_free(svm_images *im);

/* Before a VM starts: if cfg has "image", ensures that bundle (downloading it if
 * needed) and fills bootSource.kernelImagePath, bootSource.bootArgs and a root
 * drive from it, where cfg does not already say them (explicit fields win).
 * cfg is the start's private copy, modified in place. *version gets the
 * bundle's Firecracker version (malloc'd) or NULL. */
int images_apply(svm_images *im, json_t *cfg, char **version, svm_error *err);

/* The VMM binary to start: the configured -o firecracker, or the cached (and, on
 * first use, downloaded) release for version (NULL: the configured or latest).
 * Returns a malloc'd path. */
char *images_firecracker(svm_images *im, const char *version, svm_error *err);

/* Bundles in use by a running VM are never pruned or evicted. */
void images_hold(svm_images *im, const char *bundle_id);
void images_release(svm_images *im, const char *bundle_id);

#endif
