/*
 * execfiles.c - vms/NAME/exec: commands run in the guest by its agent, as files
 * (docs/exec.md). exec/clone makes a session (Plan 9 clone: a read on that
 * descriptor says its name, writes go to its ctl); exec/N/{ctl, stdin, stdout,
 * stderr, status, error} drive it; exec/run is the one-liner: write a shell
 * command line, read back its output and then its status line.
 *
 * Every open of these files holds its session (svm_exec_hold), so a session
 * whose command ended goes when its last file is closed. No ordinary reader
 * waits: a read-only open of stdout reads what came so far and ends there. A
 * read-write open of stdout or stderr, and the one-liner's descriptor, are
 * the opt-in to reads that wait for the bytes as they come and end when the
 * command ended and all was read; those waits hold no FUSE worker (the
 * request is answered when the core says the session changed), Ctrl-C ends
 * them, and poll() works on every open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

enum xkind { X_CLONE, X_RUN, X_CTL, X_STDIN, X_STDOUT, X_STDERR, X_STATUS, X_ERROR };

/* One open of an exec file (fs_handle.priv). */
struct xopen {
	svm_exec *x;           /* our reference and hold; the one-liner's: from its write */
	enum xkind kind;
	bool wait;             /* reads wait for output (read-write opens, the one-liner) */
	/* under wait_mu: */
	fuse_req_t pending;    /* a read waiting for output */
	size_t psize;
	off_t poff;
	struct fuse_pollhandle *ph;
	uint64_t pos;          /* the offset read up to (poll's "is there more") */
	bool last_nl;          /* the one-liner: its output so far ends with a newline */
	int64_t tail_at;       /* the one-liner: where its status line starts, or -1 */
	uint64_t rpos;         /* the one-liner: its own read offset (its write moved the
	                          descriptor's, and reads come in order anyway) */
	char tail[48];
	struct xopen *next;
};

static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xopen *opens; /* every open that may wait or poll */

static enum xkind kind_of(const struct fs_row *row)
{
	static const char *names[] = {"clone", "run", "ctl", "stdin", "stdout", "stderr", "status", "error"};
	for (int k = 0; k < (int)(sizeof names / sizeof *names); k++)
		if (!strcmp(row->name, names[k]))
			return (enum xkind)k;
	return X_STATUS;
}

static struct xopen *xo_of(struct fs_handle *h)
{
	return h->priv;
}

/* ------------------------------------------------------------ reads */

/* The stream an open reads, by its kind. */
static svm_exec_stream stream_of(const struct xopen *o)
{
	return o->kind == X_STDERR ? SVM_EXEC_STDERR : SVM_EXEC_STDOUT;
}

/* One read of the output (the one-liner's status line after it). Caller holds
 * wait_mu. Returns bytes (>= 0) into buf, or -1 when none yet. */
static ssize_t read_at(struct xopen *o, char *buf, size_t size, off_t off);

static ssize_t read_locked(struct xopen *o, char *buf, size_t size, off_t off)
{
	if (o->kind != X_RUN)
		return read_at(o, buf, size, off);
	ssize_t n = read_at(o, buf, size, (off_t)o->rpos);
	if (n > 0)
		o->rpos += (uint64_t)n;
	return n;
}

static ssize_t read_at(struct xopen *o, char *buf, size_t size, off_t off)
{
	if (!o->x)
		return 0; /* the one-liner before its command: nothing */
	if (o->kind == X_RUN && o->tail_at >= 0 && off >= o->tail_at) {
		size_t at = (size_t)(off - o->tail_at), len = strlen(o->tail);
		size_t n = at < len ? len - at : 0;
		n = n < size ? n : size;
		memcpy(buf, o->tail + at, n);
		return (ssize_t)n;
	}
	ssize_t n = svm_exec_read(o->x, stream_of(o), (uint64_t)off, buf, size);
	if (n > 0) {
		o->pos = (uint64_t)off + (uint64_t)n;
		o->last_nl = buf[n - 1] == '\n';
	}
	if (n == 0 && o->kind == X_RUN) {
		/* the output ended: its status follows, on a line of its own */
		char *st = svm_exec_status(o->x);
		snprintf(o->tail, sizeof o->tail, "%s%s", off > 0 && !o->last_nl ? "\n" : "",
		         st ? st : "lost\n");
		free(st);
		o->tail_at = off;
		return read_at(o, buf, size, off);
	}
	return n;
}

