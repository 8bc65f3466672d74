/*
 * vm_verbs.c - the verbs: start, pause, resume, stop, kill, snapshot, restore,
 * balloon, drive, netif, metadata, flushmetrics; and their async submission.
 *
 * Locking: vm->mu is held only to check and change state; the work (spawn, API
 * calls, waits) runs without it, under vm->busy, so reads of the VM never wait
 * for a verb. kill is the one verb that may run while another is busy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdroom.h"
#include "config.h"
#include "images.h"
#include "net.h"
#include "quota.h"
#include "snapfiles.h"
#include "stage.h"
#include "userfiles.h"
#include "vm_verbs.h"

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
static int begin_locked(svm_vm *vm, svm_verb verb, bool exclusive, svm_error *err)
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

static void emit_state(svm_vm *vm, uint64_t seq)
{
	char line[32];
	snprintf(line, sizeof line, "state %s", svm_state_name(svm_vm_state(vm)));
	sink_emit(&vm->s->sink, SVM_EV_STATE, vm, seq, line);
}

/* Ends an exclusive verb: new state (if the VMM is still there or force), not busy. */
static void finish(svm_vm *vm, int new_state, bool force)
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

static int action(svm_vm *vm, const char *type, svm_error *err)
{
	json_t *body = json_pack("{s:s}", "action_type", type);
	int rc = svm_api_call(vm->api, "PUT", "/actions", body, NULL, err);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------ start */

static int put(svm_vm *vm, const char *path, json_t *body, svm_error *err)
{
	if (!body)
		return 0;
	int rc = svm_api_call(vm->api, "PUT", path, body, NULL, err);
	json_decref(body);
	return rc;
}

static bool cancelled(svm_vm *vm, const atomic_bool *cancel, svm_error *err)
{
	pthread_mutex_lock(&vm->mu);
	bool killed = vm->kill_requested;
	pthread_mutex_unlock(&vm->mu);
	if (killed || (cancel && atomic_load(cancel))) {
		svm_error_set(err, SVM_INTERRUPTED, killed ? "killed while starting" : "start interrupted");
		return true;
	}
	return false;
}

/* Pre-boot configuration in Firecracker's order, then InstanceStart. */
static int configure_and_boot(svm_vm *vm, const json_t *cfg, const json_t *md,
			      const atomic_bool *cancel, svm_error *err)
{
	char path[256];
	if (put(vm, "/boot-source", svm_payload_boot_source(cfg), err) < 0 ||
	    put(vm, "/machine-config", svm_payload_machine_config(cfg), err) < 0 ||
	    put(vm, "/cpu-config", svm_payload_cpu_config(cfg), err) < 0 ||
	    put(vm, "/hotplug/memory", svm_payload_memory_hotplug(cfg), err) < 0)
		return -1;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(cfg, "drives"), i, d) {
		if (cancelled(vm, cancel, err))
			return -1;
		snprintf(path, sizeof path, "/drives/%s", json_string_value(json_object_get(d, "driveId")));
		if (put(vm, path, svm_payload_drive(d), err) < 0)
			return -1;
	}
	json_array_foreach(json_object_get(cfg, "pmem"), i, d) {
		snprintf(path, sizeof path, "/pmem/%s", json_string_value(json_object_get(d, "id")));
		if (put(vm, path, svm_payload_pmem(d), err) < 0)
			return -1;
	}
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, d) {
		snprintf(path, sizeof path, "/network-interfaces/%s",
			 json_string_value(json_object_get(d, "ifaceId")));
		if (put(vm, path, svm_payload_network_interface(d), err) < 0)
			return -1;
	}
	json_t *vsock = svm_payload_vsock(cfg);
	if (vsock) {
		/* the daemon's own file in the runtime dir, unless the config names one
		 * (DESIGN §3). Firecracker never unlinks it: a socket left there by an
		 * earlier run goes; anything else in the way is the user's, and stays */
		char *uds = vm_vsock_path_locked(vm, cfg);
		struct stat st;
		bool users = json_object_get(json_object_get(cfg, "vsock"), "udsPath") != NULL;
		if (users && uds && userfiles_check_socket_path(vm, uds, err) < 0) {
			free(uds);
			json_decref(vsock);
			return -1;
		}
		int in_way = !users && uds && lstat(uds, &st) == 0;
		if (in_way && !S_ISSOCK(st.st_mode)) {
			svm_error_set(err, SVM_INVALID_CONFIG, "vsock.udsPath %s exists and is not a "
				      "socket: refusing to remove it", uds);
			free(uds);
			json_decref(vsock);
			return -1;
		}
		if (in_way)
			unlink(uds);
		json_object_set_new(vsock, "uds_path", json_string(uds ? uds : ""));
		free(uds);
	}
	if (put(vm, "/vsock", vsock, err) < 0 || put(vm, "/balloon", svm_payload_balloon(cfg), err) < 0 ||
	    put(vm, "/entropy", svm_payload_entropy(cfg), err) < 0 ||
	    put(vm, "/mmds/config", svm_payload_mmds_config(cfg), err) < 0)
		return -1;
	if (md && put(vm, "/mmds", json_deep_copy(md), err) < 0)
		return -1;
	if (cancelled(vm, cancel, err))
		return -1;
	return action(vm, "InstanceStart", err);
}

