/*
 * spawn_run.c - svm_run: a child run to its end, its output collected (see
 * svmspawn.h). The output is read by us: copied with a cap (a hostile archive
 * cannot fill the disk through `tar -O`), or captured, or only the tail of
 * stderr kept (the reason a program gives is usually at the end).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "cleanup.h"
#include "fileio.h"
#include "svmspawn.h"

/* One run's reading side. */
struct run {
	svm_run_io *io;
	const char *name; /* argv[0], for messages */
	pid_t pid;
	svm_error *err;
	struct pollfd p[2]; /* [0] stderr (keep_err), [1] stdout; fd -1: not read */
	int open;           /* how many of p are still read */
	size_t tail_used;
	size_t out_room;    /* capture: the room of io->out */
	uint64_t copied;    /* out_fd: what stdout wrote, taken or not */
};

/* Keeps the last bytes of stderr (the reason is usually at the end). */
static void keep_tail(char *tail, size_t cap, size_t *used, const char *p, size_t n)
{
	if (n >= cap - 1) {
		p += n - (cap - 1);
		n = cap - 1;
	}
	if (*used + n > cap - 1) {
		size_t drop = *used + n - (cap - 1);
		memmove(tail, tail + drop, *used - drop);
		*used -= drop;
	}
	memcpy(tail + *used, p, n);
	*used += n;
	tail[*used] = '\0';
}

/* stdout into io->out, up to out_cap; false once it holds all it may (the
 * child is ended then: nobody reads the rest, it would block on a full pipe). */
static bool capture(struct run *r, const char *buf, size_t n)
{
	svm_run_io *io = r->io;
	if (io->out_cap && n > io->out_cap - io->out_len)
		n = (size_t)(io->out_cap - io->out_len);
	if (svm_grow(&io->out, &r->out_room, io->out_len + n + 1, 1) < 0)
		n = 0; /* out of memory: what came so far */
	memcpy(io->out + io->out_len, buf, n);
	io->out_len += n;
	io->out[io->out_len] = '\0';
	if (n && (!io->out_cap || io->out_len < io->out_cap))
		return true;
	kill(r->pid, SIGKILL);
	return false;
}

/* stdout to io->out_fd; over out_cap or a failed write fails the run and ends
 * the child, and what it still writes is read and dropped. */
static void copy_out(struct run *r, const char *buf, size_t n)
{
	svm_run_io *io = r->io;
	r->copied += (uint64_t)n;
	if (io->failed)
		return;
	bool over = io->out_cap && r->copied > io->out_cap;
	if (!over && svm_write_all(io->out_fd, buf, n) == 0)
		return;
	int e = over ? EFBIG : errno;
	io->failed = SVM_RUN_OUTPUT;
	svm_error_set(r->err, over ? SVM_TOO_LARGE : svm_start_code(e), "%s: output %s", r->name,
		      over ? "over its size limit" : strerror(e));
	errno = e;
	kill(r->pid, SIGKILL);
}

/* What one read gave; false when that stream is no longer read. */
static bool take(struct run *r, int i, const char *buf, size_t n)
{
	svm_run_io *io = r->io;
	if (i == 0)
		keep_tail(io->err_tail, sizeof io->err_tail, &r->tail_used, buf, n);
	else if (io->capture)
		return capture(r, buf, n);
	else if (io->out_fd >= 0)
		copy_out(r, buf, n);
	return true;
}

