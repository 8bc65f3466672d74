/*
 * serve.h - the engine: how any tree of rows (table.h) is served over the FUSE
 * low-level API. It is handed the tables (fs_serve_start) and never names a row,
 * a table or a handler of the tree it serves, so it includes no header of tree/.
 * What a handler may call is here too: the fresh replies, the invalidations,
 * the stream and document machinery, the access rules and the helpers.
 */
#ifndef SMARTVMFS_SERVE_H
#define SMARTVMFS_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "table.h"

#ifndef SMARTVMFS_VERSION
#define SMARTVMFS_VERSION "0.0.0"
#endif

/* Per (node, row) facts the daemon remembers between requests. */
struct fs_rowstate {
	/* Any request thread and the pump use these at once: __atomic only. */
	uint64_t served_len;   /* FS_LIVE: length of the value last served */
	int64_t mtime_ns;      /* last time an event said the value changed */
	uint64_t nlookup;      /* lookups the kernel holds on this inode (forget drops them) */
	uint64_t gen;          /* bumped by the pump each time an event changes the value */
	/* FS_PAGE rows (pcache.c, under its lock): the value the kernel's pages may hold */
	char *pc_text;
	size_t pc_len;
	bool pc_valid;         /* pages and i_size may hold pc_text: attribute sizes pinned */
	bool pc_ready;         /* a READ of pc_text arrived: no older page is left */
	unsigned pc_opens;     /* cached opens (all of pc_text) not yet released */
	bool pc_inval_held;    /* an attribute invalidation waits for the first READ of
	                          pc_text or the last release */
};

/* One VM directory. Nodes are never freed while mounted, so inode numbers are
 * never reused: a new VM of an old name gets a new serial and a new inode. */
struct fs_node {
	uint64_t serial;
	char name[80];
	svm_vm *vm;            /* our reference; NULL once removed */
	uid_t owner;
	int64_t created_ns;
	uint64_t nlookup;      /* the directory's lookups held by the kernel (__atomic) */
	struct fs_rowstate rows[FS_VM_ROWS_MAX];
	struct fs_handle *event_readers; /* open `events` handles (events.c lock) */
};

/* A dynamic entry: a name a listing row produced (a bundle under /images, a
 * snapshot under vms/NAME/snapshots, a file under /images/kernels, an exec
 * session). Its serial is never reused: a name that goes and comes back gets a
 * new serial, hence a new inode number. Once gone and held by nothing (no pin,
 * no open file, no lookup the kernel keeps) it is freed, a second later
 * (nodes.c), so thousands of exec sessions leave nothing behind. */
struct fs_entry {
	uint64_t serial;
	fuse_ino_t parent;     /* the listing directory's inode */
	const struct fs_row *dir; /* the listing row */
	struct fs_node *node;  /* the VM whose directory holds the listing, or NULL */
	char name[256];
	bool gone;
	int64_t mtime_ns;      /* __atomic: the pump moves it, any request reads it */
	uint64_t nlookup;      /* lookups held by the kernel (__atomic) */
	/* what keeps a gone entry allocated (nodes.c): the kernel's lookups of it
	 * and of its rows, open files of its rows, and callers between
	 * fs_entry_get / fs_entries_under and their unpin */
	int pins;              /* under the entries' lock */
	int handles;           /* __atomic */
	struct fs_entry *prev, *next; /* the allocated entries, oldest first; or the limbo */
	int64_t unlinked_ns;   /* when it left the entries (nodes.c: freed a while after) */
	struct fs_rowstate rows[FS_ENT_ROWS_MAX];
};

/* Per open file (fi->fh). */
/* A place in a list of what is still allocated, freed at the end (handle.c). */
struct fs_live_link {
	struct fs_live_link *prev, *next;
};

