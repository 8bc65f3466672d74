/* vmstate.c - the per-VM state file and /proc facts (see vmstate.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "jsonfile.h"
#include "jail.h"
#include "net.h"
#include "vmstate.h"

/* Everything a later daemon needs, nothing it does not: the metadata (MMDS) is
 * left out, as it may hold secrets and a running VMM answers for it anyway. */
static json_t *state_doc(svm_vm *vm, svm_state st)
{
	svm *s = vm->s;
	json_t *o = json_object();
	json_object_set_new(o, "format", json_integer(VMSTATE_FORMAT));
	json_object_set_new(o, "owner", json_string(net_tag(s->net)));
	json_object_set_new(o, "daemon_pid", json_integer(getpid()));
	json_object_set_new(o, "daemon_start", json_integer((json_int_t)s->self_start));
	json_object_set_new(o, "name", json_string(vm->name));
	json_object_set_new(o, "id", json_string(vm->id));
	json_object_set_new(o, "uid", json_integer(atomic_load(&vm->uid)));
	json_object_set_new(o, "state", json_string(svm_state_name(st)));
	json_object_set_new(o, "pid", json_integer(atomic_load(&vm->pid)));
	json_object_set_new(o, "pid_start", json_integer((json_int_t)vm->pid_start));
	json_object_set_new(o, "socket", json_string(vm->sock));
	json_object_set_new(o, "vmm_rundir", json_string(vm->vmm_rundir));
	json_object_set_new(o, "made_dir", json_string(vm->made_dir));
	json_object_set_new(o, "spawn_ns", json_integer((json_int_t)vm->spawn_ns));
	json_object_set_new(o, "running_ns", json_integer((json_int_t)vm->running_ns));
	char *uds = vm_vsock_path_locked(vm, vm->config);
	if (uds)
		json_object_set_new(o, "vsock", json_string(uds));
	free(uds);
	json_t *jail = jail_state_locked(vm);
	if (jail)
		json_object_set_new(o, "jail", jail);
	json_object_set(o, "config", vm->config);
	json_object_set_new(o, "leases", net_vm_leases_json(s->net, vm->id));
	return o;
}

void vmstate_save_locked(svm_vm *vm)
{
	vm->state_force = true;
	vmstate_save_as_locked(vm, (svm_state)atomic_load(&vm->state));
}

void vmstate_save_as_locked(svm_vm *vm, svm_state st)
{
	if (atomic_load(&vm->removed))
		return; /* its runtime dir is going */
	pid_t pid = (pid_t)atomic_load(&vm->pid);
	/* without a VMM a later daemon only collects the VM's directory: a VM
	 * gets its file at its first spawn (a file per VM from its mkdir on cost
	 * a mkdir 30 us and 4 KiB of tmpfs, 40 MB for 10,000 VMs), and once the
	 * file says its VMM ended it needs no update (a config write, STARTING)
	 * until the next one runs, which keeps two writes off every start's path */
	if (!pid && !vm->state_saved_pid)
		return;
	/* once the file names the VMM (written at its spawn), only "state" would
	 * change while it runs or is paused, which a later daemon asks the VMM
	 * itself (GET /): the end of a start, a pause, resume or snapshot writes
	 * nothing (30 us of a 200 us verb, and one write of three in a VM's life
	 * in a burst of starts). What else changes while the VMM runs (the config
	 * a restore brings, its uid, limits, a drive lent into its jail) saves
	 * with vmstate_save_locked or state_force, which always write. */
	bool live = st == SVM_RUNNING || st == SVM_PAUSED;
	if (live && vm->state_saved_pid == pid && pid && !vm->state_force)
		return;
	vm->state_force = false;
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof path, "%s/" VMSTATE_FILE, vm->rundir);
	snprintf(tmp, sizeof tmp, "%s/" VMSTATE_FILE ".tmp", vm->rundir);
	json_t *doc = state_doc(vm, st);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	int fd = -1, e = ENOMEM;
	if (text) {
		/* O_EXCL|O_NOFOLLOW: a file or link planted at the tmp name is never
		 * written through; a tmp a killed daemon left is ours to replace */
		for (int tries = 0; tries < 2 && fd < 0; tries++) {
			fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			e = errno;
			if (fd < 0 && e == EEXIST)
				unlink(tmp);
		}
	}
	bool ok = false;
	if (fd >= 0) {
		size_t len = strlen(text), off = 0;
		while (off < len) {
			ssize_t n = write(fd, text + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		e = errno;
		ok = close(fd) == 0 && off == len;
		if (ok && rename(tmp, path) < 0) {
			e = errno;
			ok = false;
		}
		if (!ok)
			unlink(tmp);
	}
	free(text);
	if (!ok && !vm->state_warned) {
		vm->state_warned = true;
		sink_log(&vm->s->sink, "vm %s: cannot write its state file %s (%s): it cannot be re-adopted "
			       "after a daemon restart",
			vm->name, path, strerror(e));
	}
	if (ok) {
		vm->state_warned = false;
		vm->state_saved = true;
		vm->state_saved_pid = pid;
	}
}

json_t *vmstate_load(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" VMSTATE_FILE, dir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	json_t *doc = NULL;
	/* only a file we wrote: regular, ours, not group/other-writable */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == svm_euid() &&
	    !(st.st_mode & 022) && st.st_size < 4 * 1024 * 1024)
		doc = svm_json_load_fd(fd, 4 * 1024 * 1024, JSON_REJECT_DUPLICATES, NULL);
	close(fd);
	if (doc && (!json_is_object(doc) ||
		    json_integer_value(json_object_get(doc, "format")) != VMSTATE_FORMAT)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

/* ------------------------------------------------------------ /proc */

unsigned long long proc_start_time(pid_t pid)
{
	if (pid <= 0)
		return 0;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: fields follow the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0; /* ended, not yet reaped by whoever its parent is now */
	int field = 2;
	char *save = NULL;
	for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (++field == 22)
			return strtoull(tok, NULL, 10);
	return 0;
}

bool proc_is_vmm(pid_t pid, const char *id, const char *sock)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	bool has_id = false, has_sock = false;
	const char *prev = NULL;
	for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
		if ((prev && !strcmp(prev, "--id") && !strcmp(a, id)) ||
		    (!strncmp(a, "--id=", 5) && !strcmp(a + 5, id)))
			has_id = true;
		if (prev && !strcmp(prev, "--api-sock") && !strcmp(a, sock))
			has_sock = true;
		prev = a;
	}
	return has_id && has_sock;
}
