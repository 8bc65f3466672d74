/*
 * vmlimits_cg.c - where a host's cgroups are, and one VM's cgroup in them
 * (vmlimits.h): made, written, joined, read back and removed, in v1 (one
 * hierarchy per controller) and v2 (one hierarchy, controllers enabled from
 * the root down) alike. The paths are the jailer's, so a jailed VMM's cgroup is
 * the same directory the daemon reads, writes and removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "vmlimits.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270 /* CGROUP2_SUPER_MAGIC */
/* v1 says "no limit" with the largest page-aligned value it keeps */
#define V1_UNLIMITED (1ull << 62)

static const char *const controllers[VMLIM_CONTROLLERS] = {"cpu", "memory", "pids"};

/* One lock for making and removing the shared SUBTREE directory: a VM's end
 * removing it while another start makes its cgroup in it would fail that start. */
static pthread_mutex_t tree_mu = PTHREAD_MUTEX_INITIALIZER;

static int controller_of(svm_limit k)
{
	return k == SVM_LIMIT_CPU ? VMLIM_CPU : k == SVM_LIMIT_MEMORY ? VMLIM_MEMORY : VMLIM_PIDS;
}

/* ------------------------------------------------------------ the host */

/* Does comma list opts hold word? */
static bool has_word(const char *opts, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == '\0' || p[n] == '\n' || p[n] == ' '))
			return true;
	return false;
}

/* v1: each controller's hierarchy, from the cgroup mounts' super options. */
static void find_v1(vmlim_host *h)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	while (f && fgets(line, sizeof line, f)) {
		char mp[PATH_MAX], type[64], opts[1024];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2 || strcmp(type, "cgroup"))
			continue;
		for (int c = 0; c < VMLIM_CONTROLLERS; c++)
			if (!h->v1[c][0] && has_word(opts, controllers[c]) && strlen(mp) < VMLIM_MOUNT_MAX) {
				memcpy(h->v1[c], mp, strlen(mp) + 1); /* fits: just checked */
				h->version = 1;
			}
	}
	if (f)
		fclose(f);
}

static vmlim_host host;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
	struct statfs sf;
	memset(&host, 0, sizeof host);
	if (statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_MAGIC) {
		host.version = 2;
		snprintf(host.root, sizeof host.root, "%s", CGROUP_ROOT);
		return;
	}
	find_v1(&host);
}

const vmlim_host *vmlim_host_get(void)
{
	pthread_once(&host_once, detect);
	return &host;
}

void vmlim_host_at(vmlim_host *h, int version, const char *root)
{
	memset(h, 0, sizeof *h);
	h->version = version;
	if (version == 2)
		snprintf(h->root, sizeof h->root, "%s", root);
	for (int c = 0; version == 1 && c < VMLIM_CONTROLLERS; c++)
		snprintf(h->v1[c], sizeof h->v1[c], "%s/%s", root, controllers[c]);
}

/* The hierarchy's root that holds controller c ("" when none). */
static const char *base_of(const vmlim_host *h, int c)
{
	return h->version == 2 ? h->root : h->version == 1 ? h->v1[c] : "";
}

/* ------------------------------------------------------------ files */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int e = errno;
	close(fd);
	errno = e;
	return w == (ssize_t)n ? 0 : -1;
}

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The kernel's refusal of a value, as the core's error. */
static int refused(const char *path, const char *value, int e, svm_error *err)
{
	svm_code code = e == EINVAL || e == ERANGE ? SVM_INVALID_ARGUMENT
			: e == EBUSY		   ? SVM_INVALID_STATE
			: e == EACCES || e == EPERM ? SVM_PERMISSION
						   : SVM_START_FAILED;
	return svm_error_set(err, code, "limits: the kernel refused %s in %s: %s%s", value, path,
			     strerror(e),
			     e == EBUSY ? " (the VMM uses more than that now)" : "");
}

static void cg_dir(const vmlim_host *h, int c, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" VMLIM_SUBTREE "%s%s", base_of(h, c), id ? "/" : "", id ? id : "");
}

/* ------------------------------------------------------------ a VM's cgroup */

