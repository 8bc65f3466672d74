/* spawn.c - starting and reaping child processes (see svmspawn.h); svm_run, which
 * runs one to its end and collects its output, is in spawn_run.c. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "svmspawn.h"

extern char **environ;

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The pidfd of a child just started (pidfd NULL: none wanted). Race-free:
 * nobody else reaps our children, so the pid cannot be reused yet. A child
 * that cannot have one is ended: the caller has no way to wait for it. */
static int open_pidfd(pid_t pid, int *pidfd, svm_error *err)
{
	if (!pidfd)
		return 0;
	*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (*pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		svm_error_set(err, svm_start_code(e), "pidfd_open: %s", strerror(e));
		errno = e;
		return -1;
	}
	fcntl(*pidfd, F_SETFD, FD_CLOEXEC);
	return 0;
}

svm_code svm_start_code(int e)
{
	switch (e) {
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EAGAIN:
	case ENOSPC:
	case EDQUOT:
		return SVM_NO_SPACE;
	default:
		return SVM_START_FAILED;
	}
}

int svm_spawn(char *const argv[], const int fds[3], pid_t *pid, int *pidfd, svm_error *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(&fa, fds[i], i);
	/* every other fd stays with the daemon: the FUSE device, other VMs' pipes */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	int rc = posix_spawn(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		svm_error_set(err, rc == ENOENT ? SVM_BINARY_NOT_FOUND : svm_start_code(rc),
			      "cannot start %s: %s", argv[0], strerror(rc));
		errno = rc;
		return -1;
	}
	return open_pidfd(*pid, pidfd, err);
}

/* ------------------------------------------------------------ with a bind mount */

/* Mount points of FUSE filesystems, unescaped ("\040" is a space). The VMM's
 * namespace starts as a copy of ours, with our own FUSE mount in it: a copy
 * that would keep the filesystem alive after the daemon's unmount (the daemon
 * would never see it end), so the child detaches them. NULL-terminated. */
static char **fuse_mounts(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t n = 0, vcap = 1;
	char **v = calloc(vcap, sizeof *v);
	char *line = NULL;
	size_t cap = 0;
	while (f && v && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPER */
		char *sep = strstr(line, " - "), *save = NULL, *mp = NULL;
		/* "fuse", "fuse.NAME", "fuseblk": not "fusectl", the kernel's control
		 * files, which no daemon serves (each detach is an RCU grace period
		 * the spawn waits for, under the kernel's global namespace lock) */
		if (!sep || strncmp(sep + 3, "fuse", 4) != 0 || (sep[7] != ' ' && sep[7] != '.' && strncmp(sep + 7, "blk ", 4) != 0))
			continue;
		char *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok || !(mp = strdup(tok)))
			continue;
		char *o = mp;
		for (const char *c = tok; *c; c++) {
			if (c[0] == '\\' && c[1] >= '0' && c[1] <= '3' && c[2] && c[3]) {
				*o++ = (char)(((c[1] - '0') << 6) | ((c[2] - '0') << 3) | (c[3] - '0'));
				c += 3;
			} else {
				*o++ = *c;
			}
		}
		*o = '\0';
		if (svm_grow(&v, &vcap, n + 2, sizeof *v) < 0) {
			free(mp);
			break;
		}
		v[n++] = mp;
		v[n] = NULL;
	}
	free(line);
	if (f)
		fclose(f);
	return v;
}

struct ns_child {
	char *const *argv;
	const int *fds;
	const char *src, *dst;
	char **detach;
	int err;            /* set by the child on failure: it shares our memory */
	const char *step;
};

/* Runs in the child, in its new mount namespace, on our memory (CLONE_VM) until
 * execve: system calls only, no allocation, no locks. */
static int ns_child_main(void *p)
{
	struct ns_child *c = p;
	/* our handlers must never run here: defaults, then the mask the parent set
	 * (all blocked) is lifted only right before execve */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa = {.sa_handler = SIG_DFL};
		sigaction(sig, &sa, NULL); /* SIGKILL, SIGSTOP and glibc's own refuse: fine */
	}
	setpgid(0, 0);
	for (int i = 0; i < 3; i++)
		if (dup2(c->fds[i], i) < 0) {
			c->step = "dup2";
			goto fail;
		}
	close_range(3, ~0U, 0);
	/* private, so neither the bind below nor anything later reaches the host */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		c->step = "making / private";
		goto fail;
	}
	for (char **d = c->detach; d && *d; d++)
		umount2(*d, MNT_DETACH);
	if (mount(c->src, c->dst, NULL, MS_BIND, NULL) < 0) {
		c->step = "bind mount";
		goto fail;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(c->argv[0], c->argv, environ);
	c->step = "execve";
fail:
	c->err = errno;
	_exit(127);
}

int svm_spawn_bind(char *const argv[], const int fds[3], const char *src, const char *dst,
		   pid_t *pid, int *pidfd, svm_error *err)
{
	size_t stack_size = 256 * 1024;
	char *stack = malloc(stack_size);
	char **detach = fuse_mounts();
	if (!stack || !detach) {
		free(stack);
		free(detach);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	struct ns_child c = {.argv = argv, .fds = fds, .src = src, .dst = dst, .detach = detach};
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* what posix_spawn does (CLONE_VM|CLONE_VFORK: we wait until it has exec'd or
	 * failed), plus a new mount namespace */
	pid_t p = clone(ns_child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | CLONE_NEWNS | SIGCHLD,
			&c);
	int clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(stack);
	for (char **d = detach; *d; d++)
		free(*d);
	free(detach);
	if (p < 0)
		return svm_error_set(err, clone_errno == EPERM ? SVM_PERMISSION : svm_start_code(clone_errno),
				     "cannot start %s in a private mount namespace%s: %s", argv[0],
				     clone_errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "",
				     strerror(clone_errno));
	if (c.err) {
		waitpid(p, NULL, 0);
		return svm_error_set(err, c.err == ENOENT && !strcmp(c.step, "execve")
						  ? SVM_BINARY_NOT_FOUND
						  : SVM_START_FAILED,
				     "cannot start %s (showing %s at %s): %s: %s", argv[0], src, dst,
				     c.step, strerror(c.err));
	}
	*pid = p;
	return open_pidfd(p, pidfd, err);
}

static int reap(idtype_t type, id_t id, int *wstatus)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(type, id, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return -1;
	if (si.si_code == CLD_EXITED)
		*wstatus = (si.si_status & 0xff) << 8;
	else
		*wstatus = si.si_status & 0x7f; /* killed or dumped: the signal number */
	return 0;
}

int svm_reap(int pidfd, int *wstatus)
{
	return reap((idtype_t)P_PIDFD, (id_t)pidfd, wstatus);
}

int svm_reap_pid(pid_t pid, int *wstatus)
{
	return pid > 0 ? reap(P_PID, (id_t)pid, wstatus) : -1;
}

void svm_status_text(int wstatus, char *buf, size_t len)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, len, "exit %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "signal %d", WTERMSIG(wstatus));
	else
		snprintf(buf, len, "status %d", wstatus);
}
