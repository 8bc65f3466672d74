/*
 * vm_launch.c - start and restore: the shared frame (check and resolve
 * everything, then build in order: staged drives, links, network, the VMM,
 * configuration and boot; on failure removed in reverse), and what differs
 * (a fresh boot; a snapshot loaded).
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
#include "jail.h"
#include "vmlimits.h"
#include "net.h"
#include "quota.h"
#include "snapfiles.h"
#include "stage.h"
#include "userfiles.h"
#include "vm_verbs_int.h"

/* ------------------------------------------------------------ start */

bool cancelled(svm_vm *vm, const atomic_bool *cancel, svm_error *err)
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

/* The initrd of "agent": true (assets/agent, docs/exec.md): where the build
 * made it, or SMARTVMFS_AGENT_INITRD. */
#ifndef SVM_AGENT_INITRD
#define SVM_AGENT_INITRD ""
#endif

/* "agent": true: the agent's initrd becomes the start's bootSource.initrdPath
 * (the config itself may not name one), before anything is built, so that a
 * jail places it as any initrd. */
static int resolve_agent(json_t *cfg, svm_error *err)
{
	if (!json_is_true(json_object_get(cfg, "agent")))
		return 0;
	const char *env = getenv("SMARTVMFS_AGENT_INITRD");
	const char *initrd = env && *env ? env : SVM_AGENT_INITRD;
	json_t *bs = json_object_get(cfg, "bootSource");
	if (!*initrd || access(initrd, R_OK) != 0)
		return svm_error_set(err, SVM_NOT_FOUND, "agent: the agent's initrd %s is not there "
				     "(build assets/agent, or set SMARTVMFS_AGENT_INITRD)",
				     *initrd ? initrd : "(none)");
	if (!bs)
		return 0; /* not bootable: said by the checks */
	json_object_set_new(bs, "initrdPath", json_string(initrd));
	return 0;
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
	if (!vsock && json_is_true(json_object_get(cfg, "agent")))
		vsock = json_pack("{s:i}", "guest_cid", 3); /* the agent's, when the config has none */
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
		json_object_set_new(vsock, "uds_path",
				    json_string(vm->jailed ? jail_vsock_sock() : uds ? uds : ""));
		/* jailed: the VMM binds it in its jail, and the daemon names it here */
		int rc = put(vm, "/vsock", vsock, err);
		if (rc == 0 && vm->jailed)
			rc = jail_take_vsock(vm, uds, err);
		free(uds);
		if (rc < 0)
			return -1;
		vsock = NULL;
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

/* One start or restore in progress: what it was given, and what it has built
 * so far (so a failure removes exactly that, in reverse). */
typedef struct launch_job {
	svm_vm *vm;
	svm_verb verb;
	boot_fn boot;
	const void *arg;
	json_t *cfg;        /* the config booted with (taken) */
	json_t *new_config; /* what becomes config.json on success (taken), or NULL */
	json_t *md;         /* the metadata document at the start, or NULL */
	const char *show_at;
	svm_state prev, final_state;
	userfiles *uf;
	const atomic_bool *cancel;
	char *fc_version, *binary, *image_held;
	bool net_done, staged;
} launch_job;

/* The VM to STARTING (or the refusal), and the config and metadata it starts
 * with. Takes j->cfg when given (restore). */
static int launch_begin(launch_job *j, json_t *cfg_override, svm_error *err)
{
	svm_vm *vm = j->vm;
	pthread_mutex_lock(&vm->mu);
	if (begin_locked(vm, j->verb, true, err) < 0) {
		pthread_mutex_unlock(&vm->mu);
		json_decref(cfg_override);
		return -1;
	}
	j->prev = vm->state;
	vm->kill_requested = false;
	uint64_t seq = vm_state_locked(vm, SVM_STARTING);
	j->cfg = cfg_override ? cfg_override : json_deep_copy(vm->config);
	pthread_mutex_unlock(&vm->mu);
	/* starting now refuses metadata writes; one that checked the state before
	 * stores its document first, and this start takes that one */
	pthread_mutex_lock(&vm->md_mu);
	pthread_mutex_lock(&vm->mu);
	j->md = vm->metadata ? json_deep_copy(vm->metadata) : NULL;
	pthread_mutex_unlock(&vm->mu);
	pthread_mutex_unlock(&vm->md_mu);
	emit_state(vm, seq);
	return 0;
}

/* Descriptors for a start: API connections kept after their verbs
 * (svm_api_release_lingering) give theirs up first if that is what it takes. */
static int room_for_start(svm_error *err)
{
	if (limits_fds_for_start(err) == 0)
		return 0;
	if (svm_api_close_lingering() == 0)
		return -1;
	svm_error_clear(err);
	return limits_fds_for_start(err);
}

/* Everything checked and resolved before anything is built (DESIGN §6). */
static int launch_resolve(launch_job *j, svm_error *err)
{
	svm_vm *vm = j->vm;
	svm *s = vm->s;
	if (room_for_start(err) < 0 || quota_may_start(vm, j->cfg, err) < 0 ||
	    check_config(vm, j->cfg, err) < 0 || svm_config_validate(j->cfg, err) < 0 ||
	    svm_config_check_bootable(j->cfg, err) < 0 || resolve_agent(j->cfg, err) < 0 ||
	    jail_check_netns(s, j->cfg, err) < 0 ||
	    vmlim_check(vm, j->cfg, err) < 0 ||
	    images_apply(s->images, j->cfg, &j->fc_version, &j->image_held, err) < 0 ||
	    userfiles_open_config(j->uf, j->cfg, err) < 0 ||
	    !(j->binary = images_firecracker(s->images, j->fc_version, err)) ||
	    cancelled(vm, j->cancel, err))
		return -1;
	return 0;
}

/* Then built in order: staged drives, in-place links, the network, the VMM,
 * its configuration and boot; the vsock socket given to the VM's owner. */
static int launch_build(launch_job *j, svm_error *err)
{
	svm_vm *vm = j->vm;
	if (stage_drives(vm, j->cfg, err) < 0)
		return -1;
	j->staged = true;
	/* in a network namespace of the user's (netns), the TAPs are the user's */
	bool own_net = !json_object_get(j->cfg, "netns");
	if (userfiles_link_in_place(j->uf, j->cfg, err) < 0 ||
	    (own_net && net_prepare_vm(vm->s->net, vm->id, vm->name, j->cfg, err) < 0))
		return -1;
	j->net_done = own_net;
	if (jail_prepare(vm, j->binary, j->cfg, err) < 0 || vmlim_prepare(vm, j->cfg, err) < 0)
		return -1;
	if (vm_proc_spawn(vm, j->binary, j->cfg, j->show_at, err) < 0)
		return -1;
	if (vmlim_apply_spawned(vm, j->cfg, err) < 0 || vm_proc_wait_ready(vm, j->cancel, err) < 0 ||
	    j->boot(vm, j->cfg, j->md, j->arg, j->cancel, err) < 0 || cancelled(vm, j->cancel, err)) {
		roll_back(vm, j->cancel, err);
		return -1;
	}
	pthread_mutex_lock(&vm->mu);
	char *uds = vm_vsock_path_locked(vm, j->cfg);
	pthread_mutex_unlock(&vm->mu);
	if (uds && vm->jailed) {
		/* the socket itself, not the link the config's path may be */
		free(uds);
		if (asprintf(&uds, "%s%s", vm->rundir, jail_vsock_sock()) < 0)
			uds = NULL;
	}
	if (userfiles_give_vsock(vm, uds) < 0)
		sink_log(&vm->s->sink, "vm %s: cannot give %s to uid %u: %s", vm->name, uds,
			 (unsigned)svm_vm_owner_uid(vm), strerror(errno));
	free(uds);
	return 0;
}

/* The final state: the one asked for, or (what was built removed) the state it
 * had. Returns rc, or -1 when the VMM died or was killed right at the end. */
static int launch_settle(launch_job *j, int rc, svm_error *err)
{
	svm_vm *vm = j->vm;
	if (rc < 0 && j->net_done)
		net_rollback_vm(vm->s->net, vm->id);
	if (rc < 0 && j->staged)
		stage_cleanup(vm);
	if (rc < 0) {
		jail_release(vm); /* no VMM is left to use it */
		vmlim_release(vm);
	}
	userfiles_free(j->uf); /* the VMM has its files open, or is gone */
	pthread_mutex_lock(&vm->mu);
	svm_state end;
	if (rc == 0 && vm->pid != 0 && !vm->kill_requested) {
		end = j->final_state;
		vm->running_ns = svm_now_ns();
		vm->started_as = end;
		vm->started_pid = vm->pid;
		/* the VMM's end (vm_proc.c) gives the bundle back */
		images_release(vm->s->images, vm->image_held); /* none: the last VMM ended */
		free(vm->image_held);
		vm->image_held = j->image_held;
		j->image_held = NULL;
		if (j->new_config) {
			json_decref(vm->config);
			vm->config = json_incref(j->new_config);
		}
		/* the state file, written at the spawn, lacks a restore's config and
		 * what a jail gained during the boot (the vsock link) */
		if (j->new_config || vm->jailed)
			vm->state_force = true;
	} else {
		if (rc == 0) {
			rc = -1;
			if (vm->kill_requested)
				svm_error_set(err, SVM_INTERRUPTED, "killed while starting");
			else
				svm_error_set(err, SVM_START_FAILED, "firecracker ended during start (%s)",
					      vm->last_exit);
		}
		end = vm->kill_requested ? SVM_STOPPED : j->prev;
		/* the bundle is free before the state says the start failed */
		images_release(vm->s->images, j->image_held);
	}
	uint64_t seq = vm_state_locked(vm, end);
	vm->busy = false;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->mu);
	emit_state(vm, seq);
	return rc;
}

