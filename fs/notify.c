/*
 * notify.c - two threads between the core and the kernel.
 *
 * The pump: the core's on_event and op-completion callbacks run on core threads
 * and must not block, so they only append to a queue. The pump thread takes
 * the queue in order and does the work: marks which files changed (their
 * st_mtime), answers parked `events` reads and pollers, continues multi-line ctl
 * writes, and asks for invalidations.
 *
 * The notifier: fuse_lowlevel_notify_inval_* may wait for the kernel, and the
 * kernel may be waiting for a reply of ours (a request holding the inode), so
 * invalidations are sent from this thread only - never from a request thread,
 * never from the pump. Queued invalidations of the same inode are merged, and
 * only inodes the kernel holds a lookup of (and could have cached) are sent:
 * the rest would only be answered ENOENT.
 *
 * Replies that must not overtake invalidations (fs_reply_*_fresh: a write that
 * changed values) travel the same road: through the pump queue, behind the core
 * events the change caused, then through the notifier queue, behind their
 * invalidations; the notifier sends the reply once those were delivered. Opens
 * of a small value the page cache is about to hold take the notifier queue too,
 * behind the invalidation of the old page (ops.c, "small values"). No thread
 * waits for another. This is safe because an inode invalidation takes
 * no lock a pending request holds (the kernel drops attributes and unlocked
 * pages, never waiting on i_rwsem), and no deferred reply is for a request that
 * holds a directory lock (mkdir and rmdir reply at once), which an entry
 * invalidation ahead of it could wait for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"

struct pump_item {
	enum { P_EVENT, P_DONE, P_REPLY } type;
	svm_event_kind kind;
	svm_vm *vm;       /* our reference, or NULL */
	char *text;       /* SVM_EV_IMAGES: the bundle id, or NULL */
	void *job;        /* P_DONE */
	svm_error err;    /* P_DONE */
	fuse_req_t req;   /* P_REPLY */
	size_t count;     /* P_REPLY: bytes written, when errnum is 0 */
	int errnum;       /* P_REPLY */
	struct pump_item *next;
};

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
	struct pump_item *head, **tail;
	bool stop;
	pthread_t th;
	bool running;
} pump = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &pump.head, false, 0, false};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval_item *head, **tail;
	bool stop;
	pthread_t th;
	bool running;
} notifier = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &notifier.head, false, 0,
              false};

static void pump_push(struct pump_item *it)
{
	pthread_mutex_lock(&pump.lock);
	*pump.tail = it;
	pump.tail = &it->next;
	pthread_cond_signal(&pump.cond);
	pthread_mutex_unlock(&pump.lock);
}

void fs_on_core_event(void *ud, const svm_event *ev)
{
	(void)ud;
	struct pump_item *it = calloc(1, sizeof *it);
	if (!it)
		return; /* a lost invalidation; the short timeouts still bound staleness */
	it->type = P_EVENT;
	it->kind = ev->kind;
	if (ev->vm) {
		svm_vm_ref(ev->vm);
		it->vm = ev->vm;
	}
	if (ev->kind == SVM_EV_IMAGES && ev->text)
		it->text = strdup(ev->text); /* NULL on ENOMEM: then the whole list is looked at */
	pump_push(it);
}

void fs_pump_post_done(void *job, const svm_error *err)
{
	struct pump_item *it = calloc(1, sizeof *it);
	if (!it) {
		/* cannot queue: continue here rather than lose a reply */
		fs_ctl_continue(job, err);
		return;
	}
	it->type = P_DONE;
	it->job = job;
	if (err)
		it->err = *err;
	pump_push(it);
}

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

