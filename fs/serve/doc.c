/*
 * doc.c - writes of whole JSON documents (config.json, metadata).
 *
 * DESIGN §3: writes are buffered per open file and every write() parses the whole
 * buffer. Any parse error that more bytes cannot cure (not "premature end of
 * input", nor a cut inside a literal, number, escape or UTF-8 character:
 * svm_text_incomplete) fails that very write() with EINVAL; a complete
 * document is validated and stored there and then (an invalid one fails the
 * write). A buffer still incomplete fails flush()
 * (close). O_TRUNC resets the buffer - a new open starts empty - never the stored
 * value. A write that fails adds nothing to the buffer, so the old value stays
 * and a later retry on the same descriptor starts from what was accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "serve.h"

/* Far above any limit of the core (which answers TOO_LARGE itself): this only
 * bounds what one descriptor may make the daemon hold. */
#define DOC_BUFFER_MAX (4u << 20)

/* What all open files of one user hold buffered, with allow_other: one user's
 * many descriptors must not make the daemon hold unbounded memory. Root and the
 * mount's owner are not counted. */
#define USER_BUFFERED_MAX (16u << 20)

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	uid_t uid;
	size_t bytes;
} *held;
static size_t nheld;

static bool counted(uid_t uid)
{
	return fsd.allow_other && uid != 0 && uid != fsd.mount_uid;
}

/* Moves uid's count by `from` -> `to` bytes; refuses a growth past the limit. */
static int held_change(uid_t uid, size_t from, size_t to, svm_error *err)
{
	if (!counted(uid))
		return 0;
	pthread_mutex_lock(&held_lock);
	struct held *e = NULL;
	for (size_t i = 0; i < nheld && !e; i++)
		if (held[i].uid == uid)
			e = &held[i];
	if (!e) {
		struct held *p = realloc(held, (nheld + 1) * sizeof *p);
		if (!p) {
			pthread_mutex_unlock(&held_lock);
			return svm_error_set(err, SVM_NO_SPACE, "out of memory");
		}
		held = p;
		e = &held[nheld++];
		*e = (struct held){uid, 0};
	}
	int rc = 0;
	size_t now = e->bytes - from + to;
	if (to > from && now > USER_BUFFERED_MAX)
		rc = svm_error_set(err, SVM_QUOTA, "quota: uid %u's open files hold %zu bytes of "
		                   "unfinished documents, %u allowed (close some)", (unsigned)uid,
		                   e->bytes, USER_BUFFERED_MAX);
	else
		e->bytes = now;
	pthread_mutex_unlock(&held_lock);
	return rc;
}

void fs_doc_forget(struct fs_handle *h)
{
	if (h->wbuf)
		held_change(h->wuid, h->wlen, 0, NULL);
	free(h->wbuf);
	h->wbuf = NULL;
	h->wlen = 0;
}

/* The handle keeps nb (nlen bytes) as its buffer, counted to its writer. */
static int keep(struct fs_handle *h, char *nb, size_t nlen, svm_error *err)
{
	if (held_change(h->wuid, h->wbuf ? h->wlen : 0, nlen, err) < 0)
		return -1;
	free(h->wbuf);
	h->wbuf = nb;
	h->wlen = nlen;
	return 0;
}

static void note(struct fs_handle *h, const svm_error *err)
{
	char cmd[96];
	snprintf(cmd, sizeof cmd, "write %s", h->row->name);
	svm_vm_note_error(h->t.vm, cmd, err);
}

/* The buffer this write makes: the bytes before the write's offset, then buf
 * (nlen bytes, NUL-terminated); NULL with *e (and err) set when refused. */
static char *doc_join(struct fs_handle *h, const char *buf, size_t size, off_t off, size_t *nlen,
                      svm_error *err, int *e)
{
	/* Writes arrive at the descriptor's position; a write before the end
	 * replaces the tail (pwrite), one past the end would leave a hole. */
	size_t at = off < 0 ? h->wlen : (size_t)off;
	if (h->flags & O_APPEND)
		at = h->wlen;
	if (at > h->wlen) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "write at offset %zu past the %zu bytes written",
		              at, h->wlen);
		*e = EINVAL;
		return NULL;
	}
	if (at + size > DOC_BUFFER_MAX) {
		svm_error_set(err, SVM_TOO_LARGE, "document larger than %u bytes", DOC_BUFFER_MAX);
		*e = EFBIG;
		return NULL;
	}
	char *nb = malloc(at + size + 1);
	if (!nb) {
		*e = ENOMEM;
		return NULL;
	}
	if (at)
		memcpy(nb, h->wbuf, at);
	memcpy(nb + at, buf, size);
	*nlen = at + size;
	nb[*nlen] = '\0';
	return nb;
}

