/*
 * vm_verbs.c - the verbs of a VM: the dispatch through the verb table (one
 * handler per verb: vm_launch.c, vm_snapshot.c, vm_live.c, each built of the
 * steps in vm_steps.c), what follows an answered verb, and the async submission.
 *
 * Locking: vm->mu is held only to check and change state; the work (spawn, API
 * calls, waits) runs without it, under vm->busy, so reads of the VM never wait
 * for a verb. kill is the one verb that may run while another is busy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vm_verbs.h"
#include "vm_verbs_int.h"

/* ------------------------------------------------------------ dispatch */

/* One handler per verb of the table (core/base/verbs.c), in its order. */
static verb_fn *const handlers[SVM_VERB_COUNT] = {
	[SVM_V_START] = do_start,
	[SVM_V_PAUSE] = do_pause,
	[SVM_V_RESUME] = do_resume,
	[SVM_V_STOP] = do_stop,
	[SVM_V_KILL] = do_kill,
	[SVM_V_SNAPSHOT] = do_snapshot,
	[SVM_V_RESTORE] = do_restore,
	[SVM_V_BALLOON] = do_balloon,
	[SVM_V_DRIVE] = do_drive,
	[SVM_V_NETIF] = do_netif,
	[SVM_V_METADATA] = do_metadata,
	[SVM_V_FLUSH_METRICS] = do_flush_metrics,
	[SVM_V_HINTING] = do_hinting,
	[SVM_V_HOTPLUG] = do_hotplug,
};

static bool boots(svm_verb verb)
{
	return (unsigned)verb < SVM_VERB_COUNT && (svm_verb_table()[verb].flags & SVM_CF_BOOTS);
}

int vm_run(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	svm_error_clear(err);
	if ((unsigned)req->verb >= SVM_VERB_COUNT || !handlers[req->verb])
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown verb %d", (int)req->verb);
	const svm_verb_info *vi = &svm_verb_table()[req->verb];
	if (req->argc < vi->min_args || req->argc > vi->max_args)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s", vi->usage);
	for (int i = 0; i < req->argc; i++)
		if (!req->argv[i] || !*req->argv[i])
			return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s", vi->usage);
	return handlers[req->verb](vm, req, cancel, err);
}

/* After an op has been answered: what may wait costs nobody there. */
static void after_op(svm_vm *vm, svm_verb verb, int rc, const svm_error *err)
{
	if (boots(verb)) {
		/* the daemon's log line (a write, an event) would delay the answer */
		pthread_mutex_lock(&vm->mu);
		/* as the start ended, not as it is now: the VMM may be gone by now */
		svm_state st = vm->started_as;
		pid_t pid = vm->started_pid;
		double run_ms = (double)(vm->running_ns - vm->spawn_ns) / 1e6;
		double ready_ms = (double)(vm->ready_ns - vm->spawn_ns) / 1e6;
		pthread_mutex_unlock(&vm->mu);
		if (rc == 0)
			sink_log(&vm->s->sink, "vm %s: %s (pid %d) in %.2f ms (API ready after %.2f ms)",
				vm->name, svm_state_name(st), (int)pid, run_ms, ready_ms);
		else if (err && err->code == SVM_NO_SPACE)
			/* the host ran out (descriptors, space): the administrator reads
			 * the log; the user's own mistakes stay in the VM's error file */
			sink_log(&vm->s->sink, "vm %s: %s failed: %s", vm->name,
				svm_verb_table()[verb].name, err->message);
	}
	loop_note_churn(vm->s->loop);
}

int svm_vm_do(svm_vm *vm, const svm_request *req, svm_error *err)
{
	svm_error local;
	svm_api_hold(vm->api);
	int rc = vm_run(vm, req, NULL, err ? err : &local);
	svm_api_release(vm->api);
	after_op(vm, req->verb, rc, err ? err : &local);
	return rc;
}

/* ------------------------------------------------------------ async */

