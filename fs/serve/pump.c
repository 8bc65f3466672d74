/*
 * pump.c - core events become fs work; the pump thread takes what must wait.
 *
 * A VM's events are handled on the core's thread that reports them
 * (handle_inline): they move the st_mtime of the files that changed, invalidate
 * cached attributes (which waits on nothing) and answer parked `events` reads
 * and pollers. What the core reports of no VM (images, the root's error file), a
 * VM's removal (an entry invalidation) and what comes before the pump runs are
 * queued for the pump thread, which takes them in order.
 *
 * Replies that must not overtake invalidations (fs_reply_*_fresh: a write that
 * changed values) go behind the events queued for the pump, then behind the
 * notifier's queue, which sends the reply once what was queued before it was
 * delivered; when neither has anything queued or in hand, the reply goes at
 * once. Opens of a small value the page cache is about to hold take the
 * notifier queue too, behind the invalidation of the old page (pcache.c). No
 * thread waits for another. This is safe because an inode invalidation takes
 * no lock a pending request holds (the kernel drops attributes and unlocked
 * pages, never waiting on i_rwsem), and no deferred reply is for a request that
 * holds a directory lock (mkdir and rmdir reply at once), which an entry
 * invalidation ahead of it could wait for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

struct pump_item {
	enum { P_EVENT, P_REPLY, P_LISTING } type;
	svm_event_kind kind;
	svm_vm *vm;       /* our reference, or NULL */
	char *text;       /* SVM_EV_IMAGES: the bundle id, or NULL */
	fuse_req_t req;   /* P_REPLY */
	size_t count;     /* P_REPLY: bytes written, when errnum is 0; P_LISTING: the row */
	int errnum;       /* P_REPLY */
	struct pump_item *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pump_item *head, **tail;
	bool stop;
	bool busy; /* the thread works on an item it took off the queue */
	pthread_t th;
	atomic_bool running; /* also read without the lock: reply_fresh */
} pump = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &pump.head, false, false, 0,
          false};

static void pump_push(struct pump_item *it)
{
	pthread_mutex_lock(&pump.lock);
	*pump.tail = it;
	pump.tail = &it->next;
	pthread_cond_signal(&pump.cond);
	pthread_mutex_unlock(&pump.lock);
}

/* A VM's events (all but its removal) are handled on the core's thread that
 * reports them, not by the pump: their work is atomics (st_mtime, gen),
 * invalidations of attributes, which wait on nothing (inval.c), and the
 * answers to waiting `events` reads and pollers, none of which waits on a
 * request. The core reports them holding none of its locks. So a pause's state
 * change is in the kernel's view before its op completes, and the op's reply
 * needs no hop through the pump (reply_fresh); each console, log or metrics
 * line no longer wakes a thread beside the very request. False until the pump
 * runs, as the tables are there from fs_serve_start on (a mount re-adopting
 * VMs gets events before: they wait in the pump's queue). */
static bool inline_ready;

static void vm_event(svm_event_kind kind, svm_vm *vm);

static bool handle_inline(const svm_event *ev)
{
	if (!ev->vm || ev->kind == SVM_EV_REMOVED || !__atomic_load_n(&inline_ready, __ATOMIC_ACQUIRE))
		return false;
	vm_event(ev->kind, ev->vm);
	return true;
}

