/*
 * lines.c - the line writer of every command file (lines.h): splitting,
 * checking and accounting of lines, the reply rule, and the writes Ctrl-C may
 * interrupt. How a line runs is the runner's: ctl.c, cmd.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "lines.h"

static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fs_lines *in_flight;

char *fs_line_trim(char *line)
{
	while (*line && isspace((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	return line;
}

int fs_lines_init(struct fs_lines *l, fuse_req_t req, const char *buf, size_t size)
{
	memset(l, 0, sizeof *l);
	l->text = malloc(size ? size : 1);
	if (!l->text)
		return ENOMEM;
	memcpy(l->text, buf, size);
	l->len = size;
	l->req = req;
	return 0;
}

void fs_lines_release(struct fs_lines *l)
{
	free(l->text);
	l->text = NULL;
}

enum fs_line_take fs_lines_next(struct fs_lines *l, char **line, svm_error *err)
{
	*line = NULL;
	while (l->pos < l->len) {
		char *start = l->text + l->pos;
		char *nl = memchr(start, '\n', l->len - l->pos);
		l->cur = nl ? (size_t)(nl - start) + 1 : l->len - l->pos;
		l->raw = start;
		l->raw_len = nl ? l->cur - 1 : l->cur;
		/* judged before a C string is made: a NUL would cut the line short
		 * and run what comes before it */
		if (fs_ctl_check_bytes(start, l->raw_len, err) != 0)
			return FS_LINE_REFUSED;
		char *copy = strndup(start, l->raw_len);
		if (!copy)
			return FS_LINE_NOMEM;
		char *trimmed = fs_line_trim(copy);
		if (*trimmed) {
			memmove(copy, trimmed, strlen(trimmed) + 1);
			*line = copy;
			return FS_LINE_RUN;
		}
		free(copy); /* blank lines are fine and count as done */
		fs_lines_done(l);
	}
	return FS_LINE_END;
}

void fs_lines_done(struct fs_lines *l)
{
	l->pos += l->cur;
	l->ok += l->cur;
}

void fs_lines_reply(struct fs_lines *l, int e)
{
	/* after the invalidations of what the lines changed: the writer's next
	 * read is fresh */
	if (e && l->ok == 0)
		fs_reply_err_fresh(l->req, e);
	else
		fs_reply_write_fresh(l->req, l->ok);
}

void fs_lines_lock(void)
{
	pthread_mutex_lock(&lines_lock);
}

void fs_lines_unlock(void)
{
	pthread_mutex_unlock(&lines_lock);
}

void fs_lines_watch_locked(struct fs_lines *l)
{
	l->next = in_flight;
	in_flight = l;
}

void fs_lines_unwatch_locked(struct fs_lines *l)
{
	for (struct fs_lines **pp = &in_flight; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
}

bool fs_lines_interrupted(struct fs_lines *l)
{
	fs_lines_lock();
	bool interrupted = l->interrupted;
	fs_lines_unlock();
	return interrupted;
}

void fs_lines_interrupt(fuse_req_t req, void *data)
{
	(void)data;
	bool reply = false;
	fs_lines_lock();
	for (struct fs_lines *l = in_flight; l; l = l->next)
		if (l->req == req) {
			l->interrupted = true;
			reply = l->on_interrupt && l->on_interrupt(l);
			break;
		}
	fs_lines_unlock();
	if (reply)
		fuse_reply_err(req, EINTR);
}