/* How long a verb's API connection outlives it (docs/architecture.md,
 * "What a running VM costs in descriptors"). */
#define VERB_API_LINGER_MS 100

struct svm_op {
	svm_vm *vm;
	svm_request req;
	char *args[SVM_MAX_ARGS];
	svm_done_fn done;
	void *ud;
	atomic_bool cancel;
	struct svm_op *next; /* in the pool's queue */
};

/* Runs one op to its end, on a thread of the pool. */
static void op_run(svm_op *op)
{
	svm_error e;
	/* one connection for the verb's requests, closed by the release: a VM
	 * is mostly idle, and its libcurl handle (the connection, curl's socket
	 * pair, two easy handles, read buffers: tens of KiB, figure 5c) is made
	 * again by the next request at the cost of a connect on a Unix socket.
	 * A start or restore closes it before its reply, so the reply finds the
	 * VM's descriptors as it keeps them (3; figure 5d counts them right after
	 * a burst of starts). Any other verb that leaves a VMM running or paused
	 * keeps it VERB_API_LINGER_MS after its reply: verbs come in series
	 * (pause, snapshot, resume), and the next one then skips the connect and
	 * the new handle (40 us on the emulator); after a stop or kill nothing
	 * would take it, and a start may want its descriptors. */
	bool early = boots(op->req.verb);
	svm_api_hold(op->vm->api);
	int rc = vm_run(op->vm, &op->req, &op->cancel, &e);
	if (early)
		svm_api_release(op->vm->api);
	svm_state after = svm_vm_state(op->vm);
	svm *s = op->vm->s;
	op->done(op->ud, &e);
	if (!early)
		svm_api_release_lingering(op->vm->api, after == SVM_RUNNING || after == SVM_PAUSED
							      ? VERB_API_LINGER_MS : 0);
	after_op(op->vm, op->req.verb, rc, &e);
	for (int i = 0; i < SVM_MAX_ARGS; i++)
		free(op->args[i]);
	svm_vm_unref(op->vm);
	free(op);
	if (atomic_fetch_sub(&s->ops, 1) == 1) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->ops_cv);
		pthread_mutex_unlock(&s->mu);
	}
}

/*
 * The op threads. Ops mostly wait (on the VMM), so each runs on a thread of
 * its own and one slow start never queues behind another; but a thread made
 * for each op cost a verb 15-20 us before its first step, and now and then
 * milliseconds (tests/bench figures 9-11), so a thread that has run one waits
 * a while for the next. An op goes to a waiting thread only when one is free
 * for it (pool.free counts the waiting threads that no queued op has claimed),
 * else to a new thread: never behind a busy one. Process-wide, as the ops of
 * every svm are alike; a thread touches no svm between ops, so an svm_free()
 * after its ops ended is safe.
 */
#define POOL_KEEP 8            /* waiting threads kept at most */
#define POOL_IDLE_SEC 10       /* a waiting thread ends after this long unused */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	svm_op *head, **tail;  /* ops handed to waiting threads, in order */
	int free;              /* waiting threads no queued op has claimed */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, &pool.head, 0};

/* Takes the next queued op or, after POOL_IDLE_SEC without one (or with
 * POOL_KEEP others waiting already), gives the thread up: NULL. */
static svm_op *pool_next(void)
{
	pthread_mutex_lock(&pool.mu);
	if (!pool.head && pool.free >= POOL_KEEP) {
		pthread_mutex_unlock(&pool.mu);
		return NULL;
	}
	pool.free++;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += POOL_IDLE_SEC;
	while (!pool.head)
		if (pthread_cond_timedwait(&pool.cv, &pool.mu, &until) == ETIMEDOUT && !pool.head)
			break;
	svm_op *op = pool.head;
	if (op) {
		/* its submitter counted this thread as claimed already */
		pool.head = op->next;
		if (!pool.head)
			pool.tail = &pool.head;
	} else {
		pool.free--; /* unclaimed: nobody counts on this thread */
	}
	pthread_mutex_unlock(&pool.mu);
	return op;
}

