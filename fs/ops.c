/*
 * ops.c - the FUSE low-level operations: generic code driven by the row tables.
 *
 * Nothing here knows what a particular file means; the rows in tree.c say it.
 * Caching policy (DESIGN §3 "values are never stale"):
 *  - names: root and VM rows never change -> long entry timeouts; VM directories
 *    change only by mkdir/rmdir (the kernel's own) or clone/removal (invalidated by
 *    the notifier thread) -> short timeout as a backstop;
 *  - attributes: stable rows cached for an hour; value files for a second, kept
 *    true by the notifier (every event that changes a value invalidates the
 *    inode, and a write that changed values is answered only after those
 *    invalidations were delivered, fs_reply_*_fresh); 0 for live, stream and
 *    offset files (st_size moves with every read or byte), for FS_NOATTR rows and
 *    for a VM's files while it starts or stops (pid, net, ... change before the
 *    state event that ends the transition);
 *  - page cache: for stable values (FS_STABLE: keep_cache) and for small values
 *    while the pages hold the open's value (FS_PAGE: "small values" below).
 *    Every other open is direct_io and reads its own snapshot (fi->fh), so a
 *    read through one open sees one value, whole: pages and the inode's size
 *    are shared by all opens and a value may change between any two requests,
 *    so pages left to themselves mixed, cut or zero-padded values. A cached
 *    st_size never bounds a direct read, so a stale one cuts nothing either;
 *  - lookup counts: each entry reply counts, forget drops; an inode the kernel
 *    holds no lookup of has nothing cached, and is never invalidated.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs.h"

#define TIMEOUT_STABLE 3600.0
#define TIMEOUT_VMDIR_ENTRY 10.0
#define TIMEOUT_DIR_ATTR 1.0
/* Value files: the invalidations keep them true; the timeout only bounds the
 * one race FUSE leaves open (a change while the kernel is still taking in the
 * lookup reply of a new inode) and costs one GETATTR a second per hot file. */
#define TIMEOUT_VALUE_ATTR 1.0

static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* What a row is about, for a where that names a row or an entry: s, the VM (a
 * new reference the caller drops with target_done, or NULL), the entry's name. */
static void target_of(const struct fs_where *w, struct fs_target *t)
{
	memset(t, 0, sizeof *t);
	t->s = fsd.s;
	if (w->node)
		t->vm = fs_node_vm(w->node);
	if (w->ent) {
		t->id = w->ent->name;
		t->row = w->ent->dir;
	}
	const struct fs_row *row = fs_where_row(w);
	if (row)
		t->row = row;
}

static void target_done(struct fs_target *t)
{
	if (t->vm)
		svm_vm_unref(t->vm);
	t->vm = NULL;
}

/* The value of a text row, for st_size. */
static size_t text_len(const struct fs_row *row, const struct fs_target *t)
{
	char *text = NULL;
	size_t len = 0;
	svm_error err;
	svm_error_clear(&err);
	if (row->text(t, &text, &len, &err) != 0)
		len = 0;
	free(text);
	return len;
}

/* A symlink's target: a row's link, or a symlink entry's. NULL when absent. */
static char *link_of(const struct fs_where *w, const struct fs_target *t)
{
	if (w->node && !t->vm)
		return NULL; /* the VM it belonged to was removed */
	if (w->kind == FS_W_ENT)
		return w->ent->dir->entries ? NULL : w->ent->dir->entry_link(t);
	const struct fs_row *row = fs_where_row(w);
	return row && S_ISLNK(row->mode) && row->link ? row->link(t) : NULL;
}

/* ------------------------------------------------------------ small values
 *
 * The page cache of small value files (FS_PAGE rows: state, pid, ...), so that
 * `cat state` is one OPEN (keep_cache) and an asynchronous RELEASE, and still no
 * read ever mixes, cuts or pads two values, and stat tells the truth.
 *
 * The kernel's copy of a value is two things shared by every open of the
 * inode: the page, filled by the READ of one open, and i_size, set by every
 * attribute reply it applies (lookup, GETATTR of a stat or of a read past
 * i_size or with stale attributes) and shrunk by a short READ. A cached read
 * copies min(i_size, what the page holds): the page of one value with the size
 * of another is cut or padded with zeros. And the kernel drops an attribute
 * reply to a request sent before the inode's last invalidation (attr_version):
 * the read that asked for it then goes on with the old i_size. So per inode the
 * daemon keeps `text` (pc_text), the one value the pages may hold, and:
 *
 *  - while `valid`, every attribute reply gives len(text) (the size is pinned).
 *    When the value has moved on and no cached open is left, the pin is
 *    dropped and the reply says the truth; while cached opens of the old value
 *    remain (one may be inside its read) it stays, with attribute timeout 0,
 *    so the truth comes back at the first look after they are released;
 *  - an open whose snapshot is `text` is cached: keep_cache, and no READ at all
 *    once the page is there (`ready`: a READ of text has arrived);
 *  - an open of another value becomes the new `text` only when no cached open
 *    is left (nobody fills or copies the old page). It queues an invalidation
 *    of the inode's pages and attributes (under the lock, so every later open
 *    of the value is queued behind it) and is replied by the notifier after
 *    it: the old page is gone, replies computed before (the old size) are
 *    dropped by the kernel, so the first read asks GETATTR and gets len(text).
 *    Until a READ of the new value arrives, attribute timeouts are 0, other
 *    opens of it are replied behind that invalidation too, and the attribute
 *    invalidations of value changes are held (sent at that READ or at the last
 *    release): one landing while the first reader's GETATTR is on its way
 *    would have the kernel drop the reply that sets the new size. Once a READ
 *    came, an applied reply has set len(text): later drops keep it;
 *  - an open of another value while cached opens of `text` remain is direct_io
 *    from its own snapshot and touches neither the page nor the size.
 *
 * A cached open serves its snapshot (== text) for its whole life, so the page
 * only ever holds text. Values longer than a page are never cached. One small
 * lock per inode (striped), held for a compare and a copy.
 */