struct fs_handle {
	const struct fs_row *row;
	int row_index;
	fuse_ino_t ino;
	struct fs_node *node;  /* NULL for root rows */
	struct fs_entry *ent;  /* rows of a dynamic entry (a bundle) */
	struct fs_target t;    /* t.vm: our own reference (NULL for root rows); t.id: ours */
	uid_t uid;
	int flags;             /* open flags */
	pthread_mutex_t lock;  /* snapshot and write buffer */
	char *snap;            /* value files: the value this open serves */
	size_t snap_len;
	bool snap_valid;
	uint64_t read_end;     /* FS_OFFSET: the stream offset this open has read up to */
	uint64_t skew;         /* FS_OFFSET: bytes this open skipped because the stream
	                          had dropped them (a read at off serves off + skew) */
	bool console_replay;   /* console: this open writes back the console's output */
	bool snap_unread;      /* FS_LIVE: taken at open, no read yet (the first read at
	                          offset 0 serves it rather than start over) */
	bool direct;           /* opened direct_io: reads never fill the page cache (all but
	                          FS_STABLE value files: see open.c) */
	bool pc_cached;        /* an FS_PAGE open counted in pc_opens */
	char *wbuf;            /* documents: bytes written so far */
	size_t wlen;
	uid_t wuid;            /* documents: who the buffered bytes are counted to (doc.c) */
	bool doc_dirty;        /* bytes arrived since the last complete document */
	/* events (events.c lock) */
	bool ev_started;
	uint64_t ev_seq;
	char *ev_pending;      /* what a short read left of the lines it took (bash's
	                          `read` takes one byte at a time) */
	size_t ev_pending_len;
	struct fuse_pollhandle *ph;
	struct fs_handle *ev_next;
	/* clone */
	char *clone_name;
	void *priv;            /* the row's own, from its open hook to its release hook */
	bool priv_open;        /* the row's open hook accepted this handle */
	struct fs_live_link live; /* every handle not freed yet (handle.c) */
};

/* The daemon. */
struct fsd {
	svm *s;
	struct fuse_session *se;
	const struct fs_tree *tree; /* what is served (fs_serve_start) */
	int vms_row;           /* the root row whose entries are the VMs (FS_VMS), or -1 */
	bool allow_other;
	uid_t mount_uid;
	gid_t mount_gid;
	char **paths;          /* allowed host path prefixes (allow_other), NULL-terminated */
	int64_t mount_ns;
	atomic_bool stopping;   /* unmounting: no new VM work is started (read by op threads) */
	int root_jobs;          /* command writes in flight on their own threads (atomic) */
};

/* util.c, where every file of fs/ finds it */
extern struct fsd fsd;

/* ---- start.c: starting and ending the engine */
/* Serves tree (kept, not copied) and starts the pump and the notifier threads. */
int fs_serve_start(const struct fs_tree *tree);
/* Ends the pump and the notifier; abort_conn ends the FUSE connection if the
 * notifier is stuck in the kernel (see inval.c). */
void fs_serve_stop(void (*abort_conn)(bool in_fuse));
/* At unmount, once no request runs and the threads are stopped: frees what is
 * left open and every node and entry. */
void fs_serve_free(void);

/* ---- loop.c: the FUSE loop, until unmount or a signal (0) or an error. One
 * thread at a time reads and answers itself what waits on no slow request (the
 * FS_QUICK rows' lookups, opens and attributes, releases without a hook,
 * ioctls, the attributes of vms/ and of VM directories: loop.c's quick());
 * before any other request it passes the reading to another (up to
 * max_threads). */
int fs_serve_loop(struct fuse_session *se, unsigned max_threads);

/* ---- nodes.c: inode numbers, VM nodes, dynamic entries, lookup counts.
 * Inode numbers are computed, not stored (see nodes.c). */
#define FS_INO_ROOT FUSE_ROOT_ID
#define FS_INO_ROOTROW(i) ((fuse_ino_t)(2 + (i)))
#define FS_INO_VM_BASE ((fuse_ino_t)1 << 20)
#define FS_VM_STRIDE 32
#define FS_INO_VM(serial, rowplus1) (FS_INO_VM_BASE + (fuse_ino_t)(serial)*FS_VM_STRIDE + (rowplus1))
#define FS_INO_ENT_BASE ((fuse_ino_t)1 << 48)
#define FS_ENT_STRIDE 16
#define FS_INO_ENT(serial, rowplus1) (FS_INO_ENT_BASE + (fuse_ino_t)(serial)*FS_ENT_STRIDE + (rowplus1))

extern struct fs_rowstate fs_root_state[FS_ROOT_ROWS_MAX];

