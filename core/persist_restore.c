/*
 * persist_restore.c - the other half of -o persist: at mount, the VMs whose
 * definitions an earlier mount kept (persist.c writes them) are made again through
 * the orchestrator's own calls, and those marked autostart are started.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "jsonfile.h"
#include "persist.h"

/* A definition: its config and metadata, each of a bounded size, and a few
 * fields */
#define PERSIST_FILE_MAX (4u << 20)

/* The definition as it was read, back in its file (a VM made and removed again
 * took it away): a definition this mount could not use is left for the next. */
static void put_back(const char *file, json_t *o)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	char *text = fd >= 0 ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text && svm_write_all(fd, text, strlen(text)) == 0 && svm_write_all(fd, "\n", 1) == 0)
		fsync(fd);
	free(text);
	if (fd >= 0)
		close(fd);
}

/* One definition back as a VM; returns it (a reference) or NULL. */
static svm_vm *restore_one(svm *s, const char *file)
{
	json_error_t je;
	json_t *o = svm_json_load_path(file, PERSIST_FILE_MAX, JSON_REJECT_DUPLICATES, &je);
	const char *name = o ? json_string_value(json_object_get(o, "name")) : NULL;
	svm_error e;
	svm_error_clear(&e);
	bool usable = name && json_integer_value(json_object_get(o, "format")) == PERSIST_FORMAT;
	svm_vm *vm = NULL, *running = usable ? svm_get_vm(s, name) : NULL;
	persist_quiet(true); /* the file holds the definition: written once, at the end */
	if (!usable) {
		svm_log(s, "a kept VM definition is not readable, left as it is: %s%s%s", file,
			o ? "" : ": ", o ? "" : je.text);
	} else if (running) {
		svm_vm_unref(running); /* re-adopted: it runs already, and keeps its file */
	} else if (!(vm = svm_create_vm(s, name, &e))) {
		svm_log(s, "vm %s: its kept definition was not restored: %s", name, e.message);
		put_back(file, o);
	} else {
		char *cfg = json_dumps(json_object_get(o, "config"), JSON_COMPACT);
		char *md = json_object_get(o, "metadata")
				   ? json_dumps(json_object_get(o, "metadata"), JSON_COMPACT) : NULL;
		if (!cfg || svm_vm_set_config_json(vm, cfg, strlen(cfg), &e) < 0 ||
		    (md && svm_vm_set_metadata_json(vm, md, strlen(md), &e) < 0)) {
			svm_log(s, "vm %s: its kept definition was not restored (left in %s): %s", name,
				file, e.message);
			svm_remove_vm(s, name, NULL);
			svm_vm_unref(vm);
			vm = NULL;
			put_back(file, o);
		} else {
			svm_vm_set_owner_uid(vm, (uid_t)json_integer_value(json_object_get(o, "uid")));
			pthread_mutex_lock(&vm->mu);
			vm->autostart = json_is_true(json_object_get(o, "autostart"));
			persist_quiet(false); /* the one save of the whole definition */
			svm_error pe;
			if (persist_save_unless_kept_locked(vm, o, &pe) < 0)
				svm_log(s, "vm %s: its definition is not kept: %s", name, pe.message);
			pthread_mutex_unlock(&vm->mu);
		}
		free(cfg);
		free(md);
	}
	persist_quiet(false);
	json_decref(o);
	return vm;
}

/* A failed autostart says why where a failed `echo start > ctl` would. */
static void autostart_done(void *ud, const svm_error *err)
{
	svm_vm *vm = ud;
	if (err && err->code != SVM_OK) {
		svm_vm_note_error(vm, "autostart", err);
		sink_log(&vm->s->sink, "vm %s: autostart failed: %s", vm->name, err->message);
	}
	svm_vm_unref(vm);
}

int svm_persist_restore(svm *s)
{
	if (!s->opt.persist)
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/vms", s->data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int restored = 0, started = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		char file[PATH_MAX + 256];
		snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
		svm_vm *vm = restore_one(s, file);
		if (!vm)
			continue;
		restored++;
		if (svm_vm_autostart(vm)) {
			/* in the background: the mount serves while they start */
			svm_request req = {.verb = SVM_V_START};
			if (svm_vm_submit(vm, &req, autostart_done, vm))
				started++; /* the reference goes with the op */
			else
				svm_vm_unref(vm);
		} else {
			svm_vm_unref(vm);
		}
	}
	closedir(d);
	if (restored)
		svm_log(s, "kept VM definitions: %d restored from %s, %d starting (autostart)", restored,
			dir, started);
	return restored;
}

bool svm_vm_autostart(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	bool a = vm->autostart;
	pthread_mutex_unlock(&vm->mu);
	return a;
}

int svm_vm_set_autostart(svm_vm *vm, bool on, svm_error *err)
{
	if (!vm->s->opt.persist)
		return svm_error_set(err, SVM_INVALID_CONFIG, "autostart needs VM definitions that outlast "
				     "the mount: mount with -o persist");
	pthread_mutex_lock(&vm->mu);
	vm->autostart = on;
	svm_error e;
	int rc = persist_save_locked(vm, &e);
	if (rc < 0)
		svm_error_set(err, e.code, "the definition of %s is not kept: %s", vm->name, e.message);
	pthread_mutex_unlock(&vm->mu);
	sink_emit(&vm->s->sink, SVM_EV_CONFIG, vm, 0, NULL);
	return rc;
}
