/*
 * events.c - /vms/NAME/events: the one file that blocks.
 *
 * The first read on a descriptor returns the current state at once (so a file
 * manager peeking at the first block never hangs); each later read returns the
 * events that followed (state changes, VMM exits) or waits for the next one.
 * A waiting read holds no thread: the request is parked here and answered by the
 * pump thread when the core reports an event, or with EINTR when the reader is
 * interrupted (Ctrl-C). poll() says POLLIN when a read would not wait.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

struct waiter {
	fuse_req_t req;
	struct fs_handle *h;
	size_t size;
	struct waiter *next;
};

/* One lock for parked reads and poll handles. Core calls made under it only
 * read VM state; the core never calls into fs while holding its own locks
 * except on_event, which only queues - so no lock order cycle. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *waiters;

/* Event lines after h->ev_seq that fit in size bytes (at least one line, cut if
 * it alone is longer). Caller holds ev_lock. Returns NULL if there are none. */
static char *take_lines(struct fs_handle *h, size_t size, size_t *outlen)
{
	char *out = NULL;
	size_t len = 0;
	for (;;) {
		uint64_t got = h->ev_seq + 1;
		char *line = svm_vm_event_line(h->t.vm, h->ev_seq + 1, &got);
		if (!line)
			break;
		size_t n = strlen(line);
		if (out && len + n + 1 > size) {
			free(line);
			break;
		}
		char *nb = realloc(out, len + n + 2);
		if (!nb) {
			free(line);
			break;
		}
		out = nb;
		memcpy(out + len, line, n);
		out[len + n] = '\n';
		len += n + 1;
		free(line);
		h->ev_seq = got > h->ev_seq ? got : h->ev_seq + 1;
		if (len >= size)
			break;
	}
	*outlen = len < size ? len : size;
	return out;
}

static bool removed(struct fs_handle *h)
{
	return svm_vm_removed(h->t.vm);
}

static void ev_interrupt(fuse_req_t req, void *data)
{
	(void)data;
	struct waiter *found = NULL;
	pthread_mutex_lock(&ev_lock);
	for (struct waiter **pp = &waiters; *pp; pp = &(*pp)->next)
		if ((*pp)->req == req) {
			found = *pp;
			*pp = found->next;
			break;
		}
	pthread_mutex_unlock(&ev_lock);
	if (found) {
		fuse_reply_err(req, EINTR);
		free(found);
	}
}

void fs_events_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	(void)off; /* a stream */
	pthread_mutex_lock(&ev_lock);
	if (!h->ev_started) {
		/* the sequence number first: an event after it is delivered next time,
		 * at worst once more than needed, never lost */
		h->ev_seq = svm_vm_event_seq(h->t.vm);
		h->ev_started = true;
		svm_state st = svm_vm_state(h->t.vm);
		pthread_mutex_unlock(&ev_lock);
		char line[64];
		int n = snprintf(line, sizeof line, "state %s\n", svm_state_name(st));
		fuse_reply_buf(req, line, (size_t)n < size ? (size_t)n : size);
		return;
	}
	size_t len;
	char *out = take_lines(h, size, &len);
	bool gone = removed(h);
	pthread_mutex_unlock(&ev_lock);
	if (out || gone) {
		fuse_reply_buf(req, out, out ? len : 0); /* removed VM: end of stream */
		free(out);
		return;
	}
	struct waiter *w = calloc(1, sizeof *w);
	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->h = h;
	w->size = size;
	/* Registered before parking, outside ev_lock (libfuse may call the handler
	 * right here, and it takes ev_lock). */
	fuse_req_interrupt_func(req, ev_interrupt, NULL);
	pthread_mutex_lock(&ev_lock);
	if (fuse_req_interrupted(req)) {
		pthread_mutex_unlock(&ev_lock);
		free(w);
		fuse_reply_err(req, EINTR);
		return;
	}
	out = take_lines(h, size, &len); /* an event may have come meanwhile */
	gone = removed(h);
	if (out || gone) {
		pthread_mutex_unlock(&ev_lock);
		free(w);
		fuse_reply_buf(req, out, out ? len : 0);
		free(out);
		return;
	}
	w->next = waiters;
	waiters = w;
	pthread_mutex_unlock(&ev_lock);
}

void fs_events_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph)
{
	pthread_mutex_lock(&ev_lock);
	if (ph) {
		if (h->ph)
			fuse_pollhandle_destroy(h->ph);
		h->ph = ph;
	}
	bool ready = !h->ev_started || svm_vm_event_seq(h->t.vm) > h->ev_seq || removed(h);
	pthread_mutex_unlock(&ev_lock);
	fuse_reply_poll(req, ready ? POLLIN | POLLRDNORM : 0);
}

void fs_events_opened(struct fs_handle *h)
{
	if (!h->node)
		return;
	pthread_mutex_lock(&ev_lock);
	h->ev_next = h->node->event_readers;
	h->node->event_readers = h;
	pthread_mutex_unlock(&ev_lock);
}

void fs_events_released(struct fs_handle *h)
{
	if (!h->node)
		return;
	pthread_mutex_lock(&ev_lock);
	for (struct fs_handle **pp = &h->node->event_readers; *pp; pp = &(*pp)->ev_next)
		if (*pp == h) {
			*pp = h->ev_next;
			break;
		}
	if (h->ph)
		fuse_pollhandle_destroy(h->ph);
	h->ph = NULL;
	pthread_mutex_unlock(&ev_lock);
}

struct reply {
	fuse_req_t req;
	char *buf;
	size_t len;
	struct reply *next;
};

void fs_events_wake(struct fs_node *n, bool gone)
{
	struct reply *replies = NULL;
	pthread_mutex_lock(&ev_lock);
	for (struct waiter **pp = &waiters; *pp;) {
		struct waiter *w = *pp;
		if (w->h->node != n) {
			pp = &w->next;
			continue;
		}
		size_t len = 0;
		char *out = take_lines(w->h, w->size, &len);
		if (!out && !gone && !removed(w->h)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		struct reply *r = calloc(1, sizeof *r);
		if (r) {
			r->req = w->req;
			r->buf = out;
			r->len = out ? len : 0;
			r->next = replies;
			replies = r;
		} else {
			fuse_reply_err(w->req, ENOMEM);
			free(out);
		}
		free(w);
	}
	for (struct fs_handle *h = n->event_readers; h; h = h->ev_next)
		if (h->ph) {
			fuse_lowlevel_notify_poll(h->ph);
			fuse_pollhandle_destroy(h->ph);
			h->ph = NULL;
		}
	pthread_mutex_unlock(&ev_lock);
	while (replies) {
		struct reply *r = replies;
		replies = r->next;
		fuse_reply_buf(r->req, r->buf, r->len);
		free(r->buf);
		free(r);
	}
}

void fs_events_shutdown(void)
{
	pthread_mutex_lock(&ev_lock);
	struct waiter *w = waiters;
	waiters = NULL;
	pthread_mutex_unlock(&ev_lock);
	while (w) {
		struct waiter *next = w->next;
		fuse_reply_buf(w->req, NULL, 0);
		free(w);
		w = next;
	}
}