/* After a failed start or restore: end the VMM, remove its socket, and say why
 * the process ended if that is the better explanation. */
static void roll_back(svm_vm *vm, const atomic_bool *cancel, svm_error *err)
{
	/* a cancel or kill ends the VMM under a request: say that, not the request */
	if (!cancelled(vm, cancel, err) && svm_vm_pid(vm) == 0 &&
	    err->code == SVM_SOCKET_REQUEST_FAILED) {
		char *ex = svm_vm_last_exit(vm);
		char msg[sizeof err->message];
		snprintf(msg, sizeof msg, "%s", err->message);
		svm_error_set(err, SVM_START_FAILED, "firecracker ended during start (%s): %s", ex, msg);
		free(ex);
	}
	vm_proc_signal_wait(vm, SIGKILL, -1);
}

typedef int (*boot_fn)(svm_vm *vm, const json_t *cfg, const json_t *md, const void *arg,
		       const atomic_bool *cancel, svm_error *err);

/* The front end's rule for the host paths of the config about to be used, checked
 * when it is used (a restore's config comes from its snapshot directory, and the
 * daemon's own checks at write time never saw it). */
static int check_config(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	const svm_options *o = &vm->s->opt;
	if (!o->check_config)
		return 0;
	char *text = json_dumps(cfg, JSON_COMPACT);
	if (!text)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	int rc = o->check_config(o->check_ud, svm_vm_owner_uid(vm), text, strlen(text), err) ? -1 : 0;
	free(text);
	return rc;
}

/* The shared frame of start and restore: check, STARTING, spawn, ready, boot_fn,
 * then the final state or a complete roll back to the state it had. */
/* cfg_override: the config to boot with instead of the VM's (restore);
 * new_config: what becomes the VM's config.json if it succeeds (both are taken);
 * show_at: NULL, or where the VMM is to see the runtime dir (a clone). */
/* uf: the host files a restore opened already (NULL: none); launch's own from here */
static int launch(svm_vm *vm, svm_verb verb, boot_fn boot, const void *arg, json_t *cfg_override,
		  json_t *new_config, const char *show_at, svm_state final_state, userfiles *uf,
		  const atomic_bool *cancel, svm_error *err)
{
	if (!uf && !(uf = userfiles_new(vm, err))) {
		json_decref(cfg_override);
		json_decref(new_config);
		return -1;
	}
	pthread_mutex_lock(&vm->mu);
	if (begin_locked(vm, verb, true, err) < 0) {
		pthread_mutex_unlock(&vm->mu);
		json_decref(cfg_override);
		json_decref(new_config);
		userfiles_free(uf);
		return -1;
	}
	svm_state prev = vm->state;
	vm->kill_requested = false;
	uint64_t seq = vm_state_locked(vm, SVM_STARTING);
	json_t *cfg = cfg_override ? cfg_override : json_deep_copy(vm->config);
	pthread_mutex_unlock(&vm->mu);
	/* starting now refuses metadata writes; one that checked the state before
	 * stores its document first, and this start takes that one */
	pthread_mutex_lock(&vm->md_mu);
	pthread_mutex_lock(&vm->mu);
	json_t *md = vm->metadata ? json_deep_copy(vm->metadata) : NULL;
	pthread_mutex_unlock(&vm->mu);
	pthread_mutex_unlock(&vm->md_mu);
	emit_state(vm, seq);

	int rc = -1;
	char *fc_version = NULL, *binary = NULL, *image_held = NULL;
	bool net_done = false, staged = false;
	svm *s = vm->s;
	/* everything checked and resolved before anything is built (DESIGN §6) */
	if (limits_fds_for_start(err) < 0 || quota_may_start(vm, cfg, err) < 0 ||
	    check_config(vm, cfg, err) < 0 ||
	    svm_config_validate(cfg, err) < 0 || svm_config_check_bootable(cfg, err) < 0 ||
	    images_apply(s->images, cfg, &fc_version, &image_held, err) < 0 ||
	    userfiles_open_config(uf, cfg, err) < 0 ||
	    !(binary = images_firecracker(s->images, fc_version, err)) || cancelled(vm, cancel, err))
		goto out;
	/* then built in order, and on failure removed in reverse */
	if (stage_drives(vm, cfg, err) < 0)
		goto out;
	staged = true;
	if (userfiles_link_in_place(uf, cfg, err) < 0)
		goto out;
	if (net_prepare_vm(s->net, vm->id, vm->name, cfg, err) < 0)
		goto out;
	net_done = true;
	if (vm_proc_spawn(vm, binary, cfg, show_at, err) < 0)
		goto out;
	if (vm_proc_wait_ready(vm, cancel, err) < 0 || boot(vm, cfg, md, arg, cancel, err) < 0 ||
	    cancelled(vm, cancel, err)) {
		roll_back(vm, cancel, err);
		goto out;
	}
	pthread_mutex_lock(&vm->mu);
	char *uds = vm_vsock_path_locked(vm, cfg);
	pthread_mutex_unlock(&vm->mu);
	if (userfiles_give_vsock(vm, uds) < 0)
		sink_log(&s->sink, "vm %s: cannot give %s to uid %u: %s", vm->name, uds,
			(unsigned)svm_vm_owner_uid(vm), strerror(errno));
	free(uds);
	rc = 0;
out:
	if (rc < 0 && net_done)
		net_rollback_vm(s->net, vm->id);
	if (rc < 0 && staged)
		stage_cleanup(vm);
	userfiles_free(uf); /* the VMM has its files open, or is gone */
	free(fc_version);
	free(binary);
	pthread_mutex_lock(&vm->mu);
	svm_state end;
	if (rc == 0 && vm->pid != 0 && !vm->kill_requested) {
		end = final_state;
		vm->running_ns = svm_now_ns();
		vm->started_as = end;
		vm->started_pid = vm->pid;
		/* the VMM's end (vm_proc.c) gives the bundle back */
		images_release(s->images, vm->image_held); /* none: the last VMM ended */
		free(vm->image_held);
		vm->image_held = image_held;
		image_held = NULL;
		if (new_config) {
			json_decref(vm->config);
			vm->config = json_incref(new_config);
		}
	} else {
		if (rc == 0) {
			/* it died or was killed right at the end */
			rc = -1;
			if (vm->kill_requested)
				svm_error_set(err, SVM_INTERRUPTED, "killed while starting");
			else
				svm_error_set(err, SVM_START_FAILED, "firecracker ended during start (%s)",
					      vm->last_exit);
		}
		end = vm->kill_requested ? SVM_STOPPED : prev;
		/* the bundle is free before the state says the start failed */
		images_release(s->images, image_held);
		free(image_held);
	}
	seq = vm_state_locked(vm, end);
	vm->busy = false;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->mu);
	emit_state(vm, seq);
	json_decref(cfg);
	json_decref(new_config);
	json_decref(md);
	return rc;
}