enum pc_open {
	PC_DIRECT,            /* direct_io from the open's own snapshot */
	PC_CACHED,            /* keep_cache: the pages hold this value */
	PC_CACHED_BEHIND,     /* keep_cache, replied behind the new value's invalidation */
	PC_CACHED_NEW         /* a new value: invalidate the inode, then reply keep_cache */
};

#define PCACHE_MAX 4096
#define PCACHE_LOCKS 64

static pthread_mutex_t pc_locks[PCACHE_LOCKS] = {
	[0 ... PCACHE_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *pc_lock_of(const struct fs_rowstate *rs)
{
	return &pc_locks[((uintptr_t)rs >> 6) % PCACHE_LOCKS];
}

static bool pc_same(const struct fs_rowstate *rs, const char *text, size_t len)
{
	return rs->pc_len == len && (len == 0 || memcmp(rs->pc_text, text, len) == 0);
}

static bool pc_row(const struct fs_row *row)
{
	return (row->flags & FS_PAGE) && row->text && !row->write &&
	       !(row->flags & (FS_LIVE | FS_STREAM | FS_OFFSET | FS_STABLE));
}

static enum pc_open pc_open(struct fs_rowstate *rs, fuse_ino_t ino, const char *snap, size_t len)
{
	if (len > PCACHE_MAX)
		return PC_DIRECT;
	enum pc_open mode = PC_DIRECT;
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_valid && pc_same(rs, snap, len)) {
		rs->pc_opens++;
		mode = rs->pc_ready ? PC_CACHED : PC_CACHED_BEHIND;
	} else if (rs->pc_opens == 0) {
		char *copy = malloc(len ? len : 1);
		if (copy) {
			memcpy(copy, snap, len);
			free(rs->pc_text);
			rs->pc_text = copy;
			rs->pc_len = len;
			rs->pc_valid = true;
			rs->pc_ready = false;
			rs->pc_opens = 1;
			/* queued under the lock: every open of this value that follows
			 * is replied behind it (PC_CACHED_BEHIND) */
			fs_inval_inode_pages(ino);
			mode = PC_CACHED_NEW;
		}
	}
	pthread_mutex_unlock(pc_lock_of(rs));
	return mode;
}

static void pc_release(struct fs_rowstate *rs, fuse_ino_t ino)
{
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_opens > 0)
		rs->pc_opens--;
	if (rs->pc_opens == 0 && rs->pc_inval_held) {
		rs->pc_inval_held = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

void fs_row_inval(const struct fs_row *row, struct fs_rowstate *rs, fuse_ino_t ino,
                  bool value_changed)
{
	if (!pc_row(row)) {
		fs_inval_inode(ino);
		return;
	}
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_opens > 0 && rs->pc_valid && !rs->pc_ready) {
		rs->pc_inval_held = true; /* sent at the first READ or the last release */
	} else if (rs->pc_opens > 0) {
		fs_inval_inode(ino);
	} else {
		if (value_changed)
			rs->pc_valid = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

static void pc_read(struct fs_rowstate *rs, fuse_ino_t ino)
{
	pthread_mutex_lock(pc_lock_of(rs));
	rs->pc_ready = true;
	if (rs->pc_inval_held) {
		rs->pc_inval_held = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

static size_t pc_attr_size(struct fs_rowstate *rs, const char *cur, size_t len, bool *no_cache)
{
	size_t size = len;
	*no_cache = false;
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_valid && !rs->pc_ready)
		*no_cache = true; /* nothing cached before the first READ of the value */
	if (rs->pc_valid && !pc_same(rs, cur, len)) {
		if (rs->pc_opens == 0) {
			rs->pc_valid = false; /* nobody reads the old page: say the truth */
		} else {
			size = rs->pc_len;
			*no_cache = true;
		}
	}
	pthread_mutex_unlock(pc_lock_of(rs));
	return size;
}

void fs_pcache_free(struct fs_rowstate *rs)
{
	free(rs->pc_text);
	rs->pc_text = NULL;
	rs->pc_len = 0;
	rs->pc_valid = false;
}

/* st_size of a row; *no_cache: the attributes must not be cached (small values:
 * a pinned older size, or a new value not read yet). */
static size_t row_size(const struct fs_row *row, struct fs_rowstate *rs, const struct fs_target *t,
                       bool *no_cache)
{
	*no_cache = false;
	if (row->flags & FS_OFFSET)
		return (size_t)svm_stream_size(t->s, t->vm, row->stream);
	if (row->flags & FS_STREAM)
		return 0;
	if (row->flags & FS_LIVE)
		return (size_t)__atomic_load_n(&rs->served_len, __ATOMIC_RELAXED);
	if (!row->text)
		return 0;
	if (!rs || !pc_row(row))
		return text_len(row, t);
	char *text = NULL;
	size_t len = 0;
	svm_error err;
	svm_error_clear(&err);
	if (row->text(t, &text, &len, &err) != 0)
		len = 0;
	size_t size = pc_attr_size(rs, text ? text : "", len, no_cache);
	free(text);
	return size;
}

static mode_t root_row_mode(int r)
{
	if (r == fs_root_vms_index())
		return S_IFDIR | (fsd.allow_other ? 01777 : 0755);
	return fs_root_rows[r].mode;
}

static mode_t where_mode(const struct fs_where *w)
{
	switch (w->kind) {
	case FS_W_ROOT:
	case FS_W_VMDIR:
		return S_IFDIR;
	case FS_W_ROOTROW:
		return root_row_mode(w->row);
	case FS_W_VMROW:
	case FS_W_ENTROW:
		return fs_where_row(w)->mode;
	case FS_W_ENT:
		return w->ent->dir->entries ? S_IFDIR | 0555 : S_IFLNK | 0777;
	default:
		return 0;
	}
}

static struct fs_rowstate *rowstate_at(const struct fs_where *w)
{
	switch (w->kind) {
	case FS_W_ROOTROW:
		return &fs_root_state[w->row];
	case FS_W_VMROW:
		return &w->node->rows[w->row];
	case FS_W_ENTROW:
		return &w->ent->rows[w->row];
	default:
		return NULL;
	}
}

static fuse_ino_t where_ino(const struct fs_where *w)
{
	switch (w->kind) {
	case FS_W_ROOT:
		return FS_INO_ROOT;
	case FS_W_ROOTROW:
		return FS_INO_ROOTROW(w->row);
	case FS_W_VMDIR:
		return FS_INO_VM(w->node->serial, 0);
	case FS_W_VMROW:
		return FS_INO_VM(w->node->serial, w->row + 1);
	case FS_W_ENT:
		return FS_INO_ENT(w->ent->serial, 0);
	case FS_W_ENTROW:
		return FS_INO_ENT(w->ent->serial, w->row + 1);
	default:
		return 0;
	}
}

static void fill_attr(const struct fs_where *w, struct stat *st, bool *no_cache)
{
	*no_cache = false;
	memset(st, 0, sizeof *st);
	st->st_uid = fsd.mount_uid;
	st->st_gid = fsd.mount_gid;
	st->st_blksize = 4096;
	st->st_ino = where_ino(w);
	st->st_mode = where_mode(w);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	int64_t mtime = fsd.mount_ns;
	struct fs_target t;
	target_of(w, &t);
	if (w->node) {
		st->st_uid = w->node->owner;
		mtime = max64(mtime, w->node->created_ns);
		/* the directory moves with any change of the VM; a file only when its
		 * own value changed (rs->mtime_ns, moved by the pump): a pause leaves
		 * config.json and error as they were */
		if (t.vm && w->kind == FS_W_VMDIR)
			mtime = max64(mtime, svm_vm_mtime_ns(t.vm));
	}
	if (w->ent)
		mtime = max64(mtime, __atomic_load_n(&w->ent->mtime_ns, __ATOMIC_RELAXED));
	struct fs_rowstate *rs = rowstate_at(w);
	if (rs)
		mtime = max64(mtime, __atomic_load_n(&rs->mtime_ns, __ATOMIC_RELAXED));
	switch (w->kind) {
	case FS_W_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 5; /* ., .., vms, net, images */
		break;
	case FS_W_ROOTROW:
		if (w->row == fs_root_vms_index())
			st->st_nlink = 2 + svm_count_vms(fsd.s);
		break;
	case FS_W_VMDIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 3; /* snapshots */
		break;
	default:
		break;
	}
	const struct fs_row *row = fs_where_row(w);
	if (S_ISLNK(st->st_mode)) {
		char *target = link_of(w, &t);
		st->st_size = target ? (off_t)strlen(target) : 0;
		free(target);
	} else if (row && S_ISREG(st->st_mode) && (t.vm || !w->node)) {
		st->st_size = (off_t)row_size(row, rs, &t, no_cache);
	}
	target_done(&t);
	st->st_blocks = (st->st_size + 511) / 512;
	ts_from_ns(&st->st_mtim, mtime);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

void fs_fill_attr(const struct fs_where *w, struct stat *st)
{
	bool no_cache;
	fill_attr(w, st, &no_cache);
}

static double attr_timeout(const struct fs_where *w)
{
	mode_t mode = where_mode(w);
	if (S_ISDIR(mode))
		return TIMEOUT_DIR_ATTR;
	if (!S_ISREG(mode))
		return 0.0;
	const struct fs_row *row = fs_where_row(w);
	if (!row)
		return 0.0;
	if (row->flags & FS_STABLE)
		return TIMEOUT_STABLE;
	if (!row->text || (row->flags & (FS_LIVE | FS_STREAM | FS_OFFSET | FS_NOATTR)))
		return 0.0;
	if (w->node) {
		svm_vm *vm = fs_node_vm(w->node);
		svm_state st = vm ? svm_vm_state(vm) : SVM_STOPPING;
		if (vm)
			svm_vm_unref(vm);
		if (st == SVM_STARTING || st == SVM_STOPPING)
			return 0.0; /* removed, or in a transition */
	}
	return TIMEOUT_VALUE_ATTR;
}

/* Attributes for a reply and their timeout (taken first: a transition that
 * begins after it sends its own invalidation); *gen for reply_done. */
static double serve_attr(const struct fs_where *w, struct stat *st, uint64_t *gen)
{
	double timeout = attr_timeout(w);
	struct fs_rowstate *rs = rowstate_at(w);
	*gen = rs ? __atomic_load_n(&rs->gen, __ATOMIC_SEQ_CST) : 0;
	bool no_cache;
	fill_attr(w, st, &no_cache);
	return no_cache ? 0.0 : timeout;
}

/* After the reply: a change that came while the attributes were computed has
 * its invalidation, but it may have reached the kernel before the reply did
 * (a new inode it did not know yet): send one more. */
static void reply_done(const struct fs_where *w, uint64_t gen)
{
	struct fs_rowstate *rs = rowstate_at(w);
	if (rs && __atomic_load_n(&rs->gen, __ATOMIC_SEQ_CST) != gen &&
	    fs_row_cacheable(fs_where_row(w)))
		fs_row_inval(fs_where_row(w), rs, where_ino(w), false);
}

static void reply_entry(fuse_req_t req, const struct fs_where *w, double entry_timeout)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	fuse_ino_t ino = where_ino(w);
	/* counted before the attributes are taken: a change after this point is
	 * invalidated (the notifier skips inodes the kernel holds no lookup of) */
	fs_lookup_add(ino, 1);
	uint64_t gen;
	e.attr_timeout = serve_attr(w, &e.attr, &gen);
	e.ino = e.attr.st_ino;
	e.generation = 1;
	if (w->ent)
		e.generation = w->ent->serial; /* never reused, like the inode number */
	else if (w->node)
		e.generation = w->node->serial;
	e.entry_timeout = entry_timeout;
	if (fuse_reply_entry(req, &e) != 0)
		fs_lookup_add(ino, -1); /* the kernel never took it (interrupted) */
	else
		reply_done(w, gen);
}

static bool is_vms_dir(fuse_ino_t ino)
{
	return ino == FS_INO_ROOTROW(fs_root_vms_index());
}

/* ------------------------------------------------------------ names */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	/* Writes must reach us as written: no writeback cache, no parallel pieces
	 * of one direct write (a document is parsed in order). */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_ASYNC_DIO;
	/* No atomic O_TRUNC (libfuse asks for it by default): with it the kernel
	 * sets the inode's size to 0 after an O_TRUNC open, and other readers see
	 * an empty file. Without it, O_TRUNC is a SETATTR size=0, answered with the
	 * real attributes (op_setattr): the stored document never looks emptied. */
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
}

/* A name under a listing row: a dynamic entry while the listing gives it. Names
 * come and go (downloads, evictions, snapshots): no entry caching at all. */
static bool lookup_entry(fuse_req_t req, fuse_ino_t parent, const struct fs_row *dir,
                         struct fs_node *node, const char *name)
{
	struct fs_where pw = {.kind = FS_W_NONE, .node = node};
	struct fs_target t;
	target_of(&pw, &t);
	t.row = dir;
	bool listed = (!node || t.vm) && fs_listed(dir, &t, name);
	target_done(&t);
	if (!listed) {
		size_t n = 0;
		struct fs_entry **v = fs_entries_under(parent, &n);
		for (size_t i = 0; i < n; i++)
			if (!strcmp(v[i]->name, name))
				fs_entry_mark_gone(v[i]); /* if it comes back, it is a new one */
		free(v);
		return false;
	}
	struct fs_entry *e = fs_entry_get(parent, dir, node, name);
	if (!e) {
		fuse_reply_err(req, ENAMETOOLONG);
		return true;
	}
	struct fs_where w = {.kind = FS_W_ENT, .row = -1, .node = node, .ent = e};
	reply_entry(req, &w, 0.0);
	return true;
}

/* A root row found by name: absent symlinks (a preset never resolved) are not there. */
static bool lookup_root_row(fuse_req_t req, int r)
{
	struct fs_where w = {.kind = FS_W_ROOTROW, .row = r};
	const struct fs_row *row = &fs_root_rows[r];
	if (S_ISLNK(row->mode)) {
		struct fs_target t;
		target_of(&w, &t);
		char *target = row->link(&t);
		target_done(&t);
		if (!target)
			return false;
		free(target);
		reply_entry(req, &w, 0.0); /* may change or appear at any time */
		return true;
	}
	reply_entry(req, &w, TIMEOUT_STABLE);
	return true;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_where w = {.kind = FS_W_NONE, .row = -1};
	struct fs_where p = fs_resolve(parent);
	const struct fs_row *prow = fs_where_row(&p);
	if (p.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (p.kind == FS_W_ROOT) {
		int r = fs_root_row_index("", name);
		if (r >= 0 && lookup_root_row(req, r))
			return;
	} else if (p.kind == FS_W_ROOTROW && S_ISDIR(prow->mode)) {
		int r = !strcmp(prow->parent, "") ? fs_root_row_index(prow->name, name) : -1;
		if (r >= 0 && lookup_root_row(req, r))
			return;
		if (r < 0 && is_vms_dir(parent)) {
			svm_vm *vm = svm_get_vm(fsd.s, name);
			if (vm) {
				struct fs_node *n = fs_node_for(vm);
				svm_vm_unref(vm);
				if (n) {
					w.kind = FS_W_VMDIR;
					w.node = n;
					reply_entry(req, &w, TIMEOUT_VMDIR_ENTRY);
					return;
				}
			}
		}
		if (r < 0 && prow->list && lookup_entry(req, parent, prow, NULL, name))
			return;
	} else if (p.kind == FS_W_VMDIR) {
		int r = fs_vm_row_index(name);
		svm_vm *vm = fs_node_vm(p.node);
		if (vm)
			svm_vm_unref(vm);
		if (r >= 0 && vm) {
			w.kind = FS_W_VMROW;
			w.row = r;
			w.node = p.node;
			reply_entry(req, &w, TIMEOUT_STABLE);
			return;
		}
	} else if (p.kind == FS_W_VMROW && S_ISDIR(prow->mode)) {
		if (prow->list && lookup_entry(req, parent, prow, p.node, name))
			return;
	} else if (p.kind == FS_W_ENT && p.ent->dir->entries) {
		const struct fs_table *tab = p.ent->dir->entries;
		for (int i = 0; i < tab->nrows; i++)
			if (!strcmp(tab->rows[i].name, name)) {
				w.kind = FS_W_ENTROW;
				w.row = i;
				w.ent = p.ent;
				w.node = p.node;
				reply_entry(req, &w, TIMEOUT_STABLE);
				return;
			}
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* No negative entry: a VM made through clone must appear at once. */
	fuse_reply_err(req, ENOENT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_where w = fs_resolve(ino);
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISLNK(where_mode(&w))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct fs_target t;
	target_of(&w, &t);
	char *target = link_of(&w, &t);
	target_done(&t);
	if (!target) {
		fuse_reply_err(req, ENOENT); /* gone meanwhile */
		return;
	}
	fuse_reply_readlink(req, target);
	free(target);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs_where w = fs_resolve(ino);
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct stat st;
	uint64_t gen;
	double timeout = serve_attr(&w, &st, &gen);
	fuse_reply_attr(req, &st, timeout);
	reply_done(&w, gen);
}

/* The kernel dropped nlookup lookups of ino: once none are left it caches
 * nothing of it, and the notifier stops invalidating it. */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_lookup_add(ino, -(int64_t)nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_lookup_add(forgets[i].ino, -(int64_t)forgets[i].nlookup);
	fuse_reply_none(req);
}

static bool row_writable(const struct fs_where *w)
{
	const struct fs_row *row = fs_where_row(w);
	return row && row->write != NULL;
}

/* Only a size change (O_TRUNC of a shell redirection) and times (touch) are
 * accepted, and both change nothing: writes replace values whole anyway. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	(void)attr;
	(void)fi;
	struct fs_where w = fs_resolve(ino);
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && !row_writable(&w)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	struct stat st;
	uint64_t gen;
	double timeout = serve_attr(&w, &st, &gen);
	fuse_reply_attr(req, &st, timeout);
	reply_done(&w, gen);
}

/* ------------------------------------------------------------ directories */

/* ------------------------------------------------------------ what is still open */

/* Listings and handles the kernel never released (the mount went away with them
 * open) are freed at the end: each is kept in a list until it is freed. */
struct live_list {
	pthread_mutex_t lock;
	struct fs_live_link *head;
};

static void live_add(struct live_list *l, struct fs_live_link *k)
{
	pthread_mutex_lock(&l->lock);
	k->prev = NULL;
	k->next = l->head;
	if (l->head)
		l->head->prev = k;
	l->head = k;
	pthread_mutex_unlock(&l->lock);
}

/* Also for one never added (prev and next NULL, not the head). */
static void live_remove(struct live_list *l, struct fs_live_link *k)
{
	pthread_mutex_lock(&l->lock);
	if (k->prev)
		k->prev->next = k->next;
	else if (l->head == k)
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&l->lock);
}

static struct fs_live_link *live_first(struct live_list *l)
{
	pthread_mutex_lock(&l->lock);
	struct fs_live_link *k = l->head;
	pthread_mutex_unlock(&l->lock);
	return k;
}

struct dirlist {
	struct fs_live_link live; /* first: open listings, linked once built */
	size_t n;
	struct {
		char *name;
		fuse_ino_t ino;
		mode_t mode;
	} e[];
};

static struct dirlist *dirlist_new(size_t cap)
{
	return calloc(1, sizeof(struct dirlist) + cap * sizeof(((struct dirlist *)0)->e[0]));
}

static struct live_list dirlists = {PTHREAD_MUTEX_INITIALIZER, NULL};

static void dirlist_link(struct dirlist *d)
{
	live_add(&dirlists, &d->live);
}

static void dirlist_free(struct dirlist *d)
{
	live_remove(&dirlists, &d->live);
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d);
}

static void dirlist_add(struct dirlist *d, const char *name, fuse_ino_t ino, mode_t mode)
{
	d->e[d->n].name = strdup(name);
	d->e[d->n].ino = ino;
	d->e[d->n].mode = mode;
	if (d->e[d->n].name)
		d->n++;
}

/* Adds the names a listing row gives now (and registers their entries). */
static void dirlist_add_entries(struct dirlist **dp, size_t *cap, fuse_ino_t ino,
                                const struct fs_row *dir, struct fs_node *node,
                                const struct fs_row *statics, int nstatics, const char *parent)
{
	struct fs_where pw = {.kind = FS_W_NONE, .node = node};
	struct fs_target t;
	target_of(&pw, &t);
	t.row = dir;
	size_t n = 0;
	char **names = !node || t.vm ? dir->list(&t, &n) : NULL;
	target_done(&t);
	if (!names)
		return;
	struct dirlist *d = realloc(*dp, sizeof(struct dirlist) +
	                                     (*cap + n) * sizeof(((struct dirlist *)0)->e[0]));
	if (!d) {
		svm_strv_free(names);
		return;
	}
	*dp = d;
	*cap += n;
	for (size_t i = 0; names[i]; i++) {
		bool shadowed = false; /* a fixed name wins over an entry of the same name */
		for (int k = 0; k < nstatics && !shadowed; k++)
			shadowed = !strcmp(statics[k].parent, parent) && !strcmp(statics[k].name, names[i]);
		struct fs_entry *e = shadowed ? NULL : fs_entry_get(ino, dir, node, names[i]);
		if (e)
			dirlist_add(d, names[i], FS_INO_ENT(e->serial, 0),
			            dir->entries ? S_IFDIR : S_IFLNK);
	}
	svm_strv_free(names);
}

/* Root rows whose parent is `parent`; absent symlinks are left out. */
static void dirlist_add_root_rows(struct dirlist *d, const char *parent)
{
	for (int i = 0; i < fs_root_nrows; i++) {
		const struct fs_row *row = &fs_root_rows[i];
		if (strcmp(row->parent, parent))
			continue;
		if (S_ISLNK(row->mode)) {
			struct fs_where w = {.kind = FS_W_ROOTROW, .row = i};
			struct fs_target t;
			target_of(&w, &t);
			char *target = row->link(&t);
			target_done(&t);
			if (!target)
				continue;
			free(target);
		}
		dirlist_add(d, row->name, FS_INO_ROOTROW(i), row->mode);
	}
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_where w = fs_resolve(ino);
	const struct fs_row *row = fs_where_row(&w);
	struct dirlist *d = NULL;
	size_t cap = 2 + FS_ROOT_ROWS_MAX + FS_VM_ROWS_MAX + FS_ENT_ROWS_MAX;
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISDIR(where_mode(&w))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = dirlist_new(cap);
	if (!d)
		goto nomem;
	if (w.kind == FS_W_ROOT) {
		dirlist_add(d, ".", FS_INO_ROOT, S_IFDIR);
		dirlist_add(d, "..", FS_INO_ROOT, S_IFDIR);
		dirlist_add_root_rows(d, "");
	} else if (w.kind == FS_W_ROOTROW) {
		dirlist_add(d, ".", ino, S_IFDIR);
		if (!strcmp(row->parent, ""))
			dirlist_add(d, "..", FS_INO_ROOT, S_IFDIR);
		else
			dirlist_add(d, "..", FS_INO_ROOTROW(fs_root_row_index("", row->parent)), S_IFDIR);
		if (!strcmp(row->parent, ""))
			dirlist_add_root_rows(d, row->name);
		if (is_vms_dir(ino)) {
			size_t count = 0;
			char **names = svm_list_vms(fsd.s, &count);
			struct dirlist *nd = realloc(d, sizeof(struct dirlist) +
			                                    (cap + count) * sizeof(d->e[0]));
			if (!nd) {
				svm_strv_free(names);
				goto nomem;
			}
			d = nd;
			cap += count;
			for (size_t i = 0; names && names[i]; i++) {
				svm_vm *vm = svm_get_vm(fsd.s, names[i]);
				if (!vm)
					continue; /* removed meanwhile */
				struct fs_node *n = fs_node_for(vm);
				svm_vm_unref(vm);
				if (n)
					dirlist_add(d, names[i], FS_INO_VM(n->serial, 0), S_IFDIR);
			}
			svm_strv_free(names);
		}
		if (row->list)
			dirlist_add_entries(&d, &cap, ino, row, NULL, fs_root_rows, fs_root_nrows,
			                    row->name);
	} else if (w.kind == FS_W_VMDIR) {
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", FS_INO_ROOTROW(fs_root_vms_index()), S_IFDIR);
		for (int i = 0; i < fs_vm_nrows; i++)
			dirlist_add(d, fs_vm_rows[i].name, FS_INO_VM(w.node->serial, i + 1),
			            fs_vm_rows[i].mode);
	} else if (w.kind == FS_W_VMROW) {
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", FS_INO_VM(w.node->serial, 0), S_IFDIR);
		if (row->list)
			dirlist_add_entries(&d, &cap, ino, row, w.node, NULL, 0, "");
	} else if (w.kind == FS_W_ENT) {
		const struct fs_table *tab = w.ent->dir->entries;
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", w.ent->parent, S_IFDIR);
		for (int i = 0; i < tab->nrows; i++)
			dirlist_add(d, tab->rows[i].name, FS_INO_ENT(w.ent->serial, i + 1),
			            tab->rows[i].mode);
	}
	dirlist_link(d);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		dirlist_free(d); /* interrupted: never released */
	return;
nomem:
	for (size_t i = 0; d && i < d->n; i++)
		free(d->e[i].name);
	free(d);
	fuse_reply_err(req, ENOMEM);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)ino;
	struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = {.st_ino = d->e[i].ino, .st_mode = d->e[i].mode};
		size_t need = fuse_add_direntry(req, buf + used, size - used, d->e[i].name, &st,
		                                (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
	if (d)
		dirlist_free(d);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	if (!is_vms_dir(parent)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	svm_error err;
	svm_error_clear(&err);
	svm_vm *vm = svm_create_vm_for(fsd.s, name, fuse_req_ctx(req)->uid, &err);
	if (!vm) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "mkdir vms/%s", name);
		fs_note_shared_error(req, cmd, &err);
		fuse_reply_err(req, fs_errno(err.code));
		return;
	}
	svm_vm_set_owner_uid(vm, fuse_req_ctx(req)->uid);
	struct fs_node *n = fs_node_for(vm);
	svm_vm_unref(vm);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct fs_where w = {.kind = FS_W_VMDIR, .node = n, .row = -1};
	reply_entry(req, &w, TIMEOUT_VMDIR_ENTRY);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (!is_vms_dir(parent)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	svm_vm *vm = svm_get_vm(fsd.s, name);
	if (!vm) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	int e = fs_may_write_vm(req, vm);
	svm_error err;
	svm_error_clear(&err);
	if (!e && svm_remove_vm(fsd.s, name, &err) != 0)
		e = fs_errno(err.code);
	if (e) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rmdir vms/%s", name);
		if (e == EACCES && err.code == SVM_OK)
			svm_error_set(&err, SVM_PERMISSION, "VM belongs to uid %u",
			              (unsigned)svm_vm_owner_uid(vm));
		fs_note_shared_error(req, cmd, &err);
	} else {
		struct fs_node *n = fs_node_find(vm);
		if (n) {
			fs_node_mark_removed(n);
			fs_events_wake(n, true);
		}
	}
	svm_vm_unref(vm);
	fuse_reply_err(req, e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EACCES);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EACCES);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EPERM);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EPERM);
}

/* The tree's shape is the tables': no links of either kind (EPERM, as rename). */
static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	(void)target, (void)parent, (void)name;
	fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EPERM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = 64};
	sv.f_files = svm_count_vms(fsd.s) * (unsigned long)(fs_vm_nrows + 1) + 8;
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------ files */

