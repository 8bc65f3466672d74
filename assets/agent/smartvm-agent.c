/*
 * smartvm-agent - runs commands and moves files for the host, inside a guest.
 *
 * It listens on vsock port SVM_AGENT_PORT (core/base/agentproto.h) and serves
 * each connection in a process of its own, so one command's trouble never
 * touches another's. A connection's first frame says what it is for:
 *   SPAWN  run a command: STARTED, then its STDOUT/STDERR as they come, then
 *          EXIT once it ended and both streams were read to their end; the host
 *          sends STDIN (empty: close) and SIGNAL (to the command's process group)
 *   PUT    write a file from DATA frames (an empty one ends it), answer DONE
 *   GET    answer the file as DATA frames, an empty one ending it
 *   KILL   signal the process group of a command another connection runs
 *          (a signal never waits behind that connection's stdin), answer DONE
 * Any failure is one ERROR frame, then the connection ends. A connection that
 * ends ends its command too (SIGKILL to its group): nothing outlives the host's
 * interest in it.
 *
 * Back-pressure both ways: output is read from the command only while the
 * frames already made fit the outgoing buffer, and frames from the host are read
 * only while the command's stdin has taken what came before. So a host that
 * stops reading stops the command at its next write, never a growing buffer.
 *
 *   smartvm-agent [--port N]  listen on AF_VSOCK (the guest's agent)
 *   smartvm-agent --fd N      serve the one connection already open on fd N
 *                             (the emulator runs the agent this way on the host)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agentproto.h"

#define OUT_CAP (4 * (SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD))
#define IN_CAP (SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD)
#define CHUNK 32768

static int conn = -1;
static uint8_t outb[OUT_CAP];
static size_t outlen;
static uint8_t inb[IN_CAP];
static size_t inlen;

/* Blocking write of all the pending frames (used before the command runs and at the end). */
static int flush_all(void)
{
	size_t at = 0;
	while (at < outlen) {
		ssize_t n = write(conn, outb + at, outlen - at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {conn, POLLOUT, 0};
			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0)
			return -1;
		at += (size_t)n;
	}
	outlen = 0;
	return 0;
}

static void queue(size_t n)
{
	outlen += n;
}

