/*
 * tree.c - the file tree as two tables (Plan 9 Dirtab style) and inode numbers.
 *
 * Adding a file is adding a row here. Inode numbers are computed, not stored:
 *   1                      the root
 *   2 + i                  row i of the root table (including /vms and /vms/clone)
 *   2^20 + serial*32 + 0   the directory of the VM node with that serial
 *   2^20 + serial*32 + 1+i row i of the VM table inside it
 *   2^48 + serial*16 + 0   dynamic entry `serial` (a bundle dir, a symlink)
 *   2^48 + serial*16 + 1+i row i of the entry's table (a bundle's files)
 * Serials are never reused while mounted, so a VM made again under an old name has
 * a new inode number (and generation) and no cached entry can reach the old one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"

#define EV(k) (1u << SVM_EV_##k)
#define STATEY (EV(STATE) | EV(EXIT))

const struct fs_row fs_root_rows[] = {
	/* counts VMs by state: mkdir changes it with no event of the core */
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_NOATTR, .text = fs_root_ctl_text,
	 .write = fs_cmd_write, .cmd = fs_root_command, .changes_on = STATEY | EV(REMOVED),
	 .parent = ""},
	{.name = "version", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_root_version_text,
	 .parent = ""},
	/* where the mount keeps things: fixed for its life */
	{.name = "paths", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_root_paths_text,
	 .parent = ""},
	/* live: what the mount can still afford (a scheduler asks before it starts) */
	{.name = "room", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_root_room_text,
	 .parent = ""},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_ERRORS,
	 .changes_on = EV(ROOT_ERROR), .parent = ""},
	{.name = "log", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_LOG,
	 .changes_on = EV(DAEMON_LOG), .parent = ""},
	{.name = "vms", .mode = S_IFDIR | 0755, .parent = ""},
	{.name = "net", .mode = S_IFDIR | 0555, .parent = ""},
	{.name = "images", .mode = S_IFDIR | 0555, .list = fs_images_list, .entries = &fs_bundle_table,
	 .changes_on = EV(IMAGES), .parent = ""},
	/* opened for writing it makes a VM; writes on that descriptor go to the VM's ctl */
	{.name = "clone", .mode = S_IFREG | 0666, .flags = FS_CLONE, .read = fs_clone_read,
	 .write = fs_vm_ctl_write, .parent = "vms"},
	/* /net: the values never change while mounted; leases move with starts and rmdirs */
	{.name = "bridge", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	{.name = "subnet", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	{.name = "gateway", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	/* a start takes its lease before the state event that ends it: not cached */
	{.name = "leases", .mode = S_IFREG | 0444, .flags = FS_NOATTR, .text = fs_net_text,
	 .changes_on = STATEY | EV(REMOVED), .parent = "net"},
	{.name = "ctl", .mode = S_IFREG | 0200, .write = fs_cmd_write, .cmd = fs_net_command,
	 .parent = "net"},
	/* /images: downloads block for long, so ctl lines may be left running (FS_DETACH);
	 * its read-out shows download progress, whose events are throttled (FS_NOATTR).
	 * 0644 whatever allow_other says: base images are what every user boots, so
	 * only the mount's owner (and root) change them */
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_DETACH | FS_NOATTR,
	 .text = fs_images_summary_text, .write = fs_cmd_write, .cmd = fs_images_command,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET,
	 .stream = SVM_STREAM_IMAGE_ERRORS, .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "latest", .mode = S_IFLNK | 0777, .link = fs_images_preset_link,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "lts", .mode = S_IFLNK | 0777, .link = fs_images_preset_link,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "kernels", .mode = S_IFDIR | 0555, .list = fs_images_user_list,
	 .entry_link = fs_images_user_link, .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "rootfs", .mode = S_IFDIR | 0555, .list = fs_images_user_list,
	 .entry_link = fs_images_user_link, .changes_on = EV(IMAGES), .parent = "images"},
};
const int fs_root_nrows = sizeof fs_root_rows / sizeof fs_root_rows[0];

/* FS_PAGE: small read-only values, read through the page cache while they hold
 * still (`cat state` is one OPEN), direct_io from the open's snapshot while they
 * change under open readers (ops.c, "small values"). */
const struct fs_row fs_vm_rows[] = {
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_OWNED, .text = fs_vm_ctl_text,
	 .write = fs_vm_ctl_write, .changes_on = STATEY},
	{.name = "state", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_state_text,
	 .changes_on = STATEY},
	/* read-only: the history, ends like any file; read-write: reads wait (events.c) */
	{.name = "events", .mode = S_IFREG | 0644, .flags = FS_STREAM | FS_OFFSET | FS_OWNED,
	 .stream = SVM_STREAM_VM_EVENTS, .read = fs_events_read, .write = fs_events_write,
	 .changes_on = STATEY},
	{.name = "config.json", .mode = S_IFREG | 0644, .flags = FS_OWNED, .text = fs_vm_config_text,
	 .write = fs_doc_write, .doc_apply = fs_config_apply, .changes_on = EV(CONFIG)},
	/* 0600: MMDS contents may carry secrets. Live: asked of Firecracker while it runs. */
	{.name = "metadata", .mode = S_IFREG | 0600, .flags = FS_OWNED | FS_LIVE,
	 .text = fs_vm_metadata_text, .write = fs_doc_write, .doc_apply = fs_metadata_apply,
	 .changes_on = EV(CONFIG) | STATEY},
	{.name = "console", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_OFFSET,
	 .stream = SVM_STREAM_VM_CONSOLE, .write = fs_console_write,
	 .changes_on = EV(CONSOLE) | STATEY},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_VM_ERRORS,
	 .changes_on = EV(ERROR) | EV(EXIT)},
	{.name = "info", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_info_text,
	 .changes_on = STATEY},
	{.name = "pid", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_pid_text,
	 .changes_on = STATEY},
	{.name = "net", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_net_text,
	 .changes_on = STATEY},
	{.name = "runtime", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_runtime_text,
	 .changes_on = STATEY},
	{.name = "stat", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_stat_text,
	 .changes_on = STATEY},
	{.name = "log", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_VM_LOG,
	 .changes_on = EV(LOG) | STATEY},
	{.name = "metrics", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_metrics_text,
	 .changes_on = EV(METRICS) | STATEY},
	/* named snapshots: symlinks to their host directories */
	{.name = "snapshots", .mode = S_IFDIR | 0555, .list = fs_vm_snapshot_list,
	 .entry_link = fs_vm_snapshot_link, .changes_on = STATEY},
	{.name = "balloon", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_balloon_text,
	 .changes_on = STATEY},
	/* live: the memory hotplug region (memoryHotplug), while it runs */
	{.name = "hotplug", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_hotplug_text,
	 .changes_on = STATEY},
	/* live: the balloon's free page hinting status (freePageHinting), while it runs */
	{.name = "hinting", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_hinting_text,
	 .changes_on = STATEY},
	{.name = "vsock", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_vsock_text,
	 .changes_on = EV(CONFIG) | STATEY},
	/* live: the VMM's own GET /version, while it runs */
	{.name = "version", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_version_text,
	 .changes_on = STATEY},
	/* -o persist: on, and a later mount starts the VM it restores */
	{.name = "autostart", .mode = S_IFREG | 0644, .flags = FS_OWNED, .text = fs_vm_autostart_text,
	 .write = fs_autostart_write, .changes_on = EV(CONFIG)},
};
const int fs_vm_nrows = sizeof fs_vm_rows / sizeof fs_vm_rows[0];

