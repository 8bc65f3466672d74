/*
 * test_limits.c - the resource limits below the files (docs/limits.md): their
 * values (parsed, bounded, shown in one form, kept as JSON), and one VM's cgroup
 * on a host of either cgroup version, made in a directory tree that stands for
 * /sys/fs/cgroup (the tests of the mounted tree see the host's own version only;
 * this one sees both): the files written and read back, the controllers enabled
 * from the root down (v2), the VMM moved in, the jailer's --cgroup values, a
 * missing controller named.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "vmlimits.h"

static char *slurp(const char *dir, const char *file)
{
	static char buf[256];
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	FILE *f = fopen(p, "re");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return f ? buf : NULL;
}

static void put(const char *dir, const char *file, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	FILE *f = fopen(p, "we");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void values(void)
{
	svm_limit_val v;
	char why[256], text[64];
	CHECK(svm_limit_parse(SVM_LIMIT_CPU, "50000", 5, 20000, &v, why, sizeof why) == 0 &&
	      !v.max && v.value == 50000 && v.period == 20000, "cpu.max: a quota alone keeps the period");
	CHECK(svm_limit_parse(SVM_LIMIT_CPU, "max\n", 4, 0, &v, why, sizeof why) == 0 && v.max &&
	      v.period == SVM_CPU_PERIOD_DEFAULT, "cpu.max: max, the kernel's period");
	svm_limit_format(SVM_LIMIT_CPU, &v, text, sizeof text);
	CHECK_STR(text, "max 100000", "cpu.max shown as cgroup v2 writes it");
	CHECK(svm_limit_parse(SVM_LIMIT_CPU, "999 100000", 10, 0, &v, why, sizeof why) < 0 &&
	      strstr(why, "QUOTA PERIOD"), "cpu.max: a quota under 1 ms refused, saying the form");
	CHECK(svm_limit_parse(SVM_LIMIT_MEMORY, "2G", 2, 0, &v, why, sizeof why) == 0 &&
	      v.value == 2ull << 30, "memory.max: a binary suffix");
	CHECK(svm_limit_parse(SVM_LIMIT_MEMORY, "4096", 4, 0, &v, why, sizeof why) < 0,
	      "memory.max: under 1 MiB refused");
	CHECK(svm_limit_parse(SVM_LIMIT_MEMORY, "99999999999T", 12, 0, &v, why, sizeof why) < 0,
	      "memory.max: past 2^62 refused, not wrapped");
	CHECK(svm_limit_parse(SVM_LIMIT_NOFILE, "max", 3, 0, &v, why, sizeof why) < 0,
	      "nofile: no max (the kernel has none)");
	CHECK(svm_limit_parse(SVM_LIMIT_PIDS, "1 2", 3, 0, &v, why, sizeof why) < 0,
	      "one value, not two");
	json_t *j = json_integer(64);
	CHECK(svm_limit_from_json(SVM_LIMIT_PIDS, j, &v, why, sizeof why) == 0 && v.value == 64,
	      "pids.max: a number in config.json");
	json_decref(j);
	j = svm_limit_to_json(SVM_LIMIT_FSIZE, &(svm_limit_val){.max = true});
	CHECK_STR(json_string_value(j), "max", "fsize max kept as \"max\"");
	json_decref(j);
	json_t *problems = json_array(), *lims = json_pack("{s:i, s:s}", "swap.max", 1, "cpu.max", "x");
	svm_limits_problems(lims, problems);
	CHECK_INT(json_array_size(problems), 2, "config.json: an unknown limit and a bad one, both said");
	json_decref(lims);
	json_decref(problems);
}

static void v2(const char *root)
{
	vmlim_host h;
	svm_error err;
	svm_limit_val v;
	char dir[PATH_MAX], *vals[2];
	vmlim_host_at(&h, 2, root);
	put(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
	snprintf(dir, sizeof dir, "%s/" VMLIM_SUBTREE "/vm1", root);
	CHECK(vmlim_cg_write(&h, SVM_LIMIT_CPU, "vm1", &(svm_limit_val){.value = 50000, .period = 100000},
			     &err) == 0, "v2: cpu.max written");
	CHECK_STR(slurp(dir, "cpu.max"), "50000 100000", "v2: one file, cgroup v2's own form");
	CHECK_STR(slurp(root, "cgroup.subtree_control"), "+cpu", "v2: cpu enabled at the root");
	CHECK_STR(slurp(root, VMLIM_SUBTREE "/cgroup.subtree_control"), "+cpu",
		  "v2: and in the subtree above the VM's cgroup");
	CHECK(vmlim_cg_write(&h, SVM_LIMIT_MEMORY, "vm1", &(svm_limit_val){.max = true}, &err) == 0,
	      "v2: memory.max written");
	CHECK_STR(slurp(dir, "memory.max"), "max", "v2: memory.max max");
	CHECK(vmlim_cg_read(&h, SVM_LIMIT_CPU, "vm1", &v) == 1 && v.value == 50000 && v.period == 100000,
	      "v2: cpu.max read back");
	CHECK(vmlim_cg_read(&h, SVM_LIMIT_MEMORY, "vm1", &v) == 1 && v.max, "v2: memory.max read back");
	CHECK(vmlim_cg_read(&h, SVM_LIMIT_PIDS, "vm2", &v) == 0, "v2: no cgroup, nothing read");
	CHECK(vmlim_cg_move(&h, SVM_LIMIT_PIDS, "vm1", 4242, &err) == 0, "v2: the VMM moved in");
	CHECK_STR(slurp(dir, "cgroup.procs"), "4242", "v2: through cgroup.procs (every thread)");
	CHECK_INT(vmlim_cg_jail_values(&h, SVM_LIMIT_CPU, &(svm_limit_val){.value = 20000, .period = 50000},
				       vals), 1, "v2: one --cgroup for cpu.max");
	CHECK_STR(vals[0], "cpu.max=20000 50000", "v2: the jailer writes cpu.max as is");
	free(vals[0]);
	vmlim_cg_jail_values(&h, SVM_LIMIT_MEMORY, &(svm_limit_val){.max = true}, vals);
	CHECK_STR(vals[0], "memory.max=max", "v2: memory.max=max");
	free(vals[0]);
	put(root, "cgroup.controllers", "cpu memory\n");
	CHECK(vmlim_cg_check(&h, SVM_LIMIT_PIDS, &err) < 0 && err.code == SVM_INVALID_CONFIG &&
	      strstr(err.message, "\"pids\"") && strstr(err.message, "cgroup.controllers"),
	      "v2: a controller the root does not offer is named, with where it was looked for");
	CHECK(vmlim_cg_write(&h, SVM_LIMIT_PIDS, "vm1", &(svm_limit_val){.value = 5}, &err) < 0,
	      "v2: and nothing is written for it");
}

static void v1(const char *root)
{
	vmlim_host h;
	svm_error err;
	svm_limit_val v;
	char cpu[PATH_MAX], mem[PATH_MAX], base[PATH_MAX], *vals[2];
	for (const char *c = "cpu\0memory\0pids\0"; *c; c += strlen(c) + 1) {
		snprintf(base, sizeof base, "%s/%s", root, c);
		mkdir(base, 0755);
	}
	vmlim_host_at(&h, 1, root);
	snprintf(cpu, sizeof cpu, "%s/cpu/" VMLIM_SUBTREE "/vm1", root);
	snprintf(mem, sizeof mem, "%s/memory/" VMLIM_SUBTREE "/vm1", root);
	CHECK(vmlim_cg_write(&h, SVM_LIMIT_CPU, "vm1", &(svm_limit_val){.max = true, .period = 50000},
			     &err) == 0, "v1: cpu.max written");
	CHECK_STR(slurp(cpu, "cpu.cfs_period_us"), "50000", "v1: the period in cpu.cfs_period_us");
	CHECK_STR(slurp(cpu, "cpu.cfs_quota_us"), "-1", "v1: no quota is -1");
	CHECK(vmlim_cg_write(&h, SVM_LIMIT_MEMORY, "vm1", &(svm_limit_val){.value = 1 << 30}, &err) == 0,
	      "v1: memory.max written");
	CHECK_STR(slurp(mem, "memory.limit_in_bytes"), "1073741824", "v1: memory.limit_in_bytes");
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	CHECK(vmlim_cg_read(&h, SVM_LIMIT_MEMORY, "vm1", &v) == 1 && v.max,
	      "v1: the kernel's largest page-aligned value reads as max");
	CHECK(vmlim_cg_read(&h, SVM_LIMIT_CPU, "vm1", &v) == 1 && v.max && v.period == 50000,
	      "v1: cpu read back from the two files");
	CHECK_INT(vmlim_cg_jail_values(&h, SVM_LIMIT_CPU, &(svm_limit_val){.value = 20000, .period = 50000},
				       vals), 2, "v1: two --cgroup for cpu.max");
	CHECK_STR(vals[0], "cpu.cfs_period_us=50000", "v1: the period first");
	CHECK_STR(vals[1], "cpu.cfs_quota_us=20000", "v1: then the quota");
	free(vals[0]);
	free(vals[1]);
	h.v1[VMLIM_PIDS][0] = '\0';
	CHECK(vmlim_cg_check(&h, SVM_LIMIT_PIDS, &err) < 0 && strstr(err.message, "\"pids\"") &&
	      strstr(err.message, "cgroup v1"), "v1: a controller with no hierarchy is named");
	vmlim_host_at(&h, 0, root);
	CHECK(vmlim_cg_check(&h, SVM_LIMIT_CPU, &err) < 0 && strstr(err.message, "no cgroup filesystem"),
	      "no cgroups at all: said so");
}

int main(void)
{
	values();
	char t2[] = "/tmp/limits-v2-XXXXXX", t1[] = "/tmp/limits-v1-XXXXXX";
	if (mkdtemp(t2) && mkdtemp(t1)) {
		v2(t2);
		v1(t1);
	} else {
		CHECK(0, "temporary directories");
	}
	nftw(t2, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(t1, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