static int boot_fresh(svm_vm *vm, const json_t *cfg, const json_t *md, const void *arg,
		      const atomic_bool *cancel, svm_error *err)
{
	(void)arg;
	return configure_and_boot(vm, cfg, md, cancel, err);
}

static int do_start(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	return launch(vm, SVM_V_START, boot_fresh, NULL, NULL, NULL, NULL, SVM_RUNNING, NULL, cancel,
		      err);
}

/* ------------------------------------------------------------ snapshot arguments */

/* A snapshot argument is a path (it has a '/') or a NAME, kept in the VM's
 * snapshot directory DATADIR/snapshots/VMNAME/NAME (snapfiles.h). Checked before
 * the state, so a bad one is EINVAL in any state. */
static int check_snapshot_arg(const char *arg, svm_error *err)
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

/* ------------------------------------------------------------ restore */

typedef struct restore_arg {
	char vmstate[64], mem[64]; /* the held files' names (userfiles) */
	bool resume;
	bool clone; /* into another VM than the snapshot's (docs/staging.md) */
} restore_arg;

static int boot_from_snapshot(svm_vm *vm, const json_t *cfg, const json_t *md, const void *arg,
			      const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	const restore_arg *ra = arg;
	char uds[PATH_MAX];
	/* the device state binds its vsock socket at the original path, which is
	 * this runtime dir (for a clone, through its mount): a stale one would be
	 * in the way */
	snprintf(uds, sizeof uds, "%s/vsock.sock", vm->rundir);
	unlink(uds);
	json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:b}", "snapshot_path", ra->vmstate, "mem_backend",
				 "backend_type", "File", "backend_path", ra->mem, "resume_vm", ra->resume);
	/* the device state names the original VM's TAPs: a clone has its own
	 * (net_prepare_vm wrote them into cfg). Firecracker v1.12 and later. */
	size_t i;
	json_t *iface, *ov = json_array();
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, iface) {
		const char *id = json_string_value(json_object_get(iface, "ifaceId"));
		const char *tap = json_string_value(json_object_get(iface, "hostDevName"));
		if (ra->clone && id && tap)
			json_array_append_new(ov, json_pack("{s:s, s:s}", "iface_id", id,
							    "host_dev_name", tap));
	}
	if (body && json_array_size(ov))
		json_object_set(body, "network_overrides", ov);
	json_decref(ov);
	if (put(vm, "/snapshot/load", body, err) < 0)
		return -1;
	/* the MMDS data store is not part of a snapshot: put it back */
	if (md && put(vm, "/mmds", json_deep_copy(md), err) < 0)
		return -1;
	return 0;
}

/* The snapshot's config, its drives' kept copies (opened from the snapshot with
 * its rights) in place of their sources: the drives must be where they were.
 * d NULL (the two-file form): no copies, the sources as they are. */
static json_t *restore_config(snapdir *d, userfiles *uf, const char *text, svm_error *err)
{
	json_t *saved = json_loads(text, 0, NULL);
	size_t i;
	json_t *dr;
	json_array_foreach(d ? json_object_get(saved, "drives") : NULL, i, dr) {
		char kept[NAME_MAX + 1], name[64];
		snprintf(kept, sizeof kept, "drive-%s.img", json_string_value(json_object_get(dr, "driveId")));
		int fd = snapdir_file(d, kept, err);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 || userfiles_hold(uf, fd, name, sizeof name, err) < 0) {
			json_decref(saved);
			return NULL;
		}
		json_object_set_new(dr, "pathOnHost", json_string(name));
	}
	svm_error_clear(err);
	char *out = saved ? json_dumps(saved, 0) : NULL;
	json_decref(saved);
	json_t *cfg = out ? svm_config_parse(out, strlen(out), err) : NULL;
	free(out);
	return cfg;
}

