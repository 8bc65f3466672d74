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
static struct fs_entry **ents; /* indexed by serial (NULL: freed); serial 0 unused */
static size_t nents, capents;
static struct fs_entry *ent_first, *ent_last; /* the allocated ones, oldest first */
static size_t ent_count;
/* Unlinked, freed after ENT_GRACE_NS: a request thread may still touch an
 * entry it resolved just after replying (fs_reply_done), and the kernel may
 * forget the inode the moment that reply reached it. */
static struct fs_entry *ent_limbo; /* the newest first */
#define ENT_GRACE_NS 1000000000LL

static struct fs_entry *entry_by_serial(uint64_t serial)
{
	struct fs_entry *e = NULL;
	pthread_mutex_lock(&ents_lock);
	if (serial > 0 && serial < nents)
		e = ents[serial];
	pthread_mutex_unlock(&ents_lock);
	return e;
}

/* Nothing holds a gone entry: no pin, no open file, no lookup the kernel keeps
 * of it or of a row. The kernel sends no request for an inode it forgot, and a
 * gone entry is never found by name again, so nothing reaches it after. */
static bool entry_unused_locked(struct fs_entry *e)
{
	if (!e->gone || e->pins > 0 || __atomic_load_n(&e->handles, __ATOMIC_SEQ_CST) > 0 ||
	    __atomic_load_n(&e->nlookup, __ATOMIC_SEQ_CST) > 0)
		return false;
	for (int k = 0; k < FS_ENT_ROWS_MAX; k++)
		if (__atomic_load_n(&e->rows[k].nlookup, __ATOMIC_SEQ_CST) > 0)
			return false;
	return true;
}

static void entry_release_locked(struct fs_entry *e)
{
	for (int k = 0; k < FS_ENT_ROWS_MAX; k++)
		free(e->rows[k].pc_text); /* a small value's copy (pcache.c) */
	free(e);
}

/* The entries unlinked over ENT_GRACE_NS ago (the limbo's oldest are last). */
static void limbo_free_locked(int64_t now)
{
	struct fs_entry **p = &ent_limbo;
	while (*p && now - (*p)->unlinked_ns < ENT_GRACE_NS)
		p = &(*p)->next;
	struct fs_entry *old = *p;
	*p = NULL;
	while (old) {
		struct fs_entry *next = old->next;
		entry_release_locked(old);
		old = next;
	}
}

/* Unlinks e when nothing holds it any more (its inode numbers then resolve to
 * nothing: ENOENT, as for any inode the kernel forgot); freed after the grace. */
static void entry_settle_locked(struct fs_entry *e)
{
	if (!entry_unused_locked(e))
		return;
	ents[e->serial] = NULL;
	if (e->prev)
		e->prev->next = e->next;
	else
		ent_first = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		ent_last = e->prev;
	ent_count--;
	int64_t now = fs_now_ns();
	limbo_free_locked(now);
	e->unlinked_ns = now;
	e->prev = NULL;
	e->next = ent_limbo;
	ent_limbo = e;
}

struct fs_entry *fs_entry_get(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node,
                              const char *name)
{
	if (strlen(name) >= sizeof ((struct fs_entry *)0)->name)
		return NULL;
	pthread_mutex_lock(&ents_lock);
	struct fs_entry *e = NULL;
	for (struct fs_entry *x = ent_last; x; x = x->prev)
		if (!x->gone && x->parent == parent && !strcmp(x->name, name)) {
			e = x;
			goto out;
		}
	if (nents == 0)
		nents = 1;
	limbo_free_locked(fs_now_ns()); /* its memory may serve this one */
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
	e->prev = ent_last;
	if (ent_last)
		ent_last->next = e;
	else
		ent_first = e;
	ent_last = e;
	ent_count++;
out:
	if (e)
		e->pins++;
	pthread_mutex_unlock(&ents_lock);
	return e;
}

void fs_entry_unpin(struct fs_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&ents_lock);
	e->pins--;
	entry_settle_locked(e);
	pthread_mutex_unlock(&ents_lock);
}

void fs_entry_mark_gone(struct fs_entry *e)
{
	pthread_mutex_lock(&ents_lock);
	e->gone = true;
	entry_settle_locked(e);
	pthread_mutex_unlock(&ents_lock);
}

