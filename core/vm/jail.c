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

#include "base.h"
#include "jail.h"
#include "jail_int.h"
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
int jail_check_version(jail_conf *jc, const char *jailer, const char *binary, svm_error *err)
{
	char *pair = NULL;
	if (asprintf(&pair, "%s\n%s", jailer, binary) < 0)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	pthread_mutex_lock(&jc->mu);
	bool known = jc->checked && !strcmp(jc->checked, pair);
	pthread_mutex_unlock(&jc->mu);
	if (known) {
		free(pair);
		return 0;
	}
	char v[64], jv[64];
	version_of(binary, v, sizeof v);
	if (jc->path)
		snprintf(jv, sizeof jv, "%s", jc->version);
	else
		version_of(jailer, jv, sizeof jv);
	int rc = 0;
	if (!v[0] || !jv[0])
		rc = svm_error_set(err, SVM_BINARY_NOT_FOUND, "-o jailer: %s does not say its version "
				   "(--version)", v[0] ? jailer : binary);
	else if (strcmp(v, jv) != 0)
		rc = svm_error_set(err, SVM_INVALID_CONFIG,
				   "-o jailer: the jailer %s is v%s but the VMM %s is v%s: they must "
				   "come from one Firecracker release", jailer, jv, binary, v);
	if (rc < 0) {
		free(pair);
		return -1;
	}
	pthread_mutex_lock(&jc->mu);
	free(jc->checked);
	jc->checked = pair;
	pthread_mutex_unlock(&jc->mu);
	return 0;
}

char *jail_jailer_for(const jail_conf *jc, const char *binary)
{
	if (jc->path)
		return strdup(jc->path);
	const char *slash = strrchr(binary, '/');
	char *p = NULL;
	if (!slash || asprintf(&p, "%.*s/jailer", (int)(slash - binary), binary) < 0)
		return NULL;
	if (access(p, X_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
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

/* Each downloaded release's VMM under that release's jailer. */
static int release_conf(unsigned first, unsigned last, jail_conf **out, char *mode, size_t len,
			svm_error *err)
{
	jail_conf *jc = calloc(1, sizeof *jc);
	if (!jc)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	pthread_mutex_init(&jc->mu, NULL);
	jc->first = first;
	jc->last = last;
	jc->cursor = first;
	snprintf(mode, len, "VMMs run jailed: the jailer of each downloaded Firecracker release "
		 "(beside its VMM, of its version), uids %u-%u (-o nojailer: unjailed)", first, last);
	*out = jc;
	return 0;
}

int jail_conf_new(const svm_options *o, const char *firecracker, jail_conf **out, char *mode,
		  size_t len, svm_error *err)
{
	*out = NULL;
	bool given = o->jailer && *o->jailer;
	/* without -o jailer: a downloaded release's own jailer, when the daemon
	 * can run one (root) and the VMM is a downloaded release */
	const char *why = o->no_jailer ? "-o nojailer"
			  : given      ? NULL
			  : firecracker ? "no -o jailer given (the VMM of -o firecracker comes with no "
					  "jailer)"
			  : svm_euid() != 0 ? "no -o jailer given, and the daemon is not root (the "
					     "jailer needs root)"
					   : NULL;
	if (why) {
		snprintf(mode, len, "VMMs run unjailed: %s", why);
		return 0;
	}
	unsigned first, last;
	if (parse_range(o->jail_uids, &first, &last, err) < 0)
		return -1;
	if (!given)
		return release_conf(first, last, out, mode, len, err);
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
	if (firecracker && jail_check_version(jc, jc->path, firecracker, err) < 0) {
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

int jail_check_netns(const svm *s, const json_t *cfg, svm_error *err)
{
	const char *ns = json_string_value(json_object_get(cfg, "netns"));
	if (!ns)
		return 0;
	if (!s->jail)
		return svm_error_set(err, SVM_INVALID_CONFIG, "netns: the jailer joins a VM's VMM to "
				     "its network namespace: mount with -o jailer, or without netns");
	struct stat st;
	if (stat(ns, &st) < 0)
		return svm_error_set(err, SVM_NOT_FOUND, "netns %s: %s", ns, strerror(errno));
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

int jail_uid_hold(jail_conf *jc, unsigned uid, svm_error *err)
{
	svm_error e;
	if (safedir_make("/run/smartvmfs", &e) < 0 || safedir_make(JAIL_CLAIMS, &e) < 0)
		return svm_error_set(err, SVM_START_FAILED, "the jailed uids' claims: %s", e.message);
	pthread_mutex_lock(&jc->mu);
	int fd = -1;
	bool nomem = svm_grow(&jc->held, &jc->cap, jc->nheld + 1, sizeof *jc->held) < 0;
	if (!nomem && !held_locked(jc, uid) && (fd = claim(uid)) >= 0)
		jc->held[jc->nheld++] = (struct jail_held){uid, fd};
	pthread_mutex_unlock(&jc->mu);
	if (nomem)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	if (fd < 0)
		return svm_error_set(err, SVM_EXISTS, "its jailed uid %u is held by another VM", uid);
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

int jail_argv(svm_vm *vm, const char *binary, const char *cgroup_version, char *const limits[],
	      int nlimits, char *argv[], char bufs[2][32])
{
	int a = 0;
	snprintf(bufs[0], 32, "%u", vm->jail_uid);
	snprintf(bufs[1], 32, "%u", vm->jail_uid); /* its own group, the same number */
	argv[a++] = vm->jail_path;
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
	argv[a++] = (char *)cgroup_version;
	for (int i = 0; i < nlimits; i++)
		argv[a++] = limits[i];
	if (vm->jail_netns) {
		argv[a++] = "--netns";
		argv[a++] = vm->jail_netns;
	}
	argv[a++] = "--";
	return a;
}
