/*
 * jail_files.c - what a jail holds (jail.h): the chroot RUNDIR/jail/EXEC/ID/root
 * (the jailer's layout under the base the daemon gives it), the kernel, initrd
 * and drives made visible in it for the jailed uid alone, the VMM's FIFOs, the
 * API socket taken back out, and the removal of it all.
 *
 * Made visible how: a file of the daemon's own on the jail's filesystem is hard
 * linked (a staged drive, chowned to the uid: it is this start's copy); a kernel
 * or initrd is linked when it is the daemon's and readable by all, else copied
 * (the user's file must not change owner); a read-only drive used in place is
 * bind-mounted read-only, when the uid may read it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "jail_acl.h"
#include "jail_int.h"
#include "net.h"
#include "stage.h"
#include "stagerule.h"
#include "svmspawn.h"

#define JAIL_DIR "jail"
#define JAIL_SOCK "/run/api.sock" /* the VMM's API socket, as it sees it */
#define JAIL_VSOCK "/vsock.sock"  /* its vsock socket, as it sees it */
#define JAILER_ID_MAX 64          /* the jailer's rule for --id */

/* net_tap_give in network namespace netns (NULL: the daemon's): from a thread
 * of its own that joins it (a thread's namespace is its own), so the daemon's
 * other threads stay where they are. */
struct tap_job {
	const char *netns, *tap;
	unsigned uid;
	svm_error *err;
	int rc;
};

static void *tap_in_netns(void *p)
{
	struct tap_job *j = p;
	int fd = open(j->netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		j->rc = j->err ? svm_error_set(j->err, SVM_PERMISSION, "netns %s: %s", j->netns,
					       strerror(errno))
			       : -1;
	} else {
		j->rc = net_tap_give(j->tap, j->uid, j->err);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int tap_give_in(const char *netns, const char *tap, unsigned uid, svm_error *err)
{
	if (!netns)
		return net_tap_give(tap, uid, err);
	struct tap_job j = {netns, tap, uid, err, -1};
	pthread_t t;
	if (pthread_create(&t, NULL, tap_in_netns, &j) != 0)
		return err ? svm_error_set(err, SVM_NO_SPACE, "netns: no thread to join it") : -1;
	pthread_join(t, NULL);
	return j.rc;
}

/* ------------------------------------------------------------ removal */

/* Every mount under dir (the bind mounts of drives), detached: from
 * /proc/self/mountinfo, deepest last listed first. */
static void unmount_under(const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	size_t n = strlen(dir), cap = 0, count = 0;
	char **points = NULL, line[8192], mp[PATH_MAX];
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, dir, n) &&
		    mp[n] == '/' && svm_grow(&points, &cap, count + 1, sizeof *points) == 0)
			points[count] = strdup(mp), count += points[count] != NULL;
	fclose(f);
	while (count--) {
		umount2(points[count], MNT_DETACH);
		free(points[count]);
	}
	free(points);
}

/* rm -r of name in dirfd, never following a link (the jailed uid made some of
 * what is there), never crossing into a mount (they were detached). */
static void remove_at(int dfd, const char *name, int depth)
{
	struct stat st;
	if (depth > 16 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				remove_at(dirfd(d), de->d_name, depth + 1);
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		unlinkat(dfd, name, AT_REMOVEDIR);
		return;
	}
	unlinkat(dfd, name, 0);
}

void jail_collect(const char *dir)
{
	char base[PATH_MAX];
	if ((size_t)snprintf(base, sizeof base, "%s/" JAIL_DIR, dir) >= sizeof base)
		return;
	unmount_under(base);
	remove_at(AT_FDCWD, base, 0);
}

bool jail_present(const char *dir)
{
	char base[PATH_MAX];
	struct stat st;
	snprintf(base, sizeof base, "%s/" JAIL_DIR, dir);
	return lstat(base, &st) == 0 && S_ISDIR(st.st_mode);
}