/* Answers a waiting read if it can; caller holds wait_mu. */
static void try_pending_locked(struct xopen *o)
{
	if (!o->pending)
		return;
	char *buf = malloc(o->psize ? o->psize : 1);
	if (!buf)
		return;
	ssize_t n = read_locked(o, buf, o->psize, o->poff);
	if (n >= 0) {
		fuse_req_t req = o->pending;
		o->pending = NULL;
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
}

/* The core says a session changed: its waiting reads and its pollers. */
static void on_exec_change(svm_exec *x, void *ud)
{
	(void)ud;
	if (!svm_exec_listed(x)) /* ended and closed: exec/N goes, its entry with it */
		fs_vm_listing_changed(svm_exec_vm(x), "exec");
	pthread_mutex_lock(&wait_mu);
	for (struct xopen *o = opens; o; o = o->next) {
		if (o->x != x)
			continue;
		try_pending_locked(o);
		if (o->ph) {
			fuse_lowlevel_notify_poll(o->ph);
			fuse_pollhandle_destroy(o->ph);
			o->ph = NULL;
		}
	}
	pthread_mutex_unlock(&wait_mu);
}

static void read_interrupted(fuse_req_t req, void *data)
{
	struct xopen *o = data;
	pthread_mutex_lock(&wait_mu);
	if (o->pending == req) {
		o->pending = NULL;
		fuse_reply_err(req, EINTR);
	}
	pthread_mutex_unlock(&wait_mu);
}

void fs_exec_output_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	struct xopen *o = xo_of(h);
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (o->wait)
		fuse_req_interrupt_func(req, read_interrupted, o);
	pthread_mutex_lock(&wait_mu);
	ssize_t n = read_locked(o, buf, size, off);
	if (n < 0 && o->wait && !fuse_req_interrupted(req) && !o->pending) {
		o->pending = req;
		o->psize = size;
		o->poff = off;
		pthread_mutex_unlock(&wait_mu);
		free(buf);
		return;
	}
	pthread_mutex_unlock(&wait_mu);
	if (n < 0 && o->wait)
		fuse_reply_err(req, o->pending ? EBUSY : EINTR);
	else
		fuse_reply_buf(req, buf, n > 0 ? (size_t)n : 0);
	free(buf);
}

void fs_exec_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph)
{
	struct xopen *o = xo_of(h);
	unsigned ev = 0;
	pthread_mutex_lock(&wait_mu);
	if (o->x && (o->kind == X_STDOUT || o->kind == X_STDERR || o->kind == X_RUN)) {
		if (svm_exec_size(o->x, stream_of(o)) > o->pos || svm_exec_ended(o->x))
			ev |= POLLIN | POLLRDNORM;
	} else {
		ev |= POLLIN | POLLRDNORM;
	}
	if (h->row->write && (h->flags & O_ACCMODE) != O_RDONLY)
		ev |= POLLOUT | POLLWRNORM;
	if (ph) {
		if (o->ph)
			fuse_pollhandle_destroy(o->ph);
		o->ph = ph;
	}
	pthread_mutex_unlock(&wait_mu);
	fuse_reply_poll(req, ev);
}

/* ------------------------------------------------------------ opens */

static void link_open(struct xopen *o)
{
	pthread_mutex_lock(&wait_mu);
	o->next = opens;
	opens = o;
	pthread_mutex_unlock(&wait_mu);
}

static int note_open_failure(struct fs_handle *h, const char *what, const svm_error *err)
{
	char cmd[64];
	snprintf(cmd, sizeof cmd, "open exec/%s", what);
	svm_vm_note_error(h->t.vm, cmd, err);
	return fs_errno(err->code);
}