_Static_assert(sizeof fs_vm_rows / sizeof fs_vm_rows[0] < FS_VM_STRIDE, "VM table too big");
_Static_assert(sizeof fs_vm_rows / sizeof fs_vm_rows[0] <= FS_VM_ROWS_MAX, "VM table too big");
_Static_assert(sizeof fs_root_rows / sizeof fs_root_rows[0] <= FS_ROOT_ROWS_MAX, "root table");
_Static_assert(FS_ENT_ROWS_MAX < FS_ENT_STRIDE, "entry table stride");

struct fs_rowstate fs_root_state[FS_ROOT_ROWS_MAX];

int fs_root_row_index(const char *parent, const char *name)
{
	for (int i = 0; i < fs_root_nrows; i++)
		if (!strcmp(fs_root_rows[i].parent, parent) && !strcmp(fs_root_rows[i].name, name))
			return i;
	return -1;
}

int fs_vm_row_index(const char *name)
{
	for (int i = 0; i < fs_vm_nrows; i++)
		if (!strcmp(fs_vm_rows[i].name, name))
			return i;
	return -1;
}

int fs_root_vms_index(void)
{
	static int idx = -2;
	if (idx == -2)
		idx = fs_root_row_index("", "vms");
	return idx;
}

int fs_root_clone_index(void)
{
	static int idx = -2;
	if (idx == -2)
		idx = fs_root_row_index("vms", "clone");
	return idx;
}

/* ------------------------------------------------------------------ nodes */

static void entries_free(void);

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fs_node **nodes; /* indexed by serial; serial 0 unused */
static size_t nnodes, capnodes;

int64_t fs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
	fs_handles_free(); /* they hold references to nodes and VMs */
	pthread_mutex_lock(&nodes_lock);
	for (size_t i = 1; i < nnodes; i++) {
		if (!nodes[i])
			continue;
		if (nodes[i]->vm)
			svm_vm_unref(nodes[i]->vm);
		for (int r = 0; r < FS_VM_ROWS_MAX; r++)
			fs_pcache_free(&nodes[i]->rows[r]);
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
		return &fs_root_rows[w->row];
	case FS_W_VMROW:
		return &fs_vm_rows[w->row];
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
	} else if (ino >= FS_INO_ROOTROW(0) && ino < FS_INO_ROOTROW(fs_root_nrows)) {
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
		if (!n || r > fs_vm_nrows)
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

/* ------------------------------------------------------------------ util */

uint64_t fs_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ^ len;
}

char *fs_strdupf(size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if (len)
		*len = (size_t)n;
	return s;
}

/* The core's code as an errno: EIO when the code has none, so a failure never
 * reads as success. */
int fs_errno(svm_code code)
{
	int e = svm_code_errno(code);
	return e ? e : EIO;
}

/* The array v (elements of elem bytes, capacity *cap) with room for need: v
 * itself, or a larger copy; NULL when out of memory (v is left as it was). */
void *fs_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return v;
	size_t n = *cap ? *cap * 2 : first;
	while (n < need)
		n *= 2;
	void *nv = realloc(v, n * elem);
	if (nv)
		*cap = n;
	return nv;
}

/* Takes a malloc'd string (NULL: empty) as a value; line: it ends in a newline
 * unless it is empty. */
static int text_take(char *s, bool line, char **text, size_t *len)
{
	if (!s)
		s = strdup("");
	if (!s)
		return ENOMEM;
	size_t n = strlen(s);
	if (line && n > 0 && s[n - 1] != '\n') {
		char *t = realloc(s, n + 2);
		if (!t) {
			free(s);
			return ENOMEM;
		}
		s = t;
		s[n++] = '\n';
		s[n] = '\0';
	}
	*text = s;
	*len = n;
	return 0;
}

int fs_text_take(char *s, char **text, size_t *len)
{
	return text_take(s, false, text, len);
}

int fs_text_take_line(char *s, char **text, size_t *len)
{
	return text_take(s, true, text, len);
}
