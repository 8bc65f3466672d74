/*
 * fdroom.h - what the process can still afford, asked before a start builds
 * anything: a start that would run out of descriptors halfway is refused up
 * front, naming the limit and the fix, rather than failing at a random step.
 */
#ifndef SVM_FDROOM_H
#define SVM_FDROOM_H

#include "internal.h"

/* Descriptors a running VM keeps and what a start takes on top while it runs
 * (inotify, a socket probe, drive copies): smartvm.h, for the front end too. */
#define LIMITS_FDS_PER_VM SVM_FDS_PER_VM
#define LIMITS_FDS_FOR_START SVM_FDS_FOR_START

/* 0 when LIMITS_FDS_FOR_START descriptors can be opened now; else -1 and err
 * (NO_SPACE: ENOSPC) says so, with RLIMIT_NOFILE and how to raise it. */
int limits_fds_for_start(svm_error *err);

#endif
