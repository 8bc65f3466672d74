/*
 * loop.c - the FUSE loop: one thread reads at a time, answers itself the
 * requests that never wait, and gives up reading before one that may.
 *
 * libfuse's multi-threaded loop has every idle worker wait in read() on
 * /dev/fuse, and the kernel wakes the one that has waited longest: each request
 * of a `cat state` (an OPEN, then an asynchronous RELEASE) lands on another
 * thread, and each wake of a sleeping thread costs a context switch, often a
 * cross-CPU wake (tests/bench, figure 3: the same daemon with libfuse's
 * single-threaded loop is within a few per cent of a minimal server, with the
 * multi-threaded one up to twice its time). Here one thread, the reader, reads;
 * the others wait on a condition (leader and followers). The reader answers
 * itself what takes no lock a slow request holds and goes on reading: the open,
 * lookup and attributes of a row marked FS_QUICK (a VM's state, pid, runtime:
 * atomics, a compare, a copy; ctl's write opens too, a handle and a compare of
 * uids), ctl's writes while an op thread waits for one (a parse and a submit:
 * the op thread answers; handing the reading on first was a wake per verb, 7-10%
 * of a `pause`, tests/bench figure 11), the releases of every open without a
 * hook of its row's own (but events), the attributes of the root, of vms/ and
 * of a VM's directory, ioctls (libfuse answers ENOSYS: there are none) and
 * forgets. Before any other request (a live value asked of Firecracker, a
 * listing of 10,000 VMs, a ctl write that would create its op thread, a
 * lookup) it hands the reading to an idle
 * follower, or starts one (up to max_threads), and then answers it: the wake
 * runs beside the request instead of before it, and nothing slow ever holds
 * the reading, so `cat state` of one VM never waits behind another's request.
 *
 * The main thread only waits for the end, as libfuse's loop does: signals
 * (SIGTERM, SIGINT, SIGHUP) reach it alone (the others block them), it sees
 * the session exited, and cancels the reader where it waits in read(), the one
 * place a thread of the loop can be cancelled. An unmount ends the reader's
 * read, and it tells the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static struct {
	struct fuse_session *se;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* followers wait here for the reading */
	bool reading;        /* a thread reads (or is about to) */
	bool exit;
	unsigned threads, idle, max;
	pthread_t *tids;
	sem_t done;          /* the reader saw the end (unmount, a failed read) */
	int error;           /* that failed read's, 0 for an unmount */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void start_thread(void);

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
		return true;
	/* not FUSE_INTERRUPT: libfuse runs the interrupted request's callback
	 * under that request's lock, and a callback may wait for a lock the
	 * thread answering it holds: a worker may wait there, never the reader */
	case FUSE_GETATTR: {
		/* the root (constant), vms/ (its links count the VMs: an atomic;
		 * asked after every mkdir and rmdir), a VM's directory (ls -l vms:
		 * one each) and its quick files: the node's lock, atomics of the VM */
		struct fs_where w = fs_resolve(in->nodeid);
		return w.kind == FS_W_ROOT || w.kind == FS_W_VMDIR ||
		       (w.kind == FS_W_ROOTROW && w.row == fsd.vms_row) ||
		       (w.kind == FS_W_VMROW && (fs_where_row(&w)->flags & FS_QUICK));
	}
	case FUSE_LOOKUP: {
		/* a VM's file answered from atomics (ctl, state, pid, runtime):
		 * the name is a row of the table, its attributes those GETATTR
		 * gives here (a new VM's ctl before its first `echo start`) */
		size_t len = b->size - sizeof *in;
		const char *name = arg;
		if (len == 0 || !memchr(name, '\0', len))
			return false;
		struct fs_where w = fs_resolve(in->nodeid);
		if (w.kind != FS_W_VMDIR)
			return false;
		int r = fs_vm_row_find(NULL, name);
		return r >= 0 && (fsd.tree->vm->rows[r].flags & FS_QUICK);
	}
	case FUSE_OPEN: {
		if (b->size < sizeof *in + sizeof(struct fuse_open_in))
			return false;
		const struct fuse_open_in *o = arg;
		struct fs_where w = fs_resolve(in->nodeid);
		if (w.kind != FS_W_VMROW || !(fs_where_row(&w)->flags & FS_QUICK))
			return false;
		/* a write open of ctl is a handle and a compare of uids (no
		 * hook of the row's own runs: fs_op_open) */
		return (o->flags & O_ACCMODE) == O_RDONLY || !fs_where_row(&w)->open;
	}
	case FUSE_RELEASE: {
		if (b->size < sizeof *in + sizeof(struct fuse_release_in))
			return false;
		const struct fuse_release_in *r = arg;
		const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)r->fh;
		/* the handle lives until this very release is answered; without
		 * a row's own release hook (exec sessions, command files) a release
		 * frees memory under short locks (the page cache's count, a
		 * document's buffer): every write was answered before it (the
		 * FLUSH of a document, a ctl line done). Not an events reader's:
		 * its lock is held while a waiting read is answered from the VM */
		return h && !(h->priv_open && h->row->release) && !(h->row->flags & FS_STREAM);
	}
	case FUSE_WRITE: {
		/* a quick row's write (a VM's ctl) parses its first line and
		 * submits it to an op thread, which answers it: nothing waits
		 * here, unless the submit had to create that thread (a burst of
		 * starts, where a reader creating them one by one would read
		 * nothing meanwhile) */
		struct fs_where w = fs_resolve(in->nodeid);
		return w.kind == FS_W_VMROW && (fs_where_row(&w)->flags & FS_QUICK) &&
		       fs_where_row(&w)->write && svm_op_thread_waiting();
	}
	case FUSE_IOCTL:
		/* no ioctl here: libfuse answers ENOSYS (the kernel tells the
		 * caller ENOTTY), as to Python's isatty() at every open() */
		return true;
	default:
		return false;
	}
}

