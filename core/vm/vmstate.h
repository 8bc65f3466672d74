/*
 * vmstate.h - a VM's state file, RUNDIR/ID/vm.json (docs/restart.md): what a
 * later daemon needs to re-adopt the VM's VMM after this daemon was killed, or
 * to clean up after it. And the /proc facts that tell a live VMM from a reused
 * pid.
 */
#ifndef SVM_VMSTATE_H
#define SVM_VMSTATE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "internal.h"

#define VMSTATE_FILE "vm.json"
#define VMSTATE_FORMAT 1

/* Rewrites vm.json from the VM's current state (tmp + rename, 0600). Called
 * with vm->mu held, at every state-relevant change. Failures are logged once
 * per VM and otherwise ignored: the VM works, it just cannot be re-adopted. */
void vmstate_save_locked(svm_vm *vm);
/* The same, saying st (the state about to be set) instead of the current one. */
void vmstate_save_as_locked(svm_vm *vm, svm_state st);
/* The state file of runtime dir dir, or NULL (none, unreadable, not ours:
 * not a regular file owned by us, or not the format we write). */
json_t *vmstate_load(const char *dir);

/* starttime (field 22 of /proc/PID/stat, clock ticks since boot) of a live,
 * non-zombie process; 0 if there is none. */
unsigned long long proc_start_time(pid_t pid);
/* Does /proc/PID/cmdline carry "--id ID" and "--api-sock SOCK", as our
 * spawns write them? */
bool proc_is_vmm(pid_t pid, const char *id, const char *sock);

#endif