void jail_release(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	bool was = vm->jailed;
	vm->jailed = false;
	unsigned uid = vm->jail_uid;
	char *base = vm->jail_base, *root = vm->jail_root;
	char(*taps)[16] = vm->jail_taps;
	size_t ntaps = vm->njail_taps;
	char *vlink = vm->jail_vsock_link;
	vm->jail_vsock_link = NULL;
	free(vm->jail_path);
	vm->jail_path = NULL;
	struct jail_granted *grants = vm->jail_grants;
	size_t ngrants = vm->njail_grants;
	vm->jail_grants = NULL;
	vm->njail_grants = 0;
	vm->jail_base = vm->jail_root = NULL;
	vm->jail_taps = NULL;
	vm->njail_taps = 0;
	pthread_mutex_unlock(&vm->mu);
	/* a TAP still there (not pooled or deleted since) is root's again */
	char *netns = vm->jail_netns;
	vm->jail_netns = NULL;
	for (size_t i = 0; i < ntaps; i++)
		tap_give_in(netns, taps[i], 0, NULL);
	free(taps);
	free(netns);
	/* the vsock socket's names outside the jail: ours, and the config's link
	 * to it (when it still is one) */
	char mine[PATH_MAX], to[PATH_MAX];
	snprintf(mine, sizeof mine, "%s" JAIL_VSOCK, vm->rundir);
	ssize_t n = vlink ? readlink(vlink, to, sizeof to - 1) : -1;
	if (n > 0 && (to[n] = '\0', strcmp(to, mine) == 0))
		unlink(vlink);
	free(vlink);
	if (!was)
		return;
	unlink(mine);
	jail_collect(vm->rundir);
	/* the user's files the uid was given: its VMM is gone, so is the grant */
	for (size_t i = 0; i < ngrants; i++) {
		if (jail_acl_revoke(grants[i].fd, &grants[i].g) < 0)
			sink_log(&vm->s->sink, "vm %s: cannot take uid %u's ACL entry off %s: %s",
				 vm->name, uid, grants[i].path, strerror(errno));
		close(grants[i].fd);
		free(grants[i].path);
	}
	free(grants);
	if (base && jail_present(vm->rundir))
		sink_log(&vm->s->sink, "vm %s: cannot remove its jail %s", vm->name, base);
	/* free only once nothing of the jail is left for the uid to reach */
	jail_uid_give(vm->s->jail, uid);
	free(base);
	free(root);
}

/* ------------------------------------------------------------ making it */

static int mkdir_p(const char *path, svm_error *err)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", path);
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c)
			continue;
		char saved = *c;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return svm_error_set(err, svm_start_code(errno), "jail: cannot create %s: %s", p,
					     strerror(errno));
		*c = saved;
		if (!saved)
			return 0;
	}
}

/* A grant the jail's end takes back (fd: the file, open, for that). */
static int keep_grant(svm_vm *vm, int fd, const jail_grant *g)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	path[n > 0 ? n : 0] = '\0';
	pthread_mutex_lock(&vm->mu);
	struct jail_granted *v = realloc(vm->jail_grants, (vm->njail_grants + 1) * sizeof *v);
	char *copy = strdup(path);
	if (v)
		vm->jail_grants = v;
	if (v && copy)
		v[vm->njail_grants++] = (struct jail_granted){fd, *g, copy};
	pthread_mutex_unlock(&vm->mu);
	if (!v || !copy) {
		free(copy);
		return -1;
	}
	return 0;
}

/* dst (in the jail) the jailed uid's, with mode: no other uid may use it. */
static int own_for(svm_vm *vm, const char *dst, mode_t mode, svm_error *err)
{
	if (chown(dst, vm->jail_uid, vm->jail_uid) < 0 || chmod(dst, mode) < 0)
		return svm_error_set(err, SVM_START_FAILED, "jail: cannot give %s to uid %u: %s", dst,
				     vm->jail_uid, strerror(errno));
	return 0;
}

