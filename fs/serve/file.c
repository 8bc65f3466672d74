/*
 * file.c - the operations on an open file: open (its cache policy), read,
 * write, flush, release, fsync and poll.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* The kernel will never release this open (the open was interrupted before
 * it took the reply). */
static void open_abandoned(void *p)
{
	struct fs_handle *h = p;
	if (h->pc_cached)
		fs_pc_release(fs_rowstate_of(h), h->ino);
	fs_handle_free(h);
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
	fs_inval_inode(FS_INO_ROOTROW(fsd.vms_row));
	return 0;
}

/* The value an open reads, taken at the open; an errno or 0. */
static int snapshot_at_open(struct fs_handle *h)
{
	svm_error err;
	svm_error_clear(&err);
	pthread_mutex_lock(&h->lock);
	int e = fs_refresh_snapshot(h, &err);
	pthread_mutex_unlock(&h->lock);
	return e;
}

/* What an inode that is no regular file answers to an open; 0 for a file. */
static int open_refused(const struct fs_where *w)
{
	if (w->kind == FS_W_NONE)
		return ENOENT;
	mode_t mode = fs_where_mode(w);
	if (S_ISDIR(mode))
		return EISDIR;
	if (!S_ISREG(mode))
		return ELOOP; /* the kernel follows symlinks before it opens */
	return 0;
}

/* A new handle for an open of the row w names; NULL when out of memory. */
static struct fs_handle *handle_new(fuse_req_t req, fuse_ino_t ino, const struct fs_where *w,
                                    const struct fuse_file_info *fi)
{
	struct fs_handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	fs_handle_link(h);
	h->flags = fi->flags;
	h->uid = fuse_req_ctx(req)->uid;
	h->t.s = fsd.s;
	h->row_index = w->row;
	h->ino = ino;
	h->row = fs_where_row(w);
	h->t.row = h->row;
	if (w->kind == FS_W_ENTROW) {
		h->ent = w->ent;
		fs_entry_handle_add(h->ent, 1); /* it stays while this open does */
		h->t.id = strdup(w->ent->name);
		if (!h->t.id) {
			fs_handle_free(h);
			return NULL;
		}
	}
	return h;
}

/* A file of a VM: the open holds a reference to the VM; FS_OWNED rows are
 * written by the VM's owner only. */
static int open_vm_row(fuse_req_t req, struct fs_handle *h, const struct fs_where *w, bool writing)
{
	h->node = w->node;
	h->t.vm = fs_node_vm(w->node);
	if (!h->t.vm)
		return ENOENT;
	if (writing && (h->row->flags & FS_OWNED))
		return fs_may_write_vm(req, h->t.vm);
	return 0;
}

/* Small values: through the page cache when it holds this open's value
 * ("small values" in pcache.c). keep_cache always: the pages only ever hold
 * pc_text, and a new pc_text drops them first. No FLUSH: nothing to say.
 * Replies, unless it fails (an errno). */
static int open_small(fuse_req_t req, struct fs_handle *h, fuse_ino_t ino,
                      struct fuse_file_info *fi)
{
	int e = snapshot_at_open(h);
	if (e)
		return e;
	enum pc_open mode = fs_pc_open(fs_rowstate_of(h), ino, h->snap ? h->snap : "", h->snap_len);
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
	return 0;
}

/* Value files are read around the page cache (direct_io), each open from its
 * own snapshot, unless the value never changes while mounted. The page cache
 * and the inode's size are shared by every open of the file, and a value may
 * change between any two requests: pages filled from one open's value and a
 * size from another's (an attribute reply, an invalidation on its way) mixed
 * values, cut them or padded them with zeros. So a read through one open sees
 * one value, whole, whatever the kernel cached; the attributes stay cached (and
 * invalidated on change), which is what spares `cat state` its GETATTRs. Write
 * opens are direct_io too: what a writer sends goes to its buffer, never into
 * pages other readers would see, and its O_TRUNC leaves the pages of the stored
 * value alone. */
