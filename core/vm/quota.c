/*
 * quota.c - per-user quotas (quota.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonfile.h"
#include "quota.h"

static bool applies(const svm *s, uid_t owner)
{
	return owner != 0 && owner != s->opt.quota_exempt;
}

int quota_may_create_locked(svm *s, uid_t owner, svm_error *err)
{
	unsigned max = s->opt.max_vms;
	if (!max || !applies(s, owner))
		return 0;
	unsigned n = 0;
	for (size_t i = 0; i < s->nvms; i++)
		n += vm_owner(s->vms[i]) == owner;
	if (n < max)
		return 0;
	return svm_error_set(err, SVM_QUOTA, "quota: uid %u has %u VMs, -o maxvms=%u allows no more "
			     "(remove one)", (unsigned)owner, n, max);
}

static long long mem_of(const json_t *cfg)
{
	json_t *m = json_object_get(json_object_get(cfg, "machineConfig"), "memSizeMib");
	return json_is_integer(m) ? json_integer_value(m) : 0;
}

int quota_may_start(svm_vm *vm, const json_t *cfg, svm_error *err)
{
	svm *s = vm->s;
	uid_t owner = vm_owner(vm);
	/* what this one will hold, seen by the others' checks from now on */
	atomic_store(&vm->quota_mem, mem_of(cfg));
	if ((!s->opt.max_running && !s->opt.max_mem_mib) || !applies(s, owner))
		return 0;
	/* the owner's other VMs: states and sizes are atomics, read under s->mu */
	unsigned running = 0;
	long long mem = mem_of(cfg);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nvms; i++) {
		svm_vm *o = s->vms[i];
		if (o == vm || vm_owner(o) != owner ||
		    !vm_state_has_vmm((svm_state)atomic_load(&o->state)))
			continue;
		running++;
		mem += atomic_load(&o->quota_mem);
	}
	pthread_mutex_unlock(&s->mu);
	if (s->opt.max_running && running >= s->opt.max_running)
		return svm_error_set(err, SVM_QUOTA, "quota: uid %u has %u VMs running, paused or "
				     "starting, -o maxrunning=%u allows no more (stop one)", (unsigned)owner,
				     running, s->opt.max_running);
	if (s->opt.max_mem_mib && mem > (long long)s->opt.max_mem_mib)
		return svm_error_set(err, SVM_QUOTA, "quota: uid %u's running VMs would have %lld MiB of "
				     "memory, -o maxmem=%u allows %u", (unsigned)owner, mem,
				     s->opt.max_mem_mib, s->opt.max_mem_mib);
	return 0;
}

/* ------------------------------------------------------------ the data dir */

/* The bytes a snapshot directory's files allocate, if owner made it. */
static unsigned long long snapshot_bytes(int dfd, uid_t owner)
{
	int fd = openat(dfd, "origin.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	json_t *o = svm_json_load_fd(fd, 4 * 1024 * 1024, 0, NULL);
	close(fd);
	json_t *ow = json_object_get(o, "owner");
	bool mine = json_is_integer(ow) && (uid_t)json_integer_value(ow) == owner;
	json_decref(o);
	if (!mine)
		return 0;
	int d2 = dup(dfd);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (!d) {
		if (d2 >= 0)
			close(d2);
		return 0;
	}
	unsigned long long sum = 0;
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d)))
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			sum += (unsigned long long)st.st_blocks * 512;
	closedir(d);
	return sum;
}

/* DATADIR/snapshots/VM/NAME for every VM and NAME */
static unsigned long long named_bytes(svm *s, uid_t owner)
{
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s/snapshots", s->data_dir);
	DIR *vms = opendir(base);
	if (!vms)
		return 0;
	unsigned long long sum = 0;
	struct dirent *v;
	while ((v = readdir(vms))) {
		if (v->d_name[0] == '.')
			continue;
		int vfd = openat(dirfd(vms), v->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *names = vfd >= 0 ? fdopendir(vfd) : NULL;
		if (!names) {
			if (vfd >= 0)
				close(vfd);
			continue;
		}
		struct dirent *n;
		while ((n = readdir(names))) {
			if (n->d_name[0] == '.')
				continue;
			int nfd = openat(vfd, n->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd >= 0) {
				sum += snapshot_bytes(nfd, owner);
				close(nfd);
			}
		}
		closedir(names);
	}
	closedir(vms);
	return sum;
}

int quota_may_keep_snapshot(svm *s, uid_t owner, svm_error *err)
{
	if (!s->opt.max_data_mib || !applies(s, owner))
		return 0;
	unsigned long long used = named_bytes(s, owner);
	if (used < (unsigned long long)s->opt.max_data_mib << 20)
		return 0;
	return svm_error_set(err, SVM_QUOTA, "quota: uid %u's named snapshots take %llu MiB, "
			     "-o maxdata=%u allows no more (remove some, or snapshot to a directory of "
			     "yours)", (unsigned)owner, used >> 20, s->opt.max_data_mib);
}
