/*
 * svmspawn.h - every child process of the core (spawn.c, spawn_run.c): started
 * from an argv (never a shell) with no descriptor of the daemon's but the three
 * it is given, in its own process group; reaped; or run to its end with its
 * output collected. Not named spawn.h: the core's include paths come before the
 * system's, and <spawn.h> (posix_spawn) must stay the C library's.
 */
#ifndef SVM_SPAWN_H
#define SVM_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "smartvm.h"

/* Spawns argv[0] with stdin/stdout/stderr = fds[0..2] and no other fd (closefrom),
 * in its own process group (a Ctrl-C meant for the daemon must not reach the
 * children directly: the daemon stops them itself), default signal dispositions
 * and mask. Returns 0 with *pid and *pidfd (pidfd NULL: none is opened), or -1
 * with err (BINARY_NOT_FOUND, START_FAILED, NO_SPACE) and errno. */
int svm_spawn(char *const argv[], const int fds[3], pid_t *pid, int *pidfd, svm_error *err);

/* The same, but in a new, private mount namespace where directory src is
 * bind-mounted at dst (which must exist): the child sees src's files at dst's
 * paths, and nobody else does; the mount ends with the process. FUSE mounts
 * are detached in that namespace. Needs CAP_SYS_ADMIN (SVM_PERMISSION). */
int svm_spawn_bind(char *const argv[], const int fds[3], const char *src, const char *dst,
		   pid_t *pid, int *pidfd, svm_error *err);

/* Reaps the exited child behind pidfd; *wstatus gets the wait status (as from
 * waitpid). Returns 0, or -1 if it has not exited. */
int svm_reap(int pidfd, int *wstatus);
/* The same for a child named by its pid (which it is until reaped). */
int svm_reap_pid(pid_t pid, int *wstatus);

/* "exit N" or "signal N" */
void svm_status_text(int wstatus, char *buf, size_t len);

/* What a failed system call of a start is: a shortage (descriptors, memory,
 * processes, space: the host's limits, not a fault of the request) is
 * SVM_NO_SPACE (ENOSPC), anything else SVM_START_FAILED (EIO). */
svm_code svm_start_code(int e);

/* ------------------------------------------------------------ run to the end */

/* How far svm_run got when it failed. */
typedef enum svm_run_failure {
	SVM_RUN_OK = 0,
	SVM_RUN_PIPE,   /* no pipe or no /dev/null: nothing started */
	SVM_RUN_SPAWN,  /* svm_spawn failed */
	SVM_RUN_OUTPUT, /* stdout could not be copied to out_fd (the child was killed) */
} svm_run_failure;

/* What svm_run does with a child's output (its stdin is /dev/null), and what it
 * found. Set the first group, zero the rest. */
typedef struct svm_run_io {
	/* >= 0: stdout is copied to this fd. Going over out_cap, or a failed
	 * write, kills the child and fails the run (a hostile input must not fill
	 * a disk through the child). */
	int out_fd;
	/* stdout into out instead (NUL-terminated): at most out_cap bytes, reading
	 * stops there. Neither: stdout is /dev/null. */
	bool capture;
	uint64_t out_cap; /* 0: no limit */
	bool merge_err;   /* stderr goes where stdout goes */
	bool keep_err;    /* the last bytes of stderr into err_tail (else /dev/null) */
	/* -1: wait for the end of the output and of the child, however long.
	 * Else a bounded run: each wait for output lasts at most timeout_ms, then
	 * the child is killed and its end awaited at most as long again. */
	int timeout_ms;

	char *out;          /* capture: malloc'd, never NULL after a run */
	size_t out_len;
	char err_tail[512]; /* keep_err: the end of stderr */
	int wstatus;        /* how the child ended (waitpid's status) */
	svm_run_failure failed;
} svm_run_io;

/* Runs argv (svm_spawn) and collects its output as io says. 0 when it ran to
 * its end, whatever its exit status (io->wstatus); -1 with err, errno and
 * io->failed when it could not start or its output could not be copied. */
int svm_run(char *const argv[], svm_run_io *io, svm_error *err);

/* The last line of text (trailing newlines removed in place), for a message. */
const char *svm_last_line(char *text);

#endif