int vmlim_cg_check(const vmlim_host *h, svm_limit k, svm_error *err)
{
	int c = controller_of(k);
	const char *name = controllers[c];
	char list[1024] = "", p[PATH_MAX];
	if (h->version == 2) {
		snprintf(p, sizeof p, "%s/cgroup.controllers", h->root);
		if (read_text(p, list, sizeof list) == 0) {
			for (char *save = NULL, *t = strtok_r(list, " ", &save); t;
			     t = strtok_r(NULL, " ", &save))
				if (!strcmp(t, name))
					return 0;
		}
		return svm_error_set(err, SVM_INVALID_CONFIG,
				     "limits: %s needs the cgroup controller \"%s\", which this host "
				     "does not offer (cgroup v2: not in %s)", svm_limit_name(k), name, p);
	}
	if (h->version == 1 && h->v1[c][0])
		return 0;
	return svm_error_set(err, SVM_INVALID_CONFIG,
			     "limits: %s needs the cgroup controller \"%s\", which this host does not "
			     "offer (%s)", svm_limit_name(k), name,
			     h->version == 1 ? "cgroup v1: no hierarchy of it is mounted"
					     : "no cgroup filesystem at " CGROUP_ROOT);
}

/* v2: controller c enabled in the subtree of dir (a parent of the VM's cgroup). */
static int enable_in(const char *dir, int c, svm_error *err)
{
	char p[PATH_MAX], word[32];
	snprintf(p, sizeof p, "%s/cgroup.subtree_control", dir);
	snprintf(word, sizeof word, "+%s", controllers[c]);
	if (write_text(p, word) < 0)
		return refused(p, word, errno, err);
	return 0;
}