/* What an inode number names. */
struct fs_where {
	enum { FS_W_NONE, FS_W_ROOT, FS_W_ROOTROW, FS_W_VMDIR, FS_W_VMROW, FS_W_ENT, FS_W_ENTROW } kind;
	int row;               /* FS_W_ROOTROW / FS_W_VMROW / FS_W_ENTROW */
	struct fs_node *node;  /* FS_W_VMDIR / FS_W_VMROW; FS_W_ENT* under a VM */
	struct fs_entry *ent;  /* FS_W_ENT / FS_W_ENTROW */
};
struct fs_where fs_resolve(fuse_ino_t ino);
/* The index of the row (parent, name) in tab, or -1; parent NULL: any parent. */
int fs_table_find(const struct fs_table *tab, const char *parent, const char *name);
/* The index of the VM table's row name in the VM's directory (dir NULL) or in
 * its directory row dir, or -1. */
int fs_vm_row_find(const char *dir, const char *name);
/* The node of a VM, registering one if the daemon has not seen it yet. */
struct fs_node *fs_node_for(svm_vm *vm);
struct fs_node *fs_node_find(svm_vm *vm);
/* A new reference to the node's VM, NULL once removed. */
svm_vm *fs_node_vm(struct fs_node *n);
void fs_node_mark_removed(struct fs_node *n);
void fs_nodes_free(void);
/* The live entry (parent, name), registering it if new; pinned: the caller
 * gives it back with fs_entry_unpin. A gone entry is freed once nothing holds
 * it (no pin, lookup or open file): an exec session leaves nothing behind. */
struct fs_entry *fs_entry_get(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node,
                              const char *name);
void fs_entry_unpin(struct fs_entry *e);
void fs_entry_mark_gone(struct fs_entry *e);
/* The live entries under parent, each pinned (give them back with
 * fs_entries_unpin, which frees the array). */
struct fs_entry **fs_entries_under(fuse_ino_t parent, size_t *count);
void fs_entries_unpin(struct fs_entry **v, size_t count);
/* An open file of one of e's rows: counted while it lives. */
void fs_entry_handle_add(struct fs_entry *e, int delta);
/* Is name among the names the listing row gives now? */
bool fs_listed(const struct fs_row *dir, const struct fs_target *t, const char *name);
/* The row a table row index names, for any where that is a row. */
const struct fs_row *fs_where_row(const struct fs_where *w);
/* The kernel's lookup count of an inode: add (lookup replies) or drop (forget).
 * fs_ino_held: may the kernel cache anything of it (the root always). */
void fs_lookup_add(fuse_ino_t ino, int64_t delta);
bool fs_ino_held(fuse_ino_t ino);
/* Can the kernel cache this row's attributes or pages (so a change must be
 * invalidated)? Value files and directories; not live, stream or offset files
 * (direct_io, attributes never cached) nor symlinks (targets never cached). */
bool fs_row_cacheable(const struct fs_row *row);

/* ---- ops.c and the files of the FUSE operations (ops.h) */
extern const struct fuse_lowlevel_ops fs_ops;
/* At unmount, once no request runs: the handles of files and directories the
 * kernel never released (the mount went away with them open). */
void fs_handles_free(void);

/* ---- pcache.c: small values through the page cache */
/* Invalidates what the kernel caches of a row's inode (value_changed: its value
 * moved). For a small value whose new pc_text was not read yet, the attribute
 * invalidation waits for that first READ (see "small values" in pcache.c). */
void fs_row_inval(const struct fs_row *row, struct fs_rowstate *rs, fuse_ino_t ino,
                  bool value_changed);

/* ---- doc.c: config.json and metadata writes (buffered, parsed at every write) */
/* A handle's buffer goes (release): its bytes leave its writer's count. */
void fs_doc_forget(struct fs_handle *h);
void fs_doc_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_doc_flush(struct fs_handle *h);

/* ---- events.c: FS_STREAM rows (the blocking `events` file) */
void fs_events_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_events_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_events_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph);
void fs_events_opened(struct fs_handle *h);
void fs_events_released(struct fs_handle *h);
/* An event of this node was reported: answer waiting reads, wake pollers. */
void fs_events_wake(struct fs_node *n, bool removed);
/* At unmount: end every waiting read. */
void fs_events_shutdown(void);
/* stream.c: the read of an FS_OFFSET row (replies; h->read_end moves). */
void fs_offset_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

