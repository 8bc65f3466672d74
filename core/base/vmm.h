/*
 * vmm.h - the VMM process: spawn from an argv, pidfd, exit status, /proc facts.
 */
#ifndef SVM_VMM_H
#define SVM_VMM_H

#include <stddef.h>
#include <sys/types.h>
#include "smartvm.h"

/* Spawns argv[0] with stdin/stdout/stderr = fds[0..2] and no other fd (closefrom),
 * in its own process group (a Ctrl-C meant for the daemon must not reach the VMMs
 * directly: the daemon stops them itself), default signal dispositions and mask.
 * Returns 0 with *pid and *pidfd (pidfd NULL: none is opened), or -1 with err
 * (BINARY_NOT_FOUND, START_FAILED). */
int vmm_spawn(char *const argv[], const int fds[3], pid_t *pid, int *pidfd, svm_error *err);

/* The same, but in a new, private mount namespace where directory src is
 * bind-mounted at dst (which must exist): the VMM sees src's files at dst's
 * paths, and nobody else does; the mount ends with the process. FUSE mounts
 * are detached in that namespace. Needs CAP_SYS_ADMIN (SVM_PERMISSION). */
int vmm_spawn_bind(char *const argv[], const int fds[3], const char *src, const char *dst,
		   pid_t *pid, int *pidfd, svm_error *err);

/* Reaps the exited child behind pidfd; *wstatus gets the wait status (as from
 * waitpid). Returns 0, or -1 if it has not exited. */
int vmm_reap(int pidfd, int *wstatus);
/* The same for a child named by its pid (which it is until reaped). */
int vmm_reap_pid(pid_t pid, int *wstatus);

/* "exit N" or "signal N" */
void vmm_status_text(int wstatus, char *buf, size_t len);

/* CPU time and RSS of a live process. */
int vmm_proc_stat(pid_t pid, uint64_t *user_ns, uint64_t *sys_ns, uint64_t *rss_bytes);

/* Runs argv, returns its stdout (malloc'd, at most 4 KiB) or NULL. Bounded wait. */
char *vmm_capture(char *const argv[], int timeout_ms);

/* Checks that path is an executable regular file. */
/* What a failed system call of a start is: a shortage (descriptors, memory,
 * processes, space: the host's limits, not a fault of the request) is
 * SVM_NO_SPACE (ENOSPC), anything else SVM_START_FAILED (EIO). */
svm_code vmm_code_of(int e);

int vmm_check_binary(const char *path, svm_error *err);

#endif