int fs_exec_open(fuse_req_t req, struct fs_handle *h)
{
	(void)req;
	svm_exec_set_notify(on_exec_change, NULL); /* the same every time */
	struct xopen *o = calloc(1, sizeof *o);
	if (!o)
		return ENOMEM;
	o->kind = kind_of(h->row);
	o->tail_at = -1;
	bool writing = (h->flags & O_ACCMODE) != O_RDONLY;
	o->wait = writing && (o->kind == X_STDOUT || o->kind == X_STDERR || o->kind == X_RUN);
	svm_error err;
	svm_error_clear(&err);
	if (o->kind == X_CLONE && !writing) {
		/* a reader (cp -r of a VM, an indexer) makes nothing and reads nothing */
	} else if (o->kind == X_CLONE) {
		o->x = svm_exec_new(h->t.vm, &err); /* held once for this open */
		if (!o->x) {
			free(o);
			return note_open_failure(h, "clone", &err);
		}
	} else if (o->kind != X_RUN) {
		o->x = svm_exec_get(h->t.vm, h->t.id);
		if (!o->x) {
			free(o);
			return ENOENT; /* it ended and was closed meanwhile */
		}
		svm_exec_hold(o->x);
	}
	h->priv = o;
	link_open(o);
	return 0;
}

void fs_exec_release(struct fs_handle *h)
{
	struct xopen *o = xo_of(h);
	if (!o)
		return;
	pthread_mutex_lock(&wait_mu);
	for (struct xopen **p = &opens; *p; p = &(*p)->next)
		if (*p == o) {
			*p = o->next;
			break;
		}
	if (o->pending) /* only at unmount: the kernel releases no file a read uses */
		fuse_reply_err(o->pending, EINTR);
	if (o->ph)
		fuse_pollhandle_destroy(o->ph);
	pthread_mutex_unlock(&wait_mu);
	if (o->x) {
		svm_exec_release(o->x);
		svm_exec_unref(o->x);
	}
	free(o);
	h->priv = NULL;
}

/* ------------------------------------------------------------ values */

int fs_exec_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	svm_exec *x = svm_exec_get(t->vm, t->id);
	if (!x)
		return svm_error_set(err, SVM_NOT_FOUND, "exec/%s: no such session", t->id), ENOENT;
	char *s = !strcmp(t->row->name, "status") ? svm_exec_status(x)
	                                           : fs_strdupf(NULL, "%s\n", svm_exec_name(x));
	svm_exec_unref(x);
	if (!s)
		return ENOMEM;
	*text = s;
	*len = strlen(s);
	return 0;
}

/* clone: the session's name, as a file of one line */
void fs_exec_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	struct xopen *o = xo_of(h);
	char name[32];
	int n = o->x ? snprintf(name, sizeof name, "%s\n", svm_exec_name(o->x)) : 0;
	size_t at = off >= 0 && off < n ? (size_t)off : (size_t)n;
	size_t k = (size_t)n - at < size ? (size_t)n - at : size;
	fuse_reply_buf(req, name + at, k);
}

void fs_exec_error_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	struct xopen *o = xo_of(h);
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = svm_exec_error_read(o->x, (uint64_t)off, buf, size);
	fuse_reply_buf(req, buf, n > 0 ? (size_t)n : 0);
	free(buf);
}

/* ------------------------------------------------------------ writes */

/* Lines of a ctl write, in order; at the first failure, the bytes of the lines
 * done, or the errno (the failure in the session's error file). */