/* A kernel or initrd (a held file: /proc/PID/fd/N) in the jail as /name. */
static int place_boot_file(svm_vm *vm, const char *src, const char *name, svm_error *err)
{
	char dst[PATH_MAX];
	snprintf(dst, sizeof dst, "%s/%s", vm->jail_root, name);
	struct stat st, rst;
	if (stat(src, &st) < 0 || stat(vm->jail_root, &rst) < 0)
		return svm_error_set(err, SVM_NOT_FOUND, "jail: %s: %s", src, strerror(errno));
	bool shared = S_ISREG(st.st_mode) && st.st_dev == rst.st_dev && st.st_uid == svm_euid() &&
		      (st.st_mode & S_IROTH) && !(st.st_mode & (S_IWOTH | S_IWGRP));
	if (shared && linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (stage_copy(src, dst, err) < 0)
		return -1;
	return own_for(vm, dst, 0400, err);
}

/* A user's file used in place (a drive or pmem file not staged), bind-mounted
 * at dst (nosuid, nodev; read-only when ro). The uid reads a read-only file
 * all may read through the "other" bits (it is in no group of the file's);
 * else it is given the file by an entry of its POSIX ACL for the VMM's life
 * (jail_acl.h), the owner and mode untouched. */
static int bind_user_file(svm_vm *vm, const char *what, const char *id, const char *src,
			  const char *dst, bool ro, svm_error *err)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return svm_error_set(err, SVM_NOT_FOUND, "%s %s: %s", what, id, strerror(errno));
	if (!ro || !(st.st_mode & S_IROTH)) {
		int fd = open(src, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		jail_grant g;
		if (fd < 0 || jail_acl_grant(fd, vm->jail_uid, !ro, &g) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return svm_error_set(err, SVM_PERMISSION,
					     "%s %s: used in place, it is given to the jailed uid by an "
					     "entry of its POSIX ACL, which %s: %s; stage it "
					     "(\"ephemeral\": true)%s", what, id,
					     e == EOPNOTSUPP ? "its filesystem does not keep"
							     : "cannot be set", strerror(e),
					     ro ? ", or make it readable by others" : "");
		}
		if (keep_grant(vm, fd, &g) < 0) {
			jail_acl_revoke(fd, &g);
			close(fd);
			return svm_error_set(err, SVM_NO_SPACE, "out of memory");
		}
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0)
		return svm_error_set(err, svm_start_code(errno), "jail: %s: %s", dst, strerror(errno));
	close(fd);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0 || mount(NULL, dst, NULL, flags, NULL) < 0)
		return svm_error_set(err, errno == EPERM ? SVM_PERMISSION : SVM_START_FAILED,
				     "%s %s: cannot bind-mount it into the jail: %s", what, id,
				     strerror(errno));
	return 0;
}

/* Each drive in the jail as /drive-ID, each pmem file as /pmem-ID, and cfg
 * naming them so. */
static int place_drives(svm_vm *vm, json_t *cfg, svm_error *err)
{
	static const struct {
		const char *key, *id, *ro, *what;
	} kinds[] = {{"drives", "driveId", "isReadOnly", "drive"}, {"pmem", "id", "readOnly", "pmem"}};
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		size_t i;
		json_t *d;
		json_array_foreach(json_object_get(cfg, kinds[k].key), i, d) {
			const char *id = json_string_value(json_object_get(d, kinds[k].id));
			const char *src = json_string_value(json_object_get(d, "pathOnHost"));
			bool ro = json_is_true(json_object_get(d, kinds[k].ro));
			char dst[PATH_MAX], inside[NAME_MAX];
			if (!id || !src || strchr(id, '/') || id[0] == '.' ||
			    (size_t)snprintf(inside, sizeof inside, "/%s-%s", kinds[k].what, id) >=
				    sizeof inside)
				return svm_error_set(err, SVM_INVALID_CONFIG, "jail: %s %s: no name for it",
						     kinds[k].what, id ? id : "?");
			snprintf(dst, sizeof dst, "%s%s", vm->jail_root, inside);
			if (k == 0 && stage_wanted(vm->s, d)) {
				/* the daemon's own copy, on the jail's filesystem */
				if (link(src, dst) < 0)
					return svm_error_set(err, svm_start_code(errno),
							     "jail: drive %s: cannot link %s into it: %s",
							     id, src, strerror(errno));
				if (own_for(vm, dst, 0600, err) < 0)
					return -1;
			} else if (bind_user_file(vm, kinds[k].what, id, src, dst, ro, err) < 0) {
				return -1;
			}
			json_object_set_new(d, "pathOnHost", json_string(inside));
		}
	}
	return 0;
}