/* The VM's cgroup of controller c, made when absent. */
static int make_dir(const vmlim_host *h, int c, const char *id, char *dir, size_t len,
		    svm_error *err)
{
	char parent[PATH_MAX];
	cg_dir(h, c, NULL, parent, sizeof parent);
	cg_dir(h, c, id, dir, len);
	int rc = 0;
	pthread_mutex_lock(&tree_mu);
	if (h->version == 2 && enable_in(h->root, c, err) < 0)
		rc = -1;
	if (!rc && mkdir(parent, 0755) < 0 && errno != EEXIST)
		rc = refused(parent, "a new cgroup", errno, err);
	if (!rc && h->version == 2 && enable_in(parent, c, err) < 0)
		rc = -1;
	if (!rc && mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = refused(dir, "a new cgroup", errno, err);
	pthread_mutex_unlock(&tree_mu);
	return rc;
}

/* FILE=VALUE pairs for limit k, in the order they are written (v1's period
 * before its quota); the count. */
static int file_values(const vmlim_host *h, svm_limit k, const svm_limit_val *v, char file[2][32],
		       char value[2][48])
{
	bool v1 = h->version == 1;
	switch (k) {
	case SVM_LIMIT_CPU:
		if (!v1) {
			snprintf(file[0], 32, "cpu.max");
			svm_limit_format(k, v, value[0], 48);
			return 1;
		}
		snprintf(file[0], 32, "cpu.cfs_period_us");
		snprintf(value[0], 48, "%" PRIu64, v->period);
		snprintf(file[1], 32, "cpu.cfs_quota_us");
		if (v->max)
			snprintf(value[1], 48, "-1");
		else
			snprintf(value[1], 48, "%" PRIu64, v->value);
		return 2;
	case SVM_LIMIT_MEMORY:
		snprintf(file[0], 32, v1 ? "memory.limit_in_bytes" : "memory.max");
		if (v->max)
			snprintf(value[0], 48, v1 ? "-1" : "max");
		else
			snprintf(value[0], 48, "%" PRIu64, v->value);
		return 1;
	default:
		snprintf(file[0], 32, "pids.max");
		svm_limit_format(k, v, value[0], 48);
		return 1;
	}
}

int vmlim_cg_write(const vmlim_host *h, svm_limit k, const char *id, const svm_limit_val *v,
		   svm_error *err)
{
	int c = controller_of(k);
	char dir[PATH_MAX], file[2][32], value[2][48];
	if (vmlim_cg_check(h, k, err) < 0 || make_dir(h, c, id, dir, sizeof dir, err) < 0)
		return -1;
	int n = file_values(h, k, v, file, value);
	for (int i = 0; i < n; i++) {
		char p[PATH_MAX + 80];
		snprintf(p, sizeof p, "%s/%s", dir, file[i]);
		if (write_text(p, value[i]) < 0)
			return refused(p, value[i], errno, err);
	}
	return 0;
}

int vmlim_cg_move(const vmlim_host *h, svm_limit k, const char *id, pid_t pid, svm_error *err)
{
	char dir[PATH_MAX], p[PATH_MAX + 16], text[24];
	if (make_dir(h, controller_of(k), id, dir, sizeof dir, err) < 0)
		return -1;
	/* cgroup.procs: the whole process, every thread of it (v1's tasks would
	 * move one thread) */
	snprintf(p, sizeof p, "%s/cgroup.procs", dir);
	snprintf(text, sizeof text, "%d", (int)pid);
	if (write_text(p, text) < 0)
		return refused(p, text, errno, err);
	return 0;
}

static bool read_u64(const char *dir, const char *file, char *buf, size_t len)
{
	char p[PATH_MAX + 80];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	return read_text(p, buf, len) == 0;
}

int vmlim_cg_read(const vmlim_host *h, svm_limit k, const char *id, svm_limit_val *out)
{
	int c = controller_of(k);
	char dir[PATH_MAX], a[64], b[64];
	struct stat st;
	memset(out, 0, sizeof *out);
	if (!h->version || !base_of(h, c)[0])
		return 0;
	cg_dir(h, c, id, dir, sizeof dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (h->version == 2 || k == SVM_LIMIT_PIDS) {
		const char *f = k == SVM_LIMIT_CPU ? "cpu.max" : k == SVM_LIMIT_MEMORY ? "memory.max"
										 : "pids.max";
		char why[256];
		if (!read_u64(dir, f, a, sizeof a))
			return 0;
		return svm_limit_parse(k, a, strlen(a), 0, out, why, sizeof why) == 0 ? 1 : 0;
	}
	if (k == SVM_LIMIT_CPU) {
		if (!read_u64(dir, "cpu.cfs_quota_us", a, sizeof a) ||
		    !read_u64(dir, "cpu.cfs_period_us", b, sizeof b))
			return 0;
		long long q = strtoll(a, NULL, 10);
		out->max = q < 0;
		out->value = q < 0 ? 0 : (uint64_t)q;
		out->period = strtoull(b, NULL, 10);
		return 1;
	}
	if (!read_u64(dir, "memory.limit_in_bytes", a, sizeof a))
		return 0;
	unsigned long long m = strtoull(a, NULL, 10);
	out->max = m >= V1_UNLIMITED;
	out->value = out->max ? 0 : m;
	return 1;
}

/* rmdir that waits a little for a cgroup whose last task is still leaving. */
static void remove_dir(const char *dir)
{
	for (int i = 0; i < 100 && rmdir(dir) < 0 && errno == EBUSY; i++)
		nanosleep(&(struct timespec){0, 2000000}, NULL);
}

void vmlim_cg_remove(const vmlim_host *h, const char *id)
{
	for (int c = 0; c < VMLIM_CONTROLLERS; c++) {
		if (!base_of(h, c)[0] || (h->version == 2 && c > 0))
			continue; /* v2: one directory for all */
		char dir[PATH_MAX], parent[PATH_MAX];
		cg_dir(h, c, id, dir, sizeof dir);
		cg_dir(h, c, NULL, parent, sizeof parent);
		pthread_mutex_lock(&tree_mu);
		remove_dir(dir);
		rmdir(parent); /* the last of the mount's VMs: nothing left (else ENOTEMPTY) */
		pthread_mutex_unlock(&tree_mu);
	}
}

int vmlim_cg_jail_values(const vmlim_host *h, svm_limit k, const svm_limit_val *v, char *out[2])
{
	char file[2][32], value[2][48];
	int n = file_values(h, k, v, file, value);
	for (int i = 0; i < n; i++)
		if (asprintf(&out[i], "%s=%s", file[i], value[i]) < 0)
			out[i] = NULL;
	return n;
}
