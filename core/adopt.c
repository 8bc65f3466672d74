/*
 * adopt.c - a daemon restart (docs/restart.md). What a daemon killed without
 * its cleanup left in the runtime dir is looked at once, before the new mount
 * serves: each VM whose Firecracker still runs and answers GET / is re-adopted
 * (as containerd's shims survive a containerd restart), everything else is
 * collected, and the log says which was which.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base.h"
#include "config.h"
#include "internal.h"
#include "jail.h"
#include "vmlimits.h"
#include "net.h"
#include "vmstate.h"

#define ADOPT_API_TIMEOUT_MS 2000 /* GET / of a VMM that may hang */
#define KILL_WAIT_MS 2000

/* Runtime dirs are named by VM ids: [a-z][a-z0-9]{7}. Nothing else in the
 * runtime dir is ever touched. */
static bool id_like(const char *n)
{
	if (strlen(n) != SVM_ID_LEN || n[0] < 'a' || n[0] > 'z')
		return false;
	for (const char *c = n; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
			return false;
	return true;
}

static const char *str_of(const json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));
	return v ? v : "";
}

/* Does another live mount use this runtime dir (with another bridge)? Its
 * identity lock is held then. A runtime dir without a state file may be
 * one of its VMs in the making, so those are collected only when no other
 * mount lives. */
static bool other_mount_lives(svm *s)
{
	DIR *d = opendir(s->runtime_dir);
	if (!d)
		return false;
	char ours[64];
	snprintf(ours, sizeof ours, ".net-%s.lock", net_tag(s->net) + strlen("smartvmfs:"));
	bool live = false;
	struct dirent *de;
	while (!live && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, ".net-", 5) || n < 10 || strcmp(de->d_name + n - 5, ".lock") ||
		    !strcmp(de->d_name, ours))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		live = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(fd); /* a lock we got goes with the fd */
	}
	closedir(d);
	return live;
}

/* Removes a runtime dir and what is in it (files, FIFOs, sockets: never a
 * subdirectory's contents). */
static void remove_rundir(svm *s, const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		svm_log(s, "cannot remove %s: %s", dir, strerror(errno));
}

/* A clone's mount point on the host (vm_proc.c made it): the empty
 * directories from vmm_rundir up to made_dir. */
static void remove_made_dirs(const char *vmm_rundir, const char *made_dir)
{
	if (!made_dir[0] || strncmp(vmm_rundir, made_dir, strlen(made_dir)) != 0)
		return;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", vmm_rundir);
	size_t top = strlen(made_dir);
	while (strlen(p) >= top && rmdir(p) == 0) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
}

/* Ends a VMM we are not taking over, through its pidfd (never a reused pid). */
static void kill_vmm(int pidfd)
{
	if (pidfd < 0)
		return;
	if (vm_proc_pidfd_signal(pidfd, SIGKILL) == 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		poll(&p, 1, KILL_WAIT_MS);
	}
	close(pidfd);
}

/* The VMM the state file names, if it is still that process: the pid with the
 * start time recorded, running our argv. Returns its pidfd, or -1. */