/* Reads the child's pipes until they end (or a bounded run's wait runs out). */
static void collect_output(struct run *r)
{
	char buf[65536];
	while (r->open > 0) {
		int rc = poll(r->p, 2, r->io->timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (r->p[i].fd < 0 || !(r->p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(r->p[i].fd, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || !take(r, i, buf, (size_t)n)) {
				r->p[i].fd = -1;
				r->open--;
			}
		}
	}
}

/* The child's end: awaited, or (a bounded run) forced and awaited at most
 * timeout_ms. Its wait status. */
static int wait_end(pid_t pid, int pidfd, int timeout_ms)
{
	if (timeout_ms >= 0)
		kill(pid, SIGKILL); /* harmless if it already ended; bounds the wait below */
	struct pollfd pp = {.fd = pidfd, .events = POLLIN};
	while (poll(&pp, 1, timeout_ms) < 0 && errno == EINTR)
		;
	int ws = 0;
	if (svm_reap(pidfd, &ws) < 0)
		waitpid(pid, &ws, 0);
	return ws;
}

/* A pipe for a stream the parent reads (want), or none (-1s). */
static int open_pipe(bool want, int *rd, int *wr)
{
	int p[2] = {-1, -1};
	if (want && pipe2(p, O_CLOEXEC) < 0)
		return -1;
	*rd = p[0];
	*wr = p[1];
	return 0;
}

/* Where a run's output goes before anything starts: the pipes, the buffer. */
static int prepare(struct run *r, int devnull, int *err_r, int *err_w, int *out_r, int *out_w)
{
	svm_run_io *io = r->io;
	io->out = NULL;
	io->out_len = 0;
	io->err_tail[0] = '\0';
	io->wstatus = 0;
	io->failed = SVM_RUN_PIPE;
	if (devnull < 0 || open_pipe(io->keep_err && !io->merge_err, err_r, err_w) < 0 ||
	    open_pipe(io->capture || io->out_fd >= 0 || io->merge_err, out_r, out_w) < 0) {
		int e = errno;
		svm_error_set(r->err, svm_start_code(e), "%s: cannot make pipes: %s", r->name,
			      strerror(e));
		errno = e;
		return -1;
	}
	if (io->capture && svm_grow(&io->out, &r->out_room, 1, 1) < 0) {
		svm_error_set(r->err, SVM_NO_SPACE, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	if (io->capture)
		io->out[0] = '\0';
	io->failed = SVM_RUN_OK;
	return 0;
}

int svm_run(char *const argv[], svm_run_io *io, svm_error *err)
{
	struct run r = {.io = io, .name = argv[0], .err = err};
	cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	cleanup_close int err_r = -1, err_w = -1, out_r = -1, out_w = -1;
	if (prepare(&r, devnull, &err_r, &err_w, &out_r, &out_w) < 0)
		return -1;
	int fds[3] = {devnull, out_w >= 0 ? out_w : devnull,
		      io->merge_err ? out_w : err_w >= 0 ? err_w : devnull};
	int pidfd;
	if (svm_spawn(argv, fds, &r.pid, &pidfd, err) < 0) {
		int e = errno;
		io->failed = SVM_RUN_SPAWN;
		free(steal_pointer(&io->out));
		errno = e;
		return -1;
	}
	/* our copies of the write ends go, so the child's end is the pipes' end */
	close_and_reset(&err_w);
	close_and_reset(&out_w);
	r.p[0] = (struct pollfd){.fd = err_r, .events = POLLIN};
	r.p[1] = (struct pollfd){.fd = out_r, .events = POLLIN};
	r.open = (err_r >= 0) + (out_r >= 0);
	collect_output(&r);
	io->wstatus = wait_end(r.pid, pidfd, io->timeout_ms);
	close(pidfd);
	return io->failed ? -1 : 0;
}

const char *svm_last_line(char *text)
{
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	char *last = strrchr(text, '\n');
	return last ? last + 1 : text;
}

/* argv[0] as given when it names a path, else the first executable of that name
 * in PATH (the front end runs fusermount3 so). */
static const char *find_in_path(const char *name, char *buf, size_t len)
{
	if (strchr(name, '/'))
		return name;
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, len, "%.*s/%s", (int)n, p, name);
		if (n && access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return name;
}

ssize_t svm_run_capture(char *const argv[], char *out, size_t len, int timeout_ms, int *status)
{
	char path[PATH_MAX];
	size_t n = 0;
	while (argv[n])
		n++;
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return -1;
	memcpy(v, argv, n * sizeof *v);
	v[0] = (char *)find_in_path(argv[0], path, sizeof path);
	svm_run_io io = {.out_fd = -1, .capture = out != NULL, .out_cap = len ? len - 1 : 0,
			 .merge_err = true, .timeout_ms = timeout_ms};
	svm_error err;
	int rc = svm_run(v, &io, &err);
	free(v);
	if (status)
		*status = rc == 0 && WIFEXITED(io.wstatus) ? WEXITSTATUS(io.wstatus) : -1;
	ssize_t got = -1;
	if (rc == 0 && out && len) {
		got = (ssize_t)(io.out_len < len ? io.out_len : len - 1);
		memcpy(out, io.out, (size_t)got);
		out[got] = '\0';
	} else if (rc == 0) {
		got = 0;
	}
	free(io.out);
	return got;
}