/* Why a buffer that is no document and cannot become one is refused: an errno. */
static int doc_refuse(const struct fs_handle *h, const char *nb, size_t nlen, json_error_t *jerr,
                      svm_error *err)
{
	if (nlen > SVM_DOC_MAX_BYTES) {
		svm_error_set(err, SVM_TOO_LARGE, "%s is %zu bytes, more than the %d allowed",
		              h->row->name, nlen, SVM_DOC_MAX_BYTES);
		return EFBIG;
	}
	/* jansson quotes the text where it stopped ("near '...'"): never for
	 * metadata, which may carry secrets into the world-readable error file */
	char *near = strcmp(h->row->name, "metadata") == 0 ? strstr(jerr->text, " near ") : NULL;
	if (near)
		*near = '\0';
	if (memchr(nb, '\0', nlen))
		svm_error_set(err, SVM_INVALID_CONFIG, "%s: a NUL byte is not JSON", h->row->name);
	else
		svm_error_set(err, SVM_INVALID_CONFIG, "%s: JSON syntax error: %s (line %d, column %d)",
		              h->row->name, jerr->text, jerr->line, jerr->column);
	return EINVAL;
}

/* Judges the whole buffer nb (taken over): kept while incomplete, applied and
 * kept when complete. 0, or an errno with err saying why. */
static int doc_judge(struct fs_handle *h, char *nb, size_t nlen, svm_error *err)
{
	cleanup_free char *mine = nb; /* ours until the handle keeps it */
	json_error_t jerr;
	json_t *doc = json_loadb(nb, nlen, 0, &jerr);
	/* Not complete yet: keep it, judge it at the next write or at close. Only
	 * the core's judgment counts (docs/config.md "Partial writes"): a write may
	 * end inside a literal (`"smt": fa`), a number, an escape or a UTF-8
	 * character, but a NUL byte or a text over the limit is never incomplete,
	 * even where jansson calls it a premature end. */
	if (!doc && svm_text_incomplete(nb, nlen)) {
		if (keep(h, nb, nlen, err) < 0)
			return EDQUOT;
		mine = NULL;
		h->doc_dirty = true;
		return 0;
	}
	if (!doc)
		return doc_refuse(h, nb, nlen, &jerr, err);
	json_decref(doc);
	if (h->row->doc_apply(h->t.vm, nb, nlen, err) != 0)
		return fs_errno(err->code);
	if (keep(h, nb, nlen, err) == 0)
		mine = NULL;
	else
		fs_doc_forget(h); /* stored, but not kept as this descriptor's buffer */
	svm_error_clear(err);
	h->doc_dirty = false;
	return 0;
}

void fs_doc_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	svm_error err;
	svm_error_clear(&err);
	int e = 0;
	size_t nlen = 0;
	pthread_mutex_lock(&h->lock);
	if (!h->wbuf)
		h->wuid = fuse_req_ctx(req)->uid;
	char *nb = doc_join(h, buf, size, off, &nlen, &err, &e);
	if (nb)
		e = doc_judge(h, nb, nlen, &err);
	pthread_mutex_unlock(&h->lock);
	/* the document (or the error file) changed: answer once the kernel's
	 * copies are invalidated, so the writer reads back what it wrote */
	if (e) {
		if (err.code != SVM_OK)
			note(h, &err);
		fs_reply_err_fresh(req, e);
	} else {
		fs_reply_write_fresh(req, size);
	}
}

int fs_doc_flush(struct fs_handle *h)
{
	pthread_mutex_lock(&h->lock);
	bool dirty = h->doc_dirty;
	size_t len = h->wlen;
	pthread_mutex_unlock(&h->lock);
	if (!dirty)
		return 0;
	svm_error err;
	svm_error_clear(&err);
	svm_error_set(&err, SVM_INVALID_CONFIG,
	              "%s: incomplete JSON document (%zu bytes) at close, nothing changed",
	              h->row->name, len);
	note(h, &err);
	return EINVAL;
}
