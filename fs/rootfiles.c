/*
 * rootfiles.c - the handlers behind the root table: /ctl, /version, /error, /log
 * and /vms/clone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

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

int fs_root_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	*text = fs_strdupf(len, "smartvmfs %s firecracker %s\n", SMARTVMFS_VERSION,
	                   svm_fc_version(t->s));
	return *text ? 0 : ENOMEM;
}

static int owned_text(char *s, char **text, size_t *len)
{
	if (!s)
		s = strdup("");
	if (!s)
		return ENOMEM;
	*text = s;
	*len = strlen(s);
	return 0;
}

int fs_root_error_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return owned_text(svm_error_text(t->s), text, len);
}

int fs_root_log_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return owned_text(svm_log_text(t->s), text, len);
}

/* ------------------------------------------------------------ /ctl writes */

/* stopall waits for guests to shut down: it runs on its own thread so no FUSE
 * worker is held, and replies from there. */
struct root_job {
	fuse_req_t req;
	char *text;
	size_t len;
};

static int root_command(const char *line, svm_error *err)
{
	if (!strcmp(line, "stopall"))
		return svm_stop_all(fsd.s, err);
	if (!strcmp(line, "cleanup"))
		return svm_cleanup(fsd.s, err);
	return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
}

static void *root_job_run(void *arg)
{
	struct root_job *j = arg;
	size_t pos = 0, ok = 0;
	int e = 0;
	while (pos < j->len) {
		char *nl = memchr(j->text + pos, '\n', j->len - pos);
		size_t linelen = nl ? (size_t)(nl - (j->text + pos)) + 1 : j->len - pos;
		char *line = strndup(j->text + pos, nl ? linelen - 1 : linelen);
		if (!line) {
			e = ENOMEM;
			break;
		}
		char *cmd = fs_line_trim(line);
		svm_error err;
		svm_error_clear(&err);
		if (*cmd && root_command(cmd, &err) != 0) {
			svm_note_error(fsd.s, cmd, &err);
			e = svm_code_errno(err.code) ? svm_code_errno(err.code) : EIO;
			free(line);
			break;
		}
		free(line);
		pos += linelen;
		ok += linelen;
	}
	if (e && ok == 0)
		fuse_reply_err(j->req, e);
	else
		fuse_reply_write(j->req, ok);
	free(j->text);
	free(j);
	__atomic_sub_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

void fs_root_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)h, (void)off;
	struct root_job *j = calloc(1, sizeof *j);
	if (j)
		j->text = malloc(size ? size : 1);
	if (!j || !j->text) {
		free(j);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(j->text, buf, size);
	j->len = size;
	j->req = req;
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	__atomic_add_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	if (pthread_create(&th, &attr, root_job_run, j) != 0)
		root_job_run(j); /* no thread to spare: do it here */
	pthread_attr_destroy(&attr);
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
