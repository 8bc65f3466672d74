/*
 * ctl.c - writes to a VM's ctl: one verb per line, run in order, answered when
 * the work is done.
 *
 * No FUSE worker waits for a VM: the first line is submitted from the request
 * thread with svm_vm_submit(), each completion is handed to the pump thread
 * (pump.c), which submits the next line or replies - once the invalidations
 * of what the lines changed are delivered (fs_reply_*_fresh). Ctrl-C on the writer
 * makes the kernel send INTERRUPT; we cancel the op in flight (the core rolls it
 * back) and the completion replies EINTR.
 *
 * The rules of DESIGN §3: at the first failure the write returns the bytes of
 * the lines that succeeded (they stay done), or the errno if the first line
 * failed; every failure goes to the VM's error file, echoing the command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

struct ctl_job {
	fuse_req_t req;
	svm_vm *vm;          /* our reference */
	char *text;          /* the bytes written */
	size_t len;
	size_t pos;          /* start of the line to run next */
	size_t ok;           /* bytes of lines that succeeded */
	size_t cur_bytes;    /* bytes of the line in flight, its newline included */
	char *line;          /* the line in flight, trimmed */
	char *echo;          /* the line as the error file echoes it (fs_ctl_echo) */
	char *args;          /* scratch copy the request's argv points into */
	uint64_t submitted;  /* ops submitted so far */
	uint64_t finished;   /* ops whose done() ran */
	svm_op *op;          /* the op in flight, until its done() starts */
	bool interrupted;
	int refs;            /* jobs_lock: the job itself, and a thread past svm_vm_submit */
	struct ctl_job *next;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctl_job *jobs; /* in flight, for the interrupt handler */

