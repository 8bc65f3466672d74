/*
 * nodes.c - what an inode number names: the root, a row of the root table, a VM
 * directory and its rows, a dynamic entry and its rows; the registries of VM
 * nodes and entries behind them, and the kernel's lookup counts.
 *
 * Inode numbers are computed, not stored:
 *   1                      the root
 *   2 + i                  row i of the root table (including /vms and /vms/clone)
 *   2^20 + serial*32 + 0   the directory of the VM node with that serial
 *   2^20 + serial*32 + 1+i row i of the VM table inside it
 *   2^48 + serial*16 + 0   dynamic entry `serial` (a bundle dir, a symlink)
 *   2^48 + serial*16 + 1+i row i of the entry's table (a bundle's files)
 * Serials are never reused while mounted, so a VM made again under an old name has
 * a new inode number (and generation) and no cached entry can reach the old one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serve.h"

struct fs_rowstate fs_root_state[FS_ROOT_ROWS_MAX];

int fs_table_find(const struct fs_table *tab, const char *parent, const char *name)
{
	for (int i = 0; i < tab->nrows; i++)
		if ((!parent || !strcmp(tab->rows[i].parent, parent)) &&
		    !strcmp(tab->rows[i].name, name))
			return i;
	return -1;
}

int fs_vm_row_find(const char *dir, const char *name)
{
	const struct fs_table *tab = fsd.tree->vm;
	for (int i = 0; i < tab->nrows; i++) {
		const char *p = tab->rows[i].parent;
		if ((dir ? p && !strcmp(p, dir) : !p) && !strcmp(tab->rows[i].name, name))
			return i;
	}
	return -1;
}

_Static_assert(FS_ENT_ROWS_MAX < FS_ENT_STRIDE, "entry table stride");
_Static_assert(FS_VM_ROWS_MAX < FS_VM_STRIDE, "VM table stride");

/* ------------------------------------------------------------------ nodes */

static void entries_free(void);

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fs_node **nodes; /* indexed by serial; serial 0 unused */
static size_t nnodes, capnodes;

