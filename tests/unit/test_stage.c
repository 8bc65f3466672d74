/*
 * test_stage.c - ephemeral staging of drives (core/vm/stage.c): the seed's staging
 * tests, sparse copies, the free-space check on a small tmpfs (a private mount
 * namespace, as root), and the source staying untouched.
 *
 * `test_stage --bench DIR` instead times staging a 1 GiB sparse drive with
 * 64 MiB of data in DIR against `cp --sparse=always` (median of 10 each).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "stage.h"

#define MiB (1024L * 1024)
#define GiB (1024 * MiB)

static char tmpdir[64];  /* sources and the normal runtime dir (on /tmp) */
static char smalldir[96]; /* a 16 MiB tmpfs, "" if it could not be mounted */
static const char *kernel_stub;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ files */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char *read_small(const char *path)
{
	static char buf[128];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* A size-byte sparse file with `count` regions of `len` bytes of non-zero data
 * at `stride` apart, starting at 0. */
static int make_sparse(const char *path, off_t size, int count, size_t len, off_t stride)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, size) < 0)
		return -1;
	unsigned char *buf = malloc(len);
	unsigned x = 0x12345u;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)((x >> 16) | 1); /* never zero */
	}
	int rc = 0;
	for (int r = 0; r < count && rc == 0; r++) {
		buf[0] = (unsigned char)(r + 1);
		if (pwrite(fd, buf, len, (off_t)r * stride) != (ssize_t)len)
			rc = -1;
	}
	free(buf);
	close(fd);
	return rc;
}

static long long blocks_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_blocks : -1;
}

/* Byte-for-byte comparison (holes read as zeros). */
static bool same_content(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	bool same = fa >= 0 && fb >= 0;
	char *ba = malloc(MiB), *bb = malloc(MiB);
	while (same) {
		ssize_t ra = read(fa, ba, MiB), rb = read(fb, bb, MiB);
		if (ra != rb || ra < 0 || memcmp(ba, bb, (size_t)ra) != 0)
			same = false;
		if (ra <= 0)
			break;
	}
	free(ba);
	free(bb);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* Number of staged copies (drive-*.img) in dir. */
static int count_staged(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "drive-", 6) == 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

/* ------------------------------------------------------------ orchestrators */

static svm *make_svm(const char *rundir, bool no_ephemeral)
{
	char datadir[128];
	snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
	svm_options o = {
		.firecracker = "/bin/true",
		.runtime_dir = rundir,
		.data_dir = datadir,
		.no_ephemeral = no_ephemeral,
		.kill_timeout_ms = 500,
		.ready_timeout_ms = 1000,
	};
	svm_error e;
	svm *s = svm_new(&o, &e);
	if (!s)
		printf("# svm_new(%s): %s\n", rundir, e.message);
	return s;
}

/* {"drives": [...]} from a list of drive objects written as JSON text */
static json_t *cfg_of(const char *drives_json)
{
	char text[4096];
	snprintf(text, sizeof text, "{\"drives\": %s}", drives_json);
	json_t *cfg = json_loads(text, 0, NULL);
	if (!cfg)
		printf("# bad test json: %s\n", text);
	return cfg;
}

static const char *drive_path(json_t *cfg, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(cfg, "drives"), i),
						 "pathOnHost"));
}

/* ------------------------------------------------------------ tests */

/* The seed: "start() should stage writable drives ephemerally and clean them up
 * on failure" — through a whole start whose VMM (/bin/true) exits at once. */
