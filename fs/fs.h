/*
 * fs.h - the smartvmfs front end: shared types of the FUSE daemon.
 *
 * The tree is two tables (tree.c), in the spirit of Plan 9's Dirtab: one row per
 * file with its name, mode, flags and handlers. Rows do not know about FUSE
 * requests except the few whose reads or writes complete later (events, ctl).
 * Only core/smartvm.h is included from the core: the arrow points fs -> core.
 */
#ifndef SMARTVMFS_FS_H
#define SMARTVMFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "smartvm.h"

#ifndef SMARTVMFS_VERSION
#define SMARTVMFS_VERSION "0.0.0"
#endif

struct fs_handle;
struct fs_node;

/* Row flags: how a file behaves. */
enum {
	FS_LIVE = 1u << 0,    /* asked at each read: direct_io, st_size = length last served */
	FS_STREAM = 1u << 1,  /* events: read-only opens read the history (FS_OFFSET); a
	                         read-write open is the opt-in to reads that wait for the
	                         next events (first read at once); poll() on either */
	FS_OFFSET = 1u << 2,  /* console, logs, error files: absolute offsets into one of the
	                         core's byte streams (row.stream): st_size is every byte
	                         written, so tail, tail -f, wc and less +F see it grow */
	FS_STABLE = 1u << 3,  /* never changes while mounted: long timeouts, page cache kept */
	FS_OWNED = 1u << 4,   /* VM rows: writes only by the VM's owner (allow_other) */
	FS_CLONE = 1u << 5,   /* /vms/clone: opening for writing creates a VM */
	FS_DETACH = 1u << 6,  /* command files: Ctrl-C answers EINTR at once; the line in
	                         progress finishes in the background, later lines do not run */
	FS_NOATTR = 1u << 8,  /* the value may change between its events (VM counts on mkdir,
	                         throttled download progress): attributes never cached */
	FS_PAGE = 1u << 9,    /* a small read-only value (state, pid): read through the page
	                         cache ("small values" in ops.c) */
};

struct fs_row;

/* The thing a row is about: the daemon (vm == NULL) or one VM; for the rows of a
 * dynamic entry (a base-image bundle) or a symlink entry, id is the entry's name.
 * row is the row being served, so one handler can serve several rows by name. */
struct fs_target {
	svm *s;
	svm_vm *vm;
	const char *id;
	const struct fs_row *row;
};

/* A value producer: the whole value as newline-terminated text (malloc'd).
 * Returns 0, or an errno with err filled in when the core said why. */
typedef int (*fs_text_fn)(const struct fs_target *t, char **text, size_t *len, svm_error *err);
/* Writes: the handler replies to the request itself (now or later). */
typedef void (*fs_write_fn)(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
                            off_t off);
/* Reads that do not fit "a text value" (events, clone): reply themselves. */
typedef void (*fs_read_fn)(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
/* Symlinks: the target (malloc'd), or NULL when the link is absent. */
typedef char *(*fs_link_fn)(const struct fs_target *t);
/* Directories with dynamic entries: their names (svm_strv_free). */
typedef char **(*fs_list_fn)(const struct fs_target *t, size_t *count);
/* Command files: runs one line (on a thread of its own); 0, or -1 with err set.
 * The handler records the failure where it belongs (an error file). */
typedef int (*fs_cmd_fn)(const struct fs_target *t, const char *line, svm_error *err);

/* A table of rows: the files of one kind of directory. */
struct fs_table {
	const struct fs_row *rows;
	int nrows;
};

struct fs_row {
	const char *name;
	mode_t mode;           /* S_IFREG|0644 ... */
	unsigned flags;        /* FS_* */
	fs_text_fn text;       /* value files */
	svm_stream stream;     /* FS_OFFSET files: which of the core's streams */
	fs_read_fn read;       /* special reads */
	fs_write_fn write;     /* NULL: read-only */
	/* documents (config.json, metadata): validates and stores a whole document */
	int (*doc_apply)(svm_vm *vm, const char *text, size_t len, svm_error *err);
	fs_cmd_fn cmd;         /* command files (written through fs_cmd_write) */
	fs_link_fn link;       /* S_IFLNK rows: the target; NULL = the link is absent */
	/* S_IFDIR rows with dynamic entries (bundles, snapshots, user files): */
	fs_list_fn list;       /* the entries' names */
	const struct fs_table *entries; /* each entry a directory of these rows; or */
	fs_link_fn entry_link; /* each entry a symlink to entry_link(t with t.id = name) */
	unsigned changes_on;   /* bit (1u << svm_event_kind) of events that change the value */
	const char *parent;    /* root table: "" for /, else the directory row's name */
};

/* Per (node, row) facts the daemon remembers between requests. */
struct fs_rowstate {
	/* Any request thread and the pump use these at once: __atomic only. */
	uint64_t served_len;   /* FS_LIVE: length of the value last served */
	int64_t mtime_ns;      /* last time an event said the value changed */
	uint64_t nlookup;      /* lookups the kernel holds on this inode (forget drops them) */
	uint64_t gen;          /* bumped by the pump each time an event changes the value */
	/* FS_PAGE rows (ops.c, under pc_lock_of): the value the kernel's pages may hold */
	char *pc_text;
	size_t pc_len;
	bool pc_valid;         /* pages and i_size may hold pc_text: attribute sizes pinned */
	bool pc_ready;         /* a READ of pc_text arrived: no older page is left */
	unsigned pc_opens;     /* cached opens (all of pc_text) not yet released */
	bool pc_inval_held;    /* an attribute invalidation waits for the first READ of
	                          pc_text or the last release */
};

#define FS_VM_ROWS_MAX 24
#define FS_ROOT_ROWS_MAX 24
#define FS_ENT_ROWS_MAX 12

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
 * snapshot under vms/NAME/snapshots, a file under /images/kernels). Like nodes,
 * never freed while mounted: a name that goes and comes back gets a new serial,
 * hence a new inode number. */