/* ---- pump.c: core events -> fs work, where they are reported or on the pump */
/* svm_options.on_event: runs on core threads; never blocks. A VM's event is
 * handled there (the core reports those holding none of its locks), the rest
 * queued for the pump. */
void fs_on_core_event(void *ud, const svm_event *ev);
/* Replies to a request that changed values (ctl, config.json, command files) only
 * once the invalidations of what it changed are delivered: behind the core's
 * events queued for the pump before this call, then behind the notifier's
 * queue - so the writer's next read or stat is fresh. Any thread; never
 * blocks. The request must hold no directory lock (not mkdir,
 * rmdir): an entry invalidation ahead of it may need that lock. */
void fs_reply_write_fresh(fuse_req_t req, size_t count);
void fs_reply_err_fresh(fuse_req_t req, int err);
/* start.c: the thread starts and stops (the stop drains the queue first). */
int fs_pump_start(void);
void fs_pump_stop(void);
/* A root row's value changed (from fs itself, not a core event). */
void fs_root_row_changed(int row);
/* The same for the root-table row parent/name of the tree being served (a
 * handler's own change that no core event reports). */
void fs_root_file_changed(const char *parent, const char *name);
/* Drops entries the listing no longer gives (and their cached names). */
void fs_entries_sync(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node);
/* The listing of VM directory row dirname (exec, snapshots) lost a name: on the
 * pump, its entries are synced (the gone one invalidated, and freed once the
 * kernel forgot it). Any thread; never blocks. */
void fs_vm_listing_changed(svm_vm *vm, const char *dirname);

/* ---- inval.c: the notifier thread, the only one that invalidates pages and names */
/* An inode's attributes: sent at once by the caller (they wait on nothing).
 * Inodes the kernel holds no lookup of are skipped: it has nothing cached. */
void fs_inval_inode(fuse_ino_t ino);
/* The pages too, and whether or not the kernel holds a lookup (an open does):
 * queued for the notifier thread, never sent by a request thread. */
void fs_inval_inode_pages(fuse_ino_t ino);
void fs_inval_entry(fuse_ino_t parent, const char *name);
/* A write's reply (errnum, or count bytes) behind every invalidation queued so
 * far; at once when the notifier is gone. */
void fs_inval_reply(fuse_req_t req, size_t count, int errnum);
/* start.c: the thread starts and stops; abort_conn as in fs_serve_stop. */
int fs_inval_start(void);
void fs_inval_stop(void (*abort_conn)(bool in_fuse));
/* Replies to an open once every invalidation queued so far was delivered;
 * abandoned(h) when the kernel no longer waits for the reply. */
void fs_reply_open_behind(fuse_req_t req, const struct fuse_file_info *fi,
                          void (*abandoned)(void *h), void *h);

/* ---- access.c: ownership and host paths with allow_other */
int fs_may_write_vm(fuse_req_t req, svm_vm *vm);
bool fs_path_allowed(const char *path);
/* 0 or EACCES with err filled: every host path in the JSON config lies under -o paths. */
int fs_config_paths_allowed(const char *text, size_t len, uid_t owner, svm_error *err);
int fs_check_config_at_start(void *ud, uid_t owner, const char *json, size_t len, svm_error *err);
int fs_paths_init(const char *spec);
/* A failure of req's user for the root error file (every user's): with allow_other
 * one user's lines are rate-limited, what is left out said with the next one. */
void fs_note_shared_error(fuse_req_t req, const char *cmd, const svm_error *err);

/* ---- util.c */
int64_t fs_now_ns(void);
uint64_t fs_hash(const char *s, size_t len);
char *fs_strdupf(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s and a newline, malloc'd; *len its length (if len): what fs_strdupf("%s\n")
 * makes without the formatting, for the values read at every open (`state`). */
char *fs_strdup_line(const char *s, size_t *len);
/* The errno of a core failure: svm_code_errno, EIO when the code has none. */
int fs_errno(svm_code code);
/* The array v (elements of elem bytes, capacity *cap) with room for need, grown
 * by doubling from first: v itself, or a larger copy; NULL when out of memory
 * (v is left as it was). */
void *fs_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first);
/* A value handler's result from a malloc'd string (NULL: empty), taken over;
 * _line: ending in a newline unless empty. 0 or ENOMEM. */
int fs_text_take(char *s, char **text, size_t *len);
int fs_text_take_line(char *s, char **text, size_t *len);

#endif