static void test_start_failure(svm *s, const char *src)
{
	svm_error e;
	svm_vm *vm = svm_create_vm(s, "failing", &e);
	CHECK(vm, "create vm for a failing start");
	if (!vm)
		return;
	char cfg[1024];
	snprintf(cfg, sizeof cfg,
		 "{\"bootSource\": {\"kernelImagePath\": \"%s\"}, \"machineConfig\": {\"vcpuCount\": 1,"
		 " \"memSizeMib\": 128}, \"drives\": [{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\","
		 " \"isRootDevice\": true, \"isReadOnly\": false}]}", kernel_stub, src);
	CHECK(svm_vm_set_config_json(vm, cfg, strlen(cfg), &e) == 0, "set config");
	svm_request r = {.verb = SVM_V_START};
	CHECK(svm_vm_do(vm, &r, &e) < 0, "start with /bin/true as the VMM fails");
	char *log = svm_log_text(s);
	CHECK(log && strstr(log, "vm failing: staged drive rootfs"), "the drive was staged during the start");
	free(log);
	CHECK_INT(count_staged(vm->rundir), 0, "failed start: no staged copy remains");
	CHECK_STR(read_small(src), "persistent-rootfs", "failed start: source unchanged");
	char *now = svm_vm_config_json(vm);
	CHECK(now && strstr(now, src), "failed start: config.json still names the source");
	free(now);
	svm_vm_unref(vm);
	CHECK(svm_remove_vm(s, "failing", &e) == 0, "remove vm");
}

static void test_staged_and_cleanup(svm_vm *vm, const char *src)
{
	char want[200], drives[1024];
	snprintf(want, sizeof want, "%s/drive-rootfs.img", vm->rundir);
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true,"
		 " \"isReadOnly\": false}, {\"driveId\": \"data_2\", \"pathOnHost\": \"%s\","
		 " \"isRootDevice\": false}]", src, src);
	json_t *cfg = cfg_of(drives);
	svm_error e;
	CHECK(stage_drives(vm, cfg, &e) == 0, "stage two writable drives");
	CHECK_STR(drive_path(cfg, 0), want, "pathOnHost rewritten to RUNDIR/drive-<id>.img");
	CHECK(strstr(drive_path(cfg, 1), "/drive-data_2.img") != NULL, "second drive: its own name");
	CHECK_STR(read_small(want), "persistent-rootfs", "staged copy has the source's content");
	struct stat st;
	CHECK(stat(want, &st) == 0 && (st.st_mode & 0777) == 0600, "staged copy is mode 0600");

	/* the guest writes to its drive */
	write_file(want, "guest-was-here");
	CHECK_STR(read_small(src), "persistent-rootfs", "a write to the staged copy leaves the source");

	stage_cleanup(vm);
	CHECK_INT(count_staged(vm->rundir), 0, "stage_cleanup removes every staged copy");
	CHECK(access(vm->rundir, F_OK) == 0, "the runtime dir itself stays");
	CHECK_STR(read_small(src), "persistent-rootfs", "cleanup leaves the source");
	json_decref(cfg);
}

/* The seed: "start() should honor per-drive ephemeral opt-out". */
static void test_opt_outs(svm_vm *vm, svm *noeph, const char *src)
{
	char drives[1024];
	svm_error e;
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true,"
		 " \"isReadOnly\": false, \"ephemeral\": false}]", src);
	json_t *cfg = cfg_of(drives);
	CHECK(stage_drives(vm, cfg, &e) == 0, "per-drive opt-out: ok");
	CHECK_STR(drive_path(cfg, 0), src, "per-drive opt-out: used in place");
	CHECK_INT(count_staged(vm->rundir), 0, "per-drive opt-out: nothing staged");
	json_decref(cfg);

	/* read-only: not staged unless asked */
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"ro\", \"pathOnHost\": \"%s\", \"isRootDevice\": true,"
		 " \"isReadOnly\": true}, {\"driveId\": \"ro_asked\", \"pathOnHost\": \"%s\","
		 " \"isRootDevice\": false, \"isReadOnly\": true, \"ephemeral\": true}]", src, src);
	cfg = cfg_of(drives);
	CHECK(stage_drives(vm, cfg, &e) == 0, "read-only drives: ok");
	CHECK_STR(drive_path(cfg, 0), src, "read-only drive: used in place");
	CHECK(strstr(drive_path(cfg, 1), "/drive-ro_asked.img") != NULL,
	      "read-only drive with ephemeral true: staged");
	CHECK_INT(count_staged(vm->rundir), 1, "read-only: only the one that asked");
	stage_cleanup(vm);
	json_decref(cfg);

	/* global opt-out (-o noephemeral) */
	svm_vm *v2 = noeph ? svm_create_vm(noeph, "noeph", &e) : NULL;
	CHECK(v2, "global opt-out: vm");
	if (!v2)
		return;
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", src);
	cfg = cfg_of(drives);
	CHECK(stage_drives(v2, cfg, &e) == 0, "global opt-out: ok");
	CHECK_STR(drive_path(cfg, 0), src, "global opt-out: used in place");
	CHECK_INT(count_staged(v2->rundir), 0, "global opt-out: nothing staged");
	json_decref(cfg);
	svm_vm_unref(v2);
}