static void inval_push(fuse_ino_t ino, const char *name)
{
	if (!fs_ino_held(ino))
		return; /* nothing of it (or, for a name, of its directory) is cached */
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

/* Behind every invalidation queued so far; at once when the notifier is gone. */
static void reply_push(fuse_req_t req, size_t count, int errnum)
{
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

static void reply_fresh(fuse_req_t req, size_t count, int errnum)
{
	if (pump.running && pthread_equal(pthread_self(), pump.th)) {
		reply_push(req, count, errnum); /* the events before it are handled */
		return;
	}
	struct pump_item *it = calloc(1, sizeof *it);
	if (!it) {
		reply_push(req, count, errnum);
		return;
	}
	it->type = P_REPLY;
	it->req = req;
	it->count = count;
	it->errnum = errnum;
	pthread_mutex_lock(&pump.lock);
	bool queued = pump.running && !pump.stop;
	if (queued) {
		*pump.tail = it;
		pump.tail = &it->next;
		pthread_cond_signal(&pump.cond);
	}
	pthread_mutex_unlock(&pump.lock);
	if (!queued) {
		free(it);
		reply_push(req, count, errnum);
	}
}

void fs_reply_open_behind(fuse_req_t req, const struct fuse_file_info *fi,
                          void (*abandoned)(void *h), void *h)
{
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

void fs_reply_write_fresh(fuse_req_t req, size_t count)
{
	reply_fresh(req, count, 0);
}

void fs_reply_err_fresh(fuse_req_t req, int err)
{
	reply_fresh(req, 0, err ? err : EIO);
}

/* A file's value changed: move its st_mtime, tell a reply whose attributes were
 * taken before now to invalidate once more (gen, reply_done), and drop what the
 * kernel may have cached. */
static void changed(const struct fs_row *row, struct fs_rowstate *rs, fuse_ino_t ino, int64_t now)
{
	__atomic_store_n(&rs->mtime_ns, now, __ATOMIC_RELAXED);
	__atomic_add_fetch(&rs->gen, 1, __ATOMIC_SEQ_CST);
	if (fs_row_cacheable(row))
		fs_row_inval(row, rs, ino, true);
}

void fs_root_row_changed(int row)
{
	changed(&fs_root_rows[row], &fs_root_state[row], FS_INO_ROOTROW(row), fs_now_ns());
}

void fs_entries_sync(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node)
{
	struct fs_target t = {.s = fsd.s, .row = dir};
	if (node && !(t.vm = fs_node_vm(node)))
		return;
	size_t nn = 0, ne = 0;
	char **names = dir->list(&t, &nn);
	struct fs_entry **v = fs_entries_under(parent, &ne);
	for (size_t i = 0; v && i < ne; i++) {
		bool listed = false;
		for (size_t k = 0; names && names[k] && !listed; k++)
			listed = !strcmp(names[k], v[i]->name);
		if (listed)
			continue;
		fs_entry_mark_gone(v[i]);
		fs_inval_entry(parent, v[i]->name);
	}
	free(v);
	svm_strv_free(names);
	if (t.vm)
		svm_vm_unref(t.vm);
}

/* SVM_EV_IMAGES: a bundle's files (text = its id), or the listings as a whole. */
static void images_changed(const char *id, int64_t now)
{
	unsigned bit = 1u << SVM_EV_IMAGES;
	for (int r = 0; r < fs_root_nrows; r++) {
		const struct fs_row *dir = &fs_root_rows[r];
		if (!dir->list || !(dir->changes_on & bit))
			continue;
		fuse_ino_t parent = FS_INO_ROOTROW(r);
		if (!id) {
			fs_entries_sync(parent, dir, NULL);
			continue;
		}
		size_t n = 0;
		struct fs_entry **v = fs_entries_under(parent, &n);
		for (size_t i = 0; v && i < n; i++) {
			struct fs_entry *e = v[i];
			if (strcmp(e->name, id))
				continue;
			__atomic_store_n(&e->mtime_ns, now, __ATOMIC_RELAXED);
			fs_inval_inode(FS_INO_ENT(e->serial, 0));
			for (int k = 0; dir->entries && k < dir->entries->nrows; k++)
				if (dir->entries->rows[k].changes_on & bit)
					changed(&dir->entries->rows[k], &e->rows[k],
					        FS_INO_ENT(e->serial, k + 1), now);
		}
		free(v);
	}
}

static void handle_event(struct pump_item *it)
{
	int64_t now = fs_now_ns();
	unsigned bit = 1u << it->kind;
	for (int i = 0; i < fs_root_nrows; i++)
		if (fs_root_rows[i].changes_on & bit)
			changed(&fs_root_rows[i], &fs_root_state[i], FS_INO_ROOTROW(i), now);
	if (it->kind == SVM_EV_IMAGES)
		images_changed(it->text, now);
	if (!it->vm)
		return;
	struct fs_node *n = fs_node_find(it->vm);
	if (!n)
		return;
	/* A VM's directory shows the VM's own mtime (svm_vm_mtime_ns), which a
	 * state, config or metadata change moves; its files their own. Cached
	 * attributes of every cacheable file go at such a change all the same (a
	 * config.json that a start replaced: image, restore). */
	bool touched = it->kind == SVM_EV_STATE || it->kind == SVM_EV_EXIT ||
	               it->kind == SVM_EV_CONFIG;
	for (int i = 0; i < fs_vm_nrows; i++) {
		fuse_ino_t ino = FS_INO_VM(n->serial, i + 1);
		if (fs_vm_rows[i].changes_on & bit)
			changed(&fs_vm_rows[i], &n->rows[i], ino, now);
		else if (touched && fs_row_cacheable(&fs_vm_rows[i]))
			fs_row_inval(&fs_vm_rows[i], &n->rows[i], ino, false);
	}
	if (touched)
		fs_inval_inode(FS_INO_VM(n->serial, 0));
	switch (it->kind) {
	case SVM_EV_STATE:
	case SVM_EV_EXIT:
		fs_events_wake(n, false);
		break;
	case SVM_EV_REMOVED:
		fs_node_mark_removed(n);
		fs_events_wake(n, true);
		fs_inval_entry(FS_INO_ROOTROW(fs_root_vms_index()), n->name);
		fs_inval_inode(FS_INO_ROOTROW(fs_root_vms_index()));
		break;
	default:
		break;
	}
}

static void *pump_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pump.lock);
		while (!pump.head && !pump.stop)
			pthread_cond_wait(&pump.cond, &pump.lock);
		struct pump_item *it = pump.head;
		if (!it) { /* stopping, and drained */
			pthread_mutex_unlock(&pump.lock);
			return NULL;
		}
		pump.head = it->next;
		if (!pump.head)
			pump.tail = &pump.head;
		pthread_mutex_unlock(&pump.lock);
		if (it->type == P_DONE)
			fs_ctl_continue(it->job, &it->err);
		else if (it->type == P_REPLY)
			reply_push(it->req, it->count, it->errnum);
		else
			handle_event(it);
		if (it->vm)
			svm_vm_unref(it->vm);
		free(it->text);
		free(it);
	}
}

