/*
 * table.h - what a served tree is made of: rows, tables, flags and the handler
 * types, in the spirit of Plan 9's Dirtab. The engine (serve/) is handed a
 * struct fs_tree and serves any tree; the tree (tree/) fills the tables. Both
 * include this, so the engine never includes the tree's headers.
 */
#ifndef SMARTVMFS_SERVE_TABLE_H
#define SMARTVMFS_SERVE_TABLE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>

#include "smartvm.h"

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
	                         cache ("small values" in pcache.c) */
	FS_VMS = 1u << 10,    /* root directory row whose entries are the VMs: mkdir and
	                         rmdir make and remove one, each a directory of tree.vm */
	FS_QUICK = 1u << 11,  /* VM rows whose value is made without waiting on any lock
	                         slow work may hold: their read-only opens and releases
	                         and their attributes are answered by the loop's reader
	                         (loop.c); so are their writes (ctl's: a parse and a
	                         submit) while an op thread waits for one */
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
	const char *parent;    /* root table: "" for /, else the directory row's name;
	                          VM table: NULL for the VM's directory, else the name of
	                          the VM's directory row holding it (beside its entries) */
	/* rows that keep something per open (fs_handle.priv): open may refuse with an
	 * errno, release runs once per handle that open accepted, poll replies */
	int (*open)(fuse_req_t req, struct fs_handle *h);
	void (*release)(struct fs_handle *h);
	void (*poll)(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph);
};

/* What the engine serves: the root table (rows of / and of its directories,
 * each naming its parent directory) and the table of every VM directory. The
 * tables of dynamic entries hang off their listing rows (fs_row.entries). */
struct fs_tree {
	const struct fs_table *root;
	const struct fs_table *vm;
};

/* The engine's room per table (rowstate arrays, inode strides). */
#define FS_VM_ROWS_MAX 31
#define FS_ROOT_ROWS_MAX 24
#define FS_ENT_ROWS_MAX 12

#endif
