/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: checks that an
 * svm_error is well formed, and a failure that names what was wrong.
 */
#ifndef SVM_FUZZ_H
#define SVM_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smartvm.h"

#define FUZZ_FAIL(...)                                                   \
	do {                                                             \
		fprintf(stderr, "fuzz check failed at %s:%d: ", __FILE__, \
			__LINE__);                                       \
		fprintf(stderr, __VA_ARGS__);                            \
		fputc('\n', stderr);                                     \
		abort();                                                 \
	} while (0)

#define FUZZ_CHECK(cond, ...)             \
	do {                              \
		if (!(cond))              \
			FUZZ_FAIL(__VA_ARGS__); \
	} while (0)

/* A failure's error: a known code other than OK, one line of text. */
static inline void fuzz_check_error(const svm_error *e)
{
	FUZZ_CHECK(e->code > SVM_OK && e->code < SVM_CODE_COUNT, "error code %d", (int)e->code);
	size_t n = strnlen(e->message, sizeof e->message);
	FUZZ_CHECK(n < sizeof e->message, "error message not terminated");
	FUZZ_CHECK(n > 0, "empty error message (code %s)", svm_code_name(e->code));
	FUZZ_CHECK(!strpbrk(e->message, "\r\n"), "error message spans lines: %s", e->message);
}

/* A malloc'd NUL-terminated copy of the input. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An orchestrator in a temporary directory of its own, freed (and the
 * directory removed) at exit; firecracker may be NULL or any path. */
#include <ftw.h>
#include <unistd.h>

static svm *fuzz_svm;
static char fuzz_dir[256];

static int fuzz_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void fuzz_svm_end(void)
{
	svm_free(fuzz_svm);
	fuzz_svm = NULL;
	if (fuzz_dir[0])
		nftw(fuzz_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline svm *fuzz_svm_new(const char *firecracker)
{
	/* under $TMPDIR when given: tests/fuzz/run.sh gives each target one and
	 * removes it after, also when the target ended in an abort */
	const char *tmp = getenv("TMPDIR");
	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/svm-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_dir))
		FUZZ_FAIL("mkdtemp: %m");
	char rt[300], data[300];
	snprintf(rt, sizeof rt, "%s/rt", fuzz_dir);
	snprintf(data, sizeof data, "%s/data", fuzz_dir);
	svm_options o = {.data_dir = data, .runtime_dir = rt, .firecracker = firecracker,
			 .stop_timeout_ms = 2000, .kill_timeout_ms = 1000};
	svm_error e;
	fuzz_svm = svm_new(&o, &e);
	if (!fuzz_svm)
		FUZZ_FAIL("svm_new: %s", e.message);
	atexit(fuzz_svm_end);
	return fuzz_svm;
}

#endif
