/*
 * dirwatch.h - the daemon's one inotify instance: a thread waits until something
 * is created in a directory (a VMM's API socket in its runtime dir).
 *
 * One instance for the daemon's life, read by the event loop, not one per wait:
 * closing an inotify instance waits for an SRCU grace period (5-15 ms here), and
 * a VMM spawned by another thread meanwhile holds a copy of every descriptor
 * until it execs (posix_spawn copies the table). When the owner closed its
 * instance first, that child paid the grace period before its exec, and the
 * spawning thread with it (CLONE_VFORK): in a burst of starts, many did.
 *
 * A wait lives on its waiter's stack: dirwatch_begin, then dirwatch_sleep until
 * what it waits for is there, then dirwatch_end (always, also after a failed
 * begin).
 */
#ifndef SVM_DIRWATCH_H
#define SVM_DIRWATCH_H

#include <pthread.h>
#include <stdint.h>

#include "loop.h"

typedef struct svm_dirwatch svm_dirwatch;

typedef struct dirwatch_wait {
	int wd;          /* the watch, or -1 (none: dirwatch_sleep only sleeps) */
	uint64_t events; /* creations seen in the directory (under the dirwatch's lock) */
	uint64_t seen;   /* events at the last dirwatch_sleep */
	pthread_cond_t cv;
	struct dirwatch_wait *next;
} dirwatch_wait;

/* NULL when inotify is not available: the waits then only sleep. */
svm_dirwatch *dirwatch_new(svm_loop *l);
/* After loop_free (the loop reads the instance) and after every wait ended. */
void dirwatch_free(svm_dirwatch *d);

/* Watches dir for creations (and renames into it). 0, or -1 (no watch: d is
 * NULL, or inotify refused it, e.g. max_user_watches). */
int dirwatch_begin(svm_dirwatch *d, const char *dir, dirwatch_wait *w);
/* Returns at once when something was created since the last call (or since
 * begin), else after the next creation or timeout_ms. */
void dirwatch_sleep(svm_dirwatch *d, dirwatch_wait *w, int timeout_ms);
void dirwatch_end(svm_dirwatch *d, dirwatch_wait *w);

#endif
