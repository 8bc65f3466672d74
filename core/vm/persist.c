/*
 * persist.c - VM definitions that outlast the mount (-o persist, docs/smartvmfs.5.md
 * "PERSISTENCE"). A definition is what a user set, never what a run made: name,
 * owner uid, config.json, metadata, autostart. Runtime files, TAPs and processes
 * stay the mount's own and go at unmount as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "persist.h"
#include "safedir.h"



static void def_path(const svm *s, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/vms/%s.json", s->data_dir, name);
}

/* per thread: the mount's restore is one thread, and a VM another thread
 * changes meanwhile is saved as ever */
static __thread bool quiet;

void persist_quiet(bool on) { quiet = on; }

/* The definition as it is now (vm->mu held). */
static json_t *definition_locked(svm_vm *vm)
{
	json_t *o = json_object();
	json_object_set_new(o, "format", json_integer(PERSIST_FORMAT));
	json_object_set_new(o, "name", json_string(vm->name));
	json_object_set_new(o, "uid", json_integer(atomic_load(&vm->uid)));
	json_object_set(o, "config", vm->config);
	if (vm->metadata)
		json_object_set(o, "metadata", vm->metadata);
	json_object_set_new(o, "autostart", json_boolean(vm->autostart));
	return o;
}

static int save_locked(svm_vm *vm, const json_t *kept, svm_error *err)
{
	svm *s = vm->s;
	if (!s->opt.persist || atomic_load(&vm->removed) || quiet)
		return 0;
	json_t *o = definition_locked(vm);
	if (kept && json_equal(o, (json_t *)kept)) {
		json_decref(o); /* the file says it already: no write, no fsync */
		return 0;
	}
	char dir[PATH_MAX], path[PATH_MAX + 80], tmp[PATH_MAX + 96];
	snprintf(dir, sizeof dir, "%s/vms", s->data_dir);
	if (safedir_make(dir, err) < 0) {
		json_decref(o);
		return -1;
	}
	def_path(s, vm->name, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	/* a new file each time, private, never through a link planted at its name */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	/* one write: json_dumpfd writes each token with a system call of its own
	 * (66 for a small definition) */
	char *text = fd < 0 ? NULL : json_dumps(o, JSON_COMPACT);
	int rc = text ? 0 : -1;
	if (fd >= 0 && (rc < 0 || svm_write_all(fd, text, strlen(text)) < 0 ||
			svm_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0))
		rc = -1;
	free(text);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0) {
		svm_error_set(err, errno == ENOSPC ? SVM_NO_SPACE : SVM_START_FAILED, "%s: %s", path,
			      strerror(errno));
		unlink(tmp);
	}
	json_decref(o);
	return rc < 0 ? -1 : 0;
}

int persist_save_locked(svm_vm *vm, svm_error *err)
{
	return save_locked(vm, NULL, err);
}

int persist_save_unless_kept_locked(svm_vm *vm, const json_t *kept, svm_error *err)
{
	return save_locked(vm, kept, err);
}

void persist_remove(svm *s, const char *name)
{
	if (!s->opt.persist)
		return;
	char path[PATH_MAX + 80];
	def_path(s, name, path, sizeof path);
	unlink(path);
}
