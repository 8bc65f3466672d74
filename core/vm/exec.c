/*
 * exec.c - exec sessions: the registry, a session's life, its output buffers,
 * status and error file (exec.h; the public side in smartvm.h).
 *
 * Output is back-pressured, never buffered without bound: each stream keeps at
 * most EXEC_BUF_CAP unread bytes, and the reader thread (exec_conn.c) stops
 * reading the connection while a stream is full, so the agent stops reading
 * the command, whose next write then waits. While the front end holds no open
 * of the session nobody can read, and output is dropped instead: a command
 * left running by a closed session runs to its end, then the session goes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "internal.h"

/* Every VM's sessions, in one list: a few per VM, looked up by (VM, name). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static svm_exec *reg_head;
static unsigned long reg_next = 1;

static void (*notify_fn)(svm_exec *x, void *ud);
static void *notify_ud;

void svm_exec_set_notify(void (*fn)(svm_exec *x, void *ud), void *ud)
{
	notify_ud = ud;
	__atomic_store_n(&notify_fn, fn, __ATOMIC_RELEASE);
}

void exec_notify(svm_exec *x)
{
	void (*fn)(svm_exec *, void *) = __atomic_load_n(&notify_fn, __ATOMIC_ACQUIRE);
	if (fn)
		fn(x, notify_ud);
}

static void exec_free(svm_exec *x)
{
	for (size_t i = 0; i < x->envc; i++)
		free(x->env[i]);
	free(x->env);
	free(x->cwd);
	free(x->out[0].buf);
	free(x->out[1].buf);
	ring_destroy(&x->errors);
	pthread_mutex_destroy(&x->mu);
	pthread_mutex_destroy(&x->wmu);
	pthread_cond_destroy(&x->cv);
	svm_vm_unref(x->vm);
	free(x);
}

void svm_exec_unref(svm_exec *x)
{
	if (x && atomic_fetch_sub(&x->refs, 1) == 1)
		exec_free(x);
}

svm_exec *svm_exec_new(svm_vm *vm, svm_error *err)
{
	svm_state st = svm_vm_state(vm);
	if (st != SVM_RUNNING && st != SVM_PAUSED) {
		svm_error_set(err, SVM_INVALID_STATE, "exec: the VM is %s, not running",
		              svm_state_name(st));
		return NULL;
	}
	char *uds = svm_vm_vsock_path(vm);
	free(uds);
	if (!uds) {
		svm_error_set(err, SVM_INVALID_CONFIG, "exec: the VM has no vsock device (config.json "
		              "\"agent\": true, or a \"vsock\" section and an agent in its image)");
		return NULL;
	}
	svm_exec *x = calloc(1, sizeof *x);
	if (!x) {
		svm_error_set(err, SVM_NO_SPACE, "exec: out of memory");
		return NULL;
	}
	atomic_init(&x->refs, 2); /* the registry's and the caller's */
	pthread_mutex_init(&x->mu, NULL);
	pthread_mutex_init(&x->wmu, NULL);
	pthread_cond_init(&x->cv, NULL);
	ring_init(&x->errors, EXEC_ERRORS_KEPT);
	x->fd = -1;
	x->opens = 1;
	x->wait_ms = EXEC_WAIT_MS;
	snprintf(x->status, sizeof x->status, "new");
	svm_vm_ref(vm);
	x->vm = vm;
	pthread_mutex_lock(&reg_mu);
	size_t mine = 0;
	for (svm_exec *y = reg_head; y; y = y->next)
		mine += y->vm == vm;
	if (mine >= EXEC_MAX_PER_VM) {
		pthread_mutex_unlock(&reg_mu);
		exec_free(x);
		svm_error_set(err, SVM_NO_SPACE, "exec: the VM has %d sessions already", EXEC_MAX_PER_VM);
		return NULL;
	}
	snprintf(x->name, sizeof x->name, "%lu", reg_next++);
	x->next = reg_head;
	reg_head = x;
	x->listed = true;
	pthread_mutex_unlock(&reg_mu);
	exec_notify(x);
	return x;
}

svm_exec *svm_exec_get(svm_vm *vm, const char *name)
{
	svm_exec *found = NULL;
	pthread_mutex_lock(&reg_mu);
	for (svm_exec *y = reg_head; y && !found; y = y->next)
		if (y->vm == vm && !strcmp(y->name, name)) {
			atomic_fetch_add(&y->refs, 1);
			found = y;
		}
	pthread_mutex_unlock(&reg_mu);
	return found;
}

char **svm_exec_list(svm_vm *vm, size_t *count)
{
	pthread_mutex_lock(&reg_mu);
	size_t n = 0;
	for (svm_exec *y = reg_head; y; y = y->next)
		n += y->vm == vm;
	char **v = calloc(n + 1, sizeof *v);
	size_t i = 0;
	for (svm_exec *y = reg_head; v && y; y = y->next)
		if (y->vm == vm && !(v[i++] = strdup(y->name))) {
			svm_strv_free(v);
			v = NULL;
		}
	pthread_mutex_unlock(&reg_mu);
	if (count)
		*count = v ? i : 0;
	return v;
}

const char *svm_exec_name(const svm_exec *x)
{
	return x->name;
}

