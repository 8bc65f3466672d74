/*
 * vmlimits.c - a VM's resource limits (vmlimits.h, docs/limits.md): checked before
 * a start builds anything, made before its VMM is spawned, the VMM moved into
 * them (or, jailed, the jailer told), read back from the kernel while it runs,
 * written to it live, kept in config.json, and removed when it ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "vmlimits.h"
#include "vmstate.h"

#define JAILER_NOFILE 2048 /* the jailer's no-file when it is given none */
#define JAIL_ARGS_MAX 16

/* What a jailed start hands the jailer (vm->lim, until the VMM ends). */
struct vmlim_args {
	char *argv[JAIL_ARGS_MAX];
	char *owned[JAIL_ARGS_MAX];
	int argc, nowned;
};

static const int rlimit_of[SVM_LIMIT_COUNT] = {[SVM_LIMIT_FSIZE] = RLIMIT_FSIZE,
					       [SVM_LIMIT_NOFILE] = RLIMIT_NOFILE};

/* cfg's limit k: 1 set (in v), 0 not set. cfg is validated. */
static int configured(const json_t *cfg, svm_limit k, svm_limit_val *v)
{
	const json_t *j = json_object_get(json_object_get(cfg, "limits"), svm_limit_name(k));
	char why[256];
	return j && svm_limit_from_json(k, j, v, why, sizeof why) == 0;
}

int vmlim_check(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	(void)vm;
	svm_limit_val v;
	for (int k = 0; k < SVM_LIMIT_COUNT; k++)
		if (svm_limit_is_cgroup(k) && configured(cfg, k, &v) &&
		    vmlim_cg_check(vmlim_host_get(), k, err) < 0)
			return -1;
	return 0;
}

static void args_free(struct vmlim_args *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->nowned; i++)
		free(a->owned[i]);
	free(a);
}

static void add(struct vmlim_args *a, const char *flag, char *owned)
{
	if (!owned || a->argc + 2 > JAIL_ARGS_MAX) {
		free(owned);
		return;
	}
	a->argv[a->argc++] = (char *)flag;
	a->argv[a->argc++] = owned;
	a->owned[a->nowned++] = owned;
}

/* The jailer's arguments for cfg's limits: the cgroups under our subtree, the
 * rlimits by the jailer's names. */
static struct vmlim_args *jail_args(const json_t *cfg)
{
	struct vmlim_args *a = calloc(1, sizeof *a);
	svm_limit_val v;
	bool cgroups = false;
	for (int k = 0; a && k < SVM_LIMIT_COUNT; k++) {
		if (!configured(cfg, k, &v))
			continue;
		if (svm_limit_is_cgroup(k)) {
			if (!cgroups)
				add(a, "--parent-cgroup", strdup(VMLIM_SUBTREE));
			cgroups = true;
			char *vals[2] = {NULL, NULL};
			int n = vmlim_cg_jail_values(vmlim_host_get(), k, &v, vals);
			for (int i = 0; i < n; i++)
				add(a, "--cgroup", vals[i]);
			continue;
		}
		char *s = NULL;
		/* "max" is the kernel's infinity, which the jailer takes as a number */
		if (asprintf(&s, "%s=%" PRIu64, k == SVM_LIMIT_FSIZE ? "fsize" : "no-file",
			     v.max ? (uint64_t)RLIM_INFINITY : v.value) < 0)
			s = NULL;
		add(a, "--resource-limit", s);
	}
	return a;
}

