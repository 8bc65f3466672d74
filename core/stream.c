/*
 * stream.c - the byte streams the core keeps, by name: the daemon log, the error
 * files, a VM's console and Firecracker log. Each is a ring with absolute offsets
 * (ring.h), so a front end can serve every one of them the same way: st_size is
 * every byte ever appended, a read addresses bytes by that offset, and `tail -f`
 * or a reader that comes back later never sees bytes shift under it.
 */
#include "internal.h"

static svm_ring *ring_of(svm *s, svm_vm *vm, svm_stream which)
{
	switch (which) {
	case SVM_STREAM_LOG:
		return &s->sink.log;
	case SVM_STREAM_ERRORS:
		return &s->sink.errors;
	case SVM_STREAM_IMAGE_ERRORS:
		return &s->image_errors;
	case SVM_STREAM_VM_CONSOLE:
		return vm ? &vm->console : NULL;
	case SVM_STREAM_VM_LOG:
		return vm ? &vm->fclog : NULL;
	case SVM_STREAM_VM_ERRORS:
		return vm ? &vm->errors : NULL;
	case SVM_STREAM_VM_EVENTS:
		return vm ? &vm->evlog : NULL;
	}
	return NULL;
}

uint64_t svm_stream_size(svm *s, svm_vm *vm, svm_stream which)
{
	svm_ring *r = ring_of(s, vm, which);
	return r ? ring_total(r) : 0;
}

ssize_t svm_stream_read(svm *s, svm_vm *vm, svm_stream which, uint64_t off, char *buf, size_t len,
                        uint64_t *from)
{
	svm_ring *r = ring_of(s, vm, which);
	if (from)
		*from = off;
	return r ? ring_read_from(r, off, buf, len, from) : 0;
}