static int do_restore(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	if (check_snapshot_arg(req->argv[0], err) < 0)
		return -1;
	restore_arg ra = {.resume = false};
	bool pair = req->argc > 1 && strchr(req->argv[1], '/');
	const char *opt = req->argc > (pair ? 2 : 1) ? req->argv[pair ? 2 : 1] : NULL;
	if ((pair && !strchr(req->argv[0], '/')) || (!pair && req->argc > 2))
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s",
				     svm_verb_table()[SVM_V_RESTORE].usage);
	if (opt) {
		if (strcmp(opt, "resume") != 0)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
					     "restore: unknown option \"%s\" (usage: %s)", opt,
					     svm_verb_table()[SVM_V_RESTORE].usage);
		ra.resume = true;
	}
	/* the state first: EBUSY in a running VM whatever the directory holds */
	pthread_mutex_lock(&vm->mu);
	int ok = begin_locked(vm, SVM_V_RESTORE, true, err);
	if (ok == 0)
		vm->busy = false; /* launch() takes it again */
	pthread_mutex_unlock(&vm->mu);
	if (ok < 0)
		return -1;
	snapdir d, m = {.dfd = -1};
	snap_checked c = {.vmstate_fd = -1};
	userfiles *uf = NULL;
	json_t *cfg = NULL, *as_saved = NULL;
	int fd;
	if ((pair ? snapdir_open_file(vm, req->argv[0], &d, err)
		  : snapdir_open(vm, req->argv[0], false, &d, err)) < 0)
		return -1;
	if ((pair && snapdir_open_file(vm, req->argv[1], &m, err) < 0) ||
	    snapdir_verify(&d, vm, &c, err) < 0 || !(uf = userfiles_new(vm, err)))
		goto bad;
	fd = c.vmstate_fd;
	c.vmstate_fd = -1;
	if (userfiles_hold(uf, fd, ra.vmstate, sizeof ra.vmstate, err) < 0 ||
	    (fd = pair ? snapdir_file(&m, m.state, err) : snapdir_file(&d, "mem", err)) < 0 ||
	    userfiles_hold(uf, fd, ra.mem, sizeof ra.mem, err) < 0)
		goto bad;
	/* config.json becomes the snapshot's, as the user wrote it (source paths) */
	if (!(as_saved = svm_config_parse(c.config, strlen(c.config), err)) ||
	    !(cfg = restore_config(pair ? NULL : &d, uf, c.config, err)))
		goto bad;
	/* where the snapshot's VMM had its runtime dir: the device state names
	 * drive and vsock paths in it. Another VM's: restore as a clone, in a mount
	 * namespace that shows this VM's runtime dir at that path. */
	ra.clone = strcmp(c.rundir, vm->rundir) != 0;
	snapdir_close(&d);
	snapdir_close(&m);
	free(c.config);
	return launch(vm, SVM_V_RESTORE, boot_from_snapshot, &ra, cfg, as_saved,
		      ra.clone ? c.rundir : NULL, ra.resume ? SVM_RUNNING : SVM_PAUSED, uf, cancel, err);
bad:
	json_decref(as_saved);
	json_decref(cfg);
	userfiles_free(uf);
	if (c.vmstate_fd >= 0)
		close(c.vmstate_fd);
	free(c.config);
	snapdir_close(&d);
	snapdir_close(&m);
	return -1;
}

/* ------------------------------------------------------------ pause/resume */

static int set_vm_state(svm_vm *vm, svm_verb verb, const char *fc_state, svm_state to,
			svm_error *err)
{
	pthread_mutex_lock(&vm->mu);
	int rc = begin_locked(vm, verb, true, err);
	pthread_mutex_unlock(&vm->mu);
	if (rc < 0)
		return -1;
	json_t *body = json_pack("{s:s}", "state", fc_state);
	rc = svm_api_call(vm->api, "PATCH", "/vm", body, NULL, err);
	json_decref(body);
	finish(vm, rc == 0 ? (int)to : -1, false);
	return rc;
}

/* ------------------------------------------------------------ stop/kill */

static bool is_x86(svm_vm *vm)
{
	return strcmp(vm->s->arch, "x86_64") == 0;
}

