/*
 * quota.h - per-user quotas (svm_options max_vms, max_running, max_mem_mib).
 *
 * They hold for every VM owner but root and the front end's exempt uid (the
 * mount's owner): one user of a shared mount cannot define, run or size VMs
 * past what the administrator allows, whatever the others do. A refusal is
 * SVM_QUOTA (EDQUOT) with a line naming the limit, the count and the option.
 */
#ifndef SVM_QUOTA_H
#define SVM_QUOTA_H

#include <jansson.h>

#include "internal.h"

/* Under s->mu: may owner define one more VM? */
int quota_may_create_locked(svm *s, uid_t owner, svm_error *err);
/* Before a start or restore of vm (already STARTING) with cfg builds anything. */
int quota_may_start(svm_vm *vm, const json_t *cfg, svm_error *err);

/* Before a named snapshot of owner is written: what its named snapshots take. */
int quota_may_keep_snapshot(svm *s, uid_t owner, svm_error *err);

#endif
