/*
 * dir.c - directory listings: taken whole at opendir (the table's rows, the VMs,
 * the names a listing row gives now), served by readdir from that copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops.h"

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
	fs_live_add(&dirlists, &d->live);
}

static void dirlist_free(struct dirlist *d)
{
	fs_live_remove(&dirlists, &d->live);
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d);
}

void fs_dirlists_free(void)
{
	struct fs_live_link *k;
	while ((k = fs_live_first(&dirlists)))
		dirlist_free((struct dirlist *)k); /* the link is its first member */
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
	fs_target_of(&pw, &t);
	t.row = dir;
	size_t n = 0;
	char **names = !node || t.vm ? dir->list(&t, &n) : NULL;
	fs_target_done(&t);
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
		if (e) {
			dirlist_add(d, names[i], FS_INO_ENT(e->serial, 0),
			            dir->entries ? S_IFDIR : S_IFLNK);
			fs_entry_unpin(e);
		}
	}
	svm_strv_free(names);
}

/* Root rows whose parent is `parent`; absent symlinks are left out. */
static void dirlist_add_root_rows(struct dirlist *d, const char *parent)
{
	for (int i = 0; i < fsd.tree->root->nrows; i++) {
		const struct fs_row *row = &fsd.tree->root->rows[i];
		if (strcmp(row->parent, parent))
			continue;
		if (S_ISLNK(row->mode)) {
			struct fs_where w = {.kind = FS_W_ROOTROW, .row = i};
			struct fs_target t;
			fs_target_of(&w, &t);
			char *target = row->link(&t);
			fs_target_done(&t);
			if (!target)
				continue;
			free(target);
		}
		dirlist_add(d, row->name, FS_INO_ROOTROW(i), row->mode);
	}
}

/* The VM directories under the directory of the VMs. -1: out of memory. */
static int dirlist_add_vms(struct dirlist **dp, size_t *cap)
{
	size_t count = 0;
	char **names = svm_list_vms(fsd.s, &count);
	struct dirlist *d = realloc(*dp, sizeof(struct dirlist) + (*cap + count) * sizeof(d->e[0]));
	if (!d) {
		svm_strv_free(names);
		return -1;
	}
	*dp = d;
	*cap += count;
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
	return 0;
}

/* A directory row of the root table: its rows (a directory of / only), the VMs
 * (FS_VMS), the entries of a listing row. -1: out of memory. */
static int dirlist_root_row(struct dirlist **dp, size_t *cap, fuse_ino_t ino,
                            const struct fs_row *row)
{
	const struct fs_table *root = fsd.tree->root;
	bool top = !strcmp(row->parent, "");
	dirlist_add(*dp, ".", ino, S_IFDIR);
	fuse_ino_t up = top ? FS_INO_ROOT : FS_INO_ROOTROW(fs_table_find(root, "", row->parent));
	dirlist_add(*dp, "..", up, S_IFDIR);
	if (top)
		dirlist_add_root_rows(*dp, row->name);
	if (fs_is_vms_dir(ino) && dirlist_add_vms(dp, cap) != 0)
		return -1;
	if (row->list)
		dirlist_add_entries(dp, cap, ino, row, NULL, root->rows, root->nrows, row->name);
	return 0;
}

/* The rows of a table; row i's inode is first + i. */
static void dirlist_add_table(struct dirlist *d, const struct fs_table *tab, fuse_ino_t first)
{
	for (int i = 0; i < tab->nrows; i++)
		dirlist_add(d, tab->rows[i].name, first + (fuse_ino_t)i, tab->rows[i].mode);
}