/* Each TAP of the config given to the jailed uid, which the VMM attaches to as
 * that uid: ours and a hostDevName given as is alike, root's again when the
 * jail goes. */
static int give_taps(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	size_t i, n = json_array_size(json_object_get(cfg, "networkInterfaces"));
	json_t *nic;
	if (!n)
		return 0;
	char(*taps)[16] = calloc(n, sizeof *taps);
	if (!taps)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	pthread_mutex_lock(&vm->mu);
	vm->jail_taps = taps;
	vm->njail_taps = 0;
	pthread_mutex_unlock(&vm->mu);
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, nic) {
		const char *tap = json_string_value(json_object_get(nic, "hostDevName"));
		if (!tap || strlen(tap) >= sizeof *taps)
			continue;
		if (tap_give_in(vm->jail_netns, tap, vm->jail_uid, err) < 0)
			return -1;
		pthread_mutex_lock(&vm->mu);
		snprintf(taps[vm->njail_taps++], sizeof *taps, "%s", tap);
		pthread_mutex_unlock(&vm->mu);
	}
	return 0;
}

/* The jail's paths and its uid (vm->mu not needed: no VMM yet, the start owns
 * the VM). */
static int make_jail(svm_vm *vm, const char *binary, svm_error *err)
{
	char real[PATH_MAX], base[PATH_MAX], root[PATH_MAX];
	if (!realpath(binary, real))
		return svm_error_set(err, SVM_BINARY_NOT_FOUND, "%s: %s", binary, strerror(errno));
	const char *exec = strrchr(real, '/') + 1;
	if (!strstr(exec, "firecracker"))
		return svm_error_set(err, SVM_INVALID_CONFIG,
				     "-o jailer: the jailer runs only a VMM whose file name holds "
				     "\"firecracker\", not %s", real);
	if (strlen(vm->id) > JAILER_ID_MAX)
		return svm_error_set(err, SVM_NAME_TOO_LONG, "id %s: longer than the jailer's %d",
				     vm->id, JAILER_ID_MAX);
	int n = snprintf(base, sizeof base, "%s/" JAIL_DIR, vm->rundir);
	int m = snprintf(root, sizeof root, "%s/%s/%s/root", base, exec, vm->id);
	if (n < 0 || m < 0 || (size_t)m + sizeof JAIL_SOCK + NAME_MAX >= sizeof root)
		return svm_error_set(err, SVM_NAME_TOO_LONG, "jail: %s/...: path too long", base);
	unsigned uid;
	if (jail_uid_take(vm->s->jail, &uid, err) < 0)
		return -1;
	pthread_mutex_lock(&vm->mu);
	vm->jailed = true;
	vm->jail_uid = uid;
	vm->jail_base = strdup(base);
	vm->jail_root = strdup(root);
	bool ok = vm->jail_base && vm->jail_root;
	pthread_mutex_unlock(&vm->mu);
	if (!ok)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	jail_collect(vm->rundir); /* a jail of a crashed run in the way */
	return mkdir_p(root, err);
}