struct fs_entry {
	uint64_t serial;
	fuse_ino_t parent;     /* the listing directory's inode */
	const struct fs_row *dir; /* the listing row */
	struct fs_node *node;  /* the VM whose directory holds the listing, or NULL */
	char name[256];
	bool gone;
	int64_t mtime_ns;      /* __atomic: the pump moves it, any request reads it */
	uint64_t nlookup;      /* lookups held by the kernel (__atomic) */
	struct fs_rowstate rows[FS_ENT_ROWS_MAX];
};

/* Per open file (fi->fh). */
/* A place in a list of what is still allocated, freed at the end (ops.c). */
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
	                          FS_STABLE value files: see op_open) */
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
	struct fs_live_link live; /* every handle not freed yet (ops.c) */
};

/* The daemon. */
struct fsd {
	svm *s;
	struct fuse_session *se;
	bool allow_other;
	uid_t mount_uid;
	gid_t mount_gid;
	char **paths;          /* allowed host path prefixes (allow_other), NULL-terminated */
	int64_t mount_ns;
	volatile bool stopping; /* unmounting: no new VM work is started */
	int root_jobs;          /* command writes in flight on their own threads (atomic) */
};

extern struct fsd fsd;

/* ---- tree.c: tables, inode numbers, nodes */
#define FS_INO_ROOT FUSE_ROOT_ID
#define FS_INO_ROOTROW(i) ((fuse_ino_t)(2 + (i)))
#define FS_INO_VM_BASE ((fuse_ino_t)1 << 20)
#define FS_VM_STRIDE 32
#define FS_INO_VM(serial, rowplus1) (FS_INO_VM_BASE + (fuse_ino_t)(serial)*FS_VM_STRIDE + (rowplus1))
#define FS_INO_ENT_BASE ((fuse_ino_t)1 << 48)
#define FS_ENT_STRIDE 16
#define FS_INO_ENT(serial, rowplus1) (FS_INO_ENT_BASE + (fuse_ino_t)(serial)*FS_ENT_STRIDE + (rowplus1))

extern const struct fs_row fs_root_rows[];
extern const int fs_root_nrows;
extern const struct fs_row fs_vm_rows[];
extern const int fs_vm_nrows;
int fs_root_row_index(const char *parent, const char *name);
int fs_vm_row_index(const char *name);
int fs_root_vms_index(void);
int fs_root_clone_index(void);
extern struct fs_rowstate fs_root_state[FS_ROOT_ROWS_MAX];

/* What an inode number names. */
struct fs_where {
	enum { FS_W_NONE, FS_W_ROOT, FS_W_ROOTROW, FS_W_VMDIR, FS_W_VMROW, FS_W_ENT, FS_W_ENTROW } kind;
	int row;               /* FS_W_ROOTROW / FS_W_VMROW / FS_W_ENTROW */
	struct fs_node *node;  /* FS_W_VMDIR / FS_W_VMROW; FS_W_ENT* under a VM */
	struct fs_entry *ent;  /* FS_W_ENT / FS_W_ENTROW */
};
struct fs_where fs_resolve(fuse_ino_t ino);
/* The node of a VM, registering one if the daemon has not seen it yet. */
struct fs_node *fs_node_for(svm_vm *vm);
struct fs_node *fs_node_find(svm_vm *vm);
/* A new reference to the node's VM, NULL once removed. */
svm_vm *fs_node_vm(struct fs_node *n);
void fs_node_mark_removed(struct fs_node *n);
void fs_nodes_free(void);
int64_t fs_now_ns(void);
/* The live entry (parent, name), registering it if new. */
struct fs_entry *fs_entry_get(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node,
                              const char *name);
void fs_entry_mark_gone(struct fs_entry *e);
/* The live entries under parent (a malloc'd array the caller frees; entries stay). */
struct fs_entry **fs_entries_under(fuse_ino_t parent, size_t *count);
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

/* ---- ops.c: the FUSE operations */
extern const struct fuse_lowlevel_ops fs_ops;
/* At unmount: the FS_PAGE copy of a row (see "small values" in ops.c). */
void fs_pcache_free(struct fs_rowstate *rs);
/* At unmount, once no request runs: the handles of files and directories the
 * kernel never released (the mount went away with them open). */