/* The shared frame of start and restore: check, STARTING, spawn, ready, boot_fn,
 * then the final state or a complete roll back to the state it had.
 * cfg_override: the config to boot with instead of the VM's (restore);
 * new_config: what becomes the VM's config.json if it succeeds (both are taken);
 * show_at: NULL, or where the VMM is to see the runtime dir (a clone);
 * uf: the host files a restore opened already (NULL: none); launch's own from here. */
static int launch(svm_vm *vm, svm_verb verb, boot_fn boot, const void *arg, json_t *cfg_override,
		  json_t *new_config, const char *show_at, svm_state final_state, userfiles *uf,
		  const atomic_bool *cancel, svm_error *err)
{
	launch_job j = {.vm = vm, .verb = verb, .boot = boot, .arg = arg, .new_config = new_config,
			.show_at = show_at, .final_state = final_state, .uf = uf, .cancel = cancel};
	int rc = -1;
	if (!j.uf && !(j.uf = userfiles_new(vm, err))) {
		json_decref(cfg_override);
	} else if (launch_begin(&j, cfg_override, err) < 0) {
		userfiles_free(j.uf);
	} else {
		rc = launch_resolve(&j, err) == 0 && launch_build(&j, err) == 0 ? 0 : -1;
		rc = launch_settle(&j, rc, err);
	}
	free(j.fc_version);
	free(j.binary);
	free(j.image_held);
	json_decref(j.cfg);
	json_decref(j.new_config);
	json_decref(j.md);
	return rc;
}