static void test_errors(svm_vm *vm, const char *src)
{
	char drives[1024];
	svm_error e;
	/* the second drive's source is missing: the first one's copy must go too */
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"a\", \"pathOnHost\": \"%s\", \"isRootDevice\": true},"
		 " {\"driveId\": \"b\", \"pathOnHost\": \"%s/missing.img\", \"isRootDevice\": false}]",
		 src, tmpdir);
	json_t *cfg = cfg_of(drives);
	CHECK(stage_drives(vm, cfg, &e) < 0, "missing source fails");
	CHECK_INT(e.code, SVM_NOT_FOUND, "missing source: NOT_FOUND (ENOENT)");
	CHECK_STR(drive_path(cfg, 0), src, "failed staging leaves pathOnHost");
	CHECK_INT(count_staged(vm->rundir), 0, "failed staging: nothing staged remains");
	json_decref(cfg);

	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"dir\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", tmpdir);
	cfg = cfg_of(drives);
	CHECK(stage_drives(vm, cfg, &e) < 0 && e.code == SVM_INVALID_CONFIG,
	      "a directory as a drive: INVALID_CONFIG");
	CHECK(strstr(e.message, "ephemeral") != NULL, "the message says how to opt out");
	json_decref(cfg);
}

/* A staged name already taken by a symlink (a crash leftover, or planted): it is
 * replaced, and the file it pointed at is not written through. */
static void test_no_follow(svm_vm *vm, const char *src)
{
	char victim[512], link[PATH_MAX], drives[1024];
	snprintf(victim, sizeof victim, "%s/victim", tmpdir);
	snprintf(link, sizeof link, "%s/drive-rootfs.img", vm->rundir);
	write_file(victim, "victim");
	CHECK(symlink(victim, link) == 0, "plant a symlink at the staged name");
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", src);
	json_t *cfg = cfg_of(drives);
	svm_error e;
	CHECK(stage_drives(vm, cfg, &e) == 0, "stage over a leftover");
	struct stat st;
	CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode), "the copy is a new regular file");
	CHECK_STR(read_small(victim), "victim", "the symlink's target was not written");
	stage_cleanup(vm);
	json_decref(cfg);
}

/* 1 GiB sparse with 3 x 2 MiB of data: the copy keeps the holes, same content. */
static void test_sparse(svm_vm *vm, const char *label)
{
	char src[128], drives[1024];
	snprintf(src, sizeof src, "%s/sparse.img", tmpdir);
	CHECK(make_sparse(src, GiB, 3, 2 * MiB, 400 * MiB) == 0, "make a 1 GiB sparse image");
	long long sb = blocks_of(src);
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", src);
	json_t *cfg = cfg_of(drives);
	svm_error e;
	char what[128];
	snprintf(what, sizeof what, "%s: stage the sparse image", label);
	CHECK(stage_drives(vm, cfg, &e) == 0, what);
	const char *dst = drive_path(cfg, 0);
	struct stat st;
	snprintf(what, sizeof what, "%s: staged size is 1 GiB", label);
	CHECK(stat(dst, &st) == 0 && st.st_size == GiB, what);
	snprintf(what, sizeof what, "%s: staged copy as sparse as the source (st_blocks)", label);
	CHECK_INT(blocks_of(dst), sb, what);
	snprintf(what, sizeof what, "%s: staged copy identical to the source", label);
	CHECK(same_content(src, dst), what);
	stage_cleanup(vm);
	json_decref(cfg);

	/* written zeros (dd if=/dev/zero style images) become holes too */
	int fd = open(src, O_WRONLY);
	char *zeros = calloc(1, 8 * MiB);
	bool ok = fd >= 0 && pwrite(fd, zeros, 8 * MiB, 100 * MiB) == 8 * MiB;
	free(zeros);
	if (fd >= 0)
		close(fd);
	long long sb2 = blocks_of(src);
	cfg = cfg_of(drives);
	ok = ok && stage_drives(vm, cfg, &e) == 0;
	snprintf(what, sizeof what, "%s: written zeros are not allocated in the copy", label);
	if (ok && strcmp(label, "same fs") != 0)
		CHECK(sb2 >= sb + 8 * MiB / 512 && blocks_of(drive_path(cfg, 0)) == sb, what);
	else if (ok)
		check_skip(what, "same filesystem: copy_file_range copies them");
	else
		CHECK(0, what);
	snprintf(what, sizeof what, "%s: identical with written zeros", label);
	CHECK(ok && same_content(src, drive_path(cfg, 0)), what);
	stage_cleanup(vm);
	json_decref(cfg);
	unlink(src);
}