void fs_on_core_event(void *ud, const svm_event *ev)
{
	(void)ud;
	if (handle_inline(ev))
		return;
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

static void reply_fresh(fuse_req_t req, size_t count, int errnum)
{
	if (pump.running && pthread_equal(pthread_self(), pump.th)) {
		fs_inval_reply(req, count, errnum); /* the events before it are handled */
		return;
	}
	/* nothing queued, nothing in hand: every event reported before this
	 * call is handled, and the reply goes on (no wake of the pump, no item) */
	pthread_mutex_lock(&pump.lock);
	bool behind = pump.running && !pump.stop && (pump.head || pump.busy);
	pthread_mutex_unlock(&pump.lock);
	struct pump_item *it = behind ? calloc(1, sizeof *it) : NULL;
	if (!it) {
		fs_inval_reply(req, count, errnum);
		return;
	}
	it->type = P_REPLY;
	it->req = req;
	it->count = count;
	it->errnum = errnum;
	pthread_mutex_lock(&pump.lock);
	bool queued = pump.running && !pump.stop; /* behind what it had, or handled since */
	if (queued) {
		*pump.tail = it;
		pump.tail = &it->next;
		pthread_cond_signal(&pump.cond);
	}
	pthread_mutex_unlock(&pump.lock);
	if (!queued) {
		free(it);
		fs_inval_reply(req, count, errnum);
	}
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
	/* never back: the pump and core threads (handle_inline) all move it */
	int64_t was = __atomic_load_n(&rs->mtime_ns, __ATOMIC_RELAXED);
	while (was < now && !__atomic_compare_exchange_n(&rs->mtime_ns, &was, now, true,
	                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	__atomic_add_fetch(&rs->gen, 1, __ATOMIC_SEQ_CST);
	if (fs_row_cacheable(row))
		fs_row_inval(row, rs, ino, true);
}

void fs_root_row_changed(int row)
{
	changed(&fsd.tree->root->rows[row], &fs_root_state[row], FS_INO_ROOTROW(row), fs_now_ns());
}

void fs_root_file_changed(const char *parent, const char *name)
{
	int r = fs_table_find(fsd.tree->root, parent, name);
	if (r >= 0)
		fs_root_row_changed(r);
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
	fs_entries_unpin(v, ne);
	svm_strv_free(names);
	if (t.vm)
		svm_vm_unref(t.vm);
}

/* SVM_EV_IMAGES: a bundle's files (text = its id), or the listings as a whole. */
static void images_changed(const char *id, int64_t now)
{
	unsigned bit = 1u << SVM_EV_IMAGES;
	for (int r = 0; r < fsd.tree->root->nrows; r++) {
		const struct fs_row *dir = &fsd.tree->root->rows[r];
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
		fs_entries_unpin(v, n);
	}
}

/* An event's root files (any thread). */
static void root_changed(svm_event_kind kind, int64_t now)
{
	unsigned bit = 1u << kind;
	for (int i = 0; i < fsd.tree->root->nrows; i++)
		if (fsd.tree->root->rows[i].changes_on & bit)
			changed(&fsd.tree->root->rows[i], &fs_root_state[i], FS_INO_ROOTROW(i), now);
}

/* A VM's event: its files, its directory, its waiting readers (any thread). */
static void vm_event(svm_event_kind kind, svm_vm *vm)
{
	int64_t now = fs_now_ns();
	root_changed(kind, now);
	struct fs_node *n = fs_node_find(vm);
	if (!n)
		return;
	unsigned bit = 1u << kind;
	/* A VM's directory shows the VM's own mtime (svm_vm_mtime_ns), which a
	 * state, config or metadata change moves; its files their own. Cached
	 * attributes of every cacheable file go at such a change all the same (a
	 * config.json that a start replaced: image, restore). */
	bool touched = kind == SVM_EV_STATE || kind == SVM_EV_EXIT || kind == SVM_EV_CONFIG;
	for (int i = 0; i < fsd.tree->vm->nrows; i++) {
		fuse_ino_t ino = FS_INO_VM(n->serial, i + 1);
		if (fsd.tree->vm->rows[i].changes_on & bit)
			changed(&fsd.tree->vm->rows[i], &n->rows[i], ino, now);
		else if (touched && fs_row_cacheable(&fsd.tree->vm->rows[i]))
			fs_row_inval(&fsd.tree->vm->rows[i], &n->rows[i], ino, false);
	}
	if (touched)
		fs_inval_inode(FS_INO_VM(n->serial, 0));
	switch (kind) {
	case SVM_EV_STATE:
	case SVM_EV_EXIT:
		fs_events_wake(n, false);
		break;
	case SVM_EV_REMOVED:
		fs_node_mark_removed(n);
		fs_events_wake(n, true);
		fs_inval_entry(FS_INO_ROOTROW(fsd.vms_row), n->name);
		fs_inval_inode(FS_INO_ROOTROW(fsd.vms_row));
		break;
	default:
		break;
	}
}

/* On the pump: what the core reported of no VM, a VM's removal, and what came
 * before the pump ran. */
static void handle_event(struct pump_item *it)
{
	if (it->vm) {
		vm_event(it->kind, it->vm);
		return;
	}
	int64_t now = fs_now_ns();
	root_changed(it->kind, now);
	if (it->kind == SVM_EV_IMAGES)
		images_changed(it->text, now);
}

void fs_vm_listing_changed(svm_vm *vm, const char *dirname)
{
	int row = fs_vm_row_find(NULL, dirname);
	struct pump_item *it = row >= 0 ? calloc(1, sizeof *it) : NULL;
	if (!it)
		return; /* the entry goes at its next lookup instead */
	it->type = P_LISTING;
	svm_vm_ref(vm);
	it->vm = vm;
	it->count = (size_t)row;
	pump_push(it);
}

static void listing_changed(struct pump_item *it)
{
	struct fs_node *n = fs_node_find(it->vm);
	if (n)
		fs_entries_sync(FS_INO_VM(n->serial, it->count + 1), &fsd.tree->vm->rows[it->count], n);
}

static void *pump_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pump.lock);
		pump.busy = false;
		while (!pump.head && !pump.stop)
			pthread_cond_wait(&pump.cond, &pump.lock);
		struct pump_item *it = pump.head;
		if (!it) { /* stopping, and drained */
			pthread_mutex_unlock(&pump.lock);
			return NULL;
		}
		pump.busy = true;
		pump.head = it->next;
		if (!pump.head)
			pump.tail = &pump.head;
		pthread_mutex_unlock(&pump.lock);
		if (it->type == P_REPLY)
			fs_inval_reply(it->req, it->count, it->errnum);
		else if (it->type == P_LISTING)
			listing_changed(it);
		else
			handle_event(it);
		if (it->vm)
			svm_vm_unref(it->vm);
		free(it->text);
		free(it);
	}
}

int fs_pump_start(void)
{
	/* the thread's id is set before running says so, and never changes */
	if (pthread_create(&pump.th, NULL, pump_main, NULL) != 0)
		return -1;
	atomic_store(&pump.running, true);
	__atomic_store_n(&inline_ready, true, __ATOMIC_RELEASE);
	return 0;
}

/* Drains first: every reply is sent. */
void fs_pump_stop(void)
{
	if (pump.running) {
		pthread_mutex_lock(&pump.lock);
		pump.stop = true;
		pthread_cond_signal(&pump.cond);
		pthread_mutex_unlock(&pump.lock);
		pthread_join(pump.th, NULL); /* drains first: every reply is sent */
		atomic_store(&pump.running, false);
	}
}
