/*
 * vm_verbs_int.h - what the files of the verbs share (vm_steps.c: the checks
 * and steps every handler takes; vm_launch.c: start and restore; vm_snapshot.c;
 * vm_live.c: the verbs of a running VM). Every handler has one shape, so the
 * dispatch is a table indexed by the verb.
 */
#ifndef SVM_VM_VERBS_INT_H
#define SVM_VM_VERBS_INT_H

#include <stdatomic.h>

#include "internal.h"

typedef int verb_fn(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err);

/* vm_steps.c: checks that verb may run now (vm->mu held) and, for exclusive
 * verbs, marks the VM busy; finish ends one: new state (if the VMM is still there
 * or force), not busy. */
int begin_locked(svm_vm *vm, svm_verb verb, bool exclusive, svm_error *err);
void finish(svm_vm *vm, int new_state, bool force);
void emit_state(svm_vm *vm, uint64_t seq);
/* One PUT of body (taken; NULL: nothing to send), one action (InstanceStart, ...). */
int put(svm_vm *vm, const char *path, json_t *body, svm_error *err);
int action(svm_vm *vm, const char *type, svm_error *err);
/* A snapshot argument: a path (with a '/') or a NAME of the VM's own store. */
int check_snapshot_arg(const char *arg, svm_error *err);

/* vm_launch.c */
verb_fn do_start, do_restore;
/* vm_snapshot.c */
verb_fn do_snapshot;
/* vm_live.c */
verb_fn do_pause, do_resume, do_stop, do_kill, do_balloon, do_drive, do_netif, do_metadata,
	do_flush_metrics, do_hinting, do_hotplug;

#endif