static void fail(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(int errnum, const char *fmt, ...)
{
	char msg[SVM_AGENT_MAX_MESSAGE + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	flush_all();
	queue(svm_agent_error_encode(outb + outlen, sizeof outb - outlen, errnum, msg));
	flush_all();
	_exit(1);
}

/* Reads until one whole frame is in inb (blocking). */
static void read_frame(struct svm_agent_frame *f, size_t *used)
{
	for (;;) {
		const char *why = NULL;
		int r = svm_agent_parse(inb, inlen, false, f, used, &why);
		if (r < 0)
			fail(EPROTO, "bad frame: %s", why);
		if (r > 0)
			return;
		ssize_t n = read(conn, inb + inlen, sizeof inb - inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		inlen += (size_t)n;
	}
}

static void consume(size_t used)
{
	memmove(inb, inb + used, inlen - used);
	inlen -= used;
}

/* ------------------------------------------------------------ files */

static void do_put(const struct svm_agent_frame *f, size_t used)
{
	uint32_t mode;
	const char *path, *why;
	svm_agent_path_decode(f, &mode, &path, &why);
	char p[4096];
	snprintf(p, sizeof p, "%s", path);
	consume(used);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		fail(errno, "put %s: %s", p, strerror(errno));
	for (;;) {
		struct svm_agent_frame d;
		read_frame(&d, &used);
		if (d.type != SVM_AG_DATA)
			fail(EPROTO, "put %s: a %s frame among the data", p, svm_agent_type_name(d.type));
		if (d.len == 0)
			break;
		for (size_t at = 0; at < d.len;) {
			ssize_t n = write(fd, d.payload + at, d.len - at);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				fail(errno, "put %s: %s", p, strerror(errno));
			at += (size_t)n;
		}
		consume(used);
	}
	if (close(fd) != 0)
		fail(errno, "put %s: %s", p, strerror(errno));
	queue(svm_agent_frame(outb + outlen, sizeof outb - outlen, SVM_AG_DONE, NULL, 0));
	flush_all();
	_exit(0);
}

static void do_get(const struct svm_agent_frame *f)
{
	uint32_t mode;
	const char *path, *why;
	svm_agent_path_decode(f, &mode, &path, &why);
	char p[4096];
	snprintf(p, sizeof p, "%s", path);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "get %s: %s", p, strerror(errno));
	static uint8_t buf[CHUNK];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail(errno, "get %s: %s", p, strerror(errno));
		queue(svm_agent_frame(outb + outlen, sizeof outb - outlen, SVM_AG_DATA, buf, (size_t)n));
		if (flush_all() != 0)
			_exit(1);
		if (n == 0)
			_exit(0);
	}
}

/* ------------------------------------------------------------ commands */

static char *dupstr(const char *s)
{
	char *d = strdup(s);
	if (!d)
		fail(ENOMEM, "out of memory");
	return d;
}

/* The child's side: its own process group, the streams, the identity, exec.
 * A failure is written (errno) to errfd, which exec closes on success. */
static void child(const struct svm_agent_spawn *sp, char **argv, char **env, int in, int out,
                  int err, int errfd)
{
	setpgid(0, 0);
	/* the command dies with the agent that serves it, whoever ends the agent */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	int e = 0;
	if (sp->cwd[0] && chdir(sp->cwd) != 0)
		e = errno;
	if (!e && (sp->flags & SVM_AG_SPAWN_GID) && (setgroups(0, NULL) != 0 || setgid(sp->gid) != 0))
		e = errno;
	if (!e && (sp->flags & SVM_AG_SPAWN_UID) && setuid(sp->uid) != 0)
		e = errno;
	if (!e && (sp->flags & SVM_AG_SPAWN_SHELL)) {
		char *sh[] = {"/bin/sh", "-c", argv[0], NULL};
		execve(sh[0], sh, env);
		e = errno;
	} else if (!e) {
		execvpe(argv[0], argv, env);
		e = errno;
	}
	ssize_t w = write(errfd, &e, sizeof e);
	(void)w;
	_exit(127);
}

static void do_spawn(const struct svm_agent_frame *f, size_t used)
{
	static struct svm_agent_spawn sp;
	const char *why;
	if (svm_agent_spawn_decode(f, &sp, &why) != 0)
		fail(EPROTO, "bad spawn: %s", why);
	/* copies: the frame's bytes go with the input buffer */
	char **argv = calloc(sp.argc + 1, sizeof *argv);
	char **env = calloc(sp.envc + 2, sizeof *env);
	if (!argv || !env)
		fail(ENOMEM, "out of memory");
	for (uint32_t i = 0; i < sp.argc; i++)
		argv[i] = dupstr(sp.argv[i]);
	bool has_path = false;
	for (uint32_t i = 0; i < sp.envc; i++) {
		env[i] = dupstr(sp.env[i]);
		has_path |= !strncmp(sp.env[i], "PATH=", 5);
	}
	/* a command names its environment whole; a program is still found by name */
	if (!has_path)
		env[sp.envc] = dupstr("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char cwd[4096];
	snprintf(cwd, sizeof cwd, "%s", sp.cwd);
	sp.cwd = cwd;
	consume(used);

	int pin[2], pout[2], perr[2], pexec[2];
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) ||
	    pipe2(pexec, O_CLOEXEC))
		fail(errno, "pipe: %s", strerror(errno));
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fail(errno, "signalfd: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail(errno, "fork: %s", strerror(errno));
	if (pid == 0)
		child(&sp, argv, env, pin[0], pout[1], perr[1], pexec[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	close(pexec[1]);
	int e = 0;
	ssize_t r;
	while ((r = read(pexec[0], &e, sizeof e)) < 0 && errno == EINTR)
		;
	close(pexec[0]);
	if (r == sizeof e) {
		waitpid(pid, NULL, 0);
		fail(e, "%s: %s", argv[0], strerror(e));
	}
	queue(svm_agent_frame_u32(outb + outlen, sizeof outb - outlen, SVM_AG_STARTED, (uint32_t)pid));

	int fin = pin[1], fo = pout[0], fe = perr[0];
	fcntl(fin, F_SETFL, O_NONBLOCK);
	fcntl(conn, F_SETFL, O_NONBLOCK);
	/* stdin bytes the command has not taken yet; while any wait, no frame is read */
	static uint8_t pend[SVM_AGENT_MAX_PAYLOAD];
	size_t plen = 0, pat = 0;
	bool close_in = false, host_gone = false;
	int status = 0;
	bool reaped = false;
	static uint8_t buf[CHUNK];
	for (;;) {
		if (close_in && plen == pat && fin >= 0) {
			close(fin);
			fin = -1;
		}
		if (reaped && fo < 0 && fe < 0) {
			flush_all();
			if (WIFSIGNALED(status))
				queue(svm_agent_frame_u32x2(outb + outlen, sizeof outb - outlen, SVM_AG_EXIT,
				                            SVM_AG_SIGNALED, (uint32_t)WTERMSIG(status)));
			else
				queue(svm_agent_frame_u32x2(outb + outlen, sizeof outb - outlen, SVM_AG_EXIT,
				                            SVM_AG_EXITED, (uint32_t)WEXITSTATUS(status)));
			flush_all();
			_exit(0);
		}
		bool room = sizeof outb - outlen >= SVM_AGENT_HDR + CHUNK;
		struct pollfd p[5] = {
			{conn, (short)((plen == pat && !host_gone ? POLLIN : 0) | (outlen ? POLLOUT : 0)), 0},
			{room ? fo : -1, POLLIN, 0},
			{room ? fe : -1, POLLIN, 0},
			{plen > pat ? fin : -1, POLLOUT, 0},
			{sfd, POLLIN, 0},
		};
		if (poll(p, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail(errno, "poll: %s", strerror(errno));
		}
		if (p[4].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			if (!reaped && waitpid(pid, &status, WNOHANG) == pid)
				reaped = true;
		}
		for (int k = 1; k <= 2; k++) {
			int *fd = k == 1 ? &fo : &fe;
			if (!p[k].revents || *fd < 0 || sizeof outb - outlen < SVM_AGENT_HDR + CHUNK)
				continue;
			ssize_t n = read(*fd, buf, sizeof buf);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			queue(svm_agent_frame(outb + outlen, sizeof outb - outlen,
			                      k == 1 ? SVM_AG_STDOUT : SVM_AG_STDERR, buf, (size_t)n));
		}
		if (p[3].revents) {
			ssize_t n = write(fin, pend + pat, plen - pat);
			if (n > 0)
				pat += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				pat = plen; /* the command closed its stdin: what is left is dropped */
		}
		if (p[0].revents & POLLOUT) {
			ssize_t n = write(conn, outb, outlen);
			if (n > 0) {
				memmove(outb, outb + n, outlen - (size_t)n);
				outlen -= (size_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				host_gone = true;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR) && !host_gone && inlen < sizeof inb) {
			ssize_t n = read(conn, inb + inlen, sizeof inb - inlen);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				host_gone = true;
			else if (n > 0)
				inlen += (size_t)n;
		}
		if (host_gone) {
			/* nobody reads what the command does: it ends with the connection */
			kill(-pid, SIGKILL);
			_exit(0);
		}
		struct svm_agent_frame f2;
		size_t u;
		const char *why2 = NULL;
		while (plen == pat) {
			int pr = svm_agent_parse(inb, inlen, false, &f2, &u, &why2);
			if (pr < 0) {
				kill(-pid, SIGKILL);
				fail(EPROTO, "bad frame: %s", why2);
			}
			if (pr == 0)
				break;
			if (f2.type == SVM_AG_STDIN && f2.len == 0) {
				close_in = true;
			} else if (f2.type == SVM_AG_STDIN) {
				if (fin >= 0 && !close_in) {
					memcpy(pend, f2.payload, f2.len);
					plen = f2.len;
					pat = 0;
				}
			} else if (f2.type == SVM_AG_SIGNAL) {
				kill(-pid, (int)svm_agent_u32(f2.payload));
			} else {
				kill(-pid, SIGKILL);
				fail(EPROTO, "a %s frame while a command runs", svm_agent_type_name(f2.type));
			}
			consume(u);
			if (plen == pat)
				plen = pat = 0;
		}
	}
}

/* ------------------------------------------------------------ serving */

static void serve(int fd)
{
	conn = fd;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	struct svm_agent_frame f;
	size_t used;
	read_frame(&f, &used);
	switch (f.type) {
	case SVM_AG_SPAWN:
		do_spawn(&f, used);
		break;
	case SVM_AG_PUT:
		do_put(&f, used);
		break;
	case SVM_AG_GET:
		do_get(&f);
		break;
	case SVM_AG_KILL: {
		/* a command of another connection: its process group (the pid is its
		 * leader, setpgid in child()) */
		pid_t pid = (pid_t)svm_agent_u32(f.payload);
		int sig = (int)svm_agent_u32(f.payload + 4);
		if (kill(-pid, sig) != 0 && kill(pid, sig) != 0)
			fail(errno, "kill %d: %s", (int)pid, strerror(errno));
		queue(svm_agent_frame(outb + outlen, sizeof outb - outlen, SVM_AG_DONE, NULL, 0));
		flush_all();
		break;
	}
	default:
		fail(EPROTO, "a connection cannot begin with %s", svm_agent_type_name(f.type));
	}
	_exit(0);
}

/* Started from an initrd, the agent may come before the guest's vsock driver
 * (a module its init loads): it tries again, quietly after the first word. */
static int listen_vsock(unsigned port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	for (unsigned delay_ms = 50, said = 0;; delay_ms = delay_ms < 1000 ? delay_ms * 2 : 1000) {
		int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 128) == 0)
			return s;
		if (!said++)
			fprintf(stderr, "smartvm-agent: vsock port %u: %s (trying again)\n", port,
			        strerror(errno));
		if (s >= 0)
			close(s);
		usleep(delay_ms * 1000);
	}
}

int main(int argc, char **argv)
{
	unsigned port = SVM_AGENT_PORT;
	int fd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fd") && i + 1 < argc) {
			fd = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port = (unsigned)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: smartvm-agent [--port N | --fd N]\n");
			return 2;
		}
	}
	if (fd >= 0) {
		serve(fd);
		return 0;
	}
	/* run from memory (the initrd's memfd) its name would be a number */
	prctl(PR_SET_NAME, "smartvm-agent");
	int s = listen_vsock(port);
	if (s < 0)
		return 1;
	/* connections are served by children; their ends need no waiting */
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(s);
			signal(SIGCHLD, SIG_DFL);
			serve(c);
		}
		close(c);
	}
}