static atomic_int thread_result;

static void *cleanup_thread(void *vm)
{
	stage_cleanup(vm);
	atomic_store(&thread_result, 1);
	return NULL;
}

/* The loop publishes "stopped" before its stage_cleanup runs; a start that stages
 * in between owns the new copies, and that late cleanup must leave them. */
static void test_late_cleanup(svm_vm *vm, const char *src)
{
	char drives[1024];
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", src);
	json_t *cfg = cfg_of(drives);
	svm_error e;
	pthread_mutex_lock(&vm->mu); /* pretend a start is running (launch's marks) */
	vm->busy = true;
	atomic_store(&vm->state, SVM_STARTING);
	pthread_mutex_unlock(&vm->mu);
	CHECK(stage_drives(vm, cfg, &e) == 0, "late cleanup: a start stages");
	pthread_t t;
	pthread_create(&t, NULL, cleanup_thread, vm);
	pthread_join(t, NULL);
	CHECK_INT(count_staged(vm->rundir), 1, "a late cleanup from the loop leaves the new copies");
	pthread_mutex_lock(&vm->mu); /* its VMM exits: an exit event */
	lines_add(&vm->events, "exit 1");
	pthread_mutex_unlock(&vm->mu);
	pthread_create(&t, NULL, cleanup_thread, vm);
	pthread_join(t, NULL);
	CHECK_INT(count_staged(vm->rundir), 0, "the exit of that start's own VMM removes them");
	stage_drives(vm, cfg, &e);
	stage_cleanup(vm);
	CHECK_INT(count_staged(vm->rundir), 0, "the starting thread's own cleanup always removes");
	pthread_mutex_lock(&vm->mu);
	vm->busy = false;
	atomic_store(&vm->state, SVM_CREATED);
	pthread_mutex_unlock(&vm->mu);
	json_decref(cfg);
}

/* stage_copy: the same copy for one file (snapshots keeping a staged drive). */
static void test_copy(const char *src)
{
	char dst[128], sparse[128];
	svm_error e;
	snprintf(dst, sizeof dst, "%s/copy.img", tmpdir);
	snprintf(sparse, sizeof sparse, "%s/copy-src.img", tmpdir);
	CHECK(stage_copy(src, dst, &e) == 0, "stage_copy: small file");
	CHECK_STR(read_small(dst), "persistent-rootfs", "stage_copy: content");
	CHECK(stage_copy(src, dst, &e) < 0 && e.code == SVM_EXISTS, "stage_copy: never over a file");
	write_file(dst, "kept");
	CHECK(stage_copy(src, dst, &e) < 0, "stage_copy: over a file fails again");
	CHECK_STR(read_small(dst), "kept", "stage_copy: ... and leaves it");
	unlink(dst);
	make_sparse(sparse, 256 * MiB, 2, 1 * MiB, 128 * MiB);
	CHECK(stage_copy(sparse, dst, &e) == 0, "stage_copy: sparse file");
	CHECK_INT(blocks_of(dst), blocks_of(sparse), "stage_copy: as sparse");
	CHECK(same_content(sparse, dst), "stage_copy: identical");
	unlink(dst);
	unlink(sparse);
}

/* ------------------------------------------------------------ small tmpfs */

/* In a private mount namespace (before any thread exists: unshare affects the
 * calling thread only), a 16 MiB tmpfs for the runtime dir. */