int jail_prepare(svm_vm *vm, const char *binary, json_t *cfg, svm_error *err)
{
	jail_conf *jc = vm->s->jail;
	if (!jc)
		return 0;
	char *jailer = jail_jailer_for(jc, binary);
	if (!jailer) {
		/* a downloaded release that has none (older archives) */
		sink_log(&vm->s->sink, "vm %s: unjailed: the Firecracker release of %s has no jailer",
			 vm->name, binary);
		return 0;
	}
	if (jail_check_version(jc, jailer, binary, err) < 0) {
		free(jailer);
		return -1;
	}
	const char *netns = json_string_value(json_object_get(cfg, "netns"));
	pthread_mutex_lock(&vm->mu);
	free(vm->jail_path);
	vm->jail_path = jailer;
	free(vm->jail_netns);
	vm->jail_netns = netns ? strdup(netns) : NULL;
	pthread_mutex_unlock(&vm->mu);
	json_t *boot = json_object_get(cfg, "bootSource");
	const char *kernel = json_string_value(json_object_get(boot, "kernelImagePath"));
	const char *initrd = json_string_value(json_object_get(boot, "initrdPath"));
	if (make_jail(vm, binary, err) < 0 ||
	    (kernel && place_boot_file(vm, kernel, "kernel", err) < 0) ||
	    (initrd && *initrd && place_boot_file(vm, initrd, "initrd", err) < 0) ||
	    place_drives(vm, cfg, err) < 0 || give_taps(vm, cfg, err) < 0) {
		jail_release(vm);
		return -1;
	}
	if (kernel)
		json_object_set_new(boot, "kernelImagePath", json_string("/kernel"));
	if (initrd && *initrd)
		json_object_set_new(boot, "initrdPath", json_string("/initrd"));
	return 0;
}

/* ------------------------------------------------------------ re-adoption */

json_t *jail_state_locked(const svm_vm *vm)
{
	if (!vm->jailed)
		return NULL;
	json_t *taps = json_array();
	for (size_t i = 0; i < vm->njail_taps; i++)
		json_array_append_new(taps, json_string(vm->jail_taps[i]));
	json_t *grants = json_array();
	for (size_t i = 0; i < vm->njail_grants; i++)
		json_array_append_new(grants, json_pack("{s:s, s:b, s:i}", "path",
							vm->jail_grants[i].path, "had_acl",
							vm->jail_grants[i].g.had_acl, "mask",
							vm->jail_grants[i].g.mask));
	json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o}", "uid", (json_int_t)vm->jail_uid, "base",
			      vm->jail_base ? vm->jail_base : "", "root",
			      vm->jail_root ? vm->jail_root : "", "taps", taps, "grants", grants);
	if (o && vm->jail_vsock_link)
		json_object_set_new(o, "vsock_link", json_string(vm->jail_vsock_link));
	if (o && vm->jail_netns)
		json_object_set_new(o, "netns", json_string(vm->jail_netns));
	return o;
}

void jail_forget(const json_t *state)
{
	unsigned uid = (unsigned)json_integer_value(json_object_get(state, "uid"));
	size_t i;
	json_t *gr;
	json_array_foreach(json_object_get(state, "grants"), i, gr) {
		jail_grant g = {uid, json_is_true(json_object_get(gr, "had_acl")),
				(int)json_integer_value(json_object_get(gr, "mask"))};
		const char *path = json_string_value(json_object_get(gr, "path"));
		int fd = path && uid ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
		if (fd >= 0) {
			jail_acl_revoke(fd, &g);
			close(fd);
		}
	}
	const char *netns = json_string_value(json_object_get(state, "netns"));
	json_array_foreach(json_object_get(state, "taps"), i, gr)
		if (json_string_value(gr))
			tap_give_in(netns, json_string_value(gr), 0, NULL);
}

/* The uid a process runs as (-1: gone). */
static long uid_of(pid_t pid)
{
	char p[64], line[256];
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "re");
	long uid = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	if (f)
		fclose(f);
	return uid;
}