static int find_vmm(const json_t *doc, const char *id, const char *sock, pid_t *pid_out)
{
	json_int_t pid = json_integer_value(json_object_get(doc, "pid"));
	unsigned long long start =
		(unsigned long long)json_integer_value(json_object_get(doc, "pid_start"));
	*pid_out = (pid_t)pid;
	if (pid <= 0 || pid > (1 << 22) || !start || proc_start_time((pid_t)pid) != start ||
	    !proc_is_vmm((pid_t)pid, id, sock))
		return -1;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return -1;
	/* the pid may have ended and been reused between the checks and the
	 * open: the same start time after it proves the pidfd is that process */
	if (proc_start_time((pid_t)pid) != start) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* The state its VMM reports: running, paused; anything else (not started: a
 * daemon killed during a start) is not worth taking over. */
static int vmm_state(svm_vm *vm, svm_state *st, char *why, size_t len)
{
	svm_api_reply r = {0};
	svm_error e;
	int rc = -1;
	if (svm_api_call_timeout(vm->api, "GET", "/", NULL, ADOPT_API_TIMEOUT_MS, &r, &e) < 0) {
		snprintf(why, len, "its VMM does not answer GET /: %s", e.message);
	} else {
		const char *state = json_string_value(json_object_get(r.json, "state"));
		if (state && !strcmp(state, "Running")) {
			*st = SVM_RUNNING;
			rc = 0;
		} else if (state && !strcmp(state, "Paused")) {
			*st = SVM_PAUSED;
			rc = 0;
		} else {
			snprintf(why, len, "its VMM says \"%s\" (the daemon ended during a start)",
				 state ? state : "?");
		}
	}
	svm_api_reply_clear(&r);
	/* the connection is this thread's business only until the VM is listed */
	svm_api_disconnect(vm->api);
	return rc;
}

/* Takes the VMM over as VM NAME. Returns 0, or -1 with why (then the caller
 * collects, and pidfd is still the caller's). */
static int adopt_one(svm *s, const json_t *doc, const char *id, pid_t pid, int pidfd, char *why,
		     size_t len, svm_state *st_out)
{
	const char *name = str_of(doc, "name");
	if (!svm_name_valid(name)) {
		snprintf(why, len, "its state file names no valid VM");
		return -1;
	}
	svm_vm *other = svm_get_vm(s, name);
	if (other) {
		svm_vm_unref(other);
		snprintf(why, len, "another re-adopted VM is named %s", name);
		return -1;
	}
	svm_error e;
	char *cfg_text = json_dumps(json_object_get(doc, "config"), JSON_COMPACT);
	json_t *cfg = cfg_text ? svm_config_parse(cfg_text, strlen(cfg_text), &e) : NULL;
	free(cfg_text);
	if (!cfg) {
		snprintf(why, len, "its config in the state file is not valid");
		return -1;
	}
	svm_vm *vm = vm_new_at(s, name, id, &e);
	if (!vm) {
		json_decref(cfg);
		snprintf(why, len, "%s", e.message);
		return -1;
	}
	json_decref(vm->config);
	vm->config = cfg;
	svm_state st;
	if (vmm_state(vm, &st, why, len) < 0) {
		svm_vm_unref(vm);
		return -1;
	}
	json_int_t uid = json_integer_value(json_object_get(doc, "uid"));
	atomic_store(&vm->uid, (unsigned)uid);
	snprintf(vm->vmm_rundir, sizeof vm->vmm_rundir, "%s", str_of(doc, "vmm_rundir"));
	snprintf(vm->made_dir, sizeof vm->made_dir, "%s", str_of(doc, "made_dir"));
	/* CLOCK_MONOTONIC is the host's since boot: the crashed run's stamps hold */
	vm->spawn_ns = (uint64_t)json_integer_value(json_object_get(doc, "spawn_ns"));
	vm->running_ns = (uint64_t)json_integer_value(json_object_get(doc, "running_ns"));
	if (!vm->running_ns)
		vm->running_ns = vm->spawn_ns; /* the file is written at the spawn, not at the end of the start */
	vm->ready_ns = vm->spawn_ns;
	vm->pid_start = (unsigned long long)json_integer_value(json_object_get(doc, "pid_start"));
	if (vm_list_add(s, vm, &e) < 0) {
		svm_vm_unref(vm);
		snprintf(why, len, "%s", e.message);
		return -1;
	}
	net_adopt_leases(s->net, vm->id, vm->name, json_object_get(doc, "leases"));
	/* a jailed VMM: its jail and uid the VM's again (or it is not taken over) */
	const json_t *jail = json_object_get(doc, "jail");
	if ((jail || jail_present(vm->rundir)) && jail_adopt(vm, jail, pid, &e) < 0) {
		snprintf(why, len, "%s", e.message);
		svm_remove_vm(s, name, NULL);
		svm_vm_unref(vm);
		return -1;
	}
	if (vm_proc_adopt(vm, pid, pidfd, &e) < 0) {
		jail_release(vm);
		snprintf(why, len, "%s", e.message);
		svm_remove_vm(s, name, NULL); /* not live yet: it goes, with its leases */
		svm_vm_unref(vm);
		return -1;
	}
	pthread_mutex_lock(&vm->mu);
	vm_event_locked(vm, "re-adopted after a daemon restart");
	vm_state_locked(vm, st); /* and vm.json now names us as its daemon */
	pthread_mutex_unlock(&vm->mu);
	svm_vm_unref(vm);
	*st_out = st;
	return 0;
}

/* One runtime dir that has a state file of our identity. adopted: paths of
 * re-adopted clones' mount points, which the second pass must leave. */
static void judge(svm *s, const char *id, const char *dir, json_t *doc, bool *adopted)
{
	char sock[PATH_MAX + 16], why[1200] = "";
	snprintf(sock, sizeof sock, "%s/fc.sock", dir);
	const char *name = str_of(doc, "name"), *state = str_of(doc, "state");
	pid_t pid = 0;
	/* a jailed VMM names its socket as its jail shows it */
	int pidfd = find_vmm(doc, id, json_object_get(doc, "jail") ? jail_api_sock() : sock, &pid);
	*adopted = false;
	if (pidfd < 0) {
		if (pid > 0)
			snprintf(why, sizeof why, "its VMM (pid %d) is gone", (int)pid);
		else
			snprintf(why, sizeof why, "it had no VMM (%s)", state[0] ? state : "no state");
	} else if (s->opt.no_adopt) {
		snprintf(why, sizeof why, "re-adoption is off (noadopt): its VMM (pid %d) killed",
			 (int)pid);
	} else {
		svm_state st;
		if (adopt_one(s, doc, id, pid, pidfd, why, sizeof why, &st) == 0) {
			svm_log(s, "adopted VM %s (id %s, pid %d, %s)", name, id, (int)pid,
				svm_state_name(st));
			*adopted = true;
			return;
		}
		size_t n = strlen(why);
		snprintf(why + n, sizeof why - n, "; its VMM (pid %d) killed", (int)pid);
	}
	kill_vmm(pidfd);
	remove_made_dirs(str_of(doc, "vmm_rundir"), str_of(doc, "made_dir"));
	jail_forget(json_object_get(doc, "jail"));
	jail_collect(dir);
	vmlim_release_id(id); /* its cgroups (docs/limits.md) */
	remove_rundir(s, dir);
	svm_log(s, "collected VM %s (id %s) of a killed daemon: %s", name[0] ? name : "?", id, why);
}

/* Is path (a directory of the runtime dir) on the way to a re-adopted
 * clone's mount point? */
static bool protected_dir(const char *path, char **keep, size_t nkeep)
{
	size_t n = strlen(path);
	for (size_t i = 0; i < nkeep; i++)
		if (!strncmp(keep[i], path, n) && (keep[i][n] == '\0' || keep[i][n] == '/'))
			return true;
	return false;
}

int svm_adopt(svm *s, svm_error *err)
{
	svm_error_clear(err);
	if (s->adopt_done)
		return 0;
	s->adopt_done = true;
	if (!net_owns_identity(s->net))
		return 0; /* a live mount owns this identity's VMs; net_new said so */
	DIR *d = opendir(s->runtime_dir);
	if (!d)
		return 0;
	char **stateless = NULL, **keep = NULL;
	size_t nstateless = 0, nkeep = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!id_like(de->d_name))
			continue;
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/%s", s->runtime_dir, de->d_name);
		struct stat st;
		if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != svm_euid())
			continue;
		json_t *doc = vmstate_load(dir);
		if (!doc) {
			char **v = realloc(stateless, (nstateless + 1) * sizeof *v);
			if (v && (v[nstateless] = strdup(dir)))
				nstateless++;
			if (v)
				stateless = v;
			continue;
		}
		json_int_t dpid = json_integer_value(json_object_get(doc, "daemon_pid"));
		unsigned long long dstart =
			(unsigned long long)json_integer_value(json_object_get(doc, "daemon_start"));
		if (strcmp(str_of(doc, "owner"), net_tag(s->net)) != 0) {
			/* another identity's (another bridge): its own next mount's job */
		} else if (dpid > 0 && dpid != getpid() && dstart &&
			   proc_start_time((pid_t)dpid) == dstart) {
			svm_log(s, "left VM %s (id %s): its daemon (pid %d) still runs",
				str_of(doc, "name"), de->d_name, (int)dpid);
		} else {
			bool adopted;
			judge(s, de->d_name, dir, doc, &adopted);
			const char *vr = str_of(doc, "vmm_rundir");
			char **v = adopted && vr[0] ? realloc(keep, (nkeep + 1) * sizeof *v) : NULL;
			if (v && (v[nkeep] = strdup(vr)))
				nkeep++;
			if (v)
				keep = v;
		}
		json_decref(doc);
	}
	closedir(d);
	/* without a state file: a crashed run's (or of an older smartvmfs); but
	 * while another mount lives it may be that mount's VM in the making */
	bool others = nstateless && other_mount_lives(s);
	for (size_t i = 0; i < nstateless; i++) {
		if (!others && !protected_dir(stateless[i], keep, nkeep)) {
			remove_rundir(s, stateless[i]);
			svm_log(s, "collected runtime dir %s of a killed daemon (no state file)",
				stateless[i]);
		}
		free(stateless[i]);
	}
	free(stateless);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
	net_collect(s->net);
	return 0;
}
