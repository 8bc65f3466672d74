/*
 * stage.c - ephemeral staging of writable drives (the seed's "Disk-Light Runtime
 * Model"): before boot, each writable drive is copied into the VM's runtime
 * directory as RUNDIR/drive-<driveId>.img and Firecracker gets the copy, so a
 * guest never writes to a cached base image or a source rootfs.
 *
 * Beyond the seed's plain copyFile:
 *  - a reflink (FICLONE) when the filesystem offers one: no data is copied;
 *  - otherwise only the data extents are copied (SEEK_DATA/SEEK_HOLE), and blocks
 *    that hold only zeros are left as holes, so a 1 GiB image with 64 MiB of data
 *    costs 64 MiB of the runtime dir (tmpfs: RAM), not 1 GiB;
 *  - copy_file_range for extents within one filesystem other than tmpfs (the
 *    kernel may share extents or copy server-side); elsewhere read, skip zero
 *    blocks, pwrite — as fast as cp --sparse=always on tmpfs, as sparse;
 *  - free space is checked for all drives before the first byte is copied, so a
 *    drive that does not fit fails with SVM_NO_SPACE and nothing half-made;
 *  - destinations are created O_EXCL|O_NOFOLLOW, mode 0600; a failed stage removes
 *    every copy it made; the source is only ever opened read-only.
 *
 * The staged name depends on the drive id only (ids are unique within a config),
 * so it is stable across starts: a snapshot taken of a VM refers to the same path
 * at the next start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fileio.h"
#include "internal.h"
#include "stage.h"

#define STAGE_PREFIX "drive-"
#define STAGE_SUFFIX ".img"
/* read size of the zero-skipping copy: the buffer stays in the CPU's cache
 * between the read and the write (cp's 128 KiB too); 1 MiB made the copy of
 * bench figure 6 1.07x cp's, 128 KiB 0.96x, 256 KiB 1.06-1.11x */
#define COPY_CHUNK (128u << 10)
#define ZERO_GRAIN 4096u       /* the unit a zero block is detected in (a page) */

/* One drive being staged. */
typedef struct item {
	json_t *drive;             /* the drive object in cfg (borrowed) */
	const char *id;
	int src, dst;
	struct stat st;            /* of the source */
	bool created, cloned;
	uint64_t need;             /* bytes of the runtime dir it will allocate */
	char path[PATH_MAX];
} item;

/* ------------------------------------------------------------ ownership
 *
 * stage_cleanup runs from two threads: the starting thread after a failed start,
 * and the event loop after the VMM exits. The loop publishes "stopped" before it
 * calls stage_cleanup, so a new start of the same VM may stage its fresh copies
 * in between; the late cleanup must not remove those. A start records the VM's
 * event number when it stages; an exit after that adds an "exit" event. So a
 * cleanup from another thread while a start runs and no event came since the
 * staging belongs to an older VMM, whose copies that start has already replaced. */

static pthread_mutex_t owners_mu = PTHREAD_MUTEX_INITIALIZER;
static struct owner {
	const svm_vm *vm;
	uint64_t seq;
} *owners;
static size_t nowners, capowners;
static __thread const svm_vm *t_staging; /* the VM this thread last staged */

static struct owner *owner_find(const svm_vm *vm)
{
	for (size_t i = 0; i < nowners; i++)
		if (owners[i].vm == vm)
			return &owners[i];
	return NULL;
}

static void owner_set(const svm_vm *vm, uint64_t seq)
{
	pthread_mutex_lock(&owners_mu);
	struct owner *o = owner_find(vm);
	if (!o && svm_grow(&owners, &capowners, nowners + 1, sizeof *owners) == 0)
		o = &owners[nowners++];
	if (o) /* out of memory: no record, a late cleanup then cleans (the old way) */
		*o = (struct owner){vm, seq};
	pthread_mutex_unlock(&owners_mu);
}

