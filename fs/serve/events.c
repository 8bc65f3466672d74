/*
 * events.c - /vms/NAME/events: the VM's events, for readers that read and for
 * programs that wait.
 *
 * Opened read-only - as cat, grep -r, cp -r, tar, rsync, editors and file
 * managers open it - it is the history of the VM's events (one line each: state
 * changes, VMM exits), a growing file like the logs: a read at its end returns
 * 0, so nothing that reads whole files ever waits on it; `tail -f` follows it,
 * and poll() says POLLIN once events arrived past what the descriptor read.
 *
 * Opened read-write, which no whole-file reader does, reads wait: the first
 * returns the current state at once, each later one the events that followed, or
 * waits for the next. A waiting read holds no thread: the request is parked here
 * and answered by the thread that reports the event (pump.c), or with EINTR
 * when the reader is interrupted (Ctrl-C). poll() says POLLIN when a read would
 * not wait. Nothing is ever written: a write is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

struct waiter {
	fuse_req_t req;
	struct fs_handle *h;
	size_t size;
	struct waiter *next;
};

/* One lock for parked reads and poll handles. Core calls made under it only
 * read VM state, and the core reports a VM's events (whose handling takes it)
 * holding none of its own locks - so no lock order cycle. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *waiters;

/* Up to size bytes of what an earlier short read left. Caller holds ev_lock. */
static char *take_pending(struct fs_handle *h, size_t size, size_t *outlen)
{
	size_t n = h->ev_pending_len < size ? h->ev_pending_len : size;
	char *out = malloc(n ? n : 1);
	if (!out)
		return NULL;
	memcpy(out, h->ev_pending, n);
	memmove(h->ev_pending, h->ev_pending + n, h->ev_pending_len - n);
	h->ev_pending_len -= n;
	if (!h->ev_pending_len) {
		free(h->ev_pending);
		h->ev_pending = NULL;
	}
	*outlen = n;
	return out;
}

/* Serves size bytes of text: what does not fit waits in the handle for the next
 * reads. Takes text. Caller holds ev_lock. */
static char *serve(struct fs_handle *h, char *text, size_t len, size_t size, size_t *outlen)
{
	if (len > size) {
		char *rest = malloc(len - size);
		if (rest) {
			memcpy(rest, text + size, len - size);
			h->ev_pending = rest;
			h->ev_pending_len = len - size;
		}
		len = size;
	}
	*outlen = len;
	return text;
}

/* What an earlier short read left, else the event lines after h->ev_seq that fit
 * in size bytes (at least one line; what does not fit is served next). Caller
 * holds ev_lock. Returns NULL if there is nothing. */
static char *take_lines(struct fs_handle *h, size_t size, size_t *outlen)
{
	if (h->ev_pending)
		return take_pending(h, size, outlen);
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
	return out ? serve(h, out, len, size, outlen) : NULL;
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

static bool waits(const struct fs_handle *h)
{
	return (h->flags & O_ACCMODE) != O_RDONLY;
}

void fs_events_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)buf;
	(void)size;
	(void)off;
	svm_error err;
	svm_error_set(&err, SVM_INVALID_CONFIG, "events takes no writes (a read-write open only "
	              "makes its reads wait for the next events)");
	svm_vm_note_error(h->t.vm, "write events", &err);
	fuse_reply_err(req, EINVAL);
}

void fs_events_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	if (!waits(h)) {
		fs_offset_read(req, h, size, off); /* the history: ends like any file */
		return;
	}
	pthread_mutex_lock(&ev_lock);
	if (!h->ev_started) {
		/* the sequence number first: an event after it is delivered next time,
		 * at worst once more than needed, never lost */
		h->ev_seq = svm_vm_event_seq(h->t.vm);
		h->ev_started = true;
		svm_state st = svm_vm_state(h->t.vm);
		char *line = malloc(64);
		size_t n = 0;
		if (line)
			line = serve(h, line, (size_t)snprintf(line, 64, "state %s\n", svm_state_name(st)),
			             size, &n);
		pthread_mutex_unlock(&ev_lock);
		if (line)
			fuse_reply_buf(req, line, n);
		else
			fuse_reply_err(req, ENOMEM);
		free(line);
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
	bool ready;
	if (waits(h))
		ready = !h->ev_started || h->ev_pending || svm_vm_event_seq(h->t.vm) > h->ev_seq ||
		        removed(h);
	else
		ready = svm_stream_size(h->t.s, h->t.vm, SVM_STREAM_VM_EVENTS) >
		                __atomic_load_n(&h->read_end, __ATOMIC_RELAXED) || removed(h);
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
	free(h->ev_pending);
	h->ev_pending = NULL;
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