static void mount_small(void)
{
	snprintf(smalldir, sizeof smalldir, "%s/small", tmpdir);
	if (mkdir(smalldir, 0700) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", smalldir, "tmpfs", 0, "size=16m,mode=0700") < 0) {
		printf("# small tmpfs: %s\n", strerror(errno));
		smalldir[0] = '\0';
	}
}

static unsigned long long free_bytes(const char *dir)
{
	struct statvfs sv;
	return statvfs(dir, &sv) == 0 ? (unsigned long long)sv.f_bavail * sv.f_frsize : 0;
}

static void test_no_space(void)
{
	if (!smalldir[0]) {
		check_skip("no space: SVM_NO_SPACE", "no private tmpfs (needs root)");
		return;
	}
	char rundir[128], big[128], small[128], sparse[128], drives[2048];
	snprintf(rundir, sizeof rundir, "%s/run", smalldir);
	snprintf(big, sizeof big, "%s/big.img", tmpdir);
	snprintf(small, sizeof small, "%s/small.img", tmpdir);
	snprintf(sparse, sizeof sparse, "%s/sparse-small.img", tmpdir);
	make_sparse(big, 64 * MiB, 1, 32 * MiB, 0);  /* 32 MiB of data: does not fit */
	make_sparse(small, 4 * MiB, 1, 4 * MiB, 0);  /* fits */
	make_sparse(sparse, GiB, 2, 1 * MiB, 512 * MiB); /* 1 GiB, 2 MiB of data: fits */
	svm *s = make_svm(rundir, false);
	svm_error e;
	svm_vm *vm = s ? svm_create_vm(s, "small", &e) : NULL;
	CHECK(vm, "vm on a 16 MiB tmpfs");
	if (!vm) {
		svm_free(s);
		return;
	}
	unsigned long long before = free_bytes(rundir);
	char *sum = malloc(MiB);
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"a\", \"pathOnHost\": \"%s\", \"isRootDevice\": true},"
		 " {\"driveId\": \"b\", \"pathOnHost\": \"%s\", \"isRootDevice\": false}]", small, big);
	json_t *cfg = cfg_of(drives);
	double t0 = now_ms();
	int rc = stage_drives(vm, cfg, &e);
	double took = now_ms() - t0;
	CHECK(rc < 0, "a drive larger than the free space fails");
	CHECK_INT(e.code, SVM_NO_SPACE, "... with SVM_NO_SPACE");
	CHECK_INT(svm_code_errno(e.code), ENOSPC, "... which is ENOSPC");
	printf("# %s (%.1f ms)\n", e.message, took);
	CHECK_INT(count_staged(vm->rundir), 0, "... and nothing staged remains");
	CHECK(free_bytes(rundir) == before, "... and the tmpfs is as free as before");
	CHECK_STR(drive_path(cfg, 0), small, "... and the config still names the sources");
	json_decref(cfg);

	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", sparse);
	cfg = cfg_of(drives);
	CHECK(stage_drives(vm, cfg, &e) == 0, "a 1 GiB sparse drive with 2 MiB of data fits in 16 MiB");
	CHECK(same_content(sparse, drive_path(cfg, 0)), "... identical");
	stage_cleanup(vm);
	CHECK(free_bytes(rundir) == before, "cleanup gives the tmpfs back");
	json_decref(cfg);

	char dst[160];
	snprintf(dst, sizeof dst, "%s/copy.img", rundir);
	CHECK(stage_copy(big, dst, &e) < 0 && e.code == SVM_NO_SPACE, "stage_copy: no space");
	CHECK(access(dst, F_OK) < 0 && free_bytes(rundir) == before, "stage_copy: nothing left");
	free(sum);
	svm_vm_unref(vm);
	svm_free(s);
	unlink(big);
	unlink(small);
	unlink(sparse);
}

/* ------------------------------------------------------------ bench */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double run_cp(const char *src, const char *dst)
{
	unlink(dst);
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		execlp("cp", "cp", "--sparse=always", src, dst, (char *)NULL);
		_exit(127);
	}
	int ws;
	waitpid(pid, &ws, 0);
	return now_ms() - t0;
}

