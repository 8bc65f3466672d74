/* ring.c - bounded byte rings and numbered line logs (see ring.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring.h"

/* The first buffer; then it doubles until it holds cap bytes. */
#define RING_FIRST_ALLOC 1024

void ring_init(svm_ring *r, size_t cap)
{
	pthread_mutex_init(&r->mu, NULL);
	r->buf = NULL;
	r->alloc = 0;
	r->cap = cap ? cap : 1;
	r->total = 0;
}

void ring_destroy(svm_ring *r)
{
	free(r->buf);
	r->buf = NULL;
	r->alloc = 0;
	pthread_mutex_destroy(&r->mu);
}

/* Makes room for `want` bytes (at most cap). Until the buffer is cap bytes the
 * ring has never wrapped (total < alloc), so the bytes sit at their offsets and
 * a larger buffer keeps them in place: a VM that wrote 2 KiB of log holds a few
 * KiB, not the whole cap (with 200 VMs that is most of the daemon's memory). */
static bool reserve_locked(svm_ring *r, uint64_t want)
{
	if (want > r->cap)
		want = r->cap;
	if (r->buf && r->alloc >= want)
		return true;
	size_t n = r->alloc ? r->alloc : RING_FIRST_ALLOC;
	while (n < want)
		n *= 2;
	if (n > r->cap)
		n = r->cap;
	char *b = realloc(r->buf, n);
	if (!b)
		return false;
	r->buf = b;
	r->alloc = n;
	return true;
}

void ring_append(svm_ring *r, const char *data, size_t len)
{
	pthread_mutex_lock(&r->mu);
	if (reserve_locked(r, r->total + len)) {
		/* only the last cap bytes of a large append can survive */
		const char *p = data;
		size_t n = len;
		if (n > r->cap) {
			p += n - r->cap;
			n = r->cap;
		}
		uint64_t start = r->total + (len - n);
		size_t at = start % r->cap;
		size_t first = r->cap - at < n ? r->cap - at : n;
		memcpy(r->buf + at, p, first);
		memcpy(r->buf, p + first, n - first);
	} else {
		/* out of memory: keep nothing (readers get no bytes rather than bytes
		 * past the buffer); the offsets still count every byte */
		free(r->buf);
		r->buf = NULL;
		r->alloc = 0;
	}
	r->total += len;
	pthread_mutex_unlock(&r->mu);
}

void ring_reset(svm_ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->total = 0;
	/* give the pages back: a VM that restarts should not keep its old output's
	 * memory dirty (the buffer comes back on the first append) */
	free(r->buf);
	r->buf = NULL;
	r->alloc = 0;
	pthread_mutex_unlock(&r->mu);
}

uint64_t ring_total(svm_ring *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t t = r->total;
	pthread_mutex_unlock(&r->mu);
	return t;
}

static ssize_t read_locked(svm_ring *r, uint64_t off, char *dst, size_t len, uint64_t *from)
{
	uint64_t oldest = r->total > r->cap ? r->total - r->cap : 0;
	if (off < oldest)
		off = oldest;
	if (from)
		*from = off;
	if (off >= r->total || !r->buf)
		return 0;
	size_t n = r->total - off < len ? (size_t)(r->total - off) : len;
	size_t at = off % r->cap;
	size_t first = r->cap - at < n ? r->cap - at : n;
	memcpy(dst, r->buf + at, first);
	memcpy(dst + first, r->buf, n - first);
	return (ssize_t)n;
}

ssize_t ring_read(svm_ring *r, uint64_t off, char *dst, size_t len)
{
	return ring_read_from(r, off, dst, len, NULL);
}

ssize_t ring_read_from(svm_ring *r, uint64_t off, char *dst, size_t len, uint64_t *from)
{
	pthread_mutex_lock(&r->mu);
	ssize_t n = read_locked(r, off, dst, len, from);
	pthread_mutex_unlock(&r->mu);
	return n;
}

char *ring_text(svm_ring *r)
{
	pthread_mutex_lock(&r->mu);
	size_t kept = r->total < r->cap ? (size_t)r->total : r->cap;
	char *s = malloc(kept + 1);
	if (s) {
		ssize_t n = read_locked(r, 0, s, kept, NULL);
		s[n < 0 ? 0 : n] = '\0';
	}
	pthread_mutex_unlock(&r->mu);
	return s;
}

void ring_printf(svm_ring *r, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
	line[n++] = '\n';
	ring_append(r, line, n);
}

uint64_t lines_add(svm_lines *l, const char *text)
{
	l->seq++;
	size_t slot = l->seq % SVM_LINES_KEPT;
	free(l->line[slot]);
	l->line[slot] = strdup(text);
	return l->seq;
}

char *lines_get(const svm_lines *l, uint64_t seq, uint64_t *got)
{
	if (seq > l->seq || l->seq == 0)
		return NULL;
	uint64_t oldest = l->seq > SVM_LINES_KEPT ? l->seq - SVM_LINES_KEPT + 1 : 1;
	if (seq < oldest)
		seq = oldest;
	if (got)
		*got = seq;
	const char *s = l->line[seq % SVM_LINES_KEPT];
	return strdup(s ? s : "");
}

void lines_clear(svm_lines *l)
{
	for (int i = 0; i < SVM_LINES_KEPT; i++) {
		free(l->line[i]);
		l->line[i] = NULL;
	}
}
