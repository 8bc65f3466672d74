/*
 * cleanup.h - scoped release for long functions, the core's and the front
 * end's (crun's and lxcfs's idiom): a variable declared with cleanup_free, cleanup_close, ... is released
 * when it goes out of scope, so an early return cannot leak it and a function
 * needs no ladder of closes at its end. steal_pointer / steal_fd hand a value on
 * (to a caller, to an object) and leave nothing behind to release.
 */
#ifndef SVM_CLEANUP_H
#define SVM_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Each releaser keeps errno: the caller's error path reports it after the
 * scope's releases ran. */
static inline void cleanup_free_(void *p)
{
	int e = errno;
	free(*(void **)p);
	errno = e;
}

static inline void cleanup_close_(int *fd)
{
	int e = errno;
	if (*fd >= 0)
		close(*fd);
	errno = e;
}

static inline void cleanup_fclose_(FILE **f)
{
	int e = errno;
	if (*f)
		fclose(*f);
	errno = e;
}

static inline void cleanup_closedir_(DIR **d)
{
	int e = errno;
	if (*d)
		closedir(*d);
	errno = e;
}

static inline void cleanup_json_(json_t **j)
{
	json_decref(*j); /* NULL-safe */
}

#define cleanup_free __attribute__((cleanup(cleanup_free_)))
#define cleanup_close __attribute__((cleanup(cleanup_close_)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclose_)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedir_)))
#define cleanup_json __attribute__((cleanup(cleanup_json_)))

/* The value of *pp, leaving NULL there: the scope no longer frees it. */
#define steal_pointer(pp)                  \
	({                                 \
		__typeof__(*(pp)) p_ = *(pp); \
		*(pp) = NULL;              \
		p_;                        \
	})

/* The fd in *fd, leaving -1 there: the scope no longer closes it. */
static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* Closes *fd (if open) and marks it closed: a field or variable that is
 * closed twice, or read after, sees -1. */
static inline void close_and_reset(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

#endif
