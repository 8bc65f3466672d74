/*
 * inval.c - invalidations: the notifier thread, the only one that invalidates
 * pages and names, and the attributes every thread sends itself.
 *
 * The notifier: fuse_lowlevel_notify_inval_* may wait for the kernel, and the
 * kernel may be waiting for a reply of ours (a request holding the inode), so
 * invalidations of pages and names are sent from this thread only - never from
 * a request thread, never from the pump. Those of an inode's attributes alone
 * wait on nothing, and the thread that has them sends them (send_inline). Queued
 * invalidations of the same inode are merged, and only inodes the kernel holds
 * a lookup of (and could have cached) are sent: the rest would only be
 * answered ENOENT.
 *
 * Replies that must not overtake an invalidation travel its queue too (the
 * fresh replies of pump.c, the opens of a small value, pcache.c), unless
 * nothing is queued or being sent: then whatever was queued before them is
 * delivered, and they go at once, from the thread that has them.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "serve.h"

struct inval_item {
	fuse_ino_t ino;    /* inode, or the parent of name */
	char *name;        /* NULL: inode invalidation */
	bool data;         /* inode invalidation: the pages too, not only the attributes */
	fuse_req_t req;    /* non-NULL: a reply to send once the items before it are sent */
	size_t count;
	int errnum;
	bool open;         /* the reply is fuse_reply_open(fi) */
	struct fuse_file_info fi;
	void (*abandoned)(void *); /* open reply the kernel did not take: abandoned(arg) */
	void *arg;
	struct inval_item *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval_item *head, **tail;
	bool stop;
	bool busy;           /* the thread sends an item it took off the queue */
	pthread_t th;
	bool running;
} notifier = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &notifier.head, false,
              false, 0, false};

static void send_reply(fuse_req_t req, size_t count, int errnum)
{
	if (errnum)
		fuse_reply_err(req, errnum);
	else
		fuse_reply_write(req, count);
}

static void send_item_reply(struct inval_item *it)
{
	if (!it->open)
		send_reply(it->req, it->count, it->errnum);
	else if (fuse_reply_open(it->req, &it->fi) != 0 && it->abandoned)
		it->abandoned(it->arg); /* interrupted: the kernel will never release it */
}

/* Caller holds notifier.lock. */
static void inval_push_locked(fuse_ino_t ino, const char *name, bool data)
{
	if (notifier.stop)
		return;
	if (!name)
		for (struct inval_item *q = notifier.head; q; q = q->next)
			if (!q->name && !q->req && q->ino == ino) {
				q->data = q->data || data;
				return; /* already on its way */
			}
	struct inval_item *it = calloc(1, sizeof *it);
	if (it && name && !(it->name = strdup(name))) {
		free(it);
		it = NULL;
	}
	if (it) {
		it->ino = ino;
		it->data = data;
		*notifier.tail = it;
		notifier.tail = &it->next;
		pthread_cond_signal(&notifier.cond);
	}
}

/* An inode's attributes only (offset -1) take no lock a request holds: the
 * kernel looks the inode up, bumps its attribute version and marks the
 * attributes stale, and drops no page (which a read in flight could hold
 * locked), never waiting for a reply of ours. So whichever thread has them
 * sends them itself, without waking the notifier, while the session runs.
 * Whether it did. */
static bool send_inline(fuse_ino_t ino, const char *name)
{
	if (name || !fsd.se || fuse_session_exited(fsd.se))
		return false;
	fuse_lowlevel_notify_inval_inode(fsd.se, ino, -1, 0); /* ENOENT: nothing cached */
	return true;
}

static void inval_push(fuse_ino_t ino, const char *name)
{
	if (!fs_ino_held(ino))
		return; /* nothing of it (or, for a name, of its directory) is cached */
	if (send_inline(ino, name))
		return;
	pthread_mutex_lock(&notifier.lock);
	inval_push_locked(ino, name, false);
	pthread_mutex_unlock(&notifier.lock);
}

void fs_inval_inode(fuse_ino_t ino)
{
	inval_push(ino, NULL);
}

void fs_inval_inode_pages(fuse_ino_t ino)
{
	pthread_mutex_lock(&notifier.lock);
	inval_push_locked(ino, NULL, true);
	pthread_mutex_unlock(&notifier.lock);
}

void fs_inval_entry(fuse_ino_t parent, const char *name)
{
	inval_push(parent, name);
}

/* Whether a reply must wait behind the notifier: it has something queued or in
 * hand. If not, what was queued before is delivered, and the caller replies at
 * once rather than wake the notifier for the reply alone (and allocates no
 * item for it). */
static bool notifier_behind(void)
{
	pthread_mutex_lock(&notifier.lock);
	bool behind = notifier.running && !notifier.stop && (notifier.head || notifier.busy);
	pthread_mutex_unlock(&notifier.lock);
	return behind;
}

