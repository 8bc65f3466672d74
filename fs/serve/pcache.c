/*
 * pcache.c - small values (FS_PAGE rows) through the page cache.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* The page cache of small value files (FS_PAGE rows: state, pid, ...), so that
 * `cat state` is one OPEN (keep_cache) and an asynchronous RELEASE, and still no
 * read ever mixes, cuts or pads two values, and stat tells the truth.
 *
 * The kernel's copy of a value is two things shared by every open of the
 * inode: the page, filled by the READ of one open, and i_size, set by every
 * attribute reply it applies (lookup, GETATTR of a stat or of a read past
 * i_size or with stale attributes) and shrunk by a short READ. A cached read
 * copies min(i_size, what the page holds): the page of one value with the size
 * of another is cut or padded with zeros. And the kernel drops an attribute
 * reply to a request sent before the inode's last invalidation (attr_version):
 * the read that asked for it then goes on with the old i_size. So per inode the
 * daemon keeps `text` (pc_text), the one value the pages may hold, and:
 *
 *  - while `valid`, every attribute reply gives len(text) (the size is pinned).
 *    When the value has moved on and no cached open is left, the pin is
 *    dropped and the reply says the truth; while cached opens of the old value
 *    remain (one may be inside its read) it stays, with attribute timeout 0,
 *    so the truth comes back at the first look after they are released;
 *  - an open whose snapshot is `text` is cached: keep_cache, and no READ at all
 *    once the page is there (`ready`: a READ of text has arrived);
 *  - an open of another value becomes the new `text` only when no cached open
 *    is left (nobody fills or copies the old page). It queues an invalidation
 *    of the inode's pages and attributes (under the lock, so every later open
 *    of the value is queued behind it) and is replied after it is delivered
 *    (by the notifier, or at once when nothing is left in its queue): the old page is gone, replies computed before (the old size) are
 *    dropped by the kernel, so the first read asks GETATTR and gets len(text).
 *    Until a READ of the new value arrives, attribute timeouts are 0, other
 *    opens of it are replied behind that invalidation too, and the attribute
 *    invalidations of value changes are held (sent at that READ or at the last
 *    release): one landing while the first reader's GETATTR is on its way
 *    would have the kernel drop the reply that sets the new size. Once a READ
 *    came, an applied reply has set len(text): later drops keep it;
 *  - an open of another value while cached opens of `text` remain is direct_io
 *    from its own snapshot and touches neither the page nor the size.
 *
 * A cached open serves its snapshot (== text) for its whole life, so the page
 * only ever holds text. Values longer than a page are never cached. One small
 * lock per inode (striped), held for a compare and a copy.
 */
#define PCACHE_MAX 4096
#define PCACHE_LOCKS 64

static pthread_mutex_t pc_locks[PCACHE_LOCKS] = {
	[0 ... PCACHE_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *pc_lock_of(const struct fs_rowstate *rs)
{
	return &pc_locks[((uintptr_t)rs >> 6) % PCACHE_LOCKS];
}

static bool pc_same(const struct fs_rowstate *rs, const char *text, size_t len)
{
	return rs->pc_len == len && (len == 0 || memcmp(rs->pc_text, text, len) == 0);
}

bool fs_pc_row(const struct fs_row *row)
{
	return (row->flags & FS_PAGE) && row->text && !row->write &&
	       !(row->flags & (FS_LIVE | FS_STREAM | FS_OFFSET | FS_STABLE));
}

enum pc_open fs_pc_open(struct fs_rowstate *rs, fuse_ino_t ino, const char *snap, size_t len)
{
	if (len > PCACHE_MAX)
		return PC_DIRECT;
	enum pc_open mode = PC_DIRECT;
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_valid && pc_same(rs, snap, len)) {
		rs->pc_opens++;
		mode = rs->pc_ready ? PC_CACHED : PC_CACHED_BEHIND;
	} else if (rs->pc_opens == 0) {
		char *copy = malloc(len ? len : 1);
		if (copy) {
			memcpy(copy, snap, len);
			free(rs->pc_text);
			rs->pc_text = copy;
			rs->pc_len = len;
			rs->pc_valid = true;
			rs->pc_ready = false;
			rs->pc_opens = 1;
			/* queued under the lock: every open of this value that follows
			 * is replied behind it (PC_CACHED_BEHIND) */
			fs_inval_inode_pages(ino);
			mode = PC_CACHED_NEW;
		}
	}
	pthread_mutex_unlock(pc_lock_of(rs));
	return mode;
}

void fs_pc_release(struct fs_rowstate *rs, fuse_ino_t ino)
{
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_opens > 0)
		rs->pc_opens--;
	if (rs->pc_opens == 0 && rs->pc_inval_held) {
		rs->pc_inval_held = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

void fs_row_inval(const struct fs_row *row, struct fs_rowstate *rs, fuse_ino_t ino,
                  bool value_changed)
{
	if (!fs_pc_row(row)) {
		fs_inval_inode(ino);
		return;
	}
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_opens > 0 && rs->pc_valid && !rs->pc_ready) {
		rs->pc_inval_held = true; /* sent at the first READ or the last release */
	} else if (rs->pc_opens > 0) {
		fs_inval_inode(ino);
	} else {
		if (value_changed)
			rs->pc_valid = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

void fs_pc_read(struct fs_rowstate *rs, fuse_ino_t ino)
{
	pthread_mutex_lock(pc_lock_of(rs));
	rs->pc_ready = true;
	if (rs->pc_inval_held) {
		rs->pc_inval_held = false;
		fs_inval_inode(ino);
	}
	pthread_mutex_unlock(pc_lock_of(rs));
}

size_t fs_pc_attr_size(struct fs_rowstate *rs, const char *cur, size_t len, bool *no_cache)
{
	size_t size = len;
	*no_cache = false;
	pthread_mutex_lock(pc_lock_of(rs));
	if (rs->pc_valid && !rs->pc_ready)
		*no_cache = true; /* nothing cached before the first READ of the value */
	if (rs->pc_valid && !pc_same(rs, cur, len)) {
		if (rs->pc_opens == 0) {
			rs->pc_valid = false; /* nobody reads the old page: say the truth */
		} else {
			size = rs->pc_len;
			*no_cache = true;
		}
	}
	pthread_mutex_unlock(pc_lock_of(rs));
	return size;
}