/* The VM table's rows in the VM's directory (dir NULL) or in its row dir. */
static void dirlist_add_vm_rows(struct dirlist *d, const char *dir, fuse_ino_t first)
{
	const struct fs_table *tab = fsd.tree->vm;
	for (int i = 0; i < tab->nrows; i++) {
		const char *p = tab->rows[i].parent;
		if (dir ? p && !strcmp(p, dir) : !p || !*p)
			dirlist_add(d, tab->rows[i].name, first + (fuse_ino_t)i, tab->rows[i].mode);
	}
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_where w = fs_resolve(ino);
	const struct fs_row *row = fs_where_row(&w);
	size_t cap = 2 + FS_ROOT_ROWS_MAX + FS_VM_ROWS_MAX + FS_ENT_ROWS_MAX;
	if (w.kind == FS_W_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISDIR(fs_where_mode(&w))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct dirlist *d = dirlist_new(cap);
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = 0;
	if (w.kind == FS_W_ROOT) {
		dirlist_add(d, ".", FS_INO_ROOT, S_IFDIR);
		dirlist_add(d, "..", FS_INO_ROOT, S_IFDIR);
		dirlist_add_root_rows(d, "");
	} else if (w.kind == FS_W_ROOTROW) {
		rc = dirlist_root_row(&d, &cap, ino, row);
	} else if (w.kind == FS_W_VMDIR) {
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", FS_INO_ROOTROW(fsd.vms_row), S_IFDIR);
		dirlist_add_vm_rows(d, NULL, FS_INO_VM(w.node->serial, 1));
	} else if (w.kind == FS_W_VMROW) {
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", FS_INO_VM(w.node->serial, 0), S_IFDIR);
		dirlist_add_vm_rows(d, row->name, FS_INO_VM(w.node->serial, 1));
		if (row->list)
			dirlist_add_entries(&d, &cap, ino, row, w.node, NULL, 0, "");
	} else if (w.kind == FS_W_ENT) {
		dirlist_add(d, ".", ino, S_IFDIR);
		dirlist_add(d, "..", w.ent->parent, S_IFDIR);
		dirlist_add_table(d, w.ent->dir->entries, FS_INO_ENT(w.ent->serial, 1));
	}
	if (rc != 0) {
		for (size_t i = 0; i < d->n; i++)
			free(d->e[i].name);
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dirlist_link(d);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		dirlist_free(d); /* interrupted: never released */
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

/* readdir with each VM directory's entry and attributes: `ls -l vms` (or a
 * file manager's listing) of many VMs then costs no lookup per VM. Other names
 * go as readdir gives them (no entry: the kernel looks them up when it needs
 * them), so what their attributes say stays as fresh as a lookup makes it. */
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)ino;
	struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
	char *buf = calloc(1, size ? size : 1);
	struct sent {
		struct fs_where w;
		uint64_t gen;
	} *counted = malloc((d->n + 1) * sizeof *counted);
	if (!buf || !counted) {
		free(buf);
		free(counted);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0, ncounted = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct fuse_entry_param e;
		struct fs_where w = {.kind = FS_W_NONE};
		uint64_t gen = 0;
		if (S_ISDIR(d->e[i].mode) && strcmp(d->e[i].name, ".") && strcmp(d->e[i].name, ".."))
			w = fs_resolve(d->e[i].ino);
		bool full = w.kind == FS_W_VMDIR;
		if (full) {
			gen = fs_fill_entry(&w, TIMEOUT_VMDIR_ENTRY, &e);
		} else {
			memset(&e, 0, sizeof e);
			e.attr.st_ino = d->e[i].ino;
			e.attr.st_mode = d->e[i].mode;
		}
		size_t need = fuse_add_direntry_plus(req, buf + used, size - used, d->e[i].name, &e,
		                                     (off_t)(i + 1));
		if (need > size - used) {
			if (full)
				fs_lookup_add(fs_where_ino(&w), -1); /* not sent */
			break;
		}
		if (full)
			counted[ncounted++] = (struct sent){w, gen};
		used += need;
	}
	bool taken = fuse_reply_buf(req, buf, used) == 0;
	for (size_t i = 0; i < ncounted; i++) {
		if (taken) /* a change while the attributes were taken: as for a lookup */
			fs_reply_done(&counted[i].w, counted[i].gen);
		else
			fs_lookup_add(fs_where_ino(&counted[i].w), -1); /* the kernel never took them */
	}
	free(counted);
	free(buf);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
	if (d)
		dirlist_free(d);
	fuse_reply_err(req, 0);
}

