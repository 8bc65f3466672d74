/*
 * rootfiles.c - the handlers behind the root table: /ctl, /version, /error, /log
 * and /vms/clone; and the command files (/ctl, /net/ctl, /images/ctl).
 */
#include <errno.h>
#include <pthread.h>
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

/* ------------------------------------------------------------ command files */

/* /ctl, /net/ctl, /images/ctl: the lines of one write run in order on a thread
 * of their own (stopall waits for guests, a fetch for a whole download), so no
 * FUSE worker is held; the reply comes from there. The rules of the VM ctl
 * apply: at the first failure the write returns the bytes of the lines that
 * succeeded, or the errno if the first line failed.
 *
 * FS_DETACH rows (downloads): Ctrl-C answers EINTR at once. The core cannot
 * cancel a transfer, so the line in progress finishes in the background (its
 * outcome shows in the row's files); the lines after it are not run. */
struct cmd_job {
	fuse_req_t req;
	const struct fs_row *row;
	char *text;
	size_t len;
	bool replied;     /* cmd_lock: the request is answered (by Ctrl-C, or by us) */
	bool interrupted; /* cmd_lock */
	struct cmd_job *next;
};

static pthread_mutex_t cmd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cmd_job *cmd_jobs; /* in flight, for the interrupt handler */

int fs_root_command(const struct fs_target *t, const char *line, svm_error *err)
{
	int rc;
	if (!strcmp(line, "stopall"))
		rc = svm_stop_all(t->s, err);
	else if (!strcmp(line, "cleanup"))
		rc = svm_cleanup(t->s, err);
	else if (!strcmp(line, "purge"))
		rc = svm_purge(t->s, err);
	else
		rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
	if (rc != 0) {
		char *echo = fs_ctl_echo(line, strlen(line)); /* one line, bounded */
		svm_note_error(t->s, echo ? echo : "", err);
		free(echo);
	}
	return rc;
}

static void cmd_interrupt(fuse_req_t req, void *data)
{
	(void)data;
	bool reply = false;
	pthread_mutex_lock(&cmd_lock);
	for (struct cmd_job *j = cmd_jobs; j; j = j->next)
		if (j->req == req) {
			j->interrupted = true;
			reply = !j->replied;
			j->replied = true;
			break;
		}
	pthread_mutex_unlock(&cmd_lock);
	if (reply)
		fuse_reply_err(req, EINTR);
}

/* A NUL byte or an overlong line is refused before the row's handler sees a C
 * string of it (fs_ctl_check_bytes); /error says so, naming the file, since the
 * handlers' own error files (images/error) take only their own failures.
 * Returns true (e set) when refused. */
static bool refuse_bytes(const struct fs_row *row, const char *bytes, size_t len, int *e)
{
	svm_error err;
	svm_error_clear(&err);
	if (fs_ctl_check_bytes(bytes, len, &err) == 0)
		return false;
	char *echo = fs_ctl_echo(bytes, len);
	char cmd[FS_CTL_ECHO_MAX * 4 + 80];
	if (*row->parent)
		snprintf(cmd, sizeof cmd, "%s/%s %s", row->parent, row->name, echo ? echo : "");
	else
		snprintf(cmd, sizeof cmd, "%s", echo ? echo : "");
	free(echo);
	svm_note_error(fsd.s, cmd, &err);
	*e = svm_code_errno(err.code);
	return true;
}

static void *cmd_job_run(void *arg)
{
	struct cmd_job *j = arg;
	struct fs_target t = {.s = fsd.s, .row = j->row};
	size_t pos = 0, ok = 0;
	int e = 0;
	while (pos < j->len) {
		pthread_mutex_lock(&cmd_lock);
		bool stop = j->interrupted;
		pthread_mutex_unlock(&cmd_lock);
		if (stop || fsd.stopping) {
			e = EINTR;
			break;
		}
		char *nl = memchr(j->text + pos, '\n', j->len - pos);
		size_t linelen = nl ? (size_t)(nl - (j->text + pos)) + 1 : j->len - pos;
		if (refuse_bytes(j->row, j->text + pos, nl ? linelen - 1 : linelen, &e))
			break;
		char *line = strndup(j->text + pos, nl ? linelen - 1 : linelen);
		if (!line) {
			e = ENOMEM;
			break;
		}
		char *cmd = fs_line_trim(line);
		svm_error err;
		svm_error_clear(&err);
		int rc = *cmd ? j->row->cmd(&t, cmd, &err) : 0;
		free(line);
		if (rc != 0) {
			e = fs_errno(err.code);
			break;
		}
		pos += linelen;
		ok += linelen;
	}
	pthread_mutex_lock(&cmd_lock);
	for (struct cmd_job **pp = &cmd_jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	bool reply = !j->replied;
	j->replied = true;
	pthread_mutex_unlock(&cmd_lock);
	if (reply) { /* once what the lines changed is invalidated */
		if (e && ok == 0)
			fs_reply_err_fresh(j->req, e);
		else
			fs_reply_write_fresh(j->req, ok);
	}
	free(j->text);
	free(j);
	__atomic_sub_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

void fs_cmd_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	struct cmd_job *j = calloc(1, sizeof *j);
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
	j->row = h->row;
	__atomic_add_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	if (h->row->flags & FS_DETACH) {
		pthread_mutex_lock(&cmd_lock);
		j->next = cmd_jobs;
		cmd_jobs = j;
		pthread_mutex_unlock(&cmd_lock);
		/* may run cmd_interrupt at once (an interrupt that came first) */
		fuse_req_interrupt_func(req, cmd_interrupt, NULL);
	}
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, cmd_job_run, j) != 0)
		cmd_job_run(j); /* no thread to spare: do it here */
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