static int do_stop(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	pthread_mutex_lock(&vm->mu);
	if (begin_locked(vm, SVM_V_STOP, true, err) < 0) {
		pthread_mutex_unlock(&vm->mu);
		return -1;
	}
	bool was_running = vm->state == SVM_RUNNING;
	vm->expect_exit = true;
	uint64_t seq = vm_state_locked(vm, SVM_STOPPING);
	pthread_mutex_unlock(&vm->mu);
	emit_state(vm, seq);

	const svm_options *o = &vm->s->opt;
	bool ended = false;
	/* a paused guest cannot see Ctrl-Alt-Del; aarch64 has none */
	if (was_running && is_x86(vm)) {
		svm_error ignored;
		if (action(vm, "SendCtrlAltDel", &ignored) == 0)
			ended = vm_proc_wait_exit(vm, o->stop_timeout_ms) == 0;
	}
	if (!ended)
		ended = vm_proc_signal_wait(vm, SIGTERM, o->kill_timeout_ms) == 0;
	if (!ended)
		vm_proc_signal_wait(vm, SIGKILL, -1);
	/* the exit watch set the state to stopped */
	finish(vm, SVM_STOPPED, true);
	return 0;
}

static int do_kill(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	pthread_mutex_lock(&vm->mu);
	if (begin_locked(vm, SVM_V_KILL, false, err) < 0) {
		pthread_mutex_unlock(&vm->mu);
		return -1;
	}
	vm->kill_requested = true;
	vm->expect_exit = true;
	pthread_mutex_unlock(&vm->mu);
	vm_proc_signal_wait(vm, SIGKILL, -1);
	/* a start in flight rolls back to stopped; wait until it has */
	pthread_mutex_lock(&vm->mu);
	while (vm->busy && vm->state == SVM_STARTING)
		pthread_cond_wait(&vm->cv, &vm->mu);
	uint64_t seq = 0;
	if (vm->state != SVM_STOPPED && vm->state != SVM_STARTING && !vm->busy)
		seq = vm_state_locked(vm, SVM_STOPPED);
	pthread_mutex_unlock(&vm->mu);
	if (seq)
		emit_state(vm, seq);
	return 0;
}

int vm_kill_and_wait(svm_vm *vm)
{
	svm_error e;
	if (svm_vm_pid(vm) == 0 && svm_vm_state(vm) != SVM_STARTING)
		return 0;
	return do_kill(vm, NULL, NULL, &e);
}

/* ------------------------------------------------------------ snapshot */

/* Keeps a copy of each staged drive with the snapshot: staged drives go with
 * their VM. */
static int keep_staged(svm_vm *vm, snapdir *d, svm_error *err)
{
	pthread_mutex_lock(&vm->mu);
	json_t *cfg = json_deep_copy(vm->config);
	pthread_mutex_unlock(&vm->mu);
	size_t i;
	json_t *dr;
	int rc = 0;
	json_array_foreach(json_object_get(cfg, "drives"), i, dr) {
		const char *id = json_string_value(json_object_get(dr, "driveId"));
		char staged[PATH_MAX], kept[NAME_MAX + 1];
		snprintf(staged, sizeof staged, "%s/drive-%s.img", vm->rundir, id);
		snprintf(kept, sizeof kept, "drive-%s.img", id);
		struct stat st;
		if (lstat(staged, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		int fd = snapdir_fresh(d, kept, err);
		if (fd < 0 || stage_copy_into(staged, fd, kept, err) < 0) {
			if (fd >= 0)
				close(fd); /* its .new goes with the others at close */
			rc = -1;
			break;
		}
		close(fd);
	}
	json_decref(cfg);
	return rc;
}

static int do_snapshot(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	if (check_snapshot_arg(req->argv[0], err) < 0)
		return -1;
	/* the two-file form: STATE MEM (a second path), as the seed's createSnapshot */
	bool pair = req->argc > 1 && strchr(req->argv[1], '/');
	const char *type = "Full", *tword = req->argc > (pair ? 2 : 1) ? req->argv[pair ? 2 : 1] : NULL;
	if (pair && (!strchr(req->argv[0], '/') || check_snapshot_arg(req->argv[1], err) < 0))
		return err->code ? -1 : svm_error_set(err, SVM_INVALID_ARGUMENT,
						      "snapshot: two files are two paths (STATE MEM)");
	if (!pair && req->argc > 2)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s",
				     svm_verb_table()[SVM_V_SNAPSHOT].usage);
	if (tword) {
		if (strcmp(tword, "diff") == 0)
			type = "Diff";
		else if (strcmp(tword, "full") != 0)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
					     "snapshot: type \"%s\" is neither full nor diff", tword);
	}
	pthread_mutex_lock(&vm->mu);
	int rc = begin_locked(vm, SVM_V_SNAPSHOT, true, err);
	pthread_mutex_unlock(&vm->mu);
	if (rc < 0)
		return -1;
	/* the directory is made (a NAME only once accepted, so a refused one
	 * leaves nothing), and its files made fresh, with the right rights; the
	 * VMM writes into the files it is handed */
	snapdir d, m = {.dfd = -1};
	int vfd = -1, mfd = -1;
	char vname[64], mname[64];
	rc = pair ? snapdir_open_file(vm, req->argv[0], &d, err)
		  : snapdir_open(vm, req->argv[0], true, &d, err);
	if (rc == 0 && pair)
		rc = snapdir_open_file(vm, req->argv[1], &m, err);
	if (rc == 0 && ((vfd = snapdir_fresh(&d, d.state, err)) < 0 ||
			(mfd = pair ? snapdir_fresh(&m, m.state, err) : snapdir_fresh(&d, "mem", err)) < 0))
		rc = -1;
	if (rc == 0) {
		hostpath_fd_name(vfd, vname, sizeof vname);
		hostpath_fd_name(mfd, mname, sizeof mname);
		json_t *body = json_pack("{s:s, s:s, s:s}", "snapshot_type", type, "snapshot_path", vname,
					 "mem_file_path", mname);
		rc = put(vm, "/snapshot/create", body, err);
	}
	/* the directory form keeps copies of staged drives and config.json; the two
	 * files keep the config in STATE.seal, and no drives */
	if (rc == 0 && !pair)
		rc = keep_staged(vm, &d, err);
	char *cfg = rc == 0 ? svm_vm_config_json(vm) : NULL;
	if (rc == 0 && !pair)
		rc = snapdir_write(&d, "config.json", cfg, err);
	/* the runtime dir as the VMM sees it (a clone's is its original's): what
	 * the device state's paths are in, for a restore into another VM */
	if (rc == 0)
		rc = snapdir_seal(&d, vm, vfd, cfg, vm->vmm_rundir[0] ? vm->vmm_rundir : vm->rundir, err);
	/* all made: now in place of the snapshot before (if any), which a failure
	 * up to here left whole */
	if (rc == 0 && pair)
		rc = snapdir_commit(&m, err);
	if (rc == 0)
		rc = snapdir_commit(&d, err);
	free(cfg);
	if (vfd >= 0)
		close(vfd);
	if (mfd >= 0)
		close(mfd);
	snapdir_close(&d);
	snapdir_close(&m);
	finish(vm, -1, false);
	return rc;
}

