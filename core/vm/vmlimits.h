/*
 * vmlimits.h - a VM's resource limits applied to its VMM (docs/limits.md): the
 * cgroup limits (cpu.max, memory.max, pids.max) in a cgroup of its own,
 * SUBTREE/ID under each controller's hierarchy (v1) or the unified one (v2),
 * and the rlimits (fsize, nofile) of its process. One path for both modes:
 * unjailed the core makes the cgroup, moves the VMM in and sets the rlimits
 * (prlimit); jailed the jailer does it at the same paths from --cgroup and
 * --resource-limit. Written live to a running VMM, kept in config.json.
 */
#ifndef SVM_VMLIMITS_H
#define SVM_VMLIMITS_H

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#include "internal.h"
#include "limitspec.h"

/* Every VM's cgroup is VMLIM_SUBTREE/ID under the hierarchy's root (the
 * jailer's --parent-cgroup): the mount's VMs are found together, apart from
 * other users of the jailer (whose default is the exec file's name). */
#define VMLIM_SUBTREE "smartvmfs"

enum { VMLIM_CPU, VMLIM_MEMORY, VMLIM_PIDS, VMLIM_CONTROLLERS };

/* Where this host's cgroups are (mount points are short: a longer one is not
 * used, and its controller counts as missing). */
#define VMLIM_MOUNT_MAX 512
typedef struct vmlim_host {
	int version;                                /* 1 or 2; 0: no cgroups at all */
	char root[VMLIM_MOUNT_MAX];                 /* v2: the unified hierarchy's root */
	char v1[VMLIM_CONTROLLERS][VMLIM_MOUNT_MAX]; /* v1: each controller's mount ("": none) */
} vmlim_host;

/* The host's, found once: v2 when /sys/fs/cgroup is a cgroup2 mount, else v1
 * with each controller's mount from /proc/self/mountinfo. */
const vmlim_host *vmlim_host_get(void);
/* A host whose cgroups are plain directories under root (tests): v2 with root
 * itself, v1 with root/cpu, root/memory, root/pids. */
void vmlim_host_at(vmlim_host *h, int version, const char *root);

/* ---- vmlimits_cg.c: one VM's cgroup on host h (id: the VM's id) */
/* The controller limit k needs is there (INVALID_CONFIG naming it if not). */
int vmlim_cg_check(const vmlim_host *h, svm_limit k, svm_error *err);
/* Limit k written to the VM's cgroup, made first when absent (v2: its
 * controllers enabled down to it). */
int vmlim_cg_write(const vmlim_host *h, svm_limit k, const char *id, const svm_limit_val *v,
		   svm_error *err);
/* Process pid (all its threads) moved into the VM's cgroup of limit k. */
int vmlim_cg_move(const vmlim_host *h, svm_limit k, const char *id, pid_t pid, svm_error *err);
/* Limit k as the kernel has it: 1, 0 when the VM has no cgroup for it. */
int vmlim_cg_read(const vmlim_host *h, svm_limit k, const char *id, svm_limit_val *out);
/* The VM's cgroups removed (each controller's; none there is fine). */
void vmlim_cg_remove(const vmlim_host *h, const char *id);
/* The jailer's --cgroup values for limit k (FILE=VALUE; v1's cpu.max is two):
 * the count put in out (each malloc'd). */
int vmlim_cg_jail_values(const vmlim_host *h, svm_limit k, const svm_limit_val *v, char *out[2]);

/* ---- vmlimits.c: the VM's side */
/* Before anything of a start is built: cfg's limits possible on this host. */
int vmlim_check(svm_vm *vm, const json_t *cfg, svm_error *err);
/* Before the VMM is spawned: unjailed, its cgroups made and written; jailed,
 * the jailer's arguments made (vmlim_jail_argv). */
int vmlim_prepare(svm_vm *vm, const json_t *cfg, svm_error *err);
/* The jailer's --cgroup-version, and its limit arguments (room for 16) put in
 * argv: the count. */
const char *vmlim_cgroup_version(void);
int vmlim_jail_argv(svm_vm *vm, char *argv[]);
/* Once the VMM is spawned (unjailed): moved into its cgroups, its rlimits set. */
int vmlim_apply_spawned(svm_vm *vm, const json_t *cfg, svm_error *err);
/* The VMM has ended (or never ran): its cgroups removed. Idempotent. */
void vmlim_release(svm_vm *vm);
/* The same for a VM known by its id alone (a killed daemon's VMM). */
void vmlim_release_id(const char *id);

#endif
