/*
 * ctl.c - writes to a VM's ctl: one verb per line, run in order, answered when
 * the work is done. The lines and the reply are the line writer's (lines.c);
 * here each line runs as one of the core's asynchronous ops.
 *
 * No FUSE worker waits for a VM: the first line is submitted from the request
 * thread with svm_vm_submit(), and each completion, on the op's own thread,
 * submits the next line or replies (the events the op caused were handled on
 * that thread before, so the reply finds them in the kernel's view; a reply
 * behind events still queued for the pump waits for them). Ctrl-C on the
 * writer makes the kernel send INTERRUPT; we cancel the op in flight (the core
 * rolls it back) and the completion replies EINTR. Every failure goes to the
 * VM's error file, echoing the command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "lines.h"

struct ctl_job {
	struct fs_lines lines; /* first: the interrupt handler hands it back */
	svm_vm *vm;          /* our reference */
	char *line;          /* the line in flight, trimmed */
	char *echo;          /* the line as the error file echoes it (fs_ctl_echo) */
	char *args;          /* scratch copy the request's argv points into */
	uint64_t submitted;  /* ops submitted so far */
	uint64_t finished;   /* ops whose done() ran */
	svm_op *op;          /* the op in flight, until its done() starts */
	int refs;            /* fs_lines_lock: the job itself, and a thread past svm_vm_submit */
};

/* The line's parser is FUSE-free (ctlparse.c, shared with the fuzz target);
 * here it gets the -o paths check of allow_other. */
static int parse_line(const char *line, char *scratch, svm_request *r, svm_error *err)
{
	if (fs_ctl_parse_line(line, scratch, r, err) != 0)
		return -1;
	/* with allow_other, host paths must lie under -o paths (a snapshot NAME,
	 * without '/', is kept in the VM's own snapshot directory) */
	const char *path = fs_ctl_path_arg(r);
	if (path && !fs_path_allowed(path))
		return svm_error_set(err, SVM_PERMISSION, "host path %s is not under -o paths", path);
	return 0;
}

static void job_free(struct ctl_job *j)
{
	if (j->vm)
		svm_vm_unref(j->vm);
	fs_lines_release(&j->lines);
	free(j->line);
	free(j->echo);
	free(j->args);
	free(j);
}

/* The op may complete, and its thread finish the whole job, before the thread
 * that submitted it is done with it: whoever drops the last reference frees. */
static void job_unref(struct ctl_job *j)
{
	fs_lines_lock();
	bool last = --j->refs == 0;
	fs_lines_unlock();
	if (last)
		job_free(j);
}

static void job_finish(struct ctl_job *j, const svm_error *err)
{
	fs_lines_lock();
	fs_lines_unwatch_locked(&j->lines);
	fs_lines_unlock();
	fs_lines_reply(&j->lines, err && err->code != SVM_OK ? fs_errno(err->code) : 0);
	job_unref(j);
}

static void job_fail(struct ctl_job *j, const char *line, const svm_error *err)
{
	svm_vm_note_error(j->vm, line, err);
	job_finish(j, err);
}

static void ctl_continue(struct ctl_job *j, const svm_error *err);

static void ctl_done(void *ud, const svm_error *err)
{
	struct ctl_job *j = ud;
	fs_lines_lock();
	j->op = NULL; /* gone once we return: the interrupt handler must not touch it */
	j->finished++;
	fs_lines_unlock();
	ctl_continue(j, err); /* the op's thread: the next line is submitted, not run */
}

/* Submits the parsed line; its completion continues the job (ctl_continue). */
static void submit(struct ctl_job *j, svm_request *r)
{
	fs_lines_lock();
	uint64_t n = ++j->submitted;
	j->refs++; /* ours until the bookkeeping below is done */
	fs_lines_unlock();
	svm_op *op = svm_vm_submit(j->vm, r, ctl_done, j);
	if (!op) {
		int e = errno;
		job_unref(j);
		/* the host's limit of threads (ulimit -u, TasksMax=) or memory */
		svm_error err;
		svm_error_clear(&err);
		svm_error_set(&err, e == EAGAIN || e == ENOMEM ? SVM_NO_SPACE : SVM_START_FAILED,
		              "could not submit \"%s\": no thread for it: %s", j->echo, strerror(e));
		job_fail(j, j->echo, &err);
		return;
	}
	/* done() may already have run on a core thread (and be at the
	 * next line, or have finished the job): only an op still in flight is
	 * remembered. */
	fs_lines_lock();
	if (j->finished < n) {
		j->op = op;
		if (j->lines.interrupted) /* Ctrl-C came between submit and here */
			svm_op_cancel(op);
	}
	fs_lines_unlock();
	job_unref(j);
}

/* Runs the next line that is not blank, or finishes the job when none is left.
 * Called on the request thread for the first line, on the op's thread after. */
static void job_step(struct ctl_job *j)
{
	char *line = NULL;
	svm_error err;
	svm_error_clear(&err);
	enum fs_line_take got = fs_lines_next(&j->lines, &line, &err);
	if (got == FS_LINE_END) {
		job_finish(j, NULL);
		return;
	}
	free(j->echo);
	j->echo = fs_ctl_echo(j->lines.raw, j->lines.raw_len);
	free(j->line);
	j->line = line;
	free(j->args);
	j->args = line ? strdup(line) : NULL;
	if (!j->echo || got == FS_LINE_NOMEM || (got == FS_LINE_RUN && !j->args)) {
		svm_error_set(&err, SVM_NO_SPACE, "out of memory");
		job_finish(j, &err);
		return;
	}
	if (got == FS_LINE_REFUSED) {
		job_fail(j, j->echo, &err);
		return;
	}
	if (fs_lines_interrupted(&j->lines) || fsd.stopping) {
		svm_error_set(&err, SVM_INTERRUPTED, "interrupted");
		job_fail(j, j->echo, &err);
		return;
	}
	svm_request r;
	if (parse_line(j->line, j->args, &r, &err) != 0) {
		job_fail(j, j->echo, &err);
		return;
	}
	submit(j, &r);
}

/* On the op's thread, when it completes. */
static void ctl_continue(struct ctl_job *j, const svm_error *err)
{
	if (err && err->code != SVM_OK) {
		job_fail(j, j->echo, err);
		return;
	}
	fs_lines_done(&j->lines);
	job_step(j);
}

/* Ctrl-C: the op in flight is cancelled; its completion replies. Under
 * fs_lines_lock, so done() cannot finish and the op handle is valid here. */
static bool ctl_interrupt(struct fs_lines *l)
{
	struct ctl_job *j = (struct ctl_job *)l;
	if (j->op)
		svm_op_cancel(j->op);
	return false;
}

void fs_vm_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off; /* commands, not bytes at a place */
	struct ctl_job *j = calloc(1, sizeof *j);
	if (!j || fs_lines_init(&j->lines, req, buf, size) != 0) {
		free(j);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->lines.on_interrupt = ctl_interrupt;
	j->refs = 1;
	svm_vm_ref(h->t.vm);
	j->vm = h->t.vm;
	fuse_req_interrupt_func(req, fs_lines_interrupt, NULL);
	fs_lines_lock();
	if (fuse_req_interrupted(req)) {
		fs_lines_unlock();
		fuse_reply_err(req, EINTR);
		job_free(j);
		return;
	}
	fs_lines_watch_locked(&j->lines);
	fs_lines_unlock();
	job_step(j);
}
