/*
 * exec.h - exec sessions inside core/vm (docs/exec.md): one command run in a
 * guest by its agent over one vsock connection. exec.c keeps the sessions and
 * their buffers, exec_conn.c speaks to the agent, exec_ctl.c reads ctl lines.
 */
#ifndef SVM_EXEC_H
#define SVM_EXEC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agentproto.h"
#include "ring.h"
#include "smartvm.h"

#define EXEC_BUF_CAP (2 * SVM_AGENT_MAX_PAYLOAD) /* unread bytes kept per stream */
#define EXEC_MAX_PER_VM 1024
#define EXEC_WAIT_MS 10000  /* how long a start waits for the agent (ctl: timeout) */
#define EXEC_ERRORS_KEPT 8192

enum exec_phase { EXEC_NEW, EXEC_STARTING, EXEC_RUNNING, EXEC_ENDED };

/* One output stream: unread bytes [base, total) in buf (a ring of EXEC_BUF_CAP). */
struct exec_out {
	char *buf;
	uint64_t base, total;
	bool eof;
};

struct svm_exec {
	atomic_int refs;
	svm_vm *vm;           /* our reference */
	char name[16];
	struct svm_exec *next; /* the registry (exec.c) */
	bool listed;

	pthread_mutex_t mu;   /* everything below */
	pthread_cond_t cv;    /* room in a stream, a phase change */
	enum exec_phase phase;
	char status[32];      /* "new", "running", "exit N", "signal N", "lost" */
	unsigned opens;       /* the front end's opens (svm_exec_hold) */
	int fd;               /* the agent connection, -1 */
	bool stdin_closed;
	uint32_t pid;         /* the command's pid in the guest */
	struct exec_out out[2];
	/* what the next run takes (ctl: env, cwd, user, timeout) */
	char **env;
	size_t envc;
	char *cwd;
	bool has_uid, has_gid;
	uint32_t uid, gid;
	int wait_ms;

	pthread_mutex_t wmu;  /* one writer of frames at a time */
	svm_ring errors;      /* the session's error file */
};

/* exec.c */
void exec_notify(svm_exec *x);
/* The reader's end: the command ended (status) or the connection did. */
void exec_ended(svm_exec *x, const char *status);
/* Bytes of a stream from the agent: waits while the stream is full and read by
 * someone; false when the session is being ended (stop reading). */
bool exec_put_output(svm_exec *x, int which, const uint8_t *p, size_t n);
void exec_note(svm_exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* exec_conn.c: connects through the VM's vsock socket to the agent and starts
 * argv; on success x->fd is the connection, x->pid set, and a reader thread
 * runs until the connection ends. 0, or -1 with err. */
int exec_conn_start(svm_exec *x, const char *uds, char **argv, size_t argc, bool shell,
                    svm_error *err);
/* One frame to the agent (stdin bytes, an empty STDIN to close, a SIGNAL). */
int exec_conn_send(svm_exec *x, uint16_t type, const void *p, size_t n, svm_error *err);
/* A signal for the session's command, on a connection of its own (KILL): it
 * never waits behind stdin bytes the command has not read. 0, or -1 with err. */
int exec_conn_kill(svm_exec *x, const char *uds, int sig, svm_error *err);
/* Stdin bytes in frames sent only while the connection has room, so a wait for
 * room is never inside a frame and stop(ud) can end it: the bytes sent, or -1
 * with err (INTERRUPTED when stopped before any). */
ssize_t exec_conn_send_stdin(svm_exec *x, const uint8_t *p, size_t n, bool (*stop)(void *),
                             void *ud, svm_error *err);

/* exec_ctl.c: splits a command line into words (blanks; '...' quotes, '' inside
 * for one quote, as rc(1) does). A NULL-terminated vector (svm_strv_free), or
 * NULL with err. */
char **exec_words(const char *line, size_t *count, svm_error *err);

#endif