bool svm_exec_listed(svm_exec *x)
{
	pthread_mutex_lock(&reg_mu);
	bool listed = x->listed;
	pthread_mutex_unlock(&reg_mu);
	return listed;
}

svm_vm *svm_exec_vm(svm_exec *x)
{
	return x->vm;
}

/* Unlists a session nobody holds whose command is not running. */
static void maybe_unlist(svm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	bool go = x->opens == 0 && x->phase != EXEC_RUNNING && x->phase != EXEC_STARTING;
	pthread_mutex_unlock(&x->mu);
	if (!go)
		return;
	bool was = false;
	pthread_mutex_lock(&reg_mu);
	for (svm_exec **p = &reg_head; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			was = x->listed;
			x->listed = false;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	if (was) {
		exec_notify(x);
		svm_exec_unref(x); /* the registry's */
	}
}

void svm_exec_hold(svm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	x->opens++;
	pthread_mutex_unlock(&x->mu);
}

void svm_exec_release(svm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	if (x->opens > 0)
		x->opens--;
	pthread_cond_broadcast(&x->cv); /* a reader waiting for room drops instead */
	pthread_mutex_unlock(&x->mu);
	maybe_unlist(x);
}

void exec_ended(svm_exec *x, const char *status)
{
	pthread_mutex_lock(&x->mu);
	x->phase = EXEC_ENDED;
	if (status)
		snprintf(x->status, sizeof x->status, "%s", status);
	else if (!strcmp(x->status, "running"))
		snprintf(x->status, sizeof x->status, "lost");
	x->out[0].eof = x->out[1].eof = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	exec_notify(x);
	maybe_unlist(x);
}

bool exec_put_output(svm_exec *x, int which, const uint8_t *p, size_t n)
{
	struct exec_out *o = &x->out[which];
	pthread_mutex_lock(&x->mu);
	if (!o->buf && !(o->buf = malloc(EXEC_BUF_CAP))) {
		pthread_mutex_unlock(&x->mu);
		return false;
	}
	/* A stopped VM's connections end, but only once this is read on: a
	 * stream nobody reads waits here only while the VM still runs. */
	bool live = true;
	while (x->opens > 0 && live && o->total - o->base + n > EXEC_BUF_CAP) {
		struct timespec ts = svm_time_after(CLOCK_REALTIME, 200 * 1000000ULL);
		pthread_cond_timedwait(&x->cv, &x->mu, &ts);
		svm_state st = svm_vm_state(x->vm);
		live = st == SVM_RUNNING || st == SVM_PAUSED;
	}
	if (x->opens == 0 || !live) {
		o->base = o->total + n; /* nobody can read: dropped, counted */
		o->total += n;
	} else {
		for (size_t i = 0; i < n; i++)
			o->buf[(o->total + i) % EXEC_BUF_CAP] = (char)p[i];
		o->total += n;
	}
	pthread_mutex_unlock(&x->mu);
	exec_notify(x);
	return true;
}

ssize_t svm_exec_read(svm_exec *x, svm_exec_stream which, uint64_t off, char *buf, size_t len)
{
	struct exec_out *o = &x->out[which == SVM_EXEC_STDERR];
	pthread_mutex_lock(&x->mu);
	if (off > o->base) { /* the reader has all before off: room for more */
		o->base = off < o->total ? off : o->total;
		pthread_cond_broadcast(&x->cv);
	}
	uint64_t from = off > o->base ? off : o->base;
	ssize_t n;
	if (from < o->total) {
		size_t k = o->total - from < len ? (size_t)(o->total - from) : len;
		for (size_t i = 0; i < k; i++)
			buf[i] = o->buf[(from + i) % EXEC_BUF_CAP];
		n = (ssize_t)k;
	} else {
		n = o->eof ? 0 : -1;
	}
	pthread_mutex_unlock(&x->mu);
	return n;
}

uint64_t svm_exec_size(svm_exec *x, svm_exec_stream which)
{
	pthread_mutex_lock(&x->mu);
	uint64_t n = x->out[which == SVM_EXEC_STDERR].total;
	pthread_mutex_unlock(&x->mu);
	return n;
}

char *svm_exec_status(svm_exec *x)
{
	char buf[40];
	pthread_mutex_lock(&x->mu);
	snprintf(buf, sizeof buf, "%s\n", x->status);
	pthread_mutex_unlock(&x->mu);
	return strdup(buf);
}

bool svm_exec_ended(svm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	bool e = x->phase == EXEC_ENDED;
	pthread_mutex_unlock(&x->mu);
	return e;
}

ssize_t svm_exec_error_read(svm_exec *x, uint64_t off, char *buf, size_t len)
{
	return ring_read(&x->errors, off, buf, len);
}

uint64_t svm_exec_error_size(svm_exec *x)
{
	return ring_total(&x->errors);
}

void svm_exec_note_error(svm_exec *x, const char *command, const svm_error *err)
{
	ring_printf(&x->errors, "%s: %s (%s)", command, err->message, svm_code_name(err->code));
	exec_notify(x);
}

void exec_note(svm_exec *x, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ring_printf(&x->errors, "%s", msg);
	exec_notify(x);
}