int jail_adopt(svm_vm *vm, const json_t *state, pid_t pid, svm_error *err)
{
	jail_conf *jc = vm->s->jail;
	json_int_t uid = json_integer_value(json_object_get(state, "uid"));
	const char *base = json_string_value(json_object_get(state, "base"));
	const char *root = json_string_value(json_object_get(state, "root"));
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/" JAIL_DIR "/", vm->rundir);
	/* what the state file says is checked against what is there: its jail in
	 * its runtime dir, and its VMM running as that uid */
	if (!jc)
		return svm_error_set(err, SVM_INVALID_CONFIG, "it ran jailed, and this mount does not "
				     "jail its VMMs");
	if (uid <= 0 || uid > UINT32_MAX || !base || !root || strncmp(root, want, strlen(want)) ||
	    strncmp(base, want, strlen(want) - 1))
		return svm_error_set(err, SVM_INVALID_CONFIG, "its state file's jail is not valid");
	if (uid_of(pid) != (long)uid)
		return svm_error_set(err, SVM_INVALID_CONFIG, "its VMM does not run as its jailed uid %u",
				     (unsigned)uid);
	if (jail_uid_hold(jc, (unsigned)uid, err) < 0)
		return -1;
	size_t n = json_array_size(json_object_get(state, "taps"));
	char(*taps)[16] = n ? calloc(n, sizeof *taps) : NULL;
	const char *vlink = json_string_value(json_object_get(state, "vsock_link"));
	pthread_mutex_lock(&vm->mu);
	vm->jailed = true;
	vm->jail_uid = (unsigned)uid;
	vm->jail_base = strdup(base);
	vm->jail_root = strdup(root);
	vm->jail_taps = taps;
	for (size_t i = 0; taps && i < n; i++) {
		const char *t = json_string_value(json_array_get(json_object_get(state, "taps"), i));
		if (t && strlen(t) < sizeof *taps)
			snprintf(taps[vm->njail_taps++], sizeof *taps, "%s", t);
	}
	vm->jail_vsock_link = vlink ? strdup(vlink) : NULL;
	const char *netns = json_string_value(json_object_get(state, "netns"));
	vm->jail_netns = netns ? strdup(netns) : NULL;
	bool ok = vm->jail_base && vm->jail_root && (taps || !n);
	pthread_mutex_unlock(&vm->mu);
	/* the users' files it was given: held again, for their grants' end */
	size_t i;
	json_t *gr;
	json_array_foreach(json_object_get(state, "grants"), i, gr) {
		jail_grant g = {(unsigned)uid, json_is_true(json_object_get(gr, "had_acl")),
				(int)json_integer_value(json_object_get(gr, "mask"))};
		const char *path = json_string_value(json_object_get(gr, "path"));
		int fd = path ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
		if (fd >= 0 && keep_grant(vm, fd, &g) < 0) {
			close(fd);
			ok = false;
		}
	}
	if (!ok) {
		jail_release(vm);
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	}
	return 0;
}

/* ------------------------------------------------------------ the VMM's endpoints */

int jail_link_stream(svm_vm *vm, const char *host, const char *name, char *out, size_t len,
		     svm_error *err)
{
	char dst[PATH_MAX];
	snprintf(dst, sizeof dst, "%s/%s", vm->jail_root, name);
	unlink(dst);
	if (link(host, dst) < 0)
		return svm_error_set(err, svm_start_code(errno), "jail: cannot link %s into it: %s",
				     host, strerror(errno));
	/* one inode: the daemon's read end opened it already */
	if (own_for(vm, dst, 0600, err) < 0)
		return -1;
	snprintf(out, len, "/%s", name);
	return 0;
}

int jail_take_socket(svm_vm *vm)
{
	char p[PATH_MAX], name[64];
	snprintf(p, sizeof p, "%s" JAIL_SOCK, vm->jail_root);
	int fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* the socket the jailed VMM bound: nothing else it could put there */
	struct stat st;
	int rc = 0;
	snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == vm->jail_uid &&
	    (linkat(AT_FDCWD, name, AT_FDCWD, vm->sock, AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST))
		rc = 1;
	close(fd);
	return rc;
}

