/*
 * vm_live.c - the verbs of a running or paused VM: pause, resume, stop, kill,
 * and the live updates (balloon, drive, netif, metadata, flushmetrics, hinting,
 * hotplug).
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

#include "config.h"
#include "jail.h"
#include "userfiles.h"
#include "vm_verbs.h"
#include "vm_verbs_int.h"
#include "vmstate.h"

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

int do_stop(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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

int do_kill(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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

/* ------------------------------------------------------------ live updates */

int live_begin(svm_vm *vm, svm_verb verb, svm_error *err)
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
int do_hinting(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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
int do_drive(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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
	char link[PATH_MAX], inside[PATH_MAX];
	bool ro = drive_read_only(vm, req->argv[0]);
	/* jailed: the file is bind-mounted into the jail's namespace for the VMM */
	if (live_begin(vm, SVM_V_DRIVE, err) < 0 ||
	    (new_path && (!(uf = userfiles_new(vm, err)) ||
			  userfiles_link_drive(uf, req->argv[0], req->argv[1], ro, link, sizeof link,
					       err) < 0 ||
			  (vm->jailed && jail_lend_drive(vm, req->argv[0], link, ro, inside,
							 sizeof inside, err) < 0)))) {
		userfiles_free(uf);
		json_decref(rl);
		return -1;
	}
	char path[256];
	snprintf(path, sizeof path, "/drives/%s", req->argv[0]);
	json_t *body = json_pack("{s:s}", "drive_id", req->argv[0]);
	if (new_path)
		json_object_set_new(body, "path_on_host", json_string(vm->jailed ? inside : link));
	if (rl)
		json_object_set_new(body, "rate_limiter", rl);
	int rc = svm_api_call(vm->api, "PATCH", path, body, NULL, err);
	json_decref(body);
	userfiles_free(uf); /* the VMM has the file open now */
	if (rc == 0 && new_path && vm->jailed) {
		/* the grant it holds now: revoked by a later daemon too */
		pthread_mutex_lock(&vm->mu);
		vmstate_save_locked(vm);
		pthread_mutex_unlock(&vm->mu);
	}
	return rc;
}

int do_netif(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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

int do_pause(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	return set_vm_state(vm, SVM_V_PAUSE, "Paused", SVM_PAUSED, err);
}

int do_resume(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)req;
	(void)cancel;
	return set_vm_state(vm, SVM_V_RESUME, "Resumed", SVM_RUNNING, err);
}

int do_balloon(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	return patch_mib(vm, req, SVM_V_BALLOON, "/balloon", "amount_mib", err);
}

int do_metadata(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	if (live_begin(vm, SVM_V_METADATA, err) < 0)
		return -1;
	return vm_merge_metadata(vm, req->argv[0], err);
}

int do_flush_metrics(svm_vm *vm, const svm_request *req, const atomic_bool *cancel,
			    svm_error *err)
{
	(void)req;
	(void)cancel;
	if (live_begin(vm, SVM_V_FLUSH_METRICS, err) < 0)
		return -1;
	return action(vm, "FlushMetrics", err);
}

int do_hotplug(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
{
	(void)cancel;
	/* how much of the hotplug region the guest should have plugged */
	return patch_mib(vm, req, SVM_V_HOTPLUG, "/hotplug/memory", "requested_size_mib", err);
}

