/*
 * cleanup.h - scoped cleanup (crun's cleanup_free, lxcfs's __do_free): a
 * variable so marked is freed or closed when it goes out of scope, so a
 * function with many ways out needs no ladder of labels. Set it to NULL (-1)
 * to keep what it holds.
 */
#ifndef SMARTVMFS_SERVE_CLEANUP_H
#define SMARTVMFS_SERVE_CLEANUP_H

#include <stdlib.h>
#include <unistd.h>

static inline void fs_freep(void *p)
{
	free(*(void **)p);
}

static inline void fs_closep(const int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define cleanup_free __attribute__((cleanup(fs_freep)))
#define cleanup_close __attribute__((cleanup(fs_closep)))

#endif
