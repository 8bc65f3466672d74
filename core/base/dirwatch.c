/* dirwatch.c - the daemon's one inotify instance (see dirwatch.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "dirwatch.h"

struct svm_dirwatch {
	int fd;
	svm_watch *lw; /* the loop's watch of fd */
	pthread_mutex_t mu;
	dirwatch_wait *waits; /* begun and not ended */
};

/* Loop thread: counts each creation for the waits of its directory and wakes
 * them. An overflow (events lost) wakes every wait: each looks for itself. */
static void on_events(svm_watch *lw, void *ud, uint32_t events)
{
	(void)lw;
	(void)events;
	svm_dirwatch *d = ud;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(d->fd, buf, sizeof buf)) > 0) {
		pthread_mutex_lock(&d->mu);
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			bool all = e->mask & IN_Q_OVERFLOW;
			if (all || (e->mask & (IN_CREATE | IN_MOVED_TO)))
				for (dirwatch_wait *w = d->waits; w; w = w->next)
					if (all || w->wd == e->wd) {
						w->events++;
						pthread_cond_signal(&w->cv);
					}
			p += sizeof *e + e->len;
		}
		pthread_mutex_unlock(&d->mu);
	}
}

svm_dirwatch *dirwatch_new(svm_loop *l)
{
	svm_dirwatch *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL); /* before the loop can call on_events */
	d->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (d->fd < 0 || !(d->lw = loop_add(l, d->fd, EPOLLIN, on_events, d))) {
		if (d->fd >= 0)
			close(d->fd);
		pthread_mutex_destroy(&d->mu);
		free(d);
		return NULL;
	}
	return d;
}

void dirwatch_free(svm_dirwatch *d)
{
	if (!d)
		return;
	close(d->fd);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int dirwatch_begin(svm_dirwatch *d, const char *dir, dirwatch_wait *w)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->wd = -1;
	w->events = w->seen = 0;
	w->next = NULL;
	if (!d)
		return -1;
	/* listed before the loop can see an event of the watch: it waits for
	 * the lock to count it */
	pthread_mutex_lock(&d->mu);
	w->wd = inotify_add_watch(d->fd, dir, IN_CREATE | IN_MOVED_TO);
	if (w->wd >= 0) {
		w->next = d->waits;
		d->waits = w;
	}
	pthread_mutex_unlock(&d->mu);
	return w->wd >= 0 ? 0 : -1;
}

void dirwatch_sleep(svm_dirwatch *d, dirwatch_wait *w, int timeout_ms)
{
	struct timespec until = svm_time_after(CLOCK_MONOTONIC, (uint64_t)timeout_ms * 1000000ULL);
	if (w->wd < 0) {
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
		return;
	}
	pthread_mutex_lock(&d->mu);
	while (w->events == w->seen &&
	       pthread_cond_timedwait(&w->cv, &d->mu, &until) != ETIMEDOUT)
		;
	w->seen = w->events;
	pthread_mutex_unlock(&d->mu);
}

void dirwatch_end(svm_dirwatch *d, dirwatch_wait *w)
{
	if (w->wd >= 0) {
		pthread_mutex_lock(&d->mu);
		bool shared = false; /* a directory's watch is one, whoever asked for it */
		for (dirwatch_wait **p = &d->waits; *p;)
			if (*p == w)
				*p = w->next;
			else {
				shared |= (*p)->wd == w->wd;
				p = &(*p)->next;
			}
		/* EINVAL when the directory went first (its watch went with it) */
		if (!shared)
			inotify_rm_watch(d->fd, w->wd);
		pthread_mutex_unlock(&d->mu);
	}
	pthread_cond_destroy(&w->cv);
}
