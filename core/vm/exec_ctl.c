/*
 * exec_ctl.c - a session's ctl lines and its stdin. Lines before a run set what
 * it takes (env, cwd, user, timeout); run and sh start the command; signal and
 * eof reach it while it runs. Every refusal says which line and why.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "internal.h"

char **exec_words(const char *line, size_t *count, svm_error *err)
{
	size_t cap = 8, n = 0;
	char **v = calloc(cap, sizeof *v);
	char *w = malloc(strlen(line) + 1);
	const char *p = line;
	if (!v || !w)
		goto nomem;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		size_t k = 0;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p != '\'') {
				w[k++] = *p++;
				continue;
			}
			for (p++;; p++) { /* quoted: '' is one quote */
				if (!*p) {
					svm_strv_free(v);
					free(w);
					svm_error_set(err, SVM_INVALID_ARGUMENT, "a quote is not closed");
					return NULL;
				}
				if (*p == '\'' && p[1] == '\'')
					w[k++] = *p++;
				else if (*p == '\'')
					break;
				else
					w[k++] = *p;
			}
			p++;
		}
		w[k] = '\0';
		if (n + 2 > cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof *v);
			if (!nv)
				goto nomem;
			v = nv;
		}
		if (!(v[n++] = strdup(w)))
			goto nomem;
		v[n] = NULL;
	}
	free(w);
	*count = n;
	return v;
nomem:
	svm_strv_free(v);
	free(w);
	svm_error_set(err, SVM_NO_SPACE, "out of memory");
	return NULL;
}

static const struct {
	const char *name;
	int sig;
} signames[] = {{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
                {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}};

static int parse_signal(const char *s)
{
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof signames / sizeof *signames; i++)
		if (!strcasecmp(s, signames[i].name))
			return signames[i].sig;
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end && v >= 1 && v <= 64 ? (int)v : -1;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX || !isdigit((unsigned char)*s))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Only before a run: what it takes. */
static int not_yet_started(svm_exec *x, const char *verb, svm_error *err)
{
	if (x->phase == EXEC_NEW)
		return 0;
	return svm_error_set(err, SVM_INVALID_STATE, "%s: the session's command was started "
	                     "already (a session runs one command: open exec/clone for another)",
	                     verb);
}

static int set_env(svm_exec *x, const char *arg, svm_error *err)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "env takes NAME=VALUE, not \"%s\"", arg);
	if (x->envc >= SVM_AGENT_MAX_ARGS)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "more than %d environment entries",
		                     SVM_AGENT_MAX_ARGS);
	char **nv = realloc(x->env, (x->envc + 1) * sizeof *nv);
	if (!nv || !(nv[x->envc] = strdup(arg))) {
		if (nv)
			x->env = nv;
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	x->env = nv;
	x->envc++;
	return 0;
}

static int set_user(svm_exec *x, const char *arg, svm_error *err)
{
	char u[32];
	snprintf(u, sizeof u, "%s", arg);
	char *colon = strchr(u, ':');
	if (colon)
		*colon = '\0';
	uint32_t uid, gid = 0;
	if (strlen(arg) >= sizeof u || parse_u32(u, &uid) != 0 || (colon && parse_u32(colon + 1, &gid) != 0))
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "user takes UID or UID:GID (numbers), "
		                     "not \"%s\"", arg);
	x->has_uid = true;
	x->uid = uid;
	x->has_gid = colon != NULL;
	x->gid = gid;
	return 0;
}

/* Starts argv: the session is STARTING (no other run) until the agent answers. */
static int run(svm_exec *x, char **argv, size_t argc, bool shell, svm_error *err)
{
	if (argc == 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "run takes a command: run PROGRAM [ARG...]");
	pthread_mutex_lock(&x->mu);
	if (not_yet_started(x, "run", err) != 0) {
		pthread_mutex_unlock(&x->mu);
		return -1;
	}
	x->phase = EXEC_STARTING;
	pthread_mutex_unlock(&x->mu);
	svm_state st = svm_vm_state(x->vm);
	char *uds = st == SVM_RUNNING ? svm_vm_vsock_path(x->vm) : NULL;
	int rc;
	if (st != SVM_RUNNING)
		rc = svm_error_set(err, SVM_INVALID_STATE, "run: the VM is %s, not running",
		                   svm_state_name(st));
	else if (!uds)
		rc = svm_error_set(err, SVM_INVALID_CONFIG, "run: the VM has no vsock device");
	else
		rc = exec_conn_start(x, uds, argv, argc, shell, err);
	free(uds);
	pthread_mutex_lock(&x->mu);
	if (rc == 0 && x->phase == EXEC_STARTING) {
		x->phase = EXEC_RUNNING;
		snprintf(x->status, sizeof x->status, "running");
	} else if (rc != 0) {
		x->phase = EXEC_NEW; /* nothing runs: the session may try again */
	}
	pthread_mutex_unlock(&x->mu);
	exec_notify(x);
	return rc;
}

