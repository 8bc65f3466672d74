/*
 * attr.c - what a reply says of an inode: its attributes, their timeouts, and
 * the entry replies that count the kernel's lookups.
 *
 * Caching policy (DESIGN §3 "values are never stale"):
 *  - names: root and VM rows never change -> long entry timeouts; VM directories
 *    change only by mkdir/rmdir (the kernel's own) or clone/removal (invalidated by
 *    the notifier thread) -> short timeout as a backstop;
 *  - attributes: stable rows cached for an hour; value files for a second, kept
 *    true by invalidation (every event that changes a value invalidates the
 *    inode's attributes, on the thread that reports it, and a write that changed values is answered only after those
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
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "ops.h"

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
 * new reference the caller drops with fs_target_done, or NULL), the entry's name. */
void fs_target_of(const struct fs_where *w, struct fs_target *t)
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

void fs_target_done(struct fs_target *t)
{
	if (t->vm)
		svm_vm_unref(t->vm);
	t->vm = NULL;
}

/* The value of a text row now (malloc'd, or NULL with *len 0 when it fails). */
static char *text_now(const struct fs_row *row, const struct fs_target *t, size_t *len)
{
	char *text = NULL;
	*len = 0;
	svm_error err;
	svm_error_clear(&err);
	if (row->text(t, &text, len, &err) != 0)
		*len = 0;
	return text;
}

/* A symlink's target: a row's link, or a symlink entry's. NULL when absent. */
char *fs_link_of(const struct fs_where *w, const struct fs_target *t)
{
	if (w->node && !t->vm)
		return NULL; /* the VM it belonged to was removed */
	if (w->kind == FS_W_ENT)
		return w->ent->dir->entries ? NULL : w->ent->dir->entry_link(t);
	const struct fs_row *row = fs_where_row(w);
	return row && S_ISLNK(row->mode) && row->link ? row->link(t) : NULL;
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
	size_t len;
	cleanup_free char *text = text_now(row, t, &len);
	if (!rs || !fs_pc_row(row))
		return len;
	return fs_pc_attr_size(rs, text ? text : "", len, no_cache);
}

static mode_t root_row_mode(int r)
{
	if (r == fsd.vms_row)
		return S_IFDIR | (fsd.allow_other ? 01777 : 0755);
	return fsd.tree->root->rows[r].mode;
}

mode_t fs_where_mode(const struct fs_where *w)
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

struct fs_rowstate *fs_rowstate_at(const struct fs_where *w)
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

fuse_ino_t fs_where_ino(const struct fs_where *w)
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
	st->st_ino = fs_where_ino(w);
	st->st_mode = fs_where_mode(w);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	int64_t mtime = fsd.mount_ns;
	struct fs_target t;
	fs_target_of(w, &t);
	if (w->node) {
		st->st_uid = w->node->owner;
		mtime = max64(mtime, w->node->created_ns);
		/* the directory moves with any change of the VM; a file only when its
		 * own value changed (rs->mtime_ns, moved as the event is handled): a pause leaves
		 * config.json and error as they were */
		if (t.vm && w->kind == FS_W_VMDIR)
			mtime = max64(mtime, svm_vm_mtime_ns(t.vm));
	}
	if (w->ent)
		mtime = max64(mtime, __atomic_load_n(&w->ent->mtime_ns, __ATOMIC_RELAXED));
	struct fs_rowstate *rs = fs_rowstate_at(w);
	if (rs)
		mtime = max64(mtime, __atomic_load_n(&rs->mtime_ns, __ATOMIC_RELAXED));
	switch (w->kind) {
	case FS_W_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 5; /* ., .., vms, net, images */
		break;
	case FS_W_ROOTROW:
		if (w->row == fsd.vms_row)
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
		char *target = fs_link_of(w, &t);
		st->st_size = target ? (off_t)strlen(target) : 0;
		free(target);
	} else if (row && S_ISREG(st->st_mode) && (t.vm || !w->node)) {
		st->st_size = (off_t)row_size(row, rs, &t, no_cache);
	}
	fs_target_done(&t);
	st->st_blocks = (st->st_size + 511) / 512;
	ts_from_ns(&st->st_mtim, mtime);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

static double attr_timeout(const struct fs_where *w)
{
	mode_t mode = fs_where_mode(w);
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
 * begins after it sends its own invalidation); *gen for fs_reply_done. */
double fs_serve_attr(const struct fs_where *w, struct stat *st, uint64_t *gen)
{
	double timeout = attr_timeout(w);
	struct fs_rowstate *rs = fs_rowstate_at(w);
	*gen = rs ? __atomic_load_n(&rs->gen, __ATOMIC_SEQ_CST) : 0;
	bool no_cache;
	fill_attr(w, st, &no_cache);
	return no_cache ? 0.0 : timeout;
}

/* After the reply: a change that came while the attributes were computed has
 * its invalidation, but it may have reached the kernel before the reply did
 * (a new inode it did not know yet): send one more. */
void fs_reply_done(const struct fs_where *w, uint64_t gen)
{
	struct fs_rowstate *rs = fs_rowstate_at(w);
	if (rs && __atomic_load_n(&rs->gen, __ATOMIC_SEQ_CST) != gen &&
	    fs_row_cacheable(fs_where_row(w)))
		fs_row_inval(fs_where_row(w), rs, fs_where_ino(w), false);
}

uint64_t fs_fill_entry(const struct fs_where *w, double entry_timeout, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	fuse_ino_t ino = fs_where_ino(w);
	/* counted before the attributes are taken: a change after this point is
	 * invalidated (the notifier skips inodes the kernel holds no lookup of) */
	fs_lookup_add(ino, 1);
	uint64_t gen;
	e->attr_timeout = fs_serve_attr(w, &e->attr, &gen);
	e->ino = e->attr.st_ino;
	e->generation = 1;
	if (w->ent)
		e->generation = w->ent->serial; /* never reused, like the inode number */
	else if (w->node)
		e->generation = w->node->serial;
	e->entry_timeout = entry_timeout;
	return gen;
}

void fs_reply_entry(fuse_req_t req, const struct fs_where *w, double entry_timeout)
{
	struct fuse_entry_param e;
	uint64_t gen = fs_fill_entry(w, entry_timeout, &e);
	fuse_ino_t ino = fs_where_ino(w);
	if (fuse_reply_entry(req, &e) != 0)
		fs_lookup_add(ino, -1); /* the kernel never took it (interrupted) */
	else
		fs_reply_done(w, gen);
}

bool fs_is_vms_dir(fuse_ino_t ino)
{
	return ino == FS_INO_ROOTROW(fsd.vms_row);
}

