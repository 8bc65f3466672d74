/*
 * rootfiles.c - the handlers behind the root table: /ctl, /version, /paths,
 * /room and /vms/clone (the command files' writes are cmd.c's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

int fs_root_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	size_t counts[SVM_STATE_COUNT] = {0};
	svm_count_by_state(t->s, counts);
	size_t total = 0;
	char states[512] = "";
	size_t used = 0;
	for (int i = 0; i < SVM_STATE_COUNT; i++) {
		total += counts[i];
		used += (size_t)snprintf(states + used, sizeof states - used, " %s %zu",
		                         svm_state_name((svm_state)i), counts[i]);
		if (used >= sizeof states)
			break;
	}
	const svm_options *o = svm_get_options(t->s);
	*text = fs_strdupf(len, "vms %zu%s bridge %s firecracker %s\n", total, states,
	                   o && o->bridge ? o->bridge : "-", svm_fc_version(t->s));
	return *text ? 0 : ENOMEM;
}

int fs_root_room_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	char *s = svm_room_text(t->s);
	if (!s)
		return ENOMEM;
	*text = s;
	*len = strlen(s);
	return 0;
}

int fs_root_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	*text = fs_strdupf(len, "smartvmfs %s firecracker %s%s\n", SMARTVMFS_VERSION,
	                   svm_fc_version(t->s),
	                   svm_fc_emulated(t->s) ? " (emulator: fc-emulator, the test double)" : "");
	return *text ? 0 : ENOMEM;
}

int fs_root_paths_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	const svm_options *o = svm_get_options(t->s);
	*text = fs_strdupf(len, "datadir %s\nruntimedir %s\nimagecache %s\nmaximages %u\n",
	                   o->data_dir, svm_runtime_dir(t->s), o->image_cache, o->max_images);
	return *text ? 0 : ENOMEM;
}

int fs_root_command(const struct fs_target *t, const char *line, svm_error *err)
{
	int rc = svm_root_ctl(t->s, line, err);
	if (rc != 0) {
		char *echo = fs_ctl_echo(line, strlen(line)); /* one line, bounded */
		svm_note_error(t->s, echo ? echo : "", err);
		free(echo);
	}
	return rc;
}

/* ------------------------------------------------------------ /vms/clone */

void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	char *s = fs_strdupf(NULL, "%s\n", h->clone_name ? h->clone_name : "");
	if (!s) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t len = strlen(s);
	if (off < 0 || (size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, s + off, len - (size_t)off < size ? len - (size_t)off : size);
	free(s);
}
