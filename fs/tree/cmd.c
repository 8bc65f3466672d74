/*
 * cmd.c - writes to the command files (/ctl, /net/ctl, /images/ctl): the lines
 * of one write run in order, each as the row's cmd(line), on a thread of their
 * own (stopall waits for guests, a fetch for a whole download), so no FUSE
 * worker is held; the reply comes from there. The lines and the reply are the
 * line writer's (lines.c).
 *
 * FS_DETACH rows (downloads): Ctrl-C answers EINTR at once. The core cannot
 * cancel a transfer, so the line in progress finishes in the background (its
 * outcome shows in the row's files); the lines after it are not run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "lines.h"

struct cmd_job {
	struct fs_lines lines; /* first: the interrupt handler hands it back */
	const struct fs_row *row;
	bool replied;     /* fs_lines_lock: the request is answered (by Ctrl-C, or by us) */
};

/* Ctrl-C on an FS_DETACH row: answered at once, unless it was already. */
static bool cmd_interrupt(struct fs_lines *l)
{
	struct cmd_job *j = (struct cmd_job *)l;
	bool reply = !j->replied;
	j->replied = true;
	return reply;
}

/* A NUL byte or an overlong line is refused before the row's handler sees a C
 * string of it (fs_lines_next); /error says so, naming the file, since the
 * handlers' own error files (images/error) take only their own failures. */
static void note_refused(const struct fs_row *row, const struct fs_lines *l, const svm_error *err)
{
	char *echo = fs_ctl_echo(l->raw, l->raw_len);
	char cmd[FS_CTL_ECHO_MAX * 4 + 80];
	if (*row->parent)
		snprintf(cmd, sizeof cmd, "%s/%s %s", row->parent, row->name, echo ? echo : "");
	else
		snprintf(cmd, sizeof cmd, "%s", echo ? echo : "");
	free(echo);
	svm_note_error(fsd.s, cmd, err);
}

/* Runs the lines until one fails; the errno that ended the write, or 0. */
static int run_lines(struct cmd_job *j)
{
	struct fs_target t = {.s = fsd.s, .row = j->row};
	while (j->lines.pos < j->lines.len) {
		if (fs_lines_interrupted(&j->lines) || fsd.stopping)
			return EINTR;
		char *line = NULL;
		svm_error err;
		svm_error_clear(&err);
		switch (fs_lines_next(&j->lines, &line, &err)) {
		case FS_LINE_END:
			return 0;
		case FS_LINE_REFUSED:
			note_refused(j->row, &j->lines, &err);
			return svm_code_errno(err.code);
		case FS_LINE_NOMEM:
			return ENOMEM;
		case FS_LINE_RUN:
			break;
		}
		int rc = j->row->cmd(&t, line, &err);
		free(line);
		if (rc != 0)
			return fs_errno(err.code);
		fs_lines_done(&j->lines);
	}
	return 0;
}

static void *cmd_job_run(void *arg)
{
	struct cmd_job *j = arg;
	int e = run_lines(j);
	fs_lines_lock();
	fs_lines_unwatch_locked(&j->lines);
	bool reply = !j->replied;
	j->replied = true;
	fs_lines_unlock();
	if (reply) /* once what the lines changed is invalidated */
		fs_lines_reply(&j->lines, e);
	fs_lines_release(&j->lines);
	free(j);
	__atomic_sub_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

void fs_cmd_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	struct cmd_job *j = calloc(1, sizeof *j);
	if (!j || fs_lines_init(&j->lines, req, buf, size) != 0) {
		free(j);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->row = h->row;
	j->lines.on_interrupt = cmd_interrupt;
	__atomic_add_fetch(&fsd.root_jobs, 1, __ATOMIC_SEQ_CST);
	if (h->row->flags & FS_DETACH) {
		fs_lines_lock();
		fs_lines_watch_locked(&j->lines);
		fs_lines_unlock();
		/* may run the handler at once (an interrupt that came first) */
		fuse_req_interrupt_func(req, fs_lines_interrupt, NULL);
	}
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, cmd_job_run, j) != 0)
		cmd_job_run(j); /* no thread to spare: do it here */
	pthread_attr_destroy(&attr);
}
