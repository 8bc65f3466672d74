/* vmm.c - a VMM binary checked and asked, a VMM process measured (see vmm.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

int vmm_check_binary(const char *path, svm_error *err)
{
	struct stat st;
	if (!path || !*path)
		return svm_error_set(err, SVM_BINARY_NOT_FOUND,
				     "no Firecracker binary configured (-o firecracker=PATH)");
	if (stat(path, &st) < 0)
		return svm_error_set(err, SVM_BINARY_NOT_FOUND, "Firecracker binary %s: %s", path,
				     strerror(errno));
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
		return svm_error_set(err, SVM_BINARY_NOT_FOUND,
				     "Firecracker binary %s is not an executable file", path);
	return 0;
}

int vmm_proc_stat(pid_t pid, uint64_t *user_ns, uint64_t *sys_ns, uint64_t *rss_bytes)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* fields after the command name, which may contain spaces: start after ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long ut = 0, st = 0;
	long rss = 0;
	/* state(3) ... utime(14) stime(15) ... rss(24) */
	int field = 2;
	char *save = NULL; /* strtok_r: stat files are read on many threads at once */
	for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14)
			ut = strtoull(tok, NULL, 10);
		else if (field == 15)
			st = strtoull(tok, NULL, 10);
		else if (field == 24) {
			rss = strtol(tok, NULL, 10);
			break;
		}
	}
	long hz = sysconf(_SC_CLK_TCK);
	*user_ns = ut * (1000000000ULL / (unsigned long long)hz);
	*sys_ns = st * (1000000000ULL / (unsigned long long)hz);
	*rss_bytes = (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

char *vmm_capture(char *const argv[], int timeout_ms)
{
	svm_run_io io = {.out_fd = -1, .capture = true, .out_cap = 4096, .timeout_ms = timeout_ms};
	svm_error err;
	return svm_run(argv, &io, &err) < 0 ? NULL : io.out;
}
