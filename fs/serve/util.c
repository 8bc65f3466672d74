/*
 * util.c - the daemon's one global and the helpers every layer of fs/ uses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

struct fsd fsd;

int64_t fs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *fs_strdupf(size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if (len)
		*len = (size_t)n;
	return s;
}

char *fs_strdup_line(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *out = malloc(n + 2);
	if (!out)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	if (len)
		*len = n + 1;
	return out;
}

/* The core's code as an errno: EIO when the code has none, so a failure never
 * reads as success. */
int fs_errno(svm_code code)
{
	int e = svm_code_errno(code);
	return e ? e : EIO;
}

/* The array v (elements of elem bytes, capacity *cap) with room for need: v
 * itself, or a larger copy; NULL when out of memory (v is left as it was). */
void *fs_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return v;
	size_t n = *cap ? *cap * 2 : first;
	while (n < need)
		n *= 2;
	void *nv = realloc(v, n * elem);
	if (nv)
		*cap = n;
	return nv;
}

/* Takes a malloc'd string (NULL: empty) as a value; line: it ends in a newline
 * unless it is empty. */
static int text_take(char *s, bool line, char **text, size_t *len)
{
	if (!s)
		s = strdup("");
	if (!s)
		return ENOMEM;
	size_t n = strlen(s);
	if (line && n > 0 && s[n - 1] != '\n') {
		char *t = realloc(s, n + 2);
		if (!t) {
			free(s);
			return ENOMEM;
		}
		s = t;
		s[n++] = '\n';
		s[n] = '\0';
	}
	*text = s;
	*len = n;
	return 0;
}

int fs_text_take(char *s, char **text, size_t *len)
{
	return text_take(s, false, text, len);
}

int fs_text_take_line(char *s, char **text, size_t *len)
{
	return text_take(s, true, text, len);
}