static struct fs_node *node_by_serial(uint64_t serial)
{
	struct fs_node *n = NULL;
	pthread_mutex_lock(&nodes_lock);
	if (serial > 0 && serial < nnodes)
		n = nodes[serial];
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

/* Caller holds nodes_lock. The node rides on its VM (svm_vm_front_data). */
static struct fs_node *find_locked(svm_vm *vm)
{
	return svm_vm_front_data(vm);
}

struct fs_node *fs_node_find(svm_vm *vm)
{
	pthread_mutex_lock(&nodes_lock);
	struct fs_node *n = find_locked(vm);
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

struct fs_node *fs_node_for(svm_vm *vm)
{
	pthread_mutex_lock(&nodes_lock);
	struct fs_node *n = find_locked(vm);
	if (n || svm_vm_removed(vm))
		goto out;
	if (nnodes == 0)
		nnodes = 1;
	struct fs_node **nv = fs_grow(nodes, &capnodes, nnodes + 1, sizeof *nodes, 64);
	if (!nv)
		goto out;
	nodes = nv;
	n = calloc(1, sizeof *n);
	if (!n)
		goto out;
	n->serial = nnodes;
	snprintf(n->name, sizeof n->name, "%s", svm_vm_name(vm));
	svm_vm_ref(vm);
	n->vm = vm;
	n->owner = svm_vm_owner_uid(vm);
	n->created_ns = fs_now_ns();
	nodes[nnodes++] = n;
	svm_vm_set_front_data(vm, n);
out:
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

svm_vm *fs_node_vm(struct fs_node *n)
{
	svm_vm *vm = NULL;
	pthread_mutex_lock(&nodes_lock);
	if (n->vm) {
		vm = n->vm;
		svm_vm_ref(vm);
	}
	pthread_mutex_unlock(&nodes_lock);
	return vm;
}

void fs_node_mark_removed(struct fs_node *n)
{
	pthread_mutex_lock(&nodes_lock);
	svm_vm *vm = n->vm;
	n->vm = NULL;
	pthread_mutex_unlock(&nodes_lock);
	if (vm)
		svm_vm_unref(vm);
}

void fs_nodes_free(void)
{
	pthread_mutex_lock(&nodes_lock);
	for (size_t i = 1; i < nnodes; i++) {
		if (!nodes[i])
			continue;
		if (nodes[i]->vm)
			svm_vm_unref(nodes[i]->vm);
		for (int r = 0; r < FS_VM_ROWS_MAX; r++)
			free(nodes[i]->rows[r].pc_text); /* a small value's copy (pcache.c) */
		free(nodes[i]);
	}
	free(nodes);
	nodes = NULL;
	nnodes = capnodes = 0;
	pthread_mutex_unlock(&nodes_lock);
	entries_free();
}

/* ------------------------------------------------------------------ entries */

static pthread_mutex_t ents_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fs_entry **ents; /* indexed by serial; serial 0 unused */
static size_t nents, capents;

static struct fs_entry *entry_by_serial(uint64_t serial)
{
	struct fs_entry *e = NULL;
	pthread_mutex_lock(&ents_lock);
	if (serial > 0 && serial < nents)
		e = ents[serial];
	pthread_mutex_unlock(&ents_lock);
	return e;
}

struct fs_entry *fs_entry_get(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node,
                              const char *name)
{
	if (strlen(name) >= sizeof ((struct fs_entry *)0)->name)
		return NULL;
	pthread_mutex_lock(&ents_lock);
	struct fs_entry *e = NULL;
	for (size_t i = nents; i-- > 1;)
		if (!ents[i]->gone && ents[i]->parent == parent && !strcmp(ents[i]->name, name)) {
			e = ents[i];
			goto out;
		}
	if (nents == 0)
		nents = 1;
	struct fs_entry **ev = fs_grow(ents, &capents, nents + 1, sizeof *ents, 64);
	if (!ev)
		goto out;
	ents = ev;
	e = calloc(1, sizeof *e);
	if (!e)
		goto out;
	e->serial = nents;
	e->parent = parent;
	e->dir = dir;
	e->node = node;
	snprintf(e->name, sizeof e->name, "%s", name);
	e->mtime_ns = fs_now_ns();
	ents[nents++] = e;
out:
	pthread_mutex_unlock(&ents_lock);
	return e;
}

void fs_entry_mark_gone(struct fs_entry *e)
{
	pthread_mutex_lock(&ents_lock);
	e->gone = true;
	pthread_mutex_unlock(&ents_lock);
}

struct fs_entry **fs_entries_under(fuse_ino_t parent, size_t *count)
{
	pthread_mutex_lock(&ents_lock);
	struct fs_entry **v = calloc(nents + 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 1; v && i < nents; i++)
		if (!ents[i]->gone && ents[i]->parent == parent)
			v[n++] = ents[i];
	pthread_mutex_unlock(&ents_lock);
	*count = n;
	return v;
}

static void entries_free(void)
{
	pthread_mutex_lock(&ents_lock);
	for (size_t i = 1; i < nents; i++)
		free(ents[i]);
	free(ents);
	ents = NULL;
	nents = capents = 0;
	pthread_mutex_unlock(&ents_lock);
}

bool fs_listed(const struct fs_row *dir, const struct fs_target *t, const char *name)
{
	size_t n = 0;
	char **names = dir->list(t, &n);
	bool found = false;
	for (size_t i = 0; names && names[i] && !found; i++)
		found = !strcmp(names[i], name);
	svm_strv_free(names);
	return found;
}

const struct fs_row *fs_where_row(const struct fs_where *w)
{
	switch (w->kind) {
	case FS_W_ROOTROW:
		return &fsd.tree->root->rows[w->row];
	case FS_W_VMROW:
		return &fsd.tree->vm->rows[w->row];
	case FS_W_ENTROW:
		return &w->ent->dir->entries->rows[w->row];
	default:
		return NULL;
	}
}

struct fs_where fs_resolve(fuse_ino_t ino)
{
	struct fs_where w = {.kind = FS_W_NONE, .row = -1};
	if (ino == FS_INO_ROOT) {
		w.kind = FS_W_ROOT;
	} else if (ino >= FS_INO_ROOTROW(0) && ino < FS_INO_ROOTROW(fsd.tree->root->nrows)) {
		w.kind = FS_W_ROOTROW;
		w.row = (int)(ino - FS_INO_ROOTROW(0));
	} else if (ino >= FS_INO_ENT_BASE) {
		uint64_t rel = ino - FS_INO_ENT_BASE;
		struct fs_entry *e = entry_by_serial(rel / FS_ENT_STRIDE);
		int r = (int)(rel % FS_ENT_STRIDE);
		if (!e)
			return w;
		w.ent = e;
		w.node = e->node;
		if (r == 0) {
			w.kind = FS_W_ENT;
		} else if (e->dir->entries && r - 1 < e->dir->entries->nrows) {
			w.kind = FS_W_ENTROW;
			w.row = r - 1;
		} else {
			w.ent = NULL;
			w.node = NULL;
		}
	} else if (ino >= FS_INO_VM_BASE) {
		uint64_t rel = ino - FS_INO_VM_BASE;
		struct fs_node *n = node_by_serial(rel / FS_VM_STRIDE);
		int r = (int)(rel % FS_VM_STRIDE);
		if (!n || r > fsd.tree->vm->nrows)
			return w;
		w.node = n;
		if (r == 0) {
			w.kind = FS_W_VMDIR;
		} else {
			w.kind = FS_W_VMROW;
			w.row = r - 1;
		}
	}
	return w;
}

/* ------------------------------------------------------------ lookup counts */

/* The kernel's lookup count of an inode, or NULL (the root, unknown inodes). */
static uint64_t *lookup_counter(fuse_ino_t ino)
{
	struct fs_where w = fs_resolve(ino);
	switch (w.kind) {
	case FS_W_ROOTROW:
		return &fs_root_state[w.row].nlookup;
	case FS_W_VMDIR:
		return &w.node->nlookup;
	case FS_W_VMROW:
		return &w.node->rows[w.row].nlookup;
	case FS_W_ENT:
		return &w.ent->nlookup;
	case FS_W_ENTROW:
		return &w.ent->rows[w.row].nlookup;
	default:
		return NULL;
	}
}

void fs_lookup_add(fuse_ino_t ino, int64_t delta)
{
	uint64_t *c = lookup_counter(ino);
	if (!c)
		return;
	if (delta >= 0) {
		__atomic_add_fetch(c, (uint64_t)delta, __ATOMIC_SEQ_CST);
		return;
	}
	uint64_t old = __atomic_load_n(c, __ATOMIC_SEQ_CST), sub = (uint64_t)-delta;
	while (!__atomic_compare_exchange_n(c, &old, old > sub ? old - sub : 0, false,
	                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

bool fs_ino_held(fuse_ino_t ino)
{
	if (ino == FS_INO_ROOT)
		return true;
	uint64_t *c = lookup_counter(ino);
	return c && __atomic_load_n(c, __ATOMIC_SEQ_CST) > 0;
}

bool fs_row_cacheable(const struct fs_row *row)
{
	if (S_ISDIR(row->mode))
		return true;
	return S_ISREG(row->mode) && !(row->flags & (FS_LIVE | FS_STREAM | FS_OFFSET));
}