static int bench(const char *dir)
{
	char src[512], rundir[512], cpdst[512], drives[1024];
	snprintf(src, sizeof src, "%s/bench-src.img", dir);
	snprintf(cpdst, sizeof cpdst, "%s/bench-cp.img", dir);
	snprintf(rundir, sizeof rundir, "%s/bench-run", dir);
	/* 1 GiB with 64 MiB of data in 16 regions of 4 MiB */
	if (make_sparse(src, GiB, 16, 4 * MiB, 64 * MiB) < 0)
		return printf("cannot make %s\n", src), 1;
	svm *s = make_svm(rundir, false);
	svm_error e;
	svm_vm *vm = s ? svm_create_vm(s, "bench", &e) : NULL;
	if (!vm)
		return 1;
	snprintf(drives, sizeof drives,
		 "[{\"driveId\": \"rootfs\", \"pathOnHost\": \"%s\", \"isRootDevice\": true}]", src);
	double tcp[10], tst[10];
	long long bcp = 0, bst = 0;
	for (int i = 0; i < 10; i++) {
		tcp[i] = run_cp(src, cpdst);
		bcp = blocks_of(cpdst);
		json_t *cfg = cfg_of(drives);
		double t0 = now_ms();
		if (stage_drives(vm, cfg, &e) < 0)
			printf("stage: %s\n", e.message);
		tst[i] = now_ms() - t0;
		bst = blocks_of(drive_path(cfg, 0));
		stage_cleanup(vm);
		json_decref(cfg);
	}
	qsort(tcp, 10, sizeof *tcp, cmp_double);
	qsort(tst, 10, sizeof *tst, cmp_double);
	double mcp = (tcp[4] + tcp[5]) / 2, mst = (tst[4] + tst[5]) / 2;
	printf("source: 1 GiB, %lld blocks; cp --sparse=always: median %.2f ms, %lld blocks; "
	       "stage_drives: median %.2f ms, %lld blocks; ratio %.3f\n",
	       blocks_of(src), mcp, bcp, mst, bst, mst / mcp);
	unlink(cpdst);
	unlink(src);
	svm_vm_unref(vm);
	svm_free(s);
	rmdir(rundir);
	return 0;
}

/* ------------------------------------------------------------ main */

static void rm_rf(const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench(argv[2]);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/svm-stage-XXXXXX");
	if (!mkdtemp(tmpdir))
		return perror("mkdtemp"), 1;
	if (geteuid() == 0)
		mount_small(); /* first: the process has one thread still */

	char src[128], kstub[128], rundir[128], rundir2[128];
	snprintf(src, sizeof src, "%s/rootfs.ext4", tmpdir);
	snprintf(kstub, sizeof kstub, "%s/vmlinux", tmpdir);
	snprintf(rundir, sizeof rundir, "%s/run", tmpdir);
	snprintf(rundir2, sizeof rundir2, "%s/run-noeph", tmpdir);
	write_file(src, "persistent-rootfs");
	write_file(kstub, "not a kernel");
	kernel_stub = kstub;

	svm *s = make_svm(rundir, false), *noeph = make_svm(rundir2, true);
	svm_error e;
	svm_vm *vm = s ? svm_create_vm(s, "stager", &e) : NULL;
	CHECK(vm, "orchestrator and vm");
	if (vm) {
		test_staged_and_cleanup(vm, src);
		test_opt_outs(vm, noeph, src);
		test_errors(vm, src);
		test_no_follow(vm, src);
		test_late_cleanup(vm, src);
		test_copy(src);
		test_sparse(vm, "same fs");
		test_start_failure(s, src);
		svm_vm_unref(vm);
	}
	svm_free(s);
	svm_free(noeph);

	/* sources on /tmp, runtime dir on tmpfs: the zero-skipping copy */
	char shmrun[128];
	snprintf(shmrun, sizeof shmrun, "/dev/shm/svm-stage-%d", (int)getpid());
	s = make_svm(shmrun, false);
	vm = s ? svm_create_vm(s, "shm", &e) : NULL;
	if (vm) {
		test_sparse(vm, "to tmpfs");
		svm_vm_unref(vm);
	} else {
		check_skip("sparse copy to /dev/shm", "no /dev/shm");
	}
	svm_free(s);
	rm_rf(shmrun);

	test_no_space();
	if (smalldir[0])
		umount2(smalldir, MNT_DETACH);
	rm_rf(tmpdir);
	return check_done();
}