void fs_handles_free(void);
/* Invalidates what the kernel caches of a row's inode (value_changed: its value
 * moved). For a small value whose new pc_text was not read yet, the attribute
 * invalidation waits for that first READ (see "small values" in ops.c). */
void fs_row_inval(const struct fs_row *row, struct fs_rowstate *rs, fuse_ino_t ino,
                  bool value_changed);
void fs_fill_attr(const struct fs_where *w, struct stat *st);

/* ---- rootfiles.c, vmfiles.c: the handlers behind the rows */
int fs_root_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_room_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_paths_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_command(const struct fs_target *t, const char *line, svm_error *err);
/* Command files: lines run in order on a thread of their own (row->cmd). */
void fs_cmd_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

int fs_vm_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_state_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_config_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_metadata_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_info_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_pid_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_runtime_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_stat_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_autostart_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_autostart_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_vm_metrics_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_balloon_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_hinting_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_hotplug_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_vsock_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
char **fs_vm_snapshot_list(const struct fs_target *t, size_t *count);
char *fs_vm_snapshot_link(const struct fs_target *t);

/* ---- netfiles.c: /net */
int fs_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_net_command(const struct fs_target *t, const char *line, svm_error *err);

/* ---- imagefiles.c: /images */
extern const struct fs_table fs_bundle_table;
int fs_images_summary_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_images_command(const struct fs_target *t, const char *line, svm_error *err);
char *fs_images_preset_link(const struct fs_target *t);
char **fs_images_list(const struct fs_target *t, size_t *count);
char **fs_images_user_list(const struct fs_target *t, size_t *count);
char *fs_images_user_link(const struct fs_target *t);
int fs_bundle_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
char *fs_bundle_link(const struct fs_target *t);
void fs_console_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_config_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);
int fs_metadata_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);

/* ---- doc.c: config.json and metadata writes (buffered, parsed at every write) */
/* A handle's buffer goes (release): its bytes leave its writer's count. */
void fs_doc_forget(struct fs_handle *h);
void fs_doc_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_doc_flush(struct fs_handle *h);

/* ---- ctl.c: VM verbs, one per line, replied from the core's completion */
void fs_vm_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
/* Called on the pump thread when an op completes. */
void fs_ctl_continue(void *job, const svm_error *err);
/* Trims blanks at both ends in place. */
char *fs_line_trim(char *line);

/* ---- events.c: the blocking `events` file */
void fs_events_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_events_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
/* stream.c: the read of an FS_OFFSET row (replies; h->read_end moves). */
void fs_offset_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_events_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph);
void fs_events_opened(struct fs_handle *h);
void fs_events_released(struct fs_handle *h);
/* The pump saw an event of this node: answer waiting reads, wake pollers. */
void fs_events_wake(struct fs_node *n, bool removed);
/* At unmount: end every waiting read. */
void fs_events_shutdown(void);

/* ---- notify.c: the pump (core events -> fs work) and the invalidation thread */
int fs_notify_start(void);
/* Ends the pump and the notifier; abort_conn ends the FUSE connection if the
 * notifier is stuck in the kernel (see notify.c). */
void fs_notify_stop(void (*abort_conn)(bool in_fuse));
/* svm_options.on_event: runs on core threads, only queues. */
void fs_on_core_event(void *ud, const svm_event *ev);
/* Queue work for the pump thread (ctl continuations). Never blocks. */
void fs_pump_post_done(void *job, const svm_error *err);
/* Queue an invalidation (sent by the notifier thread, never by a request thread).
 * Inodes the kernel holds no lookup of are skipped: it has nothing cached. */
void fs_inval_inode(fuse_ino_t ino);
/* The pages too, and whether or not the kernel holds a lookup (an open does). */
void fs_inval_inode_pages(fuse_ino_t ino);
void fs_inval_entry(fuse_ino_t parent, const char *name);
/* Replies to a request that changed values (ctl, config.json, command files) only
 * once the invalidations of what it changed are delivered: the core's events
 * queued before this call go through the pump, their invalidations through the
 * notifier, then the reply - so the writer's next read or stat is fresh. Any
 * thread; never blocks. The request must hold no directory lock (not mkdir,
 * rmdir): an entry invalidation ahead of it may need that lock. */
void fs_reply_write_fresh(fuse_req_t req, size_t count);
void fs_reply_err_fresh(fuse_req_t req, int err);
/* Replies to an open once every invalidation queued so far was delivered;
 * abandoned(h) when the kernel no longer waits for the reply. */
void fs_reply_open_behind(fuse_req_t req, const struct fuse_file_info *fi,
                          void (*abandoned)(void *h), void *h);
/* A root row's value changed (from fs itself, not a core event). */
void fs_root_row_changed(int row);
/* Drops entries the listing no longer gives (and their cached names). */
void fs_entries_sync(fuse_ino_t parent, const struct fs_row *dir, struct fs_node *node);

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

/* ---- util */
uint64_t fs_hash(const char *s, size_t len);
char *fs_strdupf(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