static int open_value(struct fs_handle *h, struct fuse_file_info *fi, bool writing)
{
	const struct fs_row *row = h->row;
	if (!writing && (row->flags & FS_STABLE) && row->text) {
		fi->keep_cache = 1; /* the same value for as long as the mount lasts */
		return snapshot_at_open(h);
	}
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
		h->snap_unread = fs_refresh_snapshot(h, &err) == 0;
		pthread_mutex_unlock(&h->lock);
	}
	if ((row->flags & FS_STREAM) && writing)
		fi->nonseekable = 1; /* the waiting reads of events */
	return 0;
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_where w = fs_resolve(ino);
	int e = open_refused(&w);
	struct fs_handle *h = e ? NULL : handle_new(req, ino, &w, fi);
	if (!h) {
		fuse_reply_err(req, e ? e : ENOMEM);
		return;
	}
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	const struct fs_row *row = h->row;
	/* O_TRUNC too (even with O_RDONLY): with atomic O_TRUNC the kernel would
	 * zero the size and drop the pages of a value others read cached */
	if ((writing || (fi->flags & O_TRUNC)) && !row->write) {
		e = EACCES; /* root passes the mode bits; the table still says no */
	} else if (row->flags & FS_CLONE) {
		if (!(e = open_clone(req, h))) {
			fi->direct_io = 1;
			fi->fh = (uint64_t)(uintptr_t)h;
			fuse_reply_open(req, fi);
			return;
		}
	} else if (w.kind == FS_W_VMROW || (w.kind == FS_W_ENTROW && w.node)) {
		e = open_vm_row(req, h, &w, writing);
	}
	if (!e && row->open) {
		e = row->open(req, h);
		if (!e)
			h->priv_open = true; /* its release hook runs when the handle goes */
	}
	if (!e && !writing && fs_pc_row(row)) {
		if (!(e = open_small(req, h, ino, fi)))
			return;
	} else if (!e) {
		e = open_value(h, fi, writing);
	}
	if (e) {
		fs_handle_free(h);
		fuse_reply_err(req, e);
		return;
	}
	/* nothing to report at close of a read-only open, nor of a write open of
	 * a file that applies each write as it comes (ctl): only a document's
	 * incomplete buffer is an error at close (fs_op_flush). A FLUSH is one more
	 * round trip to the daemon in every `echo start > ctl`. */
	if (!writing || !row->doc_apply)
		fi->noflush = 1;
	if (row->flags & FS_STREAM)
		fs_events_opened(h);
	fi->fh = (uint64_t)(uintptr_t)h;
	fuse_reply_open(req, fi);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = fs_handle_of(fi);
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
		fs_pc_read(fs_rowstate_of(h), h->ino);
	pthread_mutex_lock(&h->lock);
	/* A direct read at offset 0 starts over with the current value (cat, a
	 * re-read through the same descriptor); later offsets continue the same
	 * snapshot. A cached open (stable or small value) keeps the one it was
	 * opened with: the one the pages hold. */
	if ((off == 0 && h->direct && !h->snap_unread) || !h->snap_valid) {
		svm_error err;
		svm_error_clear(&err);
		int e = fs_refresh_snapshot(h, &err);
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

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = fs_handle_of(fi);
	if (!h->row->write) {
		fuse_reply_err(req, EBADF);
		return;
	}
	h->row->write(req, h, buf, size, off);
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = fs_handle_of(fi);
	int e = 0;
	if (h->row->doc_apply && (h->flags & O_ACCMODE) != O_RDONLY)
		e = fs_doc_flush(h);
	fuse_reply_err(req, e);
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs_handle *h = fs_handle_of(fi);
	if (h->row->flags & FS_STREAM)
		fs_events_released(h);
	if (h->pc_cached)
		fs_pc_release(fs_rowstate_of(h), h->ino);
	fs_handle_free(h);
	fuse_reply_err(req, 0);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, 0); /* every accepted write is already applied */
}

void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
	(void)ino;
	struct fs_handle *h = fs_handle_of(fi);
	if (h->row->flags & FS_STREAM) {
		fs_events_poll(req, h, ph);
		return;
	}
	if (h->row->poll) {
		h->row->poll(req, h, ph);
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