/* Forgets vm; returns the event number it staged at, or UINT64_MAX if none. */
static uint64_t owner_take(const svm_vm *vm, bool forget)
{
	pthread_mutex_lock(&owners_mu);
	struct owner *o = owner_find(vm);
	uint64_t seq = o ? o->seq : UINT64_MAX;
	if (o && forget)
		*o = owners[--nowners];
	pthread_mutex_unlock(&owners_mu);
	return seq;
}

/* Is this a late cleanup of an older VMM while a newer start owns the copies? */
static bool cleanup_is_stale(svm_vm *vm)
{
	if (t_staging == vm)
		return false; /* the starting thread cleaning up after itself */
	pthread_mutex_lock(&vm->mu);
	bool starting = vm->busy && atomic_load(&vm->state) == SVM_STARTING;
	uint64_t seq = vm->events.seq;
	pthread_mutex_unlock(&vm->mu);
	return starting && owner_take(vm, false) == seq;
}

/* ------------------------------------------------------------ helpers */

static svm_code code_of(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EMFILE: /* and the shortages of descriptors or memory: no room either */
	case ENFILE:
	case ENOMEM:
		return SVM_NO_SPACE;
	case ENOENT:
	case ENOTDIR:
		return SVM_NOT_FOUND;
	case EACCES:
	case EPERM:
		return SVM_PERMISSION;
	case ENAMETOOLONG:
		return SVM_NAME_TOO_LONG;
	case EEXIST:
		return SVM_EXISTS;
	default:
		return SVM_START_FAILED;
	}
}

static int fail_errno(svm_error *err, const char *what, const char *id, const char *path)
{
	int e = errno;
	return svm_error_set(err, code_of(e), "drive %s: %s %s: %s", id, what, path, strerror(e));
}

static bool is_staged_name(const char *name)
{
	size_t n = strlen(name), p = strlen(STAGE_PREFIX), x = strlen(STAGE_SUFFIX);
	return n > p + x && strncmp(name, STAGE_PREFIX, p) == 0 &&
	       strcmp(name + n - x, STAGE_SUFFIX) == 0;
}

/* Unlinks every staged copy in vm's runtime dir: a directory scan rather than a
 * list, so copies a crashed daemon left are found too. unlink only: this runs on
 * the event loop. */
static void remove_staged(svm_vm *vm)
{
	DIR *d = opendir(vm->rundir);
	if (!d && errno != ENOENT) {
		/* no descriptor for the scan (a start rolling back at the limit of
		 * RLIMIT_NOFILE, which is when it matters most that a copy does not
		 * stay in RAM): the copies of the VM's drives, by their names */
		char p[PATH_MAX];
		size_t i;
		json_t *dr;
		pthread_mutex_lock(&vm->mu);
		json_t *drives = json_deep_copy(json_object_get(vm->config, "drives"));
		pthread_mutex_unlock(&vm->mu);
		json_array_foreach(drives, i, dr) {
			const char *id = json_string_value(json_object_get(dr, "driveId"));
			if (id && (size_t)snprintf(p, sizeof p, "%s/" STAGE_PREFIX "%s" STAGE_SUFFIX,
						   vm->rundir, id) < sizeof p)
				unlink(p);
		}
		json_decref(drives);
		return;
	}
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (is_staged_name(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) < 0 &&
		    errno != ENOENT)
			sink_log(&vm->s->sink, "vm %s: cannot remove staged drive %s: %s", vm->name,
				de->d_name, strerror(errno));
	closedir(d);
}

/* ------------------------------------------------------------ copying */

