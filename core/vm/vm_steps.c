/*
 * vm_steps.c - the steps every verb's handler takes (vm_verbs_int.h): may this
 * verb run now (and the VM busy), its end (the new state), the state event, one
 * PUT or action to the VMM, a snapshot argument checked. The handlers
 * (vm_launch.c, vm_snapshot.c, vm_live.c) call down to here; the dispatch
 * (vm_verbs.c) calls down to them.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_verbs_int.h"

/* ------------------------------------------------------------ state checks */

static int invalid_state(svm_vm *vm, svm_verb verb, svm_state st, svm_error *err)
{
	const svm_verb_info *vi = &svm_verb_table()[verb];
	char valid[128] = "";
	for (int s = 0; s < SVM_STATE_COUNT; s++)
		if (vi->valid_states & (1u << s)) {
			if (valid[0])
				strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
			strncat(valid, svm_state_name((svm_state)s), sizeof valid - strlen(valid) - 1);
		}
	return svm_error_set(err, SVM_INVALID_STATE, "%s is %s: %s is valid when %s", vm->name,
			     svm_state_name(st), vi->name, valid);
}

/* Checks that verb may run now and, for state-changing verbs, marks the VM busy.
 * Caller holds vm->mu. */
int begin_locked(svm_vm *vm, svm_verb verb, bool exclusive, svm_error *err)
{
	svm_state st = vm->state;
	if (atomic_load(&vm->removed))
		return svm_error_set(err, SVM_INVALID_STATE, "%s has been removed", vm->name);
	if (!(svm_verb_table()[verb].valid_states & (1u << st)))
		return invalid_state(vm, verb, st, err);
	if (exclusive && vm->busy)
		return svm_error_set(err, SVM_INVALID_STATE, "%s is busy with another command",
				     vm->name);
	if (exclusive)
		vm->busy = true;
	return 0;
}

void emit_state(svm_vm *vm, uint64_t seq)
{
	char line[32];
	snprintf(line, sizeof line, "state %s", svm_state_name(svm_vm_state(vm)));
	sink_emit(&vm->s->sink, SVM_EV_STATE, vm, seq, line);
}

/* Ends an exclusive verb: new state (if the VMM is still there or force), not busy. */
void finish(svm_vm *vm, int new_state, bool force)
{
	pthread_mutex_lock(&vm->mu);
	uint64_t seq = 0;
	if (new_state >= 0 && (force || vm->pid != 0) && vm->state != new_state)
		seq = vm_state_locked(vm, (svm_state)new_state);
	vm->busy = false;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->mu);
	if (seq)
		emit_state(vm, seq);
}

int put(svm_vm *vm, const char *path, json_t *body, svm_error *err)
{
	if (!body)
		return 0;
	int rc = svm_api_call(vm->api, "PUT", path, body, NULL, err);
	json_decref(body);
	return rc;
}

int action(svm_vm *vm, const char *type, svm_error *err)
{
	json_t *body = json_pack("{s:s}", "action_type", type);
	int rc = svm_api_call(vm->api, "PUT", "/actions", body, NULL, err);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------ snapshot arguments */

/* A snapshot argument is a path (it has a '/') or a NAME, kept in the VM's
 * snapshot directory DATADIR/snapshots/VMNAME/NAME (snapfiles.h). Checked before
 * the state, so a bad one is EINVAL in any state. */
int check_snapshot_arg(const char *arg, svm_error *err)
{
	if (strchr(arg, '/'))
		return strlen(arg) < PATH_MAX - 64 ? 0
						   : svm_error_set(err, SVM_NAME_TOO_LONG, "snapshot path too long");
	if (!svm_name_valid(arg))
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "snapshot name \"%s\" must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} "
				     "(or give a path)", arg);
	return 0;
}

