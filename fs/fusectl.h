/*
 * fusectl.h - the end of this mount's FUSE connection when a request is stuck
 * in the kernel (fusectl.c).
 */
#ifndef SMARTVMFS_FUSECTL_H
#define SMARTVMFS_FUSECTL_H

#include <stdbool.h>

/* Right after the mount: which connection is ours. */
void fs_fusectl_remember(const char *mountpoint);
/* The notifier is stuck at the end: the connection is aborted (in_fuse: it waits
 * in the kernel's notification code, so the number is still ours). */
void fs_fusectl_end(bool in_fuse);

#endif