struct fs_entry **fs_entries_under(fuse_ino_t parent, size_t *count)
{
	pthread_mutex_lock(&ents_lock);
	struct fs_entry **v = calloc(ent_count + 1, sizeof *v);
	size_t n = 0;
	for (struct fs_entry *x = ent_first; v && x; x = x->next)
		if (!x->gone && x->parent == parent) {
			x->pins++;
			v[n++] = x;
		}
	pthread_mutex_unlock(&ents_lock);
	*count = n;
	return v;
}

void fs_entries_unpin(struct fs_entry **v, size_t count)
{
	if (!v)
		return;
	pthread_mutex_lock(&ents_lock);
	for (size_t i = 0; i < count; i++) {
		v[i]->pins--;
		entry_settle_locked(v[i]);
	}
	pthread_mutex_unlock(&ents_lock);
	free(v);
}

void fs_entry_handle_add(struct fs_entry *e, int delta)
{
	if (!e)
		return;
	pthread_mutex_lock(&ents_lock);
	__atomic_add_fetch(&e->handles, delta, __ATOMIC_SEQ_CST);
	entry_settle_locked(e);
	pthread_mutex_unlock(&ents_lock);
}

/* An entry's lookup counter, under the entries' lock: another thread may free
 * the entry the moment the lock is not held. */
static uint64_t *entry_counter_locked(fuse_ino_t ino, struct fs_entry **ep)
{
	uint64_t rel = ino - FS_INO_ENT_BASE, serial = rel / FS_ENT_STRIDE;
	int r = (int)(rel % FS_ENT_STRIDE);
	struct fs_entry *e = serial > 0 && serial < nents ? ents[serial] : NULL;
	*ep = e;
	if (!e)
		return NULL;
	if (r == 0)
		return &e->nlookup;
	return e->dir->entries && r - 1 < e->dir->entries->nrows ? &e->rows[r - 1].nlookup : NULL;
}

static void entries_free(void)
{
	pthread_mutex_lock(&ents_lock);
	for (struct fs_entry *x = ent_first, *next; x; x = next) {
		next = x->next;
		entry_release_locked(x);
	}
	limbo_free_locked(INT64_MAX);
	ent_first = ent_last = NULL;
	ent_count = 0;
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

/* The kernel's lookup count of an inode not of an entry, or NULL (the root,
 * unknown inodes). */
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
	default:
		return NULL; /* entries: entry_counter_locked */
	}
}

static void counter_add(uint64_t *c, int64_t delta)
{
	if (delta >= 0) {
		__atomic_add_fetch(c, (uint64_t)delta, __ATOMIC_SEQ_CST);
		return;
	}
	uint64_t old = __atomic_load_n(c, __ATOMIC_SEQ_CST), sub = (uint64_t)-delta;
	while (!__atomic_compare_exchange_n(c, &old, old > sub ? old - sub : 0, false,
	                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

void fs_lookup_add(fuse_ino_t ino, int64_t delta)
{
	if (ino >= FS_INO_ENT_BASE) {
		pthread_mutex_lock(&ents_lock);
		struct fs_entry *e;
		uint64_t *c = entry_counter_locked(ino, &e);
		if (c) {
			counter_add(c, delta);
			entry_settle_locked(e); /* a forget: maybe the last hold */
		}
		pthread_mutex_unlock(&ents_lock);
		return;
	}
	uint64_t *c = lookup_counter(ino);
	if (c)
		counter_add(c, delta);
}

bool fs_ino_held(fuse_ino_t ino)
{
	if (ino == FS_INO_ROOT)
		return true;
	if (ino >= FS_INO_ENT_BASE) {
		pthread_mutex_lock(&ents_lock);
		struct fs_entry *e;
		uint64_t *c = entry_counter_locked(ino, &e);
		bool held = c && __atomic_load_n(c, __ATOMIC_SEQ_CST) > 0;
		pthread_mutex_unlock(&ents_lock);
		return held;
	}
	uint64_t *c = lookup_counter(ino);
	return c && __atomic_load_n(c, __ATOMIC_SEQ_CST) > 0;
}

bool fs_row_cacheable(const struct fs_row *row)
{
	if (S_ISDIR(row->mode))
		return true;
	return S_ISREG(row->mode) && !(row->flags & (FS_LIVE | FS_STREAM | FS_OFFSET));
}
