/*
 * stream.c - reads of the growing files (FS_OFFSET rows: console, the logs, the
 * error files, the event history): bytes of one of the core's streams by their
 * absolute offset. file.c serves every such row with it, events.c the read-only
 * opens of events.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

void fs_offset_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets are the stream's own, but bytes a ring dropped are gone: the
	 * first read below the oldest kept byte gets that byte on, and this open
	 * goes on from there (cat of a full ring reads it once, in order; a
	 * tail -f that fell behind skips what was lost). At 0 it starts over. */
	pthread_mutex_lock(&h->lock);
	if (off == 0)
		h->skew = 0;
	uint64_t pos = (uint64_t)off + h->skew, from = pos;
	ssize_t n = svm_stream_read(h->t.s, h->t.vm, h->row->stream, pos, buf, size, &from);
	size_t cut = 0;
	if (n > 0 && from > pos) {
		h->skew += from - pos;
		/* a stream of lines starts at a whole line, never half of one */
		char *nl = h->row->stream != SVM_STREAM_VM_CONSOLE ? memchr(buf, '\n', (size_t)n) : NULL;
		if (nl && nl + 1 < buf + n) {
			cut = (size_t)(nl + 1 - buf);
			h->skew += cut;
		}
	}
	if (n >= 0)
		__atomic_store_n(&h->read_end, from + (uint64_t)n, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->lock);
	if (n < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_buf(req, buf + cut, (size_t)n - cut);
	free(buf);
}
