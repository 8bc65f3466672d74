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
	FS_STREAM = 1u << 1,  /* events: first read at once, later reads block; direct_io */
	FS_OFFSET = 1u << 2,  /* console/log: absolute offsets into a growing byte stream */
	FS_STABLE = 1u << 3,  /* never changes while mounted: long timeouts, page cache kept */
	FS_OWNED = 1u << 4,   /* VM rows: writes only by the VM's owner (allow_other) */
	FS_CLONE = 1u << 5,   /* /vms/clone: opening for writing creates a VM */
};

/* The thing a row is about: the daemon (vm == NULL) or one VM. */
struct fs_target {
	svm *s;
	svm_vm *vm;
};

/* A value producer: the whole value as newline-terminated text (malloc'd).
 * Returns 0, or an errno with err filled in when the core said why. */
typedef int (*fs_text_fn)(const struct fs_target *t, char **text, size_t *len, svm_error *err);
/* Byte streams with absolute offsets (console, log). */
typedef uint64_t (*fs_size_fn)(svm_vm *vm);
typedef ssize_t (*fs_read_at_fn)(svm_vm *vm, uint64_t off, char *buf, size_t len);
/* Writes: the handler replies to the request itself (now or later). */
typedef void (*fs_write_fn)(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
                            off_t off);
/* Reads that do not fit "a text value" (events, clone): reply themselves. */
typedef void (*fs_read_fn)(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

struct fs_row {
	const char *name;
	mode_t mode;           /* S_IFREG|0644 ... */
	unsigned flags;        /* FS_* */
	fs_text_fn text;       /* value files */
	fs_size_fn size;       /* FS_OFFSET files */
	fs_read_at_fn read_at; /* FS_OFFSET files */
	fs_read_fn read;       /* special reads */
	fs_write_fn write;     /* NULL: read-only */
	/* documents (config.json, metadata): validates and stores a whole document */
	int (*doc_apply)(svm_vm *vm, const char *text, size_t len, svm_error *err);
	unsigned changes_on;   /* bit (1u << svm_event_kind) of events that change the value */
	const char *parent;    /* root table: "" for /, "vms" for /vms */
};

/* Per (node, row) facts the daemon remembers between requests. */
struct fs_rowstate {
	uint64_t served_hash;  /* hash of the value last handed to the kernel's page cache */
	bool served_valid;     /* cleared by any write: the cache may hold written bytes */
	size_t served_len;     /* FS_LIVE: length of the value last served */
	int64_t mtime_ns;      /* last time an event said the value changed */
};

#define FS_VM_ROWS_MAX 24
#define FS_ROOT_ROWS_MAX 16

/* One VM directory. Nodes are never freed while mounted, so inode numbers are
 * never reused: a new VM of an old name gets a new serial and a new inode. */
struct fs_node {
	uint64_t serial;
	char name[80];
	svm_vm *vm;            /* our reference; NULL once removed */
	uid_t owner;
	int64_t created_ns;
	struct fs_rowstate rows[FS_VM_ROWS_MAX];
	struct fs_handle *event_readers; /* open `events` handles (events.c lock) */
};

/* Per open file (fi->fh). */
struct fs_handle {
	const struct fs_row *row;
	int row_index;
	struct fs_node *node;  /* NULL for root rows */
	struct fs_target t;    /* t.vm: our own reference (NULL for root rows) */
	uid_t uid;
	int flags;             /* open flags */
	pthread_mutex_t lock;  /* snapshot and write buffer */
	char *snap;            /* value files: the value this open serves */
	size_t snap_len;
	bool snap_valid;
	char *wbuf;            /* documents: bytes written so far */
	size_t wlen;
	bool doc_dirty;        /* bytes arrived since the last complete document */
	/* events (events.c lock) */
	bool ev_started;
	uint64_t ev_seq;
	struct fuse_pollhandle *ph;
	struct fs_handle *ev_next;
	/* clone */
	char *clone_name;
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
	int root_jobs;          /* /ctl writes in flight on their own threads (atomic) */
};

extern struct fsd fsd;

/* ---- tree.c: tables, inode numbers, nodes */
#define FS_INO_ROOT FUSE_ROOT_ID
#define FS_INO_ROOTROW(i) ((fuse_ino_t)(2 + (i)))
#define FS_INO_VM_BASE ((fuse_ino_t)1 << 20)
#define FS_VM_STRIDE 32
#define FS_INO_VM(serial, rowplus1) (FS_INO_VM_BASE + (fuse_ino_t)(serial)*FS_VM_STRIDE + (rowplus1))

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
	enum { FS_W_NONE, FS_W_ROOT, FS_W_ROOTROW, FS_W_VMDIR, FS_W_VMROW } kind;
	int row;               /* FS_W_ROOTROW / FS_W_VMROW */
	struct fs_node *node;  /* FS_W_VMDIR / FS_W_VMROW */
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

/* ---- ops.c: the FUSE operations */
extern const struct fuse_lowlevel_ops fs_ops;
void fs_fill_attr(const struct fs_where *w, struct stat *st);

/* ---- rootfiles.c, vmfiles.c: the handlers behind the rows */
int fs_root_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_error_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_log_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_root_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

int fs_vm_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_state_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_config_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_metadata_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_error_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_info_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_pid_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_runtime_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_stat_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_metrics_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_console_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_config_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);
int fs_metadata_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);

/* ---- doc.c: config.json and metadata writes (buffered, parsed at every write) */
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
void fs_events_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph);
void fs_events_opened(struct fs_handle *h);
void fs_events_released(struct fs_handle *h);
/* The pump saw an event of this node: answer waiting reads, wake pollers. */
void fs_events_wake(struct fs_node *n, bool removed);
/* At unmount: end every waiting read. */
void fs_events_shutdown(void);

/* ---- notify.c: the pump (core events -> fs work) and the invalidation thread */
int fs_notify_start(void);
void fs_notify_stop(void);
/* svm_options.on_event: runs on core threads, only queues. */
void fs_on_core_event(void *ud, const svm_event *ev);
/* Queue work for the pump thread (ctl continuations). Never blocks. */
void fs_pump_post_done(void *job, const svm_error *err);
/* Queue an invalidation (sent by the notifier thread, never by a request thread). */
void fs_inval_inode(fuse_ino_t ino);
void fs_inval_entry(fuse_ino_t parent, const char *name);

/* ---- access.c: ownership and host paths with allow_other */
int fs_may_write_vm(fuse_req_t req, svm_vm *vm);
bool fs_path_allowed(const char *path);
/* 0 or EACCES with err filled: every host path in the JSON config lies under -o paths. */
int fs_config_paths_allowed(const char *text, size_t len, svm_error *err);
int fs_paths_init(const char *spec);

/* ---- util */
uint64_t fs_hash(const char *s, size_t len);
char *fs_strdupf(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
