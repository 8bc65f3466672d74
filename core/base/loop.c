/* loop.c - the epoll event loop (see loop.h). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

struct svm_watch {
	int fd;
	loop_fn fn;
	void *ud;
	bool dead;
	svm_watch *next_dead;
	svm_watch *prev, *next; /* the live watches (under the loop's lock) */
};

typedef struct call {
	void (*fn)(void *);
	void *ud;
	struct call *next;
} call;

struct svm_loop {
	int epfd;
	int wakefd; /* eventfd: wakes the thread for calls and for shutdown */
	pthread_t thread;
	pthread_mutex_t mu;
	call *calls, **calls_tail;
	bool stopping;
	svm_watch *live; /* added and not deleted: loop_free frees what is left */
	svm_watch *dead; /* freed after each batch */
	svm_watch wake;  /* the watch of wakefd */
	uint64_t churn_ms; /* time of the last loop_note_churn not yet trimmed; 0: none */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The epoll timeout: -1 without a pending trim; else until it is due (trimming
 * first when it is). */
static int trim_when_quiet(svm_loop *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t last = l->churn_ms, now = now_ms();
	bool due = last && now - last >= LOOP_TRIM_QUIET_MS;
	if (due)
		l->churn_ms = 0;
	pthread_mutex_unlock(&l->mu);
	if (due)
		malloc_trim(0);
	if (!last || due)
		return -1;
	return (int)(LOOP_TRIM_QUIET_MS - (now - last)) + 1;
}

static void run_calls(svm_loop *l)
{
	pthread_mutex_lock(&l->mu);
	call *c = l->calls;
	l->calls = NULL;
	l->calls_tail = &l->calls;
	pthread_mutex_unlock(&l->mu);
	while (c) {
		call *next = c->next;
		c->fn(c->ud);
		free(c);
		c = next;
	}
}

static void *loop_main(void *arg)
{
	svm_loop *l = arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 64, trim_when_quiet(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			svm_watch *w = evs[i].data.ptr;
			if (w == &l->wake) {
				uint64_t v;
				(void)!read(l->wakefd, &v, sizeof v);
				run_calls(l);
				continue;
			}
			if (!w->dead)
				w->fn(w, w->ud, evs[i].events);
		}
		while (l->dead) {
			svm_watch *w = l->dead;
			l->dead = w->next_dead;
			free(w);
		}
		pthread_mutex_lock(&l->mu);
		bool stop = l->stopping;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
	}
	return NULL;
}

svm_loop *loop_new(void)
{
	svm_loop *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&l->mu, NULL);
	l->calls_tail = &l->calls;
	l->wake.fd = l->wakefd;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->wake};
	if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
		goto fail;
	/* a small stack: the loop only copies bytes between fds and rings */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&l->thread, &attr, loop_main, l);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		goto fail;
	return l;
fail:
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	free(l);
	return NULL;
}

static void wake(svm_loop *l)
{
	uint64_t one = 1;
	(void)!write(l->wakefd, &one, sizeof one);
}

void loop_free(svm_loop *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	wake(l);
	pthread_join(l->thread, NULL);
	run_calls(l);
	while (l->dead) {
		svm_watch *w = l->dead;
		l->dead = w->next_dead;
		free(w);
	}
	while (l->live) {
		svm_watch *w = l->live;
		l->live = w->next;
		free(w);
	}
	close(l->epfd);
	close(l->wakefd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void unlist(svm_loop *l, svm_watch *w)
{
	pthread_mutex_lock(&l->mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		l->live = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&l->mu);
}

svm_watch *loop_add(svm_loop *l, int fd, uint32_t events, loop_fn fn, void *ud)
{
	svm_watch *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->fd = fd;
	w->fn = fn;
	w->ud = ud;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	pthread_mutex_lock(&l->mu);
	w->next = l->live;
	if (l->live)
		l->live->prev = w;
	l->live = w;
	pthread_mutex_unlock(&l->mu);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		unlist(l, w);
		free(w);
		return NULL;
	}
	return w;
}

void loop_del(svm_loop *l, svm_watch *w)
{
	if (!w || w->dead)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	unlist(l, w);
	w->dead = true;
	w->next_dead = l->dead;
	l->dead = w;
}

int loop_fd(const svm_watch *w)
{
	return w->fd;
}

void loop_note_churn(svm_loop *l)
{
	pthread_mutex_lock(&l->mu);
	bool first = l->churn_ms == 0;
	l->churn_ms = now_ms();
	if (l->churn_ms == 0)
		l->churn_ms = 1;
	pthread_mutex_unlock(&l->mu);
	if (first)
		wake(l); /* its epoll_wait has no timeout yet */
}

int loop_call(svm_loop *l, void (*fn)(void *), void *ud)
{
	call *c = malloc(sizeof *c);
	if (!c)
		return -1;
	c->fn = fn;
	c->ud = ud;
	c->next = NULL;
	pthread_mutex_lock(&l->mu);
	*l->calls_tail = c;
	l->calls_tail = &c->next;
	pthread_mutex_unlock(&l->mu);
	wake(l);
	return 0;
}
