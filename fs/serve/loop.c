/*
 * loop.c - the FUSE loop: one reader that answers at once the requests that
 * never wait, and a pool of workers for all the others.
 *
 * libfuse's multi-threaded loop has every idle worker wait in read() on
 * /dev/fuse, and the kernel wakes the one that has waited longest: each request
 * of a `cat state` (an OPEN, then an asynchronous RELEASE) lands on another
 * thread, and each wake of a sleeping thread costs a context switch, often a
 * cross-CPU wake (tests/bench, figure 3: the same daemon with libfuse's
 * single-threaded loop is within a few per cent of a minimal server, with the
 * multi-threaded one twice its time). Here only the reader reads. It answers
 * itself what takes no lock a slow request holds: the open, release and
 * attributes of a row marked FS_QUICK (a VM's state, pid, runtime: atomics, a
 * compare, a copy), the attributes of a VM's directory, forgets and interrupts. Everything else (a live value
 * asked of Firecracker, a listing of 10,000 VMs, a ctl write, a lookup, an
 * attribute) goes to a worker, started when none is idle, up to max_threads:
 * a slow request never holds the reader, so `cat state` of one VM never waits
 * behind another's.
 *
 * Signals (SIGTERM, SIGINT, SIGHUP) reach the reader only (workers block
 * them): its read() then returns EINTR and the loop sees the session exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* A request handed to a worker; its buffer is kept for the next one. */
struct job {
	struct fuse_buf buf;
	struct job *next;
};

static struct {
	struct fuse_session *se;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail; /* waiting for a worker */
	struct job *spare;       /* done: their buffers are reused */
	unsigned workers, idle, max;
	pthread_t *threads;
	bool exit;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_lock(&L.mu);
	for (;;) {
		while (!L.head && !L.exit) {
			L.idle++;
			pthread_cond_wait(&L.cv, &L.mu);
			L.idle--;
		}
		if (!L.head)
			break;
		struct job *j = L.head;
		L.head = j->next;
		if (!L.head)
			L.tail = NULL;
		pthread_mutex_unlock(&L.mu);
		fuse_session_process_buf(L.se, &j->buf);
		pthread_mutex_lock(&L.mu);
		j->next = L.spare;
		L.spare = j;
	}
	pthread_mutex_unlock(&L.mu);
	return NULL;
}

/* Does the reader answer this request itself? Only what never waits. */
static bool quick(const struct fuse_buf *b)
{
	if (b->flags & FUSE_BUF_IS_FD || b->size < sizeof(struct fuse_in_header))
		return false;
	const struct fuse_in_header *in = b->mem;
	const void *arg = (const char *)b->mem + sizeof *in;
	switch (in->opcode) {
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return true;
	case FUSE_GETATTR: {
		/* a VM's directory (ls -l vms: one each) and its quick files: the
		 * node's lock, atomics of the VM */
		struct fs_where w = fs_resolve(in->nodeid);
		return w.kind == FS_W_VMDIR ||
		       (w.kind == FS_W_VMROW && (fs_where_row(&w)->flags & FS_QUICK));
	}
	case FUSE_OPEN: {
		if (b->size < sizeof *in + sizeof(struct fuse_open_in))
			return false;
		const struct fuse_open_in *o = arg;
		struct fs_where w = fs_resolve(in->nodeid);
		return w.kind == FS_W_VMROW && (o->flags & O_ACCMODE) == O_RDONLY &&
		       (fs_where_row(&w)->flags & FS_QUICK);
	}
	case FUSE_RELEASE: {
		if (b->size < sizeof *in + sizeof(struct fuse_release_in))
			return false;
		const struct fuse_release_in *r = arg;
		const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)r->fh;
		/* the handle lives until this very release is answered */
		return h && (h->row->flags & FS_QUICK) && (h->flags & O_ACCMODE) == O_RDONLY;
	}
	default:
		return false;
	}
}

/* Queues the request for a worker, starting one if none is idle; the reader
 * gets a spare buffer (or none: libfuse then allocates one) in exchange. */
static int hand_over(struct fuse_buf *buf)
{
	struct job *j = malloc(sizeof *j);
	if (!j)
		return -1;
	j->buf = *buf;
	j->next = NULL;
	pthread_mutex_lock(&L.mu);
	if (L.tail)
		L.tail->next = j;
	else
		L.head = j;
	L.tail = j;
	if (L.idle > 0)
		pthread_cond_signal(&L.cv);
	else if (L.workers < L.max && pthread_create(&L.threads[L.workers], NULL, worker_main, NULL) == 0)
		L.workers++;
	struct job *s = L.spare;
	if (s)
		L.spare = s->next;
	pthread_mutex_unlock(&L.mu);
	memset(buf, 0, sizeof *buf);
	if (s) {
		buf->mem = s->buf.mem;
		free(s);
	}
	return 0;
}

static void free_jobs(struct job *j)
{
	while (j) {
		struct job *next = j->next;
		free(j->buf.mem);
		free(j);
		j = next;
	}
}

int fs_serve_loop(struct fuse_session *se, unsigned max_threads)
{
	L.se = se;
	L.max = max_threads ? max_threads : 1;
	L.threads = calloc(L.max, sizeof *L.threads);
	if (!L.threads)
		return -1;
	struct fuse_buf buf = {0};
	int res = 0;
	while (!fuse_session_exited(se)) {
		res = fuse_session_receive_buf(se, &buf);
		if (res == -EINTR)
			continue;
		if (res <= 0)
			break;
		if (quick(&buf) || hand_over(&buf) < 0)
			fuse_session_process_buf(se, &buf);
	}
	free(buf.mem);
	pthread_mutex_lock(&L.mu);
	L.exit = true;
	pthread_cond_broadcast(&L.cv);
	pthread_mutex_unlock(&L.mu);
	for (unsigned i = 0; i < L.workers; i++)
		pthread_join(L.threads[i], NULL);
	free_jobs(L.head); /* never answered: the connection is gone */
	free_jobs(L.spare);
	free(L.threads);
	/* an unmount (read says so with 0) or a signal exits the session: an
	 * orderly end; a failed read that did not is the loop's error */
	bool orderly = fuse_session_exited(se) || res >= 0;
	fuse_session_reset(se);
	return orderly ? 0 : res;
}
