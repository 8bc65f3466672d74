/*
 * vm_snapshot.c - the snapshot verb: the VM's state and memory written by
 * Firecracker into a snapshot directory (or two files), with its config, the
 * seal and copies of staged drives (snapfiles.h).
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
#include "snapfiles.h"
#include "stage.h"
#include "userfiles.h"
#include "vm_verbs_int.h"

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

int do_snapshot(svm_vm *vm, const svm_request *req, const atomic_bool *cancel, svm_error *err)
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
	/* jailed, the files are lent to the VMM in its jail while it writes them */
	jail_loan vl = {.fd = -1}, ml = {.fd = -1};
	if (rc == 0 && vm->jailed)
		rc = jail_lend(vm, vfd, "snapshot-state", &vl, vname, sizeof vname, err) < 0 ||
				     jail_lend(vm, mfd, "snapshot-mem", &ml, mname, sizeof mname, err) < 0
			     ? -1
			     : 0;
	else if (rc == 0) {
		hostpath_fd_name(vfd, vname, sizeof vname);
		hostpath_fd_name(mfd, mname, sizeof mname);
	}
	if (rc == 0) {
		json_t *body = json_pack("{s:s, s:s, s:s}", "snapshot_type", type, "snapshot_path", vname,
					 "mem_file_path", mname);
		rc = put(vm, "/snapshot/create", body, err);
	}
	jail_unlend(&vl);
	jail_unlend(&ml);
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
		rc = snapdir_seal(&d, vm, vfd, cfg, vm_vmm_rundir(vm), err);
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