/* ------------------------------------------------------------ live updates */

static int live_begin(svm_vm *vm, svm_verb verb, svm_error *err)
{
	pthread_mutex_lock(&vm->mu);
	int rc = begin_locked(vm, verb, false, err);
	pthread_mutex_unlock(&vm->mu);
	return rc;
}

/* A live PATCH of one size in MiB (balloon MIB, hotplug MIB): the argument
 * checked before the state, then {key: MIB} to path. */
static int patch_mib(svm_vm *vm, const svm_request *req, svm_verb verb, const char *path,
		     const char *key, svm_error *err)
{
	char *end;
	errno = 0;
	long long mib = strtoll(req->argv[0], &end, 10);
	if (errno || *end || end == req->argv[0] || mib < 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "%s: \"%s\" is not a size in MiB",
				     svm_verb_table()[verb].name, req->argv[0]);
	if (live_begin(vm, verb, err) < 0)
		return -1;
	json_t *body = json_pack("{s:I}", key, (json_int_t)mib);
	int rc = svm_api_call(vm->api, "PATCH", path, body, NULL, err);
	json_decref(body);
	return rc;
}

/* hinting start [ack] | hinting stop: a free page hinting run of the balloon
 * (Firecracker's acknowledge_on_stop: the guest's pages come back at the stop). */
static int do_hinting(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	bool start = !strcmp(req->argv[0], "start"), stop = !strcmp(req->argv[0], "stop");
	bool ack = req->argc > 1 && !strcmp(req->argv[1], "ack");
	if ((!start && !stop) || (stop && req->argc > 1) || (start && req->argc > 1 && !ack))
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s",
				     svm_verb_table()[SVM_V_HINTING].usage);
	if (live_begin(vm, SVM_V_HINTING, err) < 0)
		return -1;
	json_t *body = start ? json_pack("{s:b}", "acknowledge_on_stop", ack) : NULL;
	int rc = svm_api_call(vm->api, "PATCH", start ? "/balloon/hinting/start" : "/balloon/hinting/stop",
			      body, NULL, err);
	json_decref(body);
	return rc;
}

/* Whether the config says drive id is read-only (the VMM opens its file so). */
static bool drive_read_only(svm_vm *vm, const char *id)
{
	pthread_mutex_lock(&vm->mu);
	bool ro = false;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(vm->config, "drives"), i, d) {
		const char *did = json_string_value(json_object_get(d, "driveId"));
		if (did && !strcmp(did, id))
			ro = json_is_true(json_object_get(d, "isReadOnly"));
	}
	pthread_mutex_unlock(&vm->mu);
	return ro;
}

/* drive ID PATH|- [RATELIMITER-JSON]: a new backing file ("-" keeps it) and/or a
 * new rate limiter ({"bandwidth": {...}, "ops": {...}} in the config's camelCase) */