/* Gives up the reading to a follower, started if none is idle. L.mu held;
 * true: signal L.cv once it is unlocked (a follower woken while the lock is
 * still held would only wait for it: two more switches before it reads). */
static bool pass_reading(void)
{
	L.reading = false;
	if (L.idle > 0)
		return true;
	if (L.threads < L.max && !L.exit)
		start_thread();
	return false;
}

static void free_buf(void *buf)
{
	free(((struct fuse_buf *)buf)->mem);
}

/* One read, cancellable there alone; 1: a request in buf, 0: the loop ends. */
static int read_one(struct fuse_buf *buf)
{
	int res;
	do {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		res = fuse_session_receive_buf(L.se, buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	} while (res == -EINTR && !fuse_session_exited(L.se));
	if (res > 0)
		return 1;
	L.error = res < 0 && res != -EINTR ? res : 0;
	return 0;
}

static void *serve(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	struct fuse_buf buf = {0};
	pthread_cleanup_push(free_buf, &buf);
	pthread_mutex_lock(&L.mu);
	while (!L.exit) {
		if (L.reading) {
			L.idle++;
			pthread_cond_wait(&L.cv, &L.mu);
			L.idle--;
			continue;
		}
		L.reading = true;
		pthread_mutex_unlock(&L.mu);
		if (!read_one(&buf)) {
			pthread_mutex_lock(&L.mu);
			L.exit = true;
			pthread_cond_broadcast(&L.cv);
			sem_post(&L.done);
			break;
		}
		bool keep = quick(&buf);
		if (!keep) {
			pthread_mutex_lock(&L.mu);
			bool wake = pass_reading();
			pthread_mutex_unlock(&L.mu);
			if (wake)
				pthread_cond_signal(&L.cv);
		}
		fuse_session_process_buf(L.se, &buf);
		pthread_mutex_lock(&L.mu);
		if (keep)
			L.reading = false; /* and this thread reads on at once */
	}
	pthread_mutex_unlock(&L.mu);
	pthread_cleanup_pop(1);
	return NULL;
}

/* A thread of the loop; L.mu held. */
static void start_thread(void)
{
	if (pthread_create(&L.tids[L.threads], NULL, serve, NULL) == 0)
		L.threads++;
}

int fs_serve_loop(struct fuse_session *se, unsigned max_threads)
{
	L.se = se;
	L.max = max_threads ? max_threads : 1;
	L.tids = calloc(L.max, sizeof *L.tids);
	if (!L.tids || sem_init(&L.done, 0, 0) != 0) {
		free(L.tids);
		return -1;
	}
	pthread_mutex_lock(&L.mu);
	start_thread();
	bool started = L.threads > 0;
	pthread_mutex_unlock(&L.mu);
	while (started && !fuse_session_exited(se) && sem_wait(&L.done) != 0)
		;
	pthread_mutex_lock(&L.mu);
	L.exit = true;
	pthread_cond_broadcast(&L.cv);
	unsigned n = L.threads;
	pthread_mutex_unlock(&L.mu);
	/* the reader waits in read() on a signal's end: cancelled there */
	for (unsigned i = 0; i < n; i++)
		pthread_cancel(L.tids[i]);
	for (unsigned i = 0; i < n; i++)
		pthread_join(L.tids[i], NULL);
	free(L.tids);
	sem_destroy(&L.done);
	/* an unmount or a signal exits the session: an orderly end; a failed
	 * read that did not is the loop's error */
	bool orderly = started && (fuse_session_exited(se) || L.error == 0);
	int error = L.error;
	fuse_session_reset(se);
	return orderly ? 0 : error ? error : -1;
}