static struct fs_handle *handle_of(struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

static struct live_list handles = {PTHREAD_MUTEX_INITIALIZER, NULL};

static void handle_link(struct fs_handle *h)
{
	live_add(&handles, &h->live);
}

static void handle_free(struct fs_handle *h)
{
	if (!h)
		return;
	live_remove(&handles, &h->live);
	if (h->t.vm)
		svm_vm_unref(h->t.vm);
	free(h->snap);
	fs_doc_forget(h);
	free(h->clone_name);
	free(h->ev_pending); /* events: what a short read left, if never released */
	free((char *)h->t.id);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void fs_handles_free(void)
{
	struct fs_live_link *k;
	while ((k = live_first(&dirlists)))
		dirlist_free((struct dirlist *)k); /* the link is its first member */
	while ((k = live_first(&handles)))
		handle_free((struct fs_handle *)((char *)k - offsetof(struct fs_handle, live)));
}

static struct fs_rowstate *rowstate_of(struct fs_handle *h)
{
	if (h->ent)
		return &h->ent->rows[h->row_index];
	return h->node ? &h->node->rows[h->row_index] : &fs_root_state[h->row_index];
}

/* The kernel will never release this open (the open was interrupted before
 * it took the reply). */
static void open_abandoned(void *p)
{
	struct fs_handle *h = p;
	if (h->pc_cached)
		pc_release(rowstate_of(h), h->ino);
	handle_free(h);
}

/* Recomputes the value this open serves. Caller holds h->lock. */
static int refresh_snapshot(struct fs_handle *h, svm_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int e = h->row->text(&h->t, &text, &len, err);
	if (e)
		return e;
	free(h->snap);
	h->snap = text;
	h->snap_len = len;
	h->snap_valid = true;
	if (h->row->flags & FS_LIVE) /* st_size of a live file (any thread reads it) */
		__atomic_store_n(&rowstate_of(h)->served_len, (uint64_t)len, __ATOMIC_RELAXED);
	return 0;
}

/* /vms/clone: opening for writing makes a VM; the descriptor then names it. */
static int open_clone(fuse_req_t req, struct fs_handle *h)
{
	if ((h->flags & O_ACCMODE) == O_RDONLY)
		return EACCES; /* a reader (indexer, file manager) never makes VMs */
	svm_error err;
	svm_error_clear(&err);
	svm_vm *vm = svm_create_vm_for(fsd.s, NULL, fuse_req_ctx(req)->uid, &err);
	if (!vm) {
		fs_note_shared_error(req, "open vms/clone", &err);
		return fs_errno(err.code);
	}
	svm_vm_set_owner_uid(vm, fuse_req_ctx(req)->uid);
	h->node = fs_node_for(vm);
	h->t.vm = vm;
	h->clone_name = strdup(svm_vm_name(vm));
	if (!h->node || !h->clone_name)
		return ENOMEM;
	/* /vms gained a name the kernel did not make itself */
	fs_inval_inode(FS_INO_ROOTROW(fs_root_vms_index()));
	return 0;
}

/* The value an open reads, taken at the open; an errno or 0. */
static int snapshot_at_open(struct fs_handle *h)
{
	svm_error err;
	svm_error_clear(&err);
	pthread_mutex_lock(&h->lock);
	int e = refresh_snapshot(h, &err);
	pthread_mutex_unlock(&h->lock);
	return e;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_where w = fs_resolve(ino);
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	mode_t mode = where_mode(&w);
	if (S_ISDIR(mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, ELOOP); /* the kernel follows symlinks before it opens */
		return;
	}
	struct fs_handle *h = calloc(1, sizeof *h);
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&h->lock, NULL);
	handle_link(h);
	h->flags = fi->flags;
	h->uid = fuse_req_ctx(req)->uid;
	h->t.s = fsd.s;
	h->row_index = w.row;
	h->ino = ino;
	h->row = fs_where_row(&w);
	h->t.row = h->row;
	if (w.kind == FS_W_ENTROW) {
		h->ent = w.ent;
		h->t.id = strdup(w.ent->name);
		if (!h->t.id) {
			handle_free(h);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	const struct fs_row *row = h->row;
	int e = 0;

	if (writing && !row->write) {
		e = EACCES; /* root passes the mode bits; the table still says no */
		goto fail;
	}
	if (row->flags & FS_CLONE) {
		e = open_clone(req, h);
		if (e)
			goto fail;
		fi->direct_io = 1;
		fi->fh = (uint64_t)(uintptr_t)h;
		fuse_reply_open(req, fi);
		return;
	}
	if (w.kind == FS_W_VMROW) {
		h->node = w.node;
		h->t.vm = fs_node_vm(w.node);
		if (!h->t.vm) {
			e = ENOENT;
			goto fail;
		}
		if (writing && (row->flags & FS_OWNED) && (e = fs_may_write_vm(req, h->t.vm)))
			goto fail;
	}
	/* Small values: through the page cache when it holds this open's value
	 * ("small values" above). keep_cache always: the pages only ever hold
	 * pc_text, and a new pc_text drops them first. No FLUSH: nothing to say. */
	if (!writing && pc_row(row)) {
		if ((e = snapshot_at_open(h)))
			goto fail;
		enum pc_open mode = pc_open(rowstate_of(h), ino, h->snap ? h->snap : "", h->snap_len);
		fi->keep_cache = 1;
		fi->noflush = 1;
		if (mode == PC_DIRECT) {
			fi->direct_io = 1;
			h->direct = true;
		} else {
			h->pc_cached = true;
		}
		fi->fh = (uint64_t)(uintptr_t)h;
		if (mode == PC_CACHED_NEW || mode == PC_CACHED_BEHIND)
			fs_reply_open_behind(req, fi, open_abandoned, h);
		else if (fuse_reply_open(req, fi) != 0)
			open_abandoned(h);
		return;
	}
	/* Value files are read around the page cache (direct_io), each open from
	 * its own snapshot, unless the value never changes while mounted. The page
	 * cache and the inode's size are shared by every open of the file, and a
	 * value may change between any two requests: pages filled from one open's
	 * value and a size from another's (an attribute reply, an invalidation on
	 * its way) mixed values, cut them or padded them with zeros. So a read
	 * through one open sees one value, whole, whatever the kernel cached; the
	 * attributes stay cached (and invalidated on change), which is what spares
	 * `cat state` its GETATTRs. Write opens are direct_io too: what a writer
	 * sends goes to its buffer, never into pages other readers would see, and
	 * its O_TRUNC leaves the pages of the stored value alone. */
	if (writing || !(row->flags & FS_STABLE) || !row->text) {
		fi->direct_io = 1;
		h->direct = true;
		/* A live value is taken at open, so that st_size, which is the length
		 * last served, is this open's from here on: `wc -c < info` and
		 * `tail -n 2 metrics` ask the size after the open, then read that very
		 * value. A failure here is left for the read to report. */
		if (!writing && (row->flags & FS_LIVE) && row->text) {
			svm_error err;
			svm_error_clear(&err);
			pthread_mutex_lock(&h->lock);
			h->snap_unread = refresh_snapshot(h, &err) == 0;
			pthread_mutex_unlock(&h->lock);
		}
		if ((row->flags & FS_STREAM) && writing)
			fi->nonseekable = 1; /* the waiting reads of events */
	} else {
		if ((e = snapshot_at_open(h)))
			goto fail;
		fi->keep_cache = 1; /* the same value for as long as the mount lasts */
	}
	/* nothing to report at close of a read-only open, nor of a write open of
	 * a file that applies each write as it comes (ctl): only a document's
	 * incomplete buffer is an error at close (op_flush). A FLUSH is one more
	 * round trip to the daemon in every `echo start > ctl`. */
	if (!writing || !row->doc_apply)
		fi->noflush = 1;
	if (row->flags & FS_STREAM)
		fs_events_opened(h);
	fi->fh = (uint64_t)(uintptr_t)h;
	fuse_reply_open(req, fi);
	return;
fail:
	handle_free(h);
	fuse_reply_err(req, e);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = handle_of(fi);
	const struct fs_row *row = h->row;
	if (row->read) {
		row->read(req, h, size, off);
		return;
	}
	if (row->flags & FS_OFFSET) {
		fs_offset_read(req, h, size, off);
		return;
	}
	if (!row->text) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (h->pc_cached)
		pc_read(rowstate_of(h), h->ino);
	pthread_mutex_lock(&h->lock);
	/* A direct read at offset 0 starts over with the current value (cat, a
	 * re-read through the same descriptor); later offsets continue the same
	 * snapshot. A cached open (stable or small value) keeps the one it was
	 * opened with: the one the pages hold. */
	if ((off == 0 && h->direct && !h->snap_unread) || !h->snap_valid) {
		svm_error err;
		svm_error_clear(&err);
		int e = refresh_snapshot(h, &err);
		if (e) {
			pthread_mutex_unlock(&h->lock);
			fuse_reply_err(req, e);
			return;
		}
	}
	h->snap_unread = false;
	/* Copy, then reply unlocked: once the kernel has the reply it may send
	 * RELEASE at once, and the handle is freed under us. */
	size_t n = off >= 0 && (size_t)off < h->snap_len ? h->snap_len - (size_t)off : 0;
	if (n > size)
		n = size;
	char *copy = n ? malloc(n) : NULL;
	if (copy)
		memcpy(copy, h->snap + off, n);
	pthread_mutex_unlock(&h->lock);
	if (n && !copy)
		fuse_reply_err(req, ENOMEM);
	else
		fuse_reply_buf(req, copy, n);
	free(copy);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = handle_of(fi);
	if (!h->row->write) {
		fuse_reply_err(req, EBADF);
		return;
	}
	h->row->write(req, h, buf, size, off);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = handle_of(fi);
	int e = 0;
	if (h->row->doc_apply && (h->flags & O_ACCMODE) != O_RDONLY)
		e = fs_doc_flush(h);
	fuse_reply_err(req, e);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = handle_of(fi);
	if (h->row->flags & FS_STREAM)
		fs_events_released(h);
	if (h->pc_cached)
		pc_release(rowstate_of(h), h->ino);
	handle_free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, 0); /* every accepted write is already applied */
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
	(void)ino;
	struct fs_handle *h = handle_of(fi);
	if (h->row->flags & FS_STREAM) {
		fs_events_poll(req, h, ph);
		return;
	}
	/* Everything else is always ready; never ENOSYS (the kernel would stop
	 * asking for the whole mount). */
	if (ph)
		fuse_pollhandle_destroy(ph);
	unsigned ev = POLLIN | POLLRDNORM;
	if (h->row->write && (h->flags & O_ACCMODE) != O_RDONLY)
		ev |= POLLOUT | POLLWRNORM;
	fuse_reply_poll(req, ev);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.symlink = op_symlink,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.create = op_create,
	.poll = op_poll,
};
