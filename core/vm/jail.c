/*
 * jail.c - the mode, the uids and the jailer's command line (jail.h); the
 * files a jail holds are jail_files.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail.h"
#include "jail_int.h"
#include "vmlimits.h"
#include "safedir.h"
#include "stagerule.h"
#include "vmm.h"

/* ------------------------------------------------------------ the mode */

/* "Jailer v1.5.1" or "Firecracker v1.15.1": the version after the " v", in v
 * (empty when the binary does not say). */
static void version_of(const char *binary, char *v, size_t len)
{
	char *argv[] = {(char *)binary, "--version", NULL};
	char *out = vmm_capture(argv, 2000);
	char *p = out ? strstr(out, " v") : NULL;
	v[0] = '\0';
	if (p) {
		p += 2;
		snprintf(v, len, "%.*s", (int)strcspn(p, " \r\n"), p);
	}
	free(out);
}

/* The jailer and the VMM come from one release: a jailer of another version
 * may pass the VMM arguments it does not take, or miss what it needs. */
int jail_check_version(jail_conf *jc, const char *binary, svm_error *err)
{
	pthread_mutex_lock(&jc->mu);
	bool known = jc->checked && !strcmp(jc->checked, binary);
	pthread_mutex_unlock(&jc->mu);
	if (known)
		return 0;
	char v[64];
	version_of(binary, v, sizeof v);
	if (!v[0])
		return svm_error_set(err, SVM_BINARY_NOT_FOUND,
				     "-o jailer: %s does not say its version (--version)", binary);
	if (strcmp(v, jc->version) != 0)
		return svm_error_set(err, SVM_INVALID_CONFIG,
				     "-o jailer: the jailer %s is v%s but the VMM %s is v%s: they must "
				     "come from one Firecracker release", jc->path, jc->version, binary, v);
	pthread_mutex_lock(&jc->mu);
	free(jc->checked);
	jc->checked = strdup(binary);
	pthread_mutex_unlock(&jc->mu);
	return 0;
}

static int parse_range(const char *text, unsigned *first, unsigned *last, svm_error *err)
{
	*first = JAIL_UIDS_FIRST;
	*last = JAIL_UIDS_LAST;
	if (!text || !*text)
		return 0;
	char *end;
	errno = 0;
	unsigned long a = strtoul(text, &end, 10), b = 0;
	bool ok = !errno && end != text && *end == '-' && text[0] != '-';
	if (ok) {
		const char *t = end + 1;
		b = strtoul(t, &end, 10);
		ok = !errno && end != t && !*end && *t != '-';
	}
	if (!ok || a == 0 || a > b || b >= UINT32_MAX)
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
				     "-o jailuids=%s: not a range FROM-TO of uids above 0", text);
	*first = (unsigned)a;
	*last = (unsigned)b;
	return 0;
}

int jail_conf_new(const svm_options *o, const char *firecracker, jail_conf **out, char *mode,
		  size_t len, svm_error *err)
{
	*out = NULL;
	if (o->no_jailer || !o->jailer || !*o->jailer) {
		snprintf(mode, len, "VMMs run unjailed: %s",
			 o->no_jailer ? "-o nojailer" : "no -o jailer given");
		return 0;
	}
	unsigned first, last;
	if (parse_range(o->jail_uids, &first, &last, err) < 0)
		return -1;
	if (vmm_check_binary(o->jailer, err) < 0)
		return svm_error_set(err, SVM_BINARY_NOT_FOUND, "-o jailer: %s", err->message);
	if (o->jailer[0] != '/')
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "-o jailer=%s: not an absolute path",
				     o->jailer);
	jail_conf *jc = calloc(1, sizeof *jc);
	if (!jc || !(jc->path = strdup(o->jailer))) {
		free(jc);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	pthread_mutex_init(&jc->mu, NULL);
	jc->first = first;
	jc->last = last;
	jc->cursor = first;
	version_of(o->jailer, jc->version, sizeof jc->version);
	if (!jc->version[0]) {
		svm_error_set(err, SVM_BINARY_NOT_FOUND,
			      "-o jailer: %s does not say its version (--version): not a jailer?",
			      o->jailer);
		jail_conf_free(jc);
		return -1;
	}
	/* the VMM known now is checked now; a downloaded one at its first start */
	if (firecracker && jail_check_version(jc, firecracker, err) < 0) {
		jail_conf_free(jc);
		return -1;
	}
	snprintf(mode, len, "VMMs run jailed: jailer %s v%s, uids %u-%u", jc->path, jc->version,
		 first, last);
	*out = jc;
	return 0;
}

void jail_conf_free(jail_conf *jc)
{
	if (!jc)
		return;
	while (jc->nheld)
		jail_uid_give(jc, jc->held[0].uid);
	pthread_mutex_destroy(&jc->mu);
	free(jc->held);
	free(jc->checked);
	free(jc->path);
	free(jc);
}

int jail_refuse(const svm *s, const char *what, svm_error *err)
{
	if (!s->jail)
		return 0;
	return svm_error_set(err, SVM_INVALID_CONFIG,
			     "%s is not available with -o jailer yet (docs/jailer.md)", what);
}

