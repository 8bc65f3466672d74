/* vm_verbs.h - the verbs of a VM (internal). */
#ifndef SVM_VM_VERBS_H
#define SVM_VM_VERBS_H

#include <stdatomic.h>
#include "internal.h"

/* Runs req on vm in the calling thread; cancel (may be NULL) asks a start to roll back. */
int vm_run(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err);
int vm_merge_metadata(svm_vm *vm, const char *text, svm_error *err);

#endif
