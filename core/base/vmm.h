/*
 * vmm.h - what the core asks of a VMM binary and a VMM process beyond starting
 * it (svmspawn.h): is the binary there, what does it print, what does it cost.
 */
#ifndef SVM_VMM_H
#define SVM_VMM_H

#include <stdint.h>
#include <sys/types.h>

#include "smartvm.h"
#include "svmspawn.h"

/* Checks that path is an executable regular file (BINARY_NOT_FOUND). */
int vmm_check_binary(const char *path, svm_error *err);

/* CPU time and RSS of a live process. */
int vmm_proc_stat(pid_t pid, uint64_t *user_ns, uint64_t *sys_ns, uint64_t *rss_bytes);

/* Runs argv, returns its stdout (malloc'd, at most 4 KiB) or NULL. Bounded wait. */
char *vmm_capture(char *const argv[], int timeout_ms);

#endif