static bool all_zero(const unsigned char *p, size_t n)
{
	/* p[0] == 0 and each byte equals the next: memcmp is vectorised */
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Writes the non-zero grains of buf (file offset off) to dst; zero grains stay
 * holes, since dst was sized by ftruncate and starts all hole. */
static int write_nonzero(int dst, const unsigned char *buf, size_t len, off_t off)
{
	size_t i = 0;
	while (i < len) {
		size_t g = len - i < ZERO_GRAIN ? len - i : ZERO_GRAIN;
		if (all_zero(buf + i, g)) {
			i += g;
			continue;
		}
		size_t start = i;
		while (i < len) { /* extend the run of data grains */
			g = len - i < ZERO_GRAIN ? len - i : ZERO_GRAIN;
			if (all_zero(buf + i, g))
				break;
			i += g;
		}
		if (svm_pwrite_all(dst, buf + start, i - start, off + (off_t)start) < 0)
			return -1;
	}
	return 0;
}

/* Copies [off, end) through a buffer, leaving zero blocks out. */
static int copy_buffered(int src, int dst, off_t off, off_t end, unsigned char *buf)
{
	while (off < end) {
		size_t want = (size_t)(end - off) < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
		ssize_t r = pread(src, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0; /* the source shrank: the rest stays hole */
		if (write_nonzero(dst, buf, (size_t)r, off) < 0)
			return -1;
		off += r;
	}
	return 0;
}

/* Copies [off, end) in the kernel. Returns 1 if the filesystem cannot do it
 * (nothing of the range copied yet: the caller falls back), 0 done, -1 error. */
static int copy_in_kernel(int src, int dst, off_t off, off_t end)
{
	off_t in = off, out = off;
	while (in < end) {
		ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(end - in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && in == off &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return 1;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0; /* the source shrank */
	}
	return 0;
}

/* Copies the data extents of src to dst (already sized), skipping holes. */
static int copy_extents(int src, int dst, off_t size, bool in_kernel)
{
	unsigned char *buf = NULL;
	int rc = 0;
	for (off_t off = 0; off < size && rc == 0;) {
		off_t data = lseek(src, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only hole from here on */
		if (data < 0) {
			data = off; /* no SEEK_DATA here: treat the rest as data */
		}
		off_t hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		int k = in_kernel ? copy_in_kernel(src, dst, data, hole) : 1;
		if (k == 1) {
			in_kernel = false; /* stays off for the rest: the answer will not change */
			if (!buf && !(buf = malloc(COPY_CHUNK)))
				return errno = ENOMEM, -1;
			k = copy_buffered(src, dst, data, hole, buf);
		}
		rc = k;
		off = hole;
	}
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ the stages */

/* Opens the source read-only (the source is never written) and checks it can be
 * copied. it->id names the drive in messages. */
static int open_source(item *it, const char *path, svm_error *err)
{
	it->src = open(path, O_RDONLY | O_CLOEXEC);
	if (it->src < 0)
		return fail_errno(err, "cannot open", it->id, path);
	if (fstat(it->src, &it->st) < 0)
		return fail_errno(err, "cannot stat", it->id, path);
	if (!S_ISREG(it->st.st_mode))
		return svm_error_set(err, SVM_INVALID_CONFIG,
				     "drive %s: %s is not a regular file, so it cannot be staged "
				     "(set \"ephemeral\": false to use it in place)", it->id, path);
	return 0;
}

/* Opens a drive's source and names its copy RUNDIR/drive-<id>.img. */
static int open_item(svm_vm *vm, item *it, svm_error *err)
{
	const char *path = json_string_value(json_object_get(it->drive, "pathOnHost"));
	if (!it->id || !path)
		return svm_error_set(err, SVM_INVALID_CONFIG, "drive without driveId or pathOnHost");
	if (open_source(it, path, err) < 0)
		return -1;
	int n = snprintf(it->path, sizeof it->path, "%s/" STAGE_PREFIX "%s" STAGE_SUFFIX,
			 vm->rundir, it->id);
	if (n < 0 || (size_t)n >= sizeof it->path)
		return svm_error_set(err, SVM_NAME_TOO_LONG, "drive %s: staged path too long", it->id);
	return 0;
}

/* Creates the copy and tries a reflink; what is not cloned needs space. */
static int create_item(item *it, svm_error *err)
{
	it->dst = open(it->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (it->dst < 0)
		return fail_errno(err, "cannot create", it->id, it->path);
	it->created = true;
	if (ioctl(it->dst, FICLONE, it->src) == 0) {
		it->cloned = true;
		return 0;
	}
	/* st_blocks is what the source allocates; a copy allocates at most that
	 * (zero blocks are skipped), rounded to whole blocks of its filesystem. */
	it->need = (uint64_t)it->st.st_blocks * 512;
	return 0;
}

/* dir: where the copies go */
static int check_space(const char *dir, const item *items, size_t n, svm_error *err)
{
	uint64_t need = 0;
	for (size_t i = 0; i < n; i++)
		need += items[i].need;
	if (need == 0)
		return 0;
	struct statvfs sv;
	if (statvfs(dir, &sv) < 0)
		return fail_errno(err, "cannot statvfs", "staging", dir);
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (need > avail)
		return svm_error_set(err, SVM_NO_SPACE,
				     "staging drives needs %.1f MiB in %s, %.1f MiB free "
				     "(set \"ephemeral\": false or -o noephemeral to use them in place)",
				     (double)need / 1048576, dir, (double)avail / 1048576);
	return 0;
}

/* The kernel copy (copy_file_range) only where it can beat ours: within one
 * filesystem, which may share extents or copy server-side (NFS, CIFS, ...).
 * Between filesystems it is a plain copy, and on tmpfs a memory copy that keeps
 * written zeros, where ours leaves them as holes and saves the RAM. */
static bool kernel_copy_pays(const item *it)
{
	struct stat dst;
	struct statfs fs;
	if (fstat(it->dst, &dst) < 0 || dst.st_dev != it->st.st_dev)
		return false;
	return fstatfs(it->dst, &fs) == 0 && fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC;
}

static int copy_item(const item *it, svm_error *err)
{
	if (it->cloned)
		return 0;
	if (ftruncate(it->dst, it->st.st_size) < 0)
		return fail_errno(err, "cannot size", it->id, it->path);
	if (copy_extents(it->src, it->dst, it->st.st_size, kernel_copy_pays(it)) < 0)
		return fail_errno(err, "cannot copy to", it->id, it->path);
	return 0;
}

static void close_items(item *items, size_t n, bool unlink_created)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].src >= 0)
			close(items[i].src);
		if (items[i].dst >= 0)
			close(items[i].dst);
		if (unlink_created && items[i].created)
			unlink(items[i].path);
	}
}

/* Collects the drives to stage; returns their count, or -1. */
static ssize_t collect(svm_vm *vm, json_t *cfg, item **out, svm_error *err)
{
	json_t *drives = json_object_get(cfg, "drives");
	size_t n = 0, i;
	json_t *d;
	*out = NULL;
	if (!json_array_size(drives))
		return 0;
	item *items = calloc(json_array_size(drives), sizeof *items);
	if (!items)
		return svm_error_set(err, SVM_START_FAILED, "out of memory");
	json_array_foreach(drives, i, d) {
		if (!stage_wanted(vm->s, d))
			continue;
		items[n] = (item){.drive = d, .src = -1, .dst = -1,
				  .id = json_string_value(json_object_get(d, "driveId"))};
		n++;
	}
	*out = items;
	return (ssize_t)n;
}

static void log_item(svm_vm *vm, const item *it, uint64_t t0)
{
	struct stat st;
	double mib = fstat(it->dst, &st) == 0 ? (double)st.st_blocks * 512 / 1048576 : 0;
	sink_log(&vm->s->sink, "vm %s: staged drive %s (%s, %.1f MiB allocated of %.1f MiB) in %.1f ms",
		vm->name, it->id, it->cloned ? "reflink" : "copy", it->cloned ? 0.0 : mib,
		(double)it->st.st_size / 1048576, (double)(svm_now_ns() - t0) / 1e6);
}

int stage_drives(svm_vm *vm, json_t *cfg, svm_error *err)
{
	item *items;
	ssize_t n = collect(vm, cfg, &items, err);
	if (n <= 0) {
		free(items);
		return (int)n;
	}
	t_staging = vm;
	pthread_mutex_lock(&vm->mu);
	uint64_t seq = vm->events.seq;
	pthread_mutex_unlock(&vm->mu);
	owner_set(vm, seq);
	/* copies an earlier run left (crash, or a cleanup still on its way) go first,
	 * so O_EXCL below only ever meets a file someone else put there */
	remove_staged(vm);
	uint64_t t0 = svm_now_ns();
	int rc = 0;
	for (ssize_t i = 0; i < n && rc == 0; i++)
		rc = open_item(vm, &items[i], err);
	for (ssize_t i = 0; i < n && rc == 0; i++)
		rc = create_item(&items[i], err);
	if (rc == 0)
		rc = check_space(vm->rundir, items, (size_t)n, err); /* before any byte is copied */
	for (ssize_t i = 0; i < n && rc == 0; i++) {
		uint64_t t = svm_now_ns();
		rc = copy_item(&items[i], err);
		if (rc == 0)
			log_item(vm, &items[i], t);
	}
	if (rc == 0)
		for (ssize_t i = 0; i < n; i++)
			json_object_set_new(items[i].drive, "pathOnHost", json_string(items[i].path));
	else
		sink_log(&vm->s->sink, "vm %s: staging drives failed after %.1f ms: %s", vm->name,
			(double)(svm_now_ns() - t0) / 1e6, err ? err->message : "");
	close_items(items, (size_t)n, rc < 0);
	free(items);
	return rc;
}

void stage_forget(svm_vm *vm)
{
	owner_take(vm, true);
}

void stage_cleanup(svm_vm *vm)
{
	if (cleanup_is_stale(vm))
		return;
	owner_take(vm, true);
	remove_staged(vm);
}

int stage_copy(const char *src, const char *dst, svm_error *err)
{
	item it = {.id = "copy", .src = -1, .dst = -1};
	int n = snprintf(it.path, sizeof it.path, "%s", dst);
	if (n < 0 || (size_t)n >= sizeof it.path)
		return svm_error_set(err, SVM_NAME_TOO_LONG, "copy: path too long: %s", dst);
	char dir[PATH_MAX];
	const char *slash = strrchr(dst, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - dst) + 1 : 1, slash ? dst : ".");
	int rc = open_source(&it, src, err);
	if (rc == 0)
		rc = create_item(&it, err);
	if (rc == 0)
		rc = check_space(dir, &it, 1, err);
	if (rc == 0)
		rc = copy_item(&it, err);
	close_items(&it, 1, rc < 0);
	return rc;
}

int stage_copy_into(const char *src, int dst, const char *name, svm_error *err)
{
	item it = {.id = "copy", .src = -1, .dst = dst};
	snprintf(it.path, sizeof it.path, "%s", name);
	int rc = open_source(&it, src, err);
	if (rc == 0 && ioctl(dst, FICLONE, it.src) == 0)
		it.cloned = true;
	else
		it.need = (uint64_t)it.st.st_blocks * 512;
	struct statvfs sv;
	if (rc == 0 && !it.cloned && fstatvfs(dst, &sv) == 0 &&
	    it.need > (uint64_t)sv.f_bavail * sv.f_frsize)
		rc = svm_error_set(err, SVM_NO_SPACE, "%s: needs %.1f MiB, %.1f MiB free", name,
				   (double)it.need / 1048576,
				   (double)((uint64_t)sv.f_bavail * sv.f_frsize) / 1048576);
	if (rc == 0)
		rc = copy_item(&it, err);
	it.dst = -1; /* the caller's */
	close_items(&it, 1, false);
	return rc;
}