void fs_exec_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	struct xopen *o = xo_of(h);
	size_t done = 0;
	while (done < size) {
		const char *nl = memchr(buf + done, '\n', size - done);
		size_t end = nl ? (size_t)(nl - buf) : size, next = nl ? end + 1 : size;
		size_t len = end - done;
		while (len && (buf[done + len - 1] == '\r' || buf[done + len - 1] == ' ' ||
		               buf[done + len - 1] == '\t'))
			len--;
		svm_error err;
		svm_error_clear(&err);
		char *line = NULL;
		int rc = fs_ctl_check_bytes(buf + done, len, &err);
		if (rc == 0 && !(line = strndup(buf + done, len)))
			rc = svm_error_set(&err, SVM_NO_SPACE, "out of memory");
		const char *p = line;
		while (p && (*p == ' ' || *p == '\t'))
			p++;
		if (rc == 0 && *p)
			rc = svm_exec_ctl(o->x, p, &err);
		if (rc != 0) {
			char *echo = fs_ctl_echo(buf + done, len);
			svm_exec_note_error(o->x, echo ? echo : "ctl", &err);
			free(echo);
			free(line);
			if (done > 0)
				fuse_reply_write(req, done);
			else
				fuse_reply_err(req, fs_errno(err.code));
			return;
		}
		free(line);
		done = next;
	}
	fuse_reply_write(req, size);
}

/* Ctrl-C on a writer the command does not read from */
static bool write_interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

void fs_exec_stdin_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	struct xopen *o = xo_of(h);
	svm_error err;
	svm_error_clear(&err);
	ssize_t n = svm_exec_write_stdin(o->x, buf, size, write_interrupted, req, &err);
	if (n < 0) {
		if (err.code != SVM_INTERRUPTED)
			svm_exec_note_error(o->x, "write stdin", &err);
		fuse_reply_err(req, fs_errno(err.code));
		return;
	}
	fuse_reply_write(req, (size_t)n); /* short when interrupted: the rest was not sent */
}

/* stdout, stderr: opened read-write only to wait; nothing is written to them */
void fs_exec_output_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)buf, (void)size, (void)off;
	struct xopen *o = xo_of(h);
	svm_error err;
	svm_error_set(&err, SVM_INVALID_ARGUMENT, "%s is the command's output: open it read-write "
	              "only to wait for it, write to stdin", h->row->name);
	svm_exec_note_error(o->x, "write output", &err);
	fuse_reply_err(req, EINVAL);
}

/* The one-liner: the write is a command line for the guest's shell (its stderr
 * joined to its stdout, its stdin closed); it returns once the command runs. */
void fs_exec_run_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	struct xopen *o = xo_of(h);
	svm_error err;
	svm_error_clear(&err);
	size_t len = size;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	char *script = NULL;
	svm_exec *x = NULL;
	pthread_mutex_lock(&wait_mu);
	bool taken = o->x != NULL;
	pthread_mutex_unlock(&wait_mu);
	if (taken) {
		svm_error_set(&err, SVM_INVALID_STATE, "exec/run runs one command per open: open it "
		              "again for another");
	} else if (len == 0 || memchr(buf, '\0', len)) {
		svm_error_set(&err, SVM_INVALID_ARGUMENT, "exec/run takes a shell command line "
		              "(no NUL bytes)");
	} else if (!(script = malloc(len + 16))) {
		svm_error_set(&err, SVM_NO_SPACE, "out of memory");
	} else if ((x = svm_exec_new(h->t.vm, &err))) {
		snprintf(script, len + 16, "exec 2>&1\n%.*s", (int)len, buf);
		svm_error e2;
		svm_exec_ctl(x, "eof", &e2); /* no input: said with the start */
		if (svm_exec_sh(x, script, &err) == 0) {
			pthread_mutex_lock(&wait_mu);
			o->x = x;
			pthread_mutex_unlock(&wait_mu);
			free(script);
			fuse_reply_write(req, size);
			return;
		}
		svm_exec_release(x);
		svm_exec_unref(x);
	}
	free(script);
	svm_vm_note_error(h->t.vm, "write exec/run", &err);
	fuse_reply_err(req, fs_errno(err.code));
}

/* exec/: the sessions of the VM */
char **fs_exec_list(const struct fs_target *t, size_t *count)
{
	return svm_exec_list(t->vm, count);
}
