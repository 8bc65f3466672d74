/*
 * probe.c - what a jailed process finds, as text: its arguments, identity,
 * working directory, environment, limits, and the files of its root (mode,
 * owner, type, device). Built static and named to contain "firecracker" (a
 * jailer execs nothing else), it is the exec file of the jailer scenarios
 * (scenarios.py): the same report from the real jailer and from the test
 * double says they jail alike. With --report the text goes to /report in the
 * jail too (a daemonized jailer's stdout is /dev/null).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

static const char *kind(mode_t m)
{
	return S_ISDIR(m) ? "dir" : S_ISREG(m) ? "file" : S_ISCHR(m) ? "chr" : S_ISSOCK(m) ? "sock"
	       : S_ISLNK(m) ? "link" : "other";
}

static void stat_line(FILE *out, const char *p)
{
	struct stat s;
	if (lstat(p, &s) != 0) {
		fprintf(out, "path %s missing\n", p);
		return;
	}
	fprintf(out, "path %s %s %04o %u:%u", p, kind(s.st_mode), s.st_mode & 07777, s.st_uid, s.st_gid);
	if (S_ISCHR(s.st_mode))
		fprintf(out, " dev %u:%u", major(s.st_rdev), minor(s.st_rdev));
	fprintf(out, "\n");
}

/* Every path under dir, depth first, sorted by the reader (scenarios.py). */
static void walk(FILE *out, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name);
		stat_line(out, p);
		if (e->d_type == DT_DIR)
			walk(out, p);
	}
	closedir(d);
}

static void report(FILE *out, int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		fprintf(out, "arg %d %s\n", i, argv[i]);
	fprintf(out, "uid %u %u gid %u %u groups %d\n", getuid(), geteuid(), getgid(), getegid(),
		getgroups(0, NULL));
	fprintf(out, "pid-is-1 %s\n", getpid() == 1 ? "yes" : "no");
	char cwd[4096];
	fprintf(out, "cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
	int n = 0;
	for (char **e = environ; *e; e++)
		n++;
	fprintf(out, "environment %d\n", n);
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	fprintf(out, "rlimit no-file %llu %llu\n", (unsigned long long)r.rlim_cur,
		(unsigned long long)r.rlim_max);
	getrlimit(RLIMIT_FSIZE, &r);
	fprintf(out, "rlimit fsize %lld\n", r.rlim_cur == RLIM_INFINITY ? -1LL : (long long)r.rlim_cur);
	int fds = 0;
	for (int fd = 0; fd < 1024; fd++)
		fds += fcntl(fd, F_GETFD) >= 0;
	fprintf(out, "open descriptors %d\n", fds);
	fprintf(out, "session leader %s\n", getsid(0) == getpid() ? "yes" : "no");
	stat_line(out, "/");
	walk(out, "/");
}

int main(int argc, char **argv)
{
	bool to_file = false;
	for (int i = 1; i < argc; i++)
		to_file |= !strcmp(argv[i], "--report");
	report(stdout, argc, argv);
	fflush(stdout);
	if (to_file) {
		FILE *f = fopen("/report", "we");
		if (!f)
			return 2;
		report(f, argc, argv);
		fclose(f);
	}
	return 0;
}
