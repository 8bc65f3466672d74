/*
 * base.c - the small pure utilities every layer of the core uses: clocks, the
 * VM-name rule, string vectors, growing arrays, escaping control bytes. Nothing here knows an orchestrator or a VM, so
 * any file may call it without calling up.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "smartvm.h"

uint64_t svm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t svm_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uid_t svm_euid(void)
{
	/* -1 until asked: every thread that asks first stores the same value */
	static _Atomic long euid = -1;
	long v = atomic_load_explicit(&euid, memory_order_relaxed);
	if (v < 0) {
		v = (long)geteuid();
		atomic_store_explicit(&euid, v, memory_order_relaxed);
	}
	return (uid_t)v;
}

struct timespec svm_time_after(clockid_t clock, uint64_t in_ns)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(in_ns / 1000000000ULL);
	ts.tv_nsec += (long)(in_ns % 1000000000ULL);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void svm_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

bool svm_name_valid(const char *name)
{
	if (!name || !*name)
		return false;
	size_t n = strlen(name);
	if (n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

void svm_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int svm_grow(void *pv, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap > 4 ? *cap * 2 : 8;
	if (n < need)
		n = need;
	if (elem && n > SIZE_MAX / elem)
		return -1;
	void *old;
	memcpy(&old, pv, sizeof old); /* pv is a T **: read it without knowing T */
	void *v = realloc(old, n * elem);
	if (!v)
		return -1;
	memcpy(pv, &v, sizeof v);
	*cap = n;
	return 0;
}

char *svm_escape(const char *text)
{
	return svm_escape_bytes(text, strlen(text), 0);
}

char *svm_escape_bytes(const char *bytes, size_t n, size_t room)
{
	size_t o = 0;
	char *out = malloc(n * 4 + 1 + room);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)bytes[i];
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}
