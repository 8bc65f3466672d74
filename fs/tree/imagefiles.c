/*
 * imagefiles.c - /images: base-image bundles (docs/images.md).
 *
 *   /images/ctl            r: svm_images_summary  w: svm_images_ctl, one line at a time
 *   /images/error          the last failures of /images/ctl lines
 *   /images/latest, lts    symlinks to the bundle directory a preset last resolved to
 *   /images/ID/            one directory per bundle: the bundle table below
 *   /images/kernels/NAME   symlinks to files made by import (rootfs/: blank, clone, import)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

int fs_images_summary_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return fs_text_take(svm_images_summary(t->s), text, len);
}

int fs_images_command(const struct fs_target *t, const char *line, svm_error *err)
{
	/* host paths in the line are the core's to check, on the words it runs
	 * (svm_set_host_roots): one parser */
	int rc = svm_images_ctl(t->s, line, err);
	/* blank/clone/import make files no core event names: look again */
	svm_event ev = {.kind = SVM_EV_IMAGES};
	fs_on_core_event(NULL, &ev);
	return rc;
}

/* latest, lts: relative links to the sibling bundle directory */
char *fs_images_preset_link(const struct fs_target *t)
{
	return svm_images_preset(t->s, t->row->name);
}

char **fs_images_list(const struct fs_target *t, size_t *count)
{
	return svm_images_list(t->s, count);
}

/* kernels/, rootfs/: the row's name is the core's kind */
char **fs_images_user_list(const struct fs_target *t, size_t *count)
{
	return svm_images_user_files(t->s, t->row->name, count);
}

char *fs_images_user_link(const struct fs_target *t)
{
	return svm_images_user_file(t->s, t->row->name, t->id);
}

int fs_bundle_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	char *s = svm_image_file(t->s, t->id, t->row->name, err);
	if (!s) {
		int e = svm_code_errno(err->code);
		return e ? e : ENOENT;
	}
	return fs_text_take(s, text, len);
}

char *fs_bundle_link(const struct fs_target *t)
{
	return svm_image_file(t->s, t->id, t->row->name, NULL);
}