static int boot_fresh(svm_vm *vm, const json_t *cfg, const json_t *md, const void *arg,
		      const atomic_bool *cancel, svm_error *err)
{
	(void)arg;
	return configure_and_boot(vm, cfg, md, cancel, err);
}

int do_start(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	return launch(vm, SVM_V_START, boot_fresh, NULL, NULL, NULL, NULL, SVM_RUNNING, NULL, cancel,
		      err);
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
	char uds[PATH_MAX], state[64], mem[64];
	/* the device state binds its vsock socket at the original path, which is
	 * this runtime dir (for a clone, through its mount): a stale one would be
	 * in the way. Jailed, it is the jail's /vsock.sock, in a fresh jail */
	snprintf(uds, sizeof uds, "%s/vsock.sock", vm->rundir);
	unlink(uds);
	snprintf(state, sizeof state, "%s", ra->vmstate);
	snprintf(mem, sizeof mem, "%s", ra->mem);
	/* jailed: the snapshot's files in the jail, for the uid to read */
	if (vm->jailed && (jail_place_file(vm, ra->vmstate, "snapshot-state", state, sizeof state,
					   err) < 0 ||
			   jail_place_file(vm, ra->mem, "snapshot-mem", mem, sizeof mem, err) < 0))
		return -1;
	json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:b}", "snapshot_path", state, "mem_backend",
				 "backend_type", "File", "backend_path", mem, "resume_vm", ra->resume);
	/* the device state names the original VM's TAPs: a clone has its own
	 * (net_prepare_vm wrote them into cfg). Firecracker v1.12 and later. */
	size_t i;
	json_t *iface, *ov = json_array();
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, iface) {
		const char *id = json_string_value(json_object_get(iface, "ifaceId"));
		const char *tap = json_string_value(json_object_get(iface, "hostDevName"));
		if ((ra->clone || vm->jailed) && id && tap)
			json_array_append_new(ov, json_pack("{s:s, s:s}", "iface_id", id,
							    "host_dev_name", tap));
	}
	if (body && json_array_size(ov))
		json_object_set(body, "network_overrides", ov);
	json_decref(ov);
	if (put(vm, "/snapshot/load", body, err) < 0)
		return -1;
	char *vsock_at = vm->jailed ? svm_config_vsock_host_path(cfg, vm->rundir) : NULL;
	int rc = vsock_at ? jail_take_vsock(vm, vsock_at, err) : 0;
	free(vsock_at);
	if (rc < 0)
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

int do_restore(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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
	bool of_jailed = strcmp(c.rundir, VMM_RUNDIR_JAILED) == 0;
	if (of_jailed != (vm->s->jail != NULL)) {
		svm_error_set(err, SVM_INVALID_CONFIG,
			      of_jailed ? "restore: the snapshot is of a jailed VMM (its paths are its "
					  "jail's): it is restored under -o jailer only"
					: "restore: the snapshot is of an unjailed VMM (its paths are the "
					  "host's): it cannot be restored under -o jailer");
		goto bad;
	}
	/* jailed, every jail has the same paths: nothing to map */
	ra.clone = !of_jailed && strcmp(c.rundir, vm->rundir) != 0;
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
