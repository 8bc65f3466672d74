/*
 * handle.c - what is still open: the handles of open files (fi->fh) and the
 * list of every handle and listing not freed yet, freed at the end.
 */
#include <stddef.h>
#include <stdlib.h>

#include "ops.h"

void fs_live_add(struct live_list *l, struct fs_live_link *k)
{
	pthread_mutex_lock(&l->lock);
	k->prev = NULL;
	k->next = l->head;
	if (l->head)
		l->head->prev = k;
	l->head = k;
	pthread_mutex_unlock(&l->lock);
}

/* Also for one never added (prev and next NULL, not the head). */
void fs_live_remove(struct live_list *l, struct fs_live_link *k)
{
	pthread_mutex_lock(&l->lock);
	if (k->prev)
		k->prev->next = k->next;
	else if (l->head == k)
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&l->lock);
}

struct fs_live_link *fs_live_first(struct live_list *l)
{
	pthread_mutex_lock(&l->lock);
	struct fs_live_link *k = l->head;
	pthread_mutex_unlock(&l->lock);
	return k;
}



struct fs_handle *fs_handle_of(struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

static struct live_list handles = {PTHREAD_MUTEX_INITIALIZER, NULL};

void fs_handle_link(struct fs_handle *h)
{
	fs_live_add(&handles, &h->live);
}

void fs_handle_free(struct fs_handle *h)
{
	if (!h)
		return;
	fs_live_remove(&handles, &h->live);
	if (h->priv_open && h->row->release)
		h->row->release(h); /* a row's own per-open state, before the VM goes */
	if (h->t.vm)
		svm_vm_unref(h->t.vm);
	free(h->snap);
	fs_doc_forget(h);
	free(h->clone_name);
	free(h->ev_pending); /* events: what a short read left, if never released */
	free((char *)h->t.id);
	pthread_mutex_destroy(&h->lock);
	struct fs_entry *ent = h->ent;
	free(h);
	fs_entry_handle_add(ent, -1); /* last: it may free the entry */
}

void fs_handles_free(void)
{
	struct fs_live_link *k;
	while ((k = fs_live_first(&handles)))
		fs_handle_free((struct fs_handle *)((char *)k - offsetof(struct fs_handle, live)));
}

struct fs_rowstate *fs_rowstate_of(struct fs_handle *h)
{
	if (h->ent)
		return &h->ent->rows[h->row_index];
	return h->node ? &h->node->rows[h->row_index] : &fs_root_state[h->row_index];
}

/* Recomputes the value this open serves. Caller holds h->lock. */
int fs_refresh_snapshot(struct fs_handle *h, svm_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int e = h->row->text(&h->t, &text, &len, err);
	if (e)
		return e;
	free(h->snap);
	h->snap = text;
	h->snap_len = len;
	h->snap_valid = true;
	if (h->row->flags & FS_LIVE) /* st_size of a live file (any thread reads it) */
		__atomic_store_n(&fs_rowstate_of(h)->served_len, (uint64_t)len, __ATOMIC_RELAXED);
	return 0;
}

