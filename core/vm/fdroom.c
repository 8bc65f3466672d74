/* fdroom.c - what the process can still afford (see fdroom.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fdroom.h"

int limits_fds_for_start(svm_error *err)
{
	/* Take them, then give them back: the one exact answer, in 2*N syscalls
	 * (counting /proc/self/fd would cost a readdir of every VM's descriptors). */
	int fds[LIMITS_FDS_FOR_START], n = 0, e = 0;
	for (; n < LIMITS_FDS_FOR_START; n++) {
		fds[n] = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (fds[n] < 0) {
			e = errno;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (n == LIMITS_FDS_FOR_START)
		return 0;
	if (e != EMFILE && e != ENFILE)
		return 0; /* not a shortage: the start finds out for itself */
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	if (e == ENFILE)
		return svm_error_set(err, SVM_NO_SPACE, "the system's open-file table is full (ENFILE): "
				     "raise fs.file-max (sysctl), or stop VMs");
	return svm_error_set(err, SVM_NO_SPACE,
			     "no descriptors left for another VM: RLIMIT_NOFILE is %llu (the hard "
			     "limit %llu), a start needs %d free and a running VM keeps about %d: "
			     "raise LimitNOFILE= in the systemd unit or the hard limit (ulimit -Hn, "
			     "/etc/security/limits.conf) and mount again, or stop VMs",
			     (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			     LIMITS_FDS_FOR_START, LIMITS_FDS_PER_VM);
}

static unsigned long long open_fds(void)
{
	unsigned long long n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	if (d) {
		closedir(d);
		n--; /* the directory's own descriptor */
	}
	return n;
}

static unsigned long long mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kib = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib * 1024;
}

char *svm_room_text(svm *s)
{
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	unsigned long long used = open_fds(), limit = rl.rlim_cur == RLIM_INFINITY ? 1048576 : rl.rlim_cur;
	unsigned long long free_fds = limit > used ? limit - used : 0;
	unsigned long long by_fds = free_fds >= LIMITS_FDS_FOR_START
					    ? (free_fds - LIMITS_FDS_FOR_START) / LIMITS_FDS_PER_VM + 1 : 0;
	struct statvfs sv;
	unsigned long long rt_free = statvfs(s->runtime_dir, &sv) == 0
					     ? (unsigned long long)sv.f_bavail * sv.f_frsize : 0;
	char *out = NULL;
	if (asprintf(&out,
		     "vms_by_descriptors %llu\n"
		     "descriptors_free %llu\n"
		     "descriptors_limit %llu\n"
		     "descriptors_per_vm %d\n"
		     "memory_available_bytes %llu\n"
		     "runtime_free_bytes %llu\n",
		     by_fds, free_fds, limit, LIMITS_FDS_PER_VM, mem_available(), rt_free) < 0)
		return NULL;
	return out;
}