/* Queues it (a reply) behind every invalidation queued so far; false, and it is
 * still the caller's, when the notifier is gone. */
static bool reply_queue(struct inval_item *it)
{
	bool queued = false;
	pthread_mutex_lock(&notifier.lock);
	if (it && notifier.running && !notifier.stop) {
		*notifier.tail = it;
		notifier.tail = &it->next;
		pthread_cond_signal(&notifier.cond);
		queued = true;
	}
	pthread_mutex_unlock(&notifier.lock);
	return queued;
}

void fs_inval_reply(fuse_req_t req, size_t count, int errnum)
{
	if (!notifier_behind()) {
		send_reply(req, count, errnum);
		return;
	}
	struct inval_item *it = calloc(1, sizeof *it);
	if (it) {
		it->req = req;
		it->count = count;
		it->errnum = errnum;
	}
	if (reply_queue(it))
		return;
	free(it);
	send_reply(req, count, errnum);
}

void fs_reply_open_behind(fuse_req_t req, const struct fuse_file_info *fi,
                          void (*abandoned)(void *h), void *h)
{
	if (!notifier_behind()) {
		if (fuse_reply_open(req, fi) != 0)
			abandoned(h); /* interrupted: the kernel will never release it */
		return;
	}
	struct inval_item *it = calloc(1, sizeof *it);
	if (it) {
		it->req = req;
		it->open = true;
		it->fi = *fi;
		it->abandoned = abandoned;
		it->arg = h;
	}
	if (reply_queue(it))
		return;
	free(it);
	if (fuse_reply_open(req, fi) != 0) /* the notifier is gone: unmounting */
		abandoned(h);
}

/* the notifier's thread id, for a look at where it waits (notifier_in_kernel) */
static _Atomic pid_t notifier_tid;

static void *notifier_main(void *arg)
{
	(void)arg;
	atomic_store(&notifier_tid, (pid_t)syscall(SYS_gettid));
	for (;;) {
		pthread_mutex_lock(&notifier.lock);
		notifier.busy = false;
		while (!notifier.head && !notifier.stop)
			pthread_cond_wait(&notifier.cond, &notifier.lock);
		struct inval_item *it = notifier.head;
		if (!it) { /* stopping, and drained */
			pthread_mutex_unlock(&notifier.lock);
			return NULL;
		}
		bool stopping = notifier.stop;
		notifier.busy = true;
		notifier.head = it->next;
		if (!notifier.head)
			notifier.tail = &notifier.head;
		pthread_mutex_unlock(&notifier.lock);
		if (it->req) {
			send_item_reply(it);
		} else if (fsd.se && !stopping && !fuse_session_exited(fsd.se)) {
			/* Not once the loop ended: an entry invalidation waits for the
			 * directory's lock, which a request no worker will answer may hold.
			 * ENOENT: the kernel dropped the inode meanwhile - nothing to drop */
			if (it->name)
				fuse_lowlevel_notify_inval_entry(fsd.se, it->ino, it->name, strlen(it->name));
			else
				/* offset -1: attributes only; 0: the pages too */
				fuse_lowlevel_notify_inval_inode(fsd.se, it->ino, it->data ? 0 : -1, 0);
		}
		free(it->name);
		free(it);
	}
}

int fs_inval_start(void)
{
	if (pthread_create(&notifier.th, NULL, notifier_main, NULL) != 0)
		return -1;
	notifier.running = true;
	return 0;
}

/* Whether the notifier waits inside the FUSE device's notification code (its
 * kernel stack says fuse_…). Then the superblock is alive (the notification holds
 * it), so the connection is still this mount's. Needs root; false otherwise. */
static bool notifier_in_fuse(void)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/self/task/%d/stack", (int)atomic_load(&notifier_tid));
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "fuse_reverse_inval") || strstr(buf, "fuse_notify") ||
	       strstr(buf, "fuse_dev_do_write");
}

void fs_inval_stop(void (*abort_conn)(bool in_fuse))
{
	if (notifier.running) {
		pthread_mutex_lock(&notifier.lock);
		notifier.stop = true;
		pthread_cond_signal(&notifier.cond);
		pthread_mutex_unlock(&notifier.lock);
		/* An entry invalidation sent just before the loop ended waits for its
		 * directory's lock, which a request no worker will ever answer may hold
		 * (a lookup under load at SIGTERM): only ending the connection fails
		 * that request and frees the lock. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2;
		if (pthread_timedjoin_np(notifier.th, NULL, &until) != 0) {
			if (abort_conn)
				abort_conn(notifier_in_fuse());
			pthread_join(notifier.th, NULL);
		}
		notifier.running = false;
	}
	while (notifier.head) { /* the thread never ran: replies still go out */
		struct inval_item *it = notifier.head;
		notifier.head = it->next;
		if (it->req)
			send_item_reply(it);
		free(it->name);
		free(it);
	}
	notifier.tail = &notifier.head;
}
