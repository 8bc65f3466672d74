/*
 * minfuse.c - the reference of the `cat state` benchmark: a minimal libfuse3
 * low-level server with one constant 8-byte file, /state ("running\n"), served
 * as fast as libfuse allows: entry and attributes cached for a day, keep_cache
 * (after the first read the page cache answers), noflush (no FLUSH at close).
 * What is left per `cat` is the FUSE round trip of OPEN (and the RELEASE sent
 * after close, which nobody waits for).
 *
 *   minfuse [-o mt] MOUNTPOINT      (runs in the foreground; fusermount3 -u ends it)
 *
 * -o mt serves with the multi-threaded loop (as smartvmfs does); the default is
 * the single-threaded loop.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char VALUE[] = "running\n";
#define FILE_INO 2
#define FOREVER 86400.0

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = sizeof VALUE - 1;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != FUSE_ROOT_ID || strcmp(name, "state")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e = {.ino = FILE_INO, .attr_timeout = FOREVER,
	                             .entry_timeout = FOREVER};
	fill(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	fill(ino, &st);
	fuse_reply_attr(req, &st, FOREVER);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	size_t len = sizeof VALUE - 1;
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, VALUE + off, len - (size_t)off < size ? len - (size_t)off : size);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char buf[512];
	size_t used = 0;
	const char *names[] = {".", "..", "state"};
	fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, FILE_INO};
	for (off_t i = off; i < 3; i++) {
		struct stat st;
		fill(inos[i], &st);
		size_t need = fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, i + 1);
		if (need > sizeof buf - used || used + need > size)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.readdir = op_readdir,
};

int main(int argc, char **argv)
{
	int mt = 0;
	char *mnt = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	fuse_opt_add_arg(&args, argv[0]);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "mt")) {
			mt = 1;
			i++;
		} else {
			mnt = argv[i];
		}
	}
	if (!mnt) {
		fprintf(stderr, "usage: minfuse [-o mt] MOUNTPOINT\n");
		return 2;
	}
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se)
		return 1;
	int rc = 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, mnt) == 0) {
			if (mt) {
				struct fuse_loop_config *cfg = fuse_loop_cfg_create();
				rc = fuse_session_loop_mt(se, cfg);
				fuse_loop_cfg_destroy(cfg);
			} else {
				rc = fuse_session_loop(se);
			}
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return rc ? 1 : 0;
}
