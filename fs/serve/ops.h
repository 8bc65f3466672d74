/*
 * ops.h - shared by the files of the FUSE operations (ops.c, attr.c, dir.c,
 * file.c, handle.c, pcache.c) and nothing else.
 */
#ifndef SMARTVMFS_SERVE_OPS_H
#define SMARTVMFS_SERVE_OPS_H

#include "serve.h"

#define TIMEOUT_STABLE 3600.0
#define TIMEOUT_VMDIR_ENTRY 10.0
#define TIMEOUT_DIR_ATTR 1.0
/* Value files: the invalidations keep them true; the timeout only bounds the
 * one race FUSE leaves open (a change while the kernel is still taking in the
 * lookup reply of a new inode) and costs one GETATTR a second per hot file. */
#define TIMEOUT_VALUE_ATTR 1.0

/* ---- attr.c: what a reply says */
/* What a row is about, for a where that names a row or an entry: s, the VM (a
 * new reference the caller drops with fs_target_done, or NULL), the entry's name. */
void fs_target_of(const struct fs_where *w, struct fs_target *t);
void fs_target_done(struct fs_target *t);
/* A symlink's target: a row's link, or a symlink entry's. NULL when absent. */
char *fs_link_of(const struct fs_where *w, const struct fs_target *t);
mode_t fs_where_mode(const struct fs_where *w);
struct fs_rowstate *fs_rowstate_at(const struct fs_where *w);
fuse_ino_t fs_where_ino(const struct fs_where *w);
/* Attributes for a reply and their timeout; *gen for fs_reply_done. */
double fs_serve_attr(const struct fs_where *w, struct stat *st, uint64_t *gen);
/* After an attribute reply: one more invalidation if the value moved meanwhile. */
void fs_reply_done(const struct fs_where *w, uint64_t gen);
/* An entry reply, counted as a lookup the kernel holds. */
void fs_reply_entry(fuse_req_t req, const struct fs_where *w, double entry_timeout);
/* What fs_reply_entry sends, for a reply that carries several (readdirplus):
 * the lookup counted (taken back by the caller if the kernel never gets it);
 * returns the generation for fs_reply_done. */
uint64_t fs_fill_entry(const struct fs_where *w, double entry_timeout, struct fuse_entry_param *e);
/* Is ino the directory of the VM directories (FS_VMS)? */
bool fs_is_vms_dir(fuse_ino_t ino);

/* ---- pcache.c: small values (FS_PAGE) through the page cache */
enum pc_open {
	PC_DIRECT,            /* direct_io from the open's own snapshot */
	PC_CACHED,            /* keep_cache: the pages hold this value */
	PC_CACHED_BEHIND,     /* keep_cache, replied behind the new value's invalidation */
	PC_CACHED_NEW         /* a new value: invalidate the inode, then reply keep_cache */
};
bool fs_pc_row(const struct fs_row *row);
/* How an open of a value snap (len bytes) is served; counts a cached open. */
enum pc_open fs_pc_open(struct fs_rowstate *rs, fuse_ino_t ino, const char *snap, size_t len);
void fs_pc_release(struct fs_rowstate *rs, fuse_ino_t ino);
/* A READ of a cached open arrived: the pages hold the value now. */
void fs_pc_read(struct fs_rowstate *rs, fuse_ino_t ino);
/* The st_size an attribute reply may give for the current value cur. */
size_t fs_pc_attr_size(struct fs_rowstate *rs, const char *cur, size_t len, bool *no_cache);

/* ---- handle.c: what is still open */
/* Listings and handles the kernel never released (the mount went away with them
 * open) are freed at the end: each is kept in a list until it is freed. */
struct live_list {
	pthread_mutex_t lock;
	struct fs_live_link *head;
};
void fs_live_add(struct live_list *l, struct fs_live_link *k);
/* Also for one never added (prev and next NULL, not the head). */
void fs_live_remove(struct live_list *l, struct fs_live_link *k);
struct fs_live_link *fs_live_first(struct live_list *l);
struct fs_handle *fs_handle_of(struct fuse_file_info *fi);
void fs_handle_link(struct fs_handle *h);
void fs_handle_free(struct fs_handle *h);
struct fs_rowstate *fs_rowstate_of(struct fs_handle *h);
/* Recomputes the value this open serves. Caller holds h->lock. */
int fs_refresh_snapshot(struct fs_handle *h, svm_error *err);

/* ---- dir.c: listings */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* At the end: the listings never released. */
void fs_dirlists_free(void);

/* ---- file.c: open files */
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                struct fuse_pollhandle *ph);

#endif
