/*
 * lines.h - the one line writer behind every file that takes commands, a line
 * each: a VM's ctl (its lines run as the core's asynchronous ops, ctl.c) and the
 * command files /ctl, /net/ctl, /images/ctl (on a thread of their own, cmd.c).
 *
 * The rules of DESIGN §3, kept here once: the bytes of one write are split at
 * newlines and run in order; a NUL byte or an overlong line is refused before a
 * C string is made of it; blank lines count as done; at the first failure the
 * write returns the bytes of the lines that succeeded (they stay done), or the
 * errno if the first line failed; the reply comes once what the lines changed
 * is invalidated (fs_reply_*_fresh). Ctrl-C finds the write in flight by its
 * request in one list, under one lock.
 */
#ifndef SMARTVMFS_TREE_LINES_H
#define SMARTVMFS_TREE_LINES_H

#include "tree.h"

struct fs_lines {
	fuse_req_t req;
	char *text;          /* the bytes written (our copy) */
	size_t len;
	size_t pos;          /* start of the line to run next */
	size_t ok;           /* bytes of lines that are done */
	size_t cur;          /* bytes of the line taken last, its newline included */
	const char *raw;     /* the line taken last as written (raw_len bytes, no newline) */
	size_t raw_len;
	bool interrupted;    /* fs_lines_lock: Ctrl-C came */
	/* under fs_lines_lock, at Ctrl-C: true when the write is to be answered
	 * EINTR now (the interrupt handler replies once the lock is let go) */
	bool (*on_interrupt)(struct fs_lines *l);
	struct fs_lines *next;
};

/* The write's own copy of buf: 0, or ENOMEM. */
int fs_lines_init(struct fs_lines *l, fuse_req_t req, const char *buf, size_t size);
void fs_lines_release(struct fs_lines *l);

enum fs_line_take {
	FS_LINE_END,         /* no line is left */
	FS_LINE_RUN,         /* *line: the next line that is not blank, trimmed (caller frees) */
	FS_LINE_REFUSED,     /* its bytes are no command (err says why) */
	FS_LINE_NOMEM,
};
/* Takes the next line that is not blank (blank ones count as done on the way);
 * l->raw and l->raw_len name it as written, for the error file's echo. */
enum fs_line_take fs_lines_next(struct fs_lines *l, char **line, svm_error *err);
/* The line taken last succeeded. */
void fs_lines_done(struct fs_lines *l);
/* The reply: e (the errno of the failure that ended the write, or 0) if no line
 * was done, else the bytes of the lines done; fresh. */
void fs_lines_reply(struct fs_lines *l, int e);

/* The writes in flight, for Ctrl-C (fuse_req_interrupt_func(req,
 * fs_lines_interrupt, NULL)). The lock also guards what each runner keeps of its
 * write in flight (ctl.c: the op). */
void fs_lines_lock(void);
void fs_lines_unlock(void);
void fs_lines_watch_locked(struct fs_lines *l);
void fs_lines_unwatch_locked(struct fs_lines *l);
bool fs_lines_interrupted(struct fs_lines *l);
void fs_lines_interrupt(fuse_req_t req, void *data);

/* Trims blanks at both ends in place. */
char *fs_line_trim(char *line);

#endif