char *fs_line_trim(char *line)
{
	while (*line && isspace((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	return line;
}

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
	free(j->text);
	free(j->line);
	free(j->echo);
	free(j->args);
	free(j);
}

/* The op may complete, and the pump finish the whole job, before the thread
 * that submitted it is done with it: whoever drops the last reference frees. */
static void job_unref(struct ctl_job *j)
{
	pthread_mutex_lock(&jobs_lock);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&jobs_lock);
	if (last)
		job_free(j);
}

static void job_finish(struct ctl_job *j, const svm_error *err)
{
	pthread_mutex_lock(&jobs_lock);
	for (struct ctl_job **pp = &jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_mutex_unlock(&jobs_lock);
	/* after the invalidations of what the lines changed (the state event
	 * came before the op's completion): the writer's next read is fresh */
	if (err && err->code != SVM_OK && j->ok == 0) {
		fs_reply_err_fresh(j->req, fs_errno(err->code));
	} else {
		fs_reply_write_fresh(j->req, j->ok);
	}
	job_unref(j);
}

static void job_fail(struct ctl_job *j, const char *line, const svm_error *err)
{
	svm_vm_note_error(j->vm, line, err);
	job_finish(j, err);
}

static void ctl_continue(void *job, const svm_error *err);

static void ctl_done(void *ud, const svm_error *err)
{
	struct ctl_job *j = ud;
	pthread_mutex_lock(&jobs_lock);
	j->op = NULL; /* gone once we return: the interrupt handler must not touch it */
	j->finished++;
	pthread_mutex_unlock(&jobs_lock);
	fs_pump_post_done(ctl_continue, j, err); /* a core thread: do nothing more here */
}

/* Runs lines until one is submitted (then its completion continues) or all are
 * done. Called on the request thread for the first line, on the pump after. */
static void job_step(struct ctl_job *j)
{
	while (j->pos < j->len) {
		char *start = j->text + j->pos;
		char *nl = memchr(start, '\n', j->len - j->pos);
		size_t bytes = nl ? (size_t)(nl - start) + 1 : j->len - j->pos;
		size_t raw = nl ? bytes - 1 : bytes;
		svm_error err;
		svm_error_clear(&err);
		free(j->echo);
		j->echo = fs_ctl_echo(start, raw);
		if (!j->echo) {
			svm_error_set(&err, SVM_NO_SPACE, "out of memory");
			job_finish(j, &err);
			return;
		}
		/* judged before a C string is made: a NUL would cut the line short
		 * and run what comes before it */
		if (fs_ctl_check_bytes(start, raw, &err) != 0) {
			job_fail(j, j->echo, &err);
			return;
		}
		char *copy = strndup(start, raw);
		if (!copy) {
			svm_error_set(&err, SVM_NO_SPACE, "out of memory");
			job_finish(j, &err);
			return;
		}
		char *line = fs_line_trim(copy);
		if (!*line) { /* blank lines are fine and count as done */
			free(copy);
			j->pos += bytes;
			j->ok += bytes;
			continue;
		}
		free(j->line);
		j->line = strdup(line);
		free(j->args);
		j->args = strdup(line);
		free(copy);
		if (!j->line || !j->args) {
			svm_error_set(&err, SVM_NO_SPACE, "out of memory");
			job_finish(j, &err);
			return;
		}
		pthread_mutex_lock(&jobs_lock);
		bool interrupted = j->interrupted;
		pthread_mutex_unlock(&jobs_lock);
		if (interrupted || fsd.stopping) {
			svm_error_set(&err, SVM_INTERRUPTED, "interrupted");
			job_fail(j, j->echo, &err);
			return;
		}
		svm_request r;
		if (parse_line(j->line, j->args, &r, &err) != 0) {
			job_fail(j, j->echo, &err);
			return;
		}
		j->cur_bytes = bytes;
		pthread_mutex_lock(&jobs_lock);
		uint64_t n = ++j->submitted;
		j->refs++; /* ours until the bookkeeping below is done */
		pthread_mutex_unlock(&jobs_lock);
		svm_op *op = svm_vm_submit(j->vm, &r, ctl_done, j);
		if (!op) {
			int e = errno;
			job_unref(j);
			/* the host's limit of threads (ulimit -u, TasksMax=) or memory */
			svm_error_set(&err, e == EAGAIN || e == ENOMEM ? SVM_NO_SPACE : SVM_START_FAILED,
				      "could not submit \"%s\": no thread for it: %s", j->echo,
				      strerror(e));
			job_fail(j, j->echo, &err);
			return;
		}
		/* done() may already have run on a core thread (and the pump may be
		 * at the next line, or have finished the job): only an op still in
		 * flight is remembered. */
		pthread_mutex_lock(&jobs_lock);
		if (j->finished < n) {
			j->op = op;
			if (j->interrupted) /* Ctrl-C came between submit and here */
				svm_op_cancel(op);
		}
		pthread_mutex_unlock(&jobs_lock);
		job_unref(j);
		return;
	}
	job_finish(j, NULL);
}

/* On the pump thread, when an op completes. */
static void ctl_continue(void *job, const svm_error *err)
{
	struct ctl_job *j = job;
	if (err && err->code != SVM_OK) {
		job_fail(j, j->echo, err);
		return;
	}
	j->pos += j->cur_bytes;
	j->ok += j->cur_bytes;
	job_step(j);
}

static void ctl_interrupt(fuse_req_t req, void *data)
{
	(void)data;
	pthread_mutex_lock(&jobs_lock);
	for (struct ctl_job *j = jobs; j; j = j->next) {
		if (j->req != req)
			continue;
		j->interrupted = true;
		/* Under jobs_lock: done() cannot finish (it takes the lock first), so
		 * the op handle is valid for this call. */
		if (j->op)
			svm_op_cancel(j->op);
		break;
	}
	pthread_mutex_unlock(&jobs_lock);
}

void fs_vm_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off; /* commands, not bytes at a place */
	struct ctl_job *j = calloc(1, sizeof *j);
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
	j->refs = 1;
	svm_vm_ref(h->t.vm);
	j->vm = h->t.vm;
	fuse_req_interrupt_func(req, ctl_interrupt, NULL);
	pthread_mutex_lock(&jobs_lock);
	if (fuse_req_interrupted(req)) {
		pthread_mutex_unlock(&jobs_lock);
		fuse_reply_err(req, EINTR);
		job_free(j);
		return;
	}
	j->next = jobs;
	jobs = j;
	pthread_mutex_unlock(&jobs_lock);
	job_step(j);
}