int vmlim_prepare(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	const vmlim_host *h = vmlim_host_get();
	vmlim_cg_remove(h, vm->id); /* a crashed run's, in the way */
	svm_limit_val v;
	/* made and written by the daemon in both modes: a value the kernel refuses
	 * fails here, before any VMM, and the jailer finds its cgroup there */
	for (int k = 0; k < SVM_LIMIT_COUNT; k++)
		if (svm_limit_is_cgroup(k) && configured(cfg, k, &v) &&
		    vmlim_cg_write(h, k, vm->id, &v, err) < 0) {
			vmlim_cg_remove(h, vm->id);
			return -1;
		}
	if (!vm->jailed)
		return 0;
	struct vmlim_args *a = jail_args(cfg);
	if (!a) {
		vmlim_cg_remove(h, vm->id);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	pthread_mutex_lock(&vm->mu);
	args_free(vm->lim);
	vm->lim = a;
	pthread_mutex_unlock(&vm->mu);
	return 0;
}

const char *vmlim_cgroup_version(void)
{
	return vmlim_host_get()->version == 2 ? "2" : "1";
}

int vmlim_jail_argv(svm_vm *vm, char *argv[])
{
	pthread_mutex_lock(&vm->mu);
	int n = vm->lim ? vm->lim->argc : 0;
	for (int i = 0; i < n; i++)
		argv[i] = vm->lim->argv[i];
	pthread_mutex_unlock(&vm->mu);
	return n;
}

static int set_rlimit(pid_t pid, svm_limit k, const svm_limit_val *v, svm_error *err)
{
	struct rlimit r;
	r.rlim_cur = r.rlim_max = v->max ? RLIM_INFINITY : (rlim_t)v->value;
	if (prlimit(pid, rlimit_of[k], &r, NULL) == 0)
		return 0;
	int e = errno;
	char text[64];
	svm_limit_format(k, v, text, sizeof text);
	/* another uid's process (a jailed VMM), or a hard limit raised: both
	 * need CAP_SYS_RESOURCE */
	return svm_error_set(err, e == EPERM ? SVM_PERMISSION : SVM_INVALID_ARGUMENT,
			     "limits: the kernel refused %s %s for the VMM (pid %d): %s%s",
			     svm_limit_name(k), text, (int)pid, strerror(e),
			     e == EPERM ? " (the daemon lacks CAP_SYS_RESOURCE, which setting the "
					  "limits of a jailed VMM or raising a hard limit needs)" : "");
}

int vmlim_apply_spawned(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	if (vm->jailed)
		return 0; /* the jailer did, before it became the VMM */
	pid_t pid = svm_vm_pid(vm);
	svm_limit_val v;
	for (int k = 0; k < SVM_LIMIT_COUNT; k++) {
		if (!configured(cfg, k, &v))
			continue;
		int rc = svm_limit_is_cgroup(k) ? vmlim_cg_move(vmlim_host_get(), k, vm->id, pid, err)
						: set_rlimit(pid, k, &v, err);
		if (rc < 0)
			return -1;
	}
	return 0;
}

void vmlim_release(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	struct vmlim_args *a = vm->lim;
	vm->lim = NULL;
	pthread_mutex_unlock(&vm->mu);
	args_free(a);
	vmlim_release_id(vm->id);
}

void vmlim_release_id(const char *id)
{
	vmlim_cg_remove(vmlim_host_get(), id);
}

/* ------------------------------------------------------------ the files */

/* What a start would give limit k that the config does not set. */
static void unset_default(svm_vm *vm, svm_limit k, svm_limit_val *v)
{
	memset(v, 0, sizeof *v);
	v->max = true;
	v->period = SVM_CPU_PERIOD_DEFAULT;
	if (svm_limit_is_cgroup(k))
		return;
	if (k == SVM_LIMIT_NOFILE && vm->s->jail) {
		v->max = false;
		v->value = JAILER_NOFILE;
		return;
	}
	struct rlimit r; /* the daemon's own, which an unjailed VMM inherits */
	if (getrlimit(rlimit_of[k], &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
		v->max = false;
		v->value = r.rlim_cur;
	}
}

/* The VMM's pid while it is alive, else 0 (vm->mu held). */
static pid_t alive_locked(svm_vm *vm)
{
	return vm->pid > 0 && !vm->reaped ? vm->pid : 0;
}

/* An rlimit of process pid, from /proc/PID/limits (which anyone may read; a
 * prlimit read of another uid's process needs CAP_SYS_RESOURCE). */
static bool proc_limit(pid_t pid, svm_limit k, svm_limit_val *v)
{
	const char *row = k == SVM_LIMIT_FSIZE ? "Max file size" : "Max open files";
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	FILE *f = fopen(path, "re");
	bool found = false;
	while (f && !found && fgets(line, sizeof line, f)) {
		if (strncmp(line, row, strlen(row)) != 0)
			continue;
		char soft[32];
		found = sscanf(line + strlen(row), "%31s", soft) == 1;
		v->max = found && !strcmp(soft, "unlimited");
		v->value = found && !v->max ? strtoull(soft, NULL, 10) : 0;
	}
	if (f)
		fclose(f);
	return found;
}

/* Limit k in force: the kernel's while a VMM runs, else what the next start
 * gives. */
static void in_force(svm_vm *vm, svm_limit k, svm_limit_val *v)
{
	pthread_mutex_lock(&vm->mu);
	pid_t pid = alive_locked(vm);
	bool set = configured(vm->config, k, v);
	pthread_mutex_unlock(&vm->mu);
	if (pid && svm_limit_is_cgroup(k)) {
		if (vmlim_cg_read(vmlim_host_get(), k, vm->id, v) <= 0)
			unset_default(vm, k, v); /* no cgroup of its own: no limit of its own */
		return;
	}
	if (pid && proc_limit(pid, k, v))
		return;
	if (!set)
		unset_default(vm, k, v);
}

char *svm_vm_limit_text(svm_vm *vm, const char *name, svm_error *err)
{
	int k = svm_limit_kind(name);
	if (k < 0) {
		svm_error_set(err, SVM_NOT_FOUND, "no limit %s", name);
		return NULL;
	}
	svm_limit_val v;
	char text[64], *out = NULL;
	in_force(vm, k, &v);
	svm_limit_format(k, &v, text, sizeof text);
	if (asprintf(&out, "%s\n", text) < 0) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	return out;
}

/* One write at a time: the kernel and config.json get them in one order. */
static pthread_mutex_t set_mu = PTHREAD_MUTEX_INITIALIZER;

/* Limit k applied to the running VMM pid. */
static int apply_live(svm_vm *vm, svm_limit k, pid_t pid, const svm_limit_val *v, svm_error *err)
{
	const vmlim_host *h = vmlim_host_get();
	if (!svm_limit_is_cgroup(k))
		return set_rlimit(pid, k, v, err);
	return vmlim_cg_write(h, k, vm->id, v, err) < 0 || vmlim_cg_move(h, k, vm->id, pid, err) < 0
		       ? -1 : 0;
}

int svm_vm_set_limit(svm_vm *vm, const char *name, const char *text, size_t len, svm_error *err)
{
	int k = svm_limit_kind(name);
	if (k < 0)
		return svm_error_set(err, SVM_NOT_FOUND, "no limit %s", name);
	svm_limit_val cur, v;
	char why[256];
	in_force(vm, k, &cur);
	if (svm_limit_parse(k, text, len, cur.period, &v, why, sizeof why) < 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "%s must be %s, not \"%.*s\"", name,
				     why, (int)(len < 64 ? len : 64), text);
	if (svm_limit_is_cgroup(k) && vmlim_cg_check(vmlim_host_get(), k, err) < 0)
		return -1;
	pthread_mutex_lock(&set_mu);
	pthread_mutex_lock(&vm->mu);
	svm_state st = vm->state;
	pid_t pid = alive_locked(vm);
	bool removed = atomic_load(&vm->removed);
	pthread_mutex_unlock(&vm->mu);
	int rc = 0;
	/* a start applies the config it copied, and an end removes the cgroup:
	 * in between, a value could be lost */
	if (removed || st == SVM_STARTING || st == SVM_STOPPING)
		rc = svm_error_set(err, SVM_INVALID_STATE, "%s of %s cannot change while it is %s",
				   name, vm->name, removed ? "removed" : svm_state_name(st));
	else if (pid && (st == SVM_RUNNING || st == SVM_PAUSED))
		rc = apply_live(vm, k, pid, &v, err);
	if (rc == 0) {
		pthread_mutex_lock(&vm->mu);
		json_t *lims = json_object_get(vm->config, "limits");
		if (!json_is_object(lims)) {
			lims = json_object();
			json_object_set_new(vm->config, "limits", lims);
		}
		json_object_set_new(lims, name, svm_limit_to_json(k, &v));
		vm_touch(vm);
		vmstate_save_locked(vm);
		vm_persist_locked(vm);
		pthread_mutex_unlock(&vm->mu);
	}
	pthread_mutex_unlock(&set_mu);
	if (rc == 0) /* events go out holding no lock of ours (smartvm.h) */
		sink_emit(&vm->s->sink, SVM_EV_CONFIG, vm, 0, NULL);
	return rc;
}