static int do_drive(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	bool new_path = strcmp(req->argv[1], "-") != 0;
	if (!new_path && req->argc < 3)
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "drive %s: nothing to change (usage: %s)", req->argv[0],
				     svm_verb_table()[SVM_V_DRIVE].usage);
	json_t *rl = NULL;
	if (req->argc > 2) {
		json_error_t je;
		json_t *camel = json_loads(req->argv[2], JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(camel)) {
			json_decref(camel);
			return svm_error_set(err, SVM_INVALID_ARGUMENT, "drive %s: rate limiter: %s",
					     req->argv[0], camel ? "not a JSON object" : je.text);
		}
		/* checked as the config checks one, then built as Firecracker wants it */
		json_t *probe = json_pack("{s:{s:i, s:i}, s:[{s:s, s:s, s:b, s:O}]}", "machineConfig",
					  "vcpuCount", 1, "memSizeMib", 128, "drives", "driveId",
					  req->argv[0], "pathOnHost", "/", "isRootDevice", 0,
					  "rateLimiter", camel);
		int bad = svm_config_validate(probe, err);
		json_decref(probe);
		if (bad == 0)
			rl = svm_payload_rate_limiter(camel);
		json_decref(camel);
		if (bad < 0)
			return -1;
	}
	/* the new file is opened with the owner's rights, as the VMM will open it,
	 * and handed over by a link to the open file (userfiles.h) */
	userfiles *uf = NULL;
	char link[PATH_MAX];
	if (live_begin(vm, SVM_V_DRIVE, err) < 0 ||
	    (new_path && (!(uf = userfiles_new(vm, err)) ||
			  userfiles_link_drive(uf, req->argv[0], req->argv[1],
					       drive_read_only(vm, req->argv[0]), link, sizeof link,
					       err) < 0))) {
		userfiles_free(uf);
		json_decref(rl);
		return -1;
	}
	char path[256];
	snprintf(path, sizeof path, "/drives/%s", req->argv[0]);
	json_t *body = json_pack("{s:s}", "drive_id", req->argv[0]);
	if (new_path)
		json_object_set_new(body, "path_on_host", json_string(link));
	if (rl)
		json_object_set_new(body, "rate_limiter", rl);
	int rc = svm_api_call(vm->api, "PATCH", path, body, NULL, err);
	json_decref(body);
	userfiles_free(uf); /* the VMM has the file open now */
	return rc;
}

static int do_netif(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	json_error_t je;
	json_t *upd = json_loads(req->argv[1], 0, &je);
	if (!upd)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "netif: %s", je.text);
	json_t *body = svm_payload_netif_update(req->argv[0], upd, err);
	json_decref(upd);
	if (!body)
		return -1;
	if (live_begin(vm, SVM_V_NETIF, err) < 0) {
		json_decref(body);
		return -1;
	}
	char path[256];
	snprintf(path, sizeof path, "/network-interfaces/%s", req->argv[0]);
	int rc = svm_api_call(vm->api, "PATCH", path, body, NULL, err);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------ dispatch */

static int do_pause(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	return set_vm_state(vm, SVM_V_PAUSE, "Paused", SVM_PAUSED, err);
}

static int do_resume(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	return set_vm_state(vm, SVM_V_RESUME, "Resumed", SVM_RUNNING, err);
}

static int do_balloon(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	return patch_mib(vm, req, SVM_V_BALLOON, "/balloon", "amount_mib", err);
}

static int do_metadata(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	if (live_begin(vm, SVM_V_METADATA, err) < 0)
		return -1;
	return vm_merge_metadata(vm, req->argv[0], err);
}

static int do_flush_metrics(svm_vm *vm, const svm_request *req, const atomic_bool *cancel,
			    svm_error *err)
{
	(void)req;
	(void)cancel;
	if (live_begin(vm, SVM_V_FLUSH_METRICS, err) < 0)
		return -1;
	return action(vm, "FlushMetrics", err);
}

static int do_hotplug(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	/* how much of the hotplug region the guest should have plugged */
	return patch_mib(vm, req, SVM_V_HOTPLUG, "/hotplug/memory", "requested_size_mib", err);
}

/* One handler per verb of the table (core/base/verbs.c), in its order. */
typedef int verb_fn(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err);
static verb_fn *const handlers[SVM_VERB_COUNT] = {
	[SVM_V_START] = do_start,
	[SVM_V_PAUSE] = do_pause,
	[SVM_V_RESUME] = do_resume,
	[SVM_V_STOP] = do_stop,
	[SVM_V_KILL] = do_kill,
	[SVM_V_SNAPSHOT] = do_snapshot,
	[SVM_V_RESTORE] = do_restore,
	[SVM_V_BALLOON] = do_balloon,
	[SVM_V_DRIVE] = do_drive,
	[SVM_V_NETIF] = do_netif,
	[SVM_V_METADATA] = do_metadata,
	[SVM_V_FLUSH_METRICS] = do_flush_metrics,
	[SVM_V_HINTING] = do_hinting,
	[SVM_V_HOTPLUG] = do_hotplug,
};

static bool boots(svm_verb verb)
{
	return (unsigned)verb < SVM_VERB_COUNT && (svm_verb_table()[verb].flags & SVM_CF_BOOTS);
}

int vm_run(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	svm_error_clear(err);
	if ((unsigned)req->verb >= SVM_VERB_COUNT || !handlers[req->verb])
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown verb %d", (int)req->verb);
	const svm_verb_info *vi = &svm_verb_table()[req->verb];
	if (req->argc < vi->min_args || req->argc > vi->max_args)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s", vi->usage);
	for (int i = 0; i < req->argc; i++)
		if (!req->argv[i] || !*req->argv[i])
			return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: %s", vi->usage);
	return handlers[req->verb](vm, req, cancel, err);
}

