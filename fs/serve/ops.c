/*
 * ops.c - the FUSE low-level operations on names: lookup, attributes, the VM
 * directories made and removed by mkdir and rmdir, the refusals; and the table
 * of every operation. Generic code: the rows of the tree it was handed say what
 * each file is (attr.c says what replies carry, file.c and dir.c serve opens).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "ops.h"

/* ------------------------------------------------------------ names */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	/* Writes must reach us as written: no writeback cache, no parallel pieces
	 * of one direct write (a document is parsed in order). */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_ASYNC_DIO;
	/* Atomic O_TRUNC: the O_TRUNC of `echo x > file` travels with the OPEN,
	 * not as a SETATTR of its own (one request less in every such write, 15
	 * to 20 us). The kernel then sets the inode's size to 0, drops its pages
	 * and marks its attributes stale: the next stat asks us, and finds the
	 * stored value's size. No reader is cut by it: every file that may be
	 * opened for writing is read direct_io, which no cached size bounds, and
	 * the page-cached ones (FS_PAGE, FS_STABLE) are read-only, so an O_TRUNC
	 * open of them fails before it truncates anything (open_value). */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
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
	fs_target_of(&pw, &t);
	t.row = dir;
	bool listed = (!node || t.vm) && fs_listed(dir, &t, name);
	fs_target_done(&t);
	if (!listed) {
		size_t n = 0;
		struct fs_entry **v = fs_entries_under(parent, &n);
		for (size_t i = 0; i < n; i++)
			if (!strcmp(v[i]->name, name))
				fs_entry_mark_gone(v[i]); /* if it comes back, it is a new one */
		fs_entries_unpin(v, n);
		return false;
	}
	struct fs_entry *e = fs_entry_get(parent, dir, node, name);
	if (!e) {
		fuse_reply_err(req, ENAMETOOLONG);
		return true;
	}
	struct fs_where w = {.kind = FS_W_ENT, .row = -1, .node = node, .ent = e};
	fs_reply_entry(req, &w, 0.0);
	fs_entry_unpin(e);
	return true;
}

/* A root row found by name: absent symlinks (a preset never resolved) are not there. */
static bool lookup_root_row(fuse_req_t req, int r)
{
	struct fs_where w = {.kind = FS_W_ROOTROW, .row = r};
	const struct fs_row *row = &fsd.tree->root->rows[r];
	if (S_ISLNK(row->mode)) {
		struct fs_target t;
		fs_target_of(&w, &t);
		char *target = row->link(&t);
		fs_target_done(&t);
		if (!target)
			return false;
		free(target);
		fs_reply_entry(req, &w, 0.0); /* may change or appear at any time */
		return true;
	}
	fs_reply_entry(req, &w, TIMEOUT_STABLE);
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
		int r = fs_table_find(fsd.tree->root, "", name);
		if (r >= 0 && lookup_root_row(req, r))
			return;
	} else if (p.kind == FS_W_ROOTROW && S_ISDIR(prow->mode)) {
		const struct fs_table *root = fsd.tree->root;
		int r = !strcmp(prow->parent, "") ? fs_table_find(root, prow->name, name) : -1;
		if (r >= 0 && lookup_root_row(req, r))
			return;
		if (r < 0 && fs_is_vms_dir(parent)) {
			svm_vm *vm = svm_get_vm(fsd.s, name);
			if (vm) {
				struct fs_node *n = fs_node_for(vm);
				svm_vm_unref(vm);
				if (n) {
					w.kind = FS_W_VMDIR;
					w.node = n;
					fs_reply_entry(req, &w, TIMEOUT_VMDIR_ENTRY);
					return;
				}
			}
		}
		if (r < 0 && prow->list && lookup_entry(req, parent, prow, NULL, name))
			return;
	} else if (p.kind == FS_W_VMDIR) {
		int r = fs_vm_row_find(NULL, name);
		svm_vm *vm = fs_node_vm(p.node);
		if (vm)
			svm_vm_unref(vm);
		if (r >= 0 && vm) {
			w.kind = FS_W_VMROW;
			w.row = r;
			w.node = p.node;
			fs_reply_entry(req, &w, TIMEOUT_STABLE);
			return;
		}
	} else if (p.kind == FS_W_VMROW && S_ISDIR(prow->mode)) {
		int r = fs_vm_row_find(prow->name, name);
		if (r >= 0) {
			w.kind = FS_W_VMROW;
			w.row = r;
			w.node = p.node;
			fs_reply_entry(req, &w, TIMEOUT_STABLE);
			return;
		}
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
				fs_reply_entry(req, &w, TIMEOUT_STABLE);
				return;
			}
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* No negative entry: a VM made through clone must appear at once. */
	fuse_reply_err(req, ENOENT);
}

/* The attributes of w, as getattr and setattr answer them. */
static void reply_attr(fuse_req_t req, const struct fs_where *w)
{
	struct stat st;
	uint64_t gen;
	double timeout = fs_serve_attr(w, &st, &gen);
	fuse_reply_attr(req, &st, timeout);
	fs_reply_done(w, gen);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_where w = fs_resolve(ino);
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISLNK(fs_where_mode(&w))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct fs_target t;
	fs_target_of(&w, &t);
	char *target = fs_link_of(&w, &t);
	fs_target_done(&t);
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
	reply_attr(req, &w);
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
	reply_attr(req, &w);
}


static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	if (!fs_is_vms_dir(parent)) {
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
	fs_reply_entry(req, &w, TIMEOUT_VMDIR_ENTRY);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (!fs_is_vms_dir(parent)) {
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
	sv.f_files = svm_count_vms(fsd.s) * (unsigned long)(fsd.tree->vm->nrows + 1) + 8;
	fuse_reply_statfs(req, &sv);
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
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.statfs = op_statfs,
	.create = op_create,
	.poll = fs_op_poll,
};