int jail_check_config(const svm *s, const json_t *cfg, svm_error *err)
{
	if (!s->jail)
		return 0;
	if (json_object_get(cfg, "vsock"))
		return jail_refuse(s, "a vsock device", err);
	if (json_array_size(json_object_get(cfg, "pmem")))
		return jail_refuse(s, "a pmem device", err);
	if (json_array_size(json_object_get(cfg, "networkInterfaces")))
		return jail_refuse(s, "a network interface", err);
	/* the user's own file, which the jailed uid may not write: phase one
	 * bind-mounts read-only drives only */
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(cfg, "drives"), i, d)
		if (!stage_wanted(s, d) && !json_is_true(json_object_get(d, "isReadOnly")))
			return jail_refuse(s, "a writable drive used in place", err);
	return 0;
}

/* ------------------------------------------------------------ uids */

static bool held_locked(const jail_conf *jc, unsigned uid)
{
	for (size_t i = 0; i < jc->nheld; i++)
		if (jc->held[i].uid == uid)
			return true;
	return false;
}

static void claim_path(unsigned uid, char *path, size_t len)
{
	snprintf(path, len, JAIL_CLAIMS "/%u", uid);
}

/* The host-wide claim on uid: a lock no other mount holds (-1: another has it,
 * or the claim cannot be made: then the uid is not given). A claim's file goes
 * when it is given back (jail_uid_give), so a lock taken on a file already
 * unlinked is no claim: the name must still lead to the locked file. */
static int claim(unsigned uid)
{
	char path[PATH_MAX];
	claim_path(uid, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat held, named;
	if (fd >= 0 && (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &held) != 0 ||
			stat(path, &named) != 0 || held.st_ino != named.st_ino ||
			held.st_dev != named.st_dev)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The next free uid after the last one given: a uid just freed is the last
 * to be given again. */
int jail_uid_take(jail_conf *jc, unsigned *uid, svm_error *err)
{
	svm_error e;
	if (safedir_make("/run/smartvmfs", &e) < 0 || safedir_make(JAIL_CLAIMS, &e) < 0)
		return svm_error_set(err, SVM_START_FAILED, "the jailed uids' claims: %s", e.message);
	pthread_mutex_lock(&jc->mu);
	uint64_t span = (uint64_t)jc->last - jc->first + 1;
	bool nomem = svm_grow(&jc->held, &jc->cap, jc->nheld + 1, sizeof *jc->held) < 0;
	bool found = false;
	unsigned u = jc->cursor;
	/* each uid of the range once: ours in use are skipped, others' claims too */
	for (uint64_t tried = 0; !nomem && !found && tried < span; tried++) {
		int fd = held_locked(jc, u) ? -1 : claim(u);
		if (fd >= 0) {
			jc->held[jc->nheld++] = (struct jail_held){u, fd};
			jc->cursor = u == jc->last ? jc->first : u + 1;
			*uid = u;
			found = true;
		}
		u = u == jc->last ? jc->first : u + 1;
	}
	pthread_mutex_unlock(&jc->mu);
	if (nomem)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	if (!found)
		return svm_error_set(err, SVM_NO_SPACE, "-o jailuids=%u-%u: every uid of the range is "
				     "held by a running VM (of this mount or another)", jc->first,
				     jc->last);
	return 0;
}

void jail_uid_give(jail_conf *jc, unsigned uid)
{
	pthread_mutex_lock(&jc->mu);
	for (size_t i = 0; i < jc->nheld; i++)
		if (jc->held[i].uid == uid) {
			/* the claim ends with the jail: its file goes while still locked */
			char path[PATH_MAX];
			claim_path(uid, path, sizeof path);
			unlink(path);
			close(jc->held[i].claim_fd);
			jc->held[i] = jc->held[--jc->nheld];
			break;
		}
	pthread_mutex_unlock(&jc->mu);
}

/* ------------------------------------------------------------ the command line */

int jail_argv(svm_vm *vm, const char *binary, char *argv[], char bufs[2][32])
{
	int a = 0;
	snprintf(bufs[0], 32, "%u", vm->jail_uid);
	snprintf(bufs[1], 32, "%u", vm->jail_uid); /* its own group, the same number */
	argv[a++] = vm->s->jail->path;
	argv[a++] = "--id";
	argv[a++] = vm->id;
	argv[a++] = "--exec-file";
	argv[a++] = (char *)binary;
	argv[a++] = "--uid";
	argv[a++] = bufs[0];
	argv[a++] = "--gid";
	argv[a++] = bufs[1];
	argv[a++] = "--chroot-base-dir";
	argv[a++] = vm->jail_base;
	/* the host's cgroups, and the VM's limits in them (vmlimits.c) */
	argv[a++] = "--cgroup-version";
	argv[a++] = (char *)vmlim_cgroup_version();
	a += vmlim_jail_argv(vm, argv + a);
	argv[a++] = "--";
	return a;
}
