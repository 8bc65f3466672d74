/*
 * fileio.c - a whole buffer written, a directory listed (see fileio.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "cleanup.h"
#include "fileio.h"

/* Both writers: at off, or (off < 0) at the file position (pipes, sockets). */
static int write_at(int fd, const char *c, size_t n, off_t off)
{
	while (n) {
		ssize_t w = off < 0 ? write(fd, c, n) : pwrite(fd, c, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -1 : (errno = ENOSPC, -1);
		c += w;
		n -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

int svm_write_all(int fd, const void *p, size_t n)
{
	return write_at(fd, p, n, -1);
}

int svm_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	return write_at(fd, p, n, off);
}

char *svm_read_fd(int fd, size_t max, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL;
	for (;;) {
		if (n + 1 >= cap) {
			size_t want = cap ? cap * 2 : 4096;
			char *b = realloc(buf, want);
			if (!b) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = b;
			cap = want;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			free(buf);
			errno = EFBIG;
			return NULL;
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

char **svm_dir_names(const char *dir, svm_dir_keep keep, void *ud, size_t *count)
{
	size_t n = 0, cap = 8;
	char **v = calloc(cap, sizeof *v);
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *de;
	while (d && v && (de = readdir(d))) {
		if (de->d_name[0] == '.' || (keep && !keep(ud, dir, de)))
			continue;
		if (svm_grow(&v, &cap, n + 2, sizeof *v) < 0)
			break; /* what is listed so far */
		if ((v[n] = strdup(de->d_name)))
			v[++n] = NULL;
	}
	if (count)
		*count = v ? n : 0;
	return v;
}
