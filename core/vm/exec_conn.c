/*
 * exec_conn.c - a session's connection to the guest agent: through the VM's
 * vsock device (Firecracker's hybrid vsock: "CONNECT <port>\n", "OK <port>\n"),
 * the SPAWN and its answer, then a reader thread that takes the agent's frames
 * until the connection ends. Every byte from the agent is untrusted: it goes
 * through svm_agent_parse, and a frame refused there ends the connection.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "internal.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is readable or deadline; 1 ready, 0 timed out. */
static int wait_in(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1; /* let the read say what is wrong */
	}
}

/* One try: the connection past "OK", or -1 (errno: ECONNRESET when it ended
 * without an answer, which is Firecracker's way to say nobody listens). */
static int try_connect(const char *uds, int64_t deadline)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(uds) >= sizeof a.sun_path)
		return errno = ENAMETOOLONG, -1;
	memcpy(a.sun_path, uds, strlen(uds) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		goto fail;
	char cmd[32];
	int n = snprintf(cmd, sizeof cmd, "CONNECT %u\n", SVM_AGENT_PORT);
	if (send(fd, cmd, (size_t)n, MSG_NOSIGNAL) != n)
		goto fail;
	/* "OK <port>\n": looked at in place, then taken up to its newline only,
	 * since what follows is the agent's */
	char line[32];
	size_t len = 0;
	for (;;) {
		if (!wait_in(fd, deadline)) {
			errno = ETIMEDOUT;
			goto fail;
		}
		ssize_t r = recv(fd, line, sizeof line - 1, MSG_PEEK);
		if (r == 0) {
			errno = ECONNRESET;
			goto fail;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		char *nl = memchr(line, '\n', (size_t)r);
		if (!nl && r == (ssize_t)sizeof line - 1) {
			errno = EPROTO;
			goto fail;
		}
		if (!nl)
			continue; /* the rest of the line is on its way */
		len = (size_t)(nl - line) + 1;
		if (recv(fd, line, len, 0) != (ssize_t)len)
			goto fail;
		line[len - 1] = '\0';
		break;
	}
	if (strncmp(line, "OK ", 3)) {
		errno = EPROTO;
		goto fail;
	}
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int exec_conn_send(svm_exec *x, uint16_t type, const void *p, size_t n, svm_error *err)
{
	static const size_t cap = SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD;
	uint8_t *f = malloc(cap);
	if (!f)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	size_t len = svm_agent_frame(f, cap, type, p, n);
	/* the fd is taken under wmu: the reader closes it under wmu too, after it
	 * said -1, so no send ever reaches a descriptor number used again */
	pthread_mutex_lock(&x->wmu);
	pthread_mutex_lock(&x->mu);
	int fd = x->fd;
	pthread_mutex_unlock(&x->mu);
	int rc = fd >= 0 && len ? send_all(fd, f, len) : -1;
	pthread_mutex_unlock(&x->wmu);
	free(f);
	if (rc != 0)
		return svm_error_set(err, SVM_INVALID_STATE, "the command's connection has ended");
	return 0;
}

ssize_t exec_conn_send_stdin(svm_exec *x, const uint8_t *p, size_t n, bool (*stop)(void *),
                             void *ud, svm_error *err)
{
	enum { CHUNK = 16384 }; /* well under what a writable Unix socket takes at once */
	uint8_t *f = malloc(SVM_AGENT_HDR + CHUNK);
	if (!f)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	size_t done = 0;
	pthread_mutex_lock(&x->wmu);
	while (done < n) {
		pthread_mutex_lock(&x->mu);
		int fd = x->fd;
		pthread_mutex_unlock(&x->mu);
		if (fd < 0) {
			svm_error_set(err, SVM_INVALID_STATE, "the command's connection has ended");
			break;
		}
		struct pollfd pw = {fd, POLLOUT, 0};
		int r = poll(&pw, 1, 200);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			if (stop && stop(ud)) {
				svm_error_set(err, SVM_INTERRUPTED, "stdin: interrupted while the command "
				              "did not read");
				break;
			}
			continue;
		}
		size_t k = n - done < CHUNK ? n - done : CHUNK;
		size_t len = svm_agent_frame(f, SVM_AGENT_HDR + CHUNK, SVM_AG_STDIN, p + done, k);
		ssize_t w = send(fd, f, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* a frame begun is finished, whatever it waits for */
		if (w < 0 || (w < (ssize_t)len && send_all(fd, f + w, len - (size_t)w) != 0)) {
			svm_error_set(err, SVM_INVALID_STATE, "the command's connection has ended");
			break;
		}
		done += k;
	}
	pthread_mutex_unlock(&x->wmu);
	free(f);
	return done > 0 || n == 0 ? (ssize_t)done : -1;
}

/* The agent's frames until the connection ends. Holds a reference. */
static void *reader(void *arg)
{
	svm_exec *x = arg;
	static const size_t cap = SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD;
	uint8_t *buf = malloc(cap);
	size_t have = 0;
	char status[32] = "";
	bool stop = !buf;
	while (!stop) {
		ssize_t r = recv(x->fd, buf + have, cap - have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		for (;;) {
			struct svm_agent_frame f;
			size_t used;
			const char *why = NULL;
			int pr = svm_agent_parse(buf, have, true, &f, &used, &why);
			if (pr < 0) {
				exec_note(x, "agent: a bad frame (%s): connection ended", why);
				stop = true;
				break;
			}
			if (pr == 0)
				break;
			if (f.type == SVM_AG_STDOUT || f.type == SVM_AG_STDERR) {
				if (!exec_put_output(x, f.type == SVM_AG_STDERR, f.payload, f.len))
					stop = true;
			} else if (f.type == SVM_AG_EXIT) {
				uint32_t how = svm_agent_u32(f.payload), code = svm_agent_u32(f.payload + 4);
				snprintf(status, sizeof status, "%s %u", how ? "signal" : "exit", code);
			} else if (f.type == SVM_AG_ERROR) {
				int e;
				char msg[SVM_AGENT_MAX_MESSAGE + 1];
				svm_agent_error_decode(&f, &e, msg, sizeof msg);
				exec_note(x, "agent: %s", msg);
			} else {
				exec_note(x, "agent: an unexpected %s frame: connection ended",
				          svm_agent_type_name(f.type));
				stop = true;
			}
			memmove(buf, buf + used, have - used);
			have -= used;
			if (stop || status[0])
				break;
		}
		if (status[0])
			break;
	}
	free(buf);
	pthread_mutex_lock(&x->mu);
	int fd = x->fd;
	x->fd = -1;
	pthread_mutex_unlock(&x->mu);
	pthread_mutex_lock(&x->wmu); /* no writer is between its fd and its send */
	close(fd);
	pthread_mutex_unlock(&x->wmu);
	exec_ended(x, status[0] ? status : NULL);
	svm_exec_unref(x);
	return NULL;
}

#define SPAWN_BUF (2 * SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD)

/* The SPAWN for argv and the session's env, cwd and user (malloc'd frame). */
static uint8_t *spawn_frame(svm_exec *x, char **argv, size_t argc, bool shell, size_t *len,
                            svm_error *err)
{
	static struct svm_agent_spawn sp_zero;
	struct svm_agent_spawn *sp = malloc(sizeof *sp);
	uint8_t *f = malloc(SPAWN_BUF); /* room for an empty STDIN after it */
	if (!sp || !f) {
		free(sp);
		free(f);
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	*sp = sp_zero;
	pthread_mutex_lock(&x->mu);
	sp->flags = (x->has_uid ? SVM_AG_SPAWN_UID : 0) | (x->has_gid ? SVM_AG_SPAWN_GID : 0) |
	            (shell ? SVM_AG_SPAWN_SHELL : 0);
	sp->uid = x->uid;
	sp->gid = x->gid;
	sp->cwd = x->cwd ? x->cwd : "";
	sp->argc = (uint32_t)argc;
	sp->envc = (uint32_t)x->envc;
	for (size_t i = 0; i < argc && i < SVM_AGENT_MAX_ARGS; i++)
		sp->argv[i] = argv[i];
	for (size_t i = 0; i < x->envc && i < SVM_AGENT_MAX_ARGS; i++)
		sp->env[i] = x->env[i];
	*len = argc <= SVM_AGENT_MAX_ARGS ? svm_agent_spawn_encode(f, SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD, sp) : 0;
	pthread_mutex_unlock(&x->mu);
	free(sp);
	if (!*len) {
		free(f);
		svm_error_set(err, SVM_INVALID_ARGUMENT, "the command (%zu arguments, its environment "
		              "and directory) does not fit one frame of %d bytes", argc,
		              SVM_AGENT_MAX_PAYLOAD);
		return NULL;
	}
	return f;
}

/* Reads the answer to a SPAWN: STARTED, or ERROR (err), or the end. */
static int spawn_answer(svm_exec *x, int fd, int64_t deadline, svm_error *err)
{
	uint8_t buf[SVM_AGENT_HDR + 4 + SVM_AGENT_MAX_MESSAGE];
	size_t have = 0;
	for (;;) {
		struct svm_agent_frame f;
		size_t used;
		const char *why = NULL;
		int pr = svm_agent_parse(buf, have, true, &f, &used, &why);
		if (pr < 0)
			return svm_error_set(err, SVM_API_ERROR, "the agent sent a bad frame: %s", why);
		if (pr > 0 && f.type == SVM_AG_STARTED) {
			x->pid = svm_agent_u32(f.payload);
			if (used < have) /* output already: the reader takes it from the socket only */
				return svm_error_set(err, SVM_API_ERROR, "the agent sent frames before STARTED");
			return 0;
		}
		if (pr > 0 && f.type == SVM_AG_ERROR) {
			int e;
			char msg[SVM_AGENT_MAX_MESSAGE + 1];
			svm_agent_error_decode(&f, &e, msg, sizeof msg);
			return svm_error_set(err, e == ENOENT || e == EACCES || e == ENOTDIR ?
			                     SVM_NOT_FOUND : SVM_INVALID_ARGUMENT, "the agent: %s", msg);
		}
		if (pr > 0)
			return svm_error_set(err, SVM_API_ERROR, "the agent answered a SPAWN with %s",
			                     svm_agent_type_name(f.type));
		if (have == sizeof buf)
			return svm_error_set(err, SVM_API_ERROR, "the agent's answer is too long");
		if (!wait_in(fd, deadline))
			return svm_error_set(err, SVM_SOCKET_TIMEOUT, "the agent did not answer the "
			                     "command in time");
		/* only the first frame: STARTED's 12 bytes, or an ERROR's header then payload */
		size_t want = have < SVM_AGENT_HDR ? SVM_AGENT_HDR - have : 0;
		if (!want)
			want = SVM_AGENT_HDR + svm_agent_u32(buf + 4) - have;
		if (want > sizeof buf - have)
			want = sizeof buf - have;
		ssize_t r = recv(fd, buf + have, want, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return svm_error_set(err, SVM_API_ERROR, "the agent ended the connection "
			                     "without starting the command");
		have += (size_t)r;
	}
}

int exec_conn_kill(svm_exec *x, const char *uds, int sig, svm_error *err)
{
	pthread_mutex_lock(&x->mu);
	uint32_t pid = x->pid;
	int64_t deadline = now_ms() + x->wait_ms;
	pthread_mutex_unlock(&x->mu);
	int fd = try_connect(uds, deadline);
	if (fd < 0)
		return svm_error_set(err, SVM_SOCKET_TIMEOUT, "signal: the agent does not answer "
		                     "(%s)", strerror(errno));
	uint8_t f[SVM_AGENT_HDR + 4 + SVM_AGENT_MAX_MESSAGE];
	size_t len = svm_agent_frame_u32x2(f, sizeof f, SVM_AG_KILL, pid, (uint32_t)sig);
	int rc = send_all(fd, f, len) == 0 ? 0 : -1;
	size_t have = 0;
	while (rc == 0) {
		struct svm_agent_frame a;
		size_t used;
		const char *why = NULL;
		int pr = svm_agent_parse(f, have, true, &a, &used, &why);
		if (pr < 0) {
			rc = svm_error_set(err, SVM_API_ERROR, "signal: the agent sent a bad frame: %s", why);
		} else if (pr > 0 && a.type == SVM_AG_DONE) {
			break;
		} else if (pr > 0 && a.type == SVM_AG_ERROR) {
			int e;
			char msg[SVM_AGENT_MAX_MESSAGE + 1];
			svm_agent_error_decode(&a, &e, msg, sizeof msg);
			rc = svm_error_set(err, e == ESRCH ? SVM_INVALID_STATE : SVM_API_ERROR,
			                   "signal: the agent: %s", msg);
		} else if (pr > 0) {
			rc = svm_error_set(err, SVM_API_ERROR, "signal: the agent answered %s",
			                   svm_agent_type_name(a.type));
		} else if (have == sizeof f || !wait_in(fd, deadline)) {
			rc = svm_error_set(err, SVM_SOCKET_TIMEOUT, "signal: no answer from the agent");
		} else {
			ssize_t r = recv(fd, f + have, sizeof f - have, 0);
			if (r <= 0 && !(r < 0 && errno == EINTR))
				rc = svm_error_set(err, SVM_API_ERROR, "signal: the agent ended the "
				                   "connection");
			else if (r > 0)
				have += (size_t)r;
		}
	}
	close(fd);
	return rc;
}

int exec_conn_start(svm_exec *x, const char *uds, char **argv, size_t argc, bool shell,
                    svm_error *err)
{
	size_t flen = 0;
	uint8_t *frame = spawn_frame(x, argv, argc, shell, &flen, err);
	if (!frame)
		return -1;
	pthread_mutex_lock(&x->mu);
	int64_t deadline = now_ms() + x->wait_ms;
	pthread_mutex_unlock(&x->mu);
	/* A guest still booting has no listener yet, and Firecracker ends such a
	 * connection at once: try again until the deadline, then say why. */
	int fd = -1, e = 0;
	for (int delay = 5;; delay = delay < 200 ? delay * 2 : 200) {
		fd = try_connect(uds, deadline);
		e = errno;
		if (fd >= 0 || (e != ECONNRESET && e != ECONNREFUSED && e != ENOENT) ||
		    now_ms() + delay >= deadline)
			break;
		nanosleep(&(struct timespec){0, delay * 1000000L}, NULL);
	}
	if (fd < 0) {
		free(frame);
		if (e == ECONNRESET || e == ETIMEDOUT || e == ECONNREFUSED || e == ENOENT)
			return svm_error_set(err, SVM_SOCKET_TIMEOUT, "no agent answers on vsock port %u "
			                     "of the VM (%s after %d ms): is smartvm-agent running in the "
			                     "guest? (config.json \"agent\": true, docs/exec.md)",
			                     SVM_AGENT_PORT, e == ETIMEDOUT ? "no answer" :
			                     e == ECONNRESET ? "nobody listens" : "no vsock socket",
			                     x->wait_ms);
		return svm_error_set(err, SVM_SOCKET_REQUEST_FAILED, "vsock %s: %s", uds, strerror(e));
	}
	/* eof before run: the command starts with its stdin closed, said in the
	 * same send as the SPAWN */
	pthread_mutex_lock(&x->mu);
	if (x->stdin_closed)
		flen += svm_agent_frame(frame + flen, SPAWN_BUF - flen, SVM_AG_STDIN, NULL, 0);
	pthread_mutex_unlock(&x->mu);
	int rc = send_all(fd, frame, flen) == 0 ? 0 : -1;
	free(frame);
	if (rc != 0)
		svm_error_set(err, SVM_API_ERROR, "the agent ended the connection: %s", strerror(errno));
	else
		rc = spawn_answer(x, fd, deadline, err);
	if (rc != 0) {
		close(fd);
		return -1;
	}
	pthread_mutex_lock(&x->mu);
	x->fd = fd;
	pthread_mutex_unlock(&x->mu);
	atomic_fetch_add(&x->refs, 1); /* the reader's */
	pthread_t th;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024); /* its buffer is on the heap */
	if (pthread_create(&th, &a, reader, x) != 0) {
		pthread_attr_destroy(&a);
		pthread_mutex_lock(&x->mu);
		x->fd = -1;
		pthread_mutex_unlock(&x->mu);
		close(fd);
		svm_exec_unref(x);
		return svm_error_set(err, SVM_NO_SPACE, "no thread for the command's output");
	}
	pthread_attr_destroy(&a);
	return 0;
}