static void *op_thread(void *arg)
{
	for (svm_op *op = arg; op; op = pool_next())
		op_run(op);
	return NULL;
}

static pthread_condattr_t pool_cattr;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* The pool's timed wait counts on CLOCK_MONOTONIC: a clock change must not
 * end (or keep) every waiting thread at once. */
static void pool_init(void)
{
	pthread_condattr_init(&pool_cattr);
	pthread_condattr_setclock(&pool_cattr, CLOCK_MONOTONIC);
	pthread_cond_destroy(&pool.cv);
	pthread_cond_init(&pool.cv, &pool_cattr);
}

/* Hands op to a waiting thread that is free for it; false: none is. */
static bool pool_hand(svm_op *op)
{
	pthread_mutex_lock(&pool.mu);
	bool handed = pool.free > 0;
	if (handed) {
		pool.free--;
		op->next = NULL;
		*pool.tail = op;
		pool.tail = &op->next;
	}
	pthread_mutex_unlock(&pool.mu);
	/* after the unlock: the thread it wakes takes the lock at once */
	if (handed)
		pthread_cond_signal(&pool.cv);
	return handed;
}

bool svm_op_thread_waiting(void)
{
	pthread_mutex_lock(&pool.mu);
	bool free = pool.free > 0;
	pthread_mutex_unlock(&pool.mu);
	return free;
}

static int op_thread_new(svm_op *op)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* 2 MiB, not less: glibc keeps up to 40 MiB of exited threads' stacks for
	 * reuse, each with ~20 KiB still dirty (its top: TLS, descriptor, 16 KiB);
	 * with 256 KiB stacks a burst of 200 starts left 160 of them, 3.2 MiB of
	 * the daemon's private memory (tests/bench figure 5c); now at most 20 */
	pthread_attr_setstacksize(&attr, 2 * 1024 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = pthread_create(&t, &attr, op_thread, op);
	pthread_attr_destroy(&attr);
	return rc;
}

svm_op *svm_vm_submit(svm_vm *vm, const svm_request *req, svm_done_fn done, void *ud)
{
	pthread_once(&pool_once, pool_init);
	svm_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->vm = vm;
	svm_vm_ref(vm);
	op->req = *req;
	for (int i = 0; i < req->argc && i < SVM_MAX_ARGS; i++) {
		op->args[i] = strdup(req->argv[i] ? req->argv[i] : "");
		op->req.argv[i] = op->args[i];
	}
	op->done = done;
	op->ud = ud;
	atomic_init(&op->cancel, false);
	atomic_fetch_add(&vm->s->ops, 1);
	if (pool_hand(op))
		return op;
	int rc = op_thread_new(op);
	if (rc != 0) {
		/* the caller says why: done() is never called */
		atomic_fetch_sub(&vm->s->ops, 1);
		for (int i = 0; i < SVM_MAX_ARGS; i++)
			free(op->args[i]);
		svm_vm_unref(vm);
		free(op);
		errno = rc;
		return NULL;
	}
	return op;
}

void svm_op_cancel(svm_op *op)
{
	if (!op)
		return;
	atomic_store(&op->cancel, true);
	/* a start waiting on Firecracker (InstanceStart can take long) would see the
	 * flag only after the call: end its VMM now, so the call fails at once and
	 * the start rolls back. Only while it is still starting: a start that has
	 * just succeeded keeps its VM. */
	svm_vm *vm = op->vm;
	if (!boots(op->req.verb))
		return;
	pthread_mutex_lock(&vm->mu);
	if (vm->busy && vm->state == SVM_STARTING && vm->pid != 0 && !vm->reaped) {
		vm->expect_exit = true;
		kill(vm->pid, SIGKILL);
	}
	pthread_mutex_unlock(&vm->mu);
}