/* After an op has been answered: what may wait costs nobody there. */
static void after_op(svm_vm *vm, svm_verb verb, int rc, const svm_error *err)
{
	if (boots(verb)) {
		/* the daemon's log line (a write, an event) would delay the answer */
		pthread_mutex_lock(&vm->mu);
		/* as the start ended, not as it is now: the VMM may be gone by now */
		svm_state st = vm->started_as;
		pid_t pid = vm->started_pid;
		double run_ms = (double)(vm->running_ns - vm->spawn_ns) / 1e6;
		double ready_ms = (double)(vm->ready_ns - vm->spawn_ns) / 1e6;
		pthread_mutex_unlock(&vm->mu);
		if (rc == 0)
			sink_log(&vm->s->sink, "vm %s: %s (pid %d) in %.2f ms (API ready after %.2f ms)",
				vm->name, svm_state_name(st), (int)pid, run_ms, ready_ms);
		else if (err && err->code == SVM_NO_SPACE)
			/* the host ran out (descriptors, space): the administrator reads
			 * the log; the user's own mistakes stay in the VM's error file */
			sink_log(&vm->s->sink, "vm %s: %s failed: %s", vm->name,
				svm_verb_table()[verb].name, err->message);
	}
	loop_note_churn(vm->s->loop);
	vm_proc_close_deferred(); /* it may wait a few ms */
}

int svm_vm_do(svm_vm *vm, const svm_request *req, svm_error *err)
{
	svm_error local;
	svm_api_hold(vm->api);
	int rc = vm_run(vm, req, NULL, err ? err : &local);
	svm_api_release(vm->api);
	after_op(vm, req->verb, rc, err ? err : &local);
	return rc;
}

/* ------------------------------------------------------------ async */

struct svm_op {
	svm_vm *vm;
	svm_request req;
	char *args[SVM_MAX_ARGS];
	svm_done_fn done;
	void *ud;
	atomic_bool cancel;
};

static void *op_main(void *arg)
{
	svm_op *op = arg;
	svm_error e;
	/* one connection for the verb's requests; the release closes it, before
	 * the reply, so a reply finds the VM's descriptors as it keeps them (3),
	 * not 3 more until the thread ends: a VM is mostly idle, and its libcurl
	 * handle (the connection, curl's socket pair, two easy handles, read
	 * buffers: tens of KiB, figure 5c) is made again by the next request at
	 * the cost of a connect on a Unix socket */
	svm_api_hold(op->vm->api);
	int rc = vm_run(op->vm, &op->req, &op->cancel, &e);
	svm_api_release(op->vm->api);
	svm *s = op->vm->s;
	op->done(op->ud, &e);
	after_op(op->vm, op->req.verb, rc, &e);
	for (int i = 0; i < SVM_MAX_ARGS; i++)
		free(op->args[i]);
	svm_vm_unref(op->vm);
	free(op);
	if (atomic_fetch_sub(&s->ops, 1) == 1) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->ops_cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

svm_op *svm_vm_submit(svm_vm *vm, const svm_request *req, svm_done_fn done, void *ud)
{
	svm_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->vm = vm;
	svm_vm_ref(vm);
	op->req = *req;
	for (int i = 0; i < req->argc && i < SVM_MAX_ARGS; i++) {
		op->args[i] = strdup(req->argv[i] ? req->argv[i] : "");
		op->req.argv[i] = op->args[i];
	}
	op->done = done;
	op->ud = ud;
	atomic_init(&op->cancel, false);
	atomic_fetch_add(&vm->s->ops, 1);
	/* one short-lived thread per op: ops mostly wait (on the VMM), and a thread
	 * per op means one slow start never queues behind another */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* 2 MiB, not less: glibc keeps up to 40 MiB of exited threads' stacks for
	 * reuse, each with ~20 KiB still dirty (its top: TLS, descriptor, 16 KiB);
	 * with 256 KiB stacks a burst of 200 starts left 160 of them, 3.2 MiB of
	 * the daemon's private memory (tests/bench figure 5c); now at most 20 */
	pthread_attr_setstacksize(&attr, 2 * 1024 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = pthread_create(&t, &attr, op_main, op);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		/* run it here rather than fail: done() still comes from "a core thread" */
		svm_error e;
		svm_error_set(&e, SVM_NO_SPACE, "cannot start a thread: %s", strerror(rc));
		atomic_fetch_sub(&vm->s->ops, 1);
		for (int i = 0; i < SVM_MAX_ARGS; i++)
			free(op->args[i]);
		svm_vm_unref(vm);
		free(op);
		errno = rc; /* the caller says why */
		return NULL;
	}
	return op;
}

void svm_op_cancel(svm_op *op)
{
	if (!op)
		return;
	atomic_store(&op->cancel, true);
	/* a start waiting on Firecracker (InstanceStart can take long) would see the
	 * flag only after the call: end its VMM now, so the call fails at once and
	 * the start rolls back. Only while it is still starting: a start that has
	 * just succeeded keeps its VM. */
	svm_vm *vm = op->vm;
	if (!boots(op->req.verb))
		return;
	pthread_mutex_lock(&vm->mu);
	if (vm->busy && vm->state == SVM_STARTING && vm->pid != 0 && !vm->reaped) {
		vm->expect_exit = true;
		kill(vm->pid, SIGKILL);
	}
	pthread_mutex_unlock(&vm->mu);
}