int svm_exec_run(svm_exec *x, char *const *argv, size_t argc, svm_error *err)
{
	return run(x, (char **)argv, argc, false, err);
}

int svm_exec_sh(svm_exec *x, const char *line, svm_error *err)
{
	char *argv[] = {(char *)line, NULL};
	return run(x, argv, 1, true, err);
}

static int running_only(svm_exec *x, const char *verb, svm_error *err)
{
	pthread_mutex_lock(&x->mu);
	bool ok = x->phase == EXEC_RUNNING;
	pthread_mutex_unlock(&x->mu);
	if (ok)
		return 0;
	return svm_error_set(err, SVM_INVALID_STATE, "%s: no command runs in this session", verb);
}

int svm_exec_ctl(svm_exec *x, const char *line, svm_error *err)
{
	size_t n = 0;
	char **w = exec_words(line, &n, err);
	if (!w)
		return -1;
	int rc = 0;
	const char *verb = n ? w[0] : "";
	bool before = !strcmp(verb, "env") || !strcmp(verb, "cwd") || !strcmp(verb, "user") ||
	              !strcmp(verb, "timeout");
	if (before) {
		pthread_mutex_lock(&x->mu);
		if (n != 2)
			rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "%s takes one argument", verb);
		else if (not_yet_started(x, verb, err) != 0)
			rc = -1;
		else if (!strcmp(verb, "env"))
			rc = set_env(x, w[1], err);
		else if (!strcmp(verb, "user"))
			rc = set_user(x, w[1], err);
		else if (!strcmp(verb, "cwd") && w[1][0] != '/')
			rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "cwd takes an absolute path, not "
			                   "\"%s\"", w[1]);
		else if (!strcmp(verb, "cwd")) {
			free(x->cwd);
			rc = (x->cwd = strdup(w[1])) ? 0 : svm_error_set(err, SVM_NO_SPACE, "out of memory");
		} else {
			uint32_t ms;
			if (parse_u32(w[1], &ms) != 0 || ms < 1 || ms > 600000)
				rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "timeout takes milliseconds "
				                   "1..600000, not \"%s\"", w[1]);
			else
				x->wait_ms = (int)ms;
		}
		pthread_mutex_unlock(&x->mu);
	} else if (!strcmp(verb, "run")) {
		rc = run(x, w + 1, n - 1, false, err);
	} else if (!strcmp(verb, "sh")) {
		/* the rest of the line, as written, is the shell's */
		const char *rest = line;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		rest += 2;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		char *argv[] = {(char *)rest, NULL};
		rc = *rest ? run(x, argv, 1, true, err)
		           : svm_error_set(err, SVM_INVALID_ARGUMENT, "sh takes a command line");
	} else if (!strcmp(verb, "signal")) {
		int sig = n == 2 ? parse_signal(w[1]) : -1;
		if (sig < 0)
			rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "signal takes a number 1..64 or a "
			                   "name (TERM, KILL, INT, HUP, ...)");
		else if ((rc = running_only(x, "signal", err)) == 0) {
			char *uds = svm_vm_vsock_path(x->vm);
			rc = uds ? exec_conn_kill(x, uds, sig, err)
			         : svm_error_set(err, SVM_INVALID_STATE, "signal: the VM has no vsock");
			free(uds);
		}
	} else if (!strcmp(verb, "eof") && n == 1) {
		pthread_mutex_lock(&x->mu);
		bool before_run = x->phase == EXEC_NEW;
		if (before_run)
			x->stdin_closed = true; /* the command starts with its stdin closed */
		pthread_mutex_unlock(&x->mu);
		if (!before_run && (rc = running_only(x, "eof", err)) == 0) {
			pthread_mutex_lock(&x->mu);
			bool first = !x->stdin_closed;
			x->stdin_closed = true;
			pthread_mutex_unlock(&x->mu);
			rc = first ? exec_conn_send(x, SVM_AG_STDIN, NULL, 0, err) : 0;
		}
	} else {
		rc = svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
	}
	svm_strv_free(w);
	return rc;
}

ssize_t svm_exec_write_stdin(svm_exec *x, const void *buf, size_t len, bool (*stop)(void *ud),
                             void *ud, svm_error *err)
{
	if (running_only(x, "stdin", err) != 0)
		return -1;
	pthread_mutex_lock(&x->mu);
	bool closed = x->stdin_closed;
	pthread_mutex_unlock(&x->mu);
	if (closed)
		return svm_error_set(err, SVM_INVALID_STATE, "stdin: closed already (eof)");
	return exec_conn_send_stdin(x, buf, len, stop, ud, err);
}