/* the notifier's thread id, for a look at where it waits (notifier_in_kernel) */
static _Atomic pid_t notifier_tid;

static void *notifier_main(void *arg)
{
	(void)arg;
	atomic_store(&notifier_tid, (pid_t)syscall(SYS_gettid));
	for (;;) {
		pthread_mutex_lock(&notifier.lock);
		while (!notifier.head && !notifier.stop)
			pthread_cond_wait(&notifier.cond, &notifier.lock);
		struct inval_item *it = notifier.head;
		if (!it) { /* stopping, and drained */
			pthread_mutex_unlock(&notifier.lock);
			return NULL;
		}
		bool stopping = notifier.stop;
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

int fs_notify_start(void)
{
	if (pthread_create(&pump.th, NULL, pump_main, NULL) != 0)
		return -1;
	pump.running = true;
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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "fuse_reverse_inval") || strstr(buf, "fuse_notify") ||
	       strstr(buf, "fuse_dev_do_write");
}

void fs_notify_stop(void (*abort_conn)(bool in_fuse))
{
	if (pump.running) {
		pthread_mutex_lock(&pump.lock);
		pump.stop = true;
		pthread_cond_signal(&pump.cond);
		pthread_mutex_unlock(&pump.lock);
		pthread_join(pump.th, NULL); /* drains first: every reply is sent */
		pump.running = false;
	}
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