const char *jail_api_sock(void)
{
	return JAIL_SOCK;
}

int jail_place_file(svm_vm *vm, const char *src, const char *name, char *out, size_t len,
		    svm_error *err)
{
	if (place_boot_file(vm, src, name, err) < 0)
		return -1;
	snprintf(out, len, "/%s", name);
	return 0;
}

/* A mount put into the running VMM's namespace: a thread of its own (its
 * filesystem context unshared, so the daemon's other threads stay where they
 * are) joins that namespace (by the VMM's pidfd, or its /proc/PID/ns/mnt) and
 * moves the detached bind mount tree onto at (the jail's path). */
struct inject {
	int tree, pidfd;
	const char *at;
	int err;
};

static void *inject_mount(void *p)
{
	struct inject *in = p;
	if (unshare(CLONE_FS) < 0 || setns(in->pidfd, CLONE_NEWNS) < 0 ||
	    syscall(SYS_move_mount, in->tree, "", AT_FDCWD, in->at, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		in->err = errno;
	return NULL;
}

static int mount_into_vmm(svm_vm *vm, int fd, const char *at, bool ro)
{
	/* our child, not reaped while the verb runs (its pid is not reused); an
	 * adopted VMM by its pidfd */
	char ns[64];
	snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)atomic_load(&vm->pid));
	struct inject in = {.pidfd = vm->pidfd >= 0 ? dup(vm->pidfd) : open(ns, O_RDONLY | O_CLOEXEC),
			    .at = at};
	if (in.pidfd < 0)
		return -1;
	in.tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					      (ro ? MOUNT_ATTR_RDONLY : 0)};
	if (in.tree < 0 || syscall(SYS_mount_setattr, in.tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
		int e = errno;
		if (in.tree >= 0)
			close(in.tree);
		close(in.pidfd);
		errno = e;
		return -1;
	}
	pthread_t t;
	int rc = pthread_create(&t, NULL, inject_mount, &in);
	if (rc == 0)
		pthread_join(t, NULL);
	else
		in.err = rc;
	close(in.tree);
	close(in.pidfd);
	errno = in.err;
	return in.err ? -1 : 0;
}

