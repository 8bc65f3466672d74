/* images.c - placeholder until base images land: only -o firecracker=PATH and
 * explicit kernels work. */
#include <stdlib.h>
#include <string.h>

#include "images.h"
#include "internal.h"
#include "vmm.h"

struct svm_images {
	svm *s;
};

svm_images *images_new(svm *s, svm_error *err)
{
	(void)err;
	svm_images *im = calloc(1, sizeof *im);
	if (im)
		im->s = s;
	return im;
}

void images_free(svm_images *im) { free(im); }

int images_apply(svm_images *im, json_t *cfg, char **version, svm_error *err)
{
	(void)im;
	*version = NULL;
	const char *image = json_string_value(json_object_get(cfg, "image"));
	if (!image)
		return 0;
	return svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
			     "base image \"%s\": base images are not available in this build yet", image);
}

char *images_firecracker(svm_images *im, const char *version, svm_error *err)
{
	(void)version;
	if (vmm_check_binary(im->s->firecracker, err) < 0)
		return NULL;
	return strdup(im->s->firecracker);
}

void images_hold(svm_images *im, const char *bundle_id) { (void)im; (void)bundle_id; }
void images_release(svm_images *im, const char *bundle_id) { (void)im; (void)bundle_id; }