int jail_lend(svm_vm *vm, int fd, const char *name, jail_loan *loan, char *out, size_t len,
	      svm_error *err)
{
	struct stat st;
	char inside[NAME_MAX + 2];
	loan->fd = -1;
	snprintf(loan->at, sizeof loan->at, "%s/%s", vm->jail_root, name);
	snprintf(inside, sizeof inside, "/%s", name);
	if (fstat(fd, &st) < 0)
		return svm_error_set(err, svm_start_code(errno), "jail: %s: %s", name, strerror(errno));
	int at = open(loan->at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (at < 0)
		return svm_error_set(err, svm_start_code(errno), "jail: %s: %s", loan->at,
				     strerror(errno));
	close(at);
	loan->uid = st.st_uid;
	loan->gid = st.st_gid;
	/* the uid's while lent, the owner's again after (a file made just now,
	 * under a name that is not yet the snapshot's) */
	if (fchown(fd, vm->jail_uid, vm->jail_uid) < 0 || mount_into_vmm(vm, fd, inside, false) < 0) {
		int e = errno;
		if (fchown(fd, loan->uid, loan->gid) < 0) { /* it was the owner's: it stays so */ }
		unlink(loan->at);
		return svm_error_set(err, svm_start_code(e), "jail: cannot lend %s to the VMM: %s", name,
				     strerror(e));
	}
	loan->fd = fd;
	snprintf(out, len, "/%s", name);
	return 0;
}

int jail_lend_drive(svm_vm *vm, const char *id, const char *src, bool ro, char *out, size_t len,
		    svm_error *err)
{
	char name[NAME_MAX], at[PATH_MAX];
	struct stat st;
	int fd = -1;
	/* a fresh name each time: the file before stays the VMM's until it lets go */
	for (unsigned n = 1; fd < 0 && n < 1000; n++) {
		snprintf(name, sizeof name, "drive-%s.%u", id, n);
		snprintf(at, sizeof at, "%s/%s", vm->jail_root, name);
		fd = open(at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (fd < 0 && errno != EEXIST)
			return svm_error_set(err, svm_start_code(errno), "jail: %s: %s", at, strerror(errno));
	}
	if (fd < 0)
		return svm_error_set(err, SVM_NO_SPACE, "drive %s: too many files swapped in", id);
	close(fd);
	fd = open(src, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	jail_grant g;
	int rc = fd < 0 || fstat(fd, &st) < 0 ? -1 : 0;
	bool granted = false;
	if (rc == 0 && (!ro || !(st.st_mode & S_IROTH))) {
		rc = jail_acl_grant(fd, vm->jail_uid, !ro, &g);
		granted = rc == 0;
	}
	if (rc == 0)
		rc = mount_into_vmm(vm, fd, at + strlen(vm->jail_root), ro);
	int e = errno;
	if (rc == 0 && granted && keep_grant(vm, fd, &g) == 0)
		fd = -1; /* the grant's now, until the jail ends */
	else if (granted)
		jail_acl_revoke(fd, &g);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		unlink(at);
		return svm_error_set(err, e == EOPNOTSUPP ? SVM_PERMISSION : svm_start_code(e),
				     "drive %s: cannot make %s visible in the jail: %s", id, src,
				     e == EOPNOTSUPP ? "its filesystem keeps no POSIX ACLs to give "
						       "it to the jailed uid"
						     : strerror(e));
	}
	snprintf(out, len, "/%s", name);
	return 0;
}

void jail_unlend(jail_loan *loan)
{
	if (loan->fd < 0)
		return;
	/* the mount point's removal from the host detaches the mount in the
	 * VMM's namespace (a mount point of another namespace) */
	unlink(loan->at);
	if (fchown(loan->fd, loan->uid, loan->gid) < 0) { /* the owner's it was made */ }
	loan->fd = -1;
}

const char *jail_vsock_sock(void)
{
	return JAIL_VSOCK;
}

int jail_take_vsock(svm_vm *vm, const char *host, svm_error *err)
{
	char p[PATH_MAX], name[64], mine[PATH_MAX];
	snprintf(p, sizeof p, "%s" JAIL_VSOCK, vm->jail_root);
	snprintf(mine, sizeof mine, "%s" JAIL_VSOCK, vm->rundir);
	int fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != vm->jail_uid) {
		if (fd >= 0)
			close(fd);
		return svm_error_set(err, SVM_START_FAILED, "jail: the VMM bound no vsock socket at %s",
				     p);
	}
	/* the socket the VMM bound, linked where the uid cannot swap it (as the
	 * API socket), then named where the config asks: a symbolic link when
	 * that is another place (another filesystem, as often) */
	snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
	unlink(mine);
	int rc = linkat(AT_FDCWD, name, AT_FDCWD, mine, AT_SYMLINK_FOLLOW);
	int e = errno;
	close(fd);
	if (rc < 0)
		return svm_error_set(err, SVM_START_FAILED, "jail: cannot link the vsock socket to %s: %s",
				     mine, strerror(e));
	if (strcmp(host, mine) == 0)
		return 0;
	struct stat hs;
	if (lstat(host, &hs) == 0 && (S_ISSOCK(hs.st_mode) || S_ISLNK(hs.st_mode)))
		unlink(host); /* a stale one of an earlier run */
	if (symlink(mine, host) < 0)
		return svm_error_set(err, svm_start_code(errno), "vsock.udsPath %s: %s", host,
				     strerror(errno));
	pthread_mutex_lock(&vm->mu);
	free(vm->jail_vsock_link);
	vm->jail_vsock_link = strdup(host);
	pthread_mutex_unlock(&vm->mu);
	return 0;
}
