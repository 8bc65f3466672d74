/*
 * jailer.c - a test double of Firecracker's jailer (v1.5.1, as recorded in
 * jailer-v1.5.1.json): the same command line, the same checks and messages,
 * the same jail (a chroot under BASE/EXEC_NAME/ID/root with the exec file
 * copied in and the device nodes made), cgroups, resource limits, a network
 * namespace, --daemonize and --new-pid-ns, then the uid/gid switch and the exec
 * with --id, --start-time-us, --start-time-cpu-us and --parent-cpu-time-us.
 * No registry carries the jailer, so the default suite jails with this;
 * tests/jailer/test_jailer.py holds it to what the real one did.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

/* The release this double stands for: the build gives the emulator's. */
#ifndef JAILER_VERSION
#define JAILER_VERSION "v1.5.1"
#endif
#include <unistd.h>
#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_LIST 32

struct args {
	const char *id, *exec_file, *uid, *gid, *cgroup_version, *base, *netns, *parent;
	const char *cgroups[MAX_LIST], *limits[MAX_LIST];
	int ncgroups, nlimits;
	bool daemonize, new_pid_ns;
	char **extra;
	int nextra;
};

/* The real jailer ends a failed check in a Rust panic: this message, then abort. */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "thread 'main' panicked at 'Jailer error: %s', src/jailer/src/main.rs:377:27\n"
		"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n", msg);
	abort();
}

/* A file operation the real jailer unwraps: Rust's panic on its io::Error. */
static void __attribute__((noreturn)) panic_io(const char *op, const char *path, int e)
{
	const char *kind = e == ENOENT ? "NotFound" : e == EACCES || e == EPERM ? "PermissionDenied"
			   : e == EINVAL ? "InvalidInput" : e == EEXIST ? "AlreadyExists" : "Other";
	fprintf(stderr, "thread 'main' panicked at 'called `Result::unwrap()` on an `Err` value: "
		"%s(\"%s\", Os { code: %d, kind: %s, message: \"%s\" })', src/jailer/src/env.rs:610:34\n"
		"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n", op, path,
		e, kind, strerror(e));
	abort();
}

/* An argument the parser refuses: exit status 1, as the real parser. */
static void __attribute__((noreturn)) parse_fail(const char *msg)
{
	fprintf(stderr, "Jailer error: Failed to parse arguments: %s\n", msg);
	exit(1);
}

static void usage(void)
{
	printf("Jailer v1.5.1 (test double)\n\nrequired arguments:\n  --exec-file --gid --id --uid\n"
	       "optional arguments:\n  --cgroup --cgroup-version --chroot-base-dir --daemonize --help"
	       " --netns --new-pid-ns --parent-cgroup --resource-limit --version\n");
}

static const char **single(struct args *a, const char *name)
{
	static const struct { const char *name; size_t off; } opts[] = {
		{"id", offsetof(struct args, id)}, {"exec-file", offsetof(struct args, exec_file)},
		{"uid", offsetof(struct args, uid)}, {"gid", offsetof(struct args, gid)},
		{"cgroup-version", offsetof(struct args, cgroup_version)},
		{"chroot-base-dir", offsetof(struct args, base)}, {"netns", offsetof(struct args, netns)},
		{"parent-cgroup", offsetof(struct args, parent)},
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (!strcmp(opts[i].name, name))
			return (const char **)((char *)a + opts[i].off);
	return NULL;
}

static void parse(int argc, char **argv, struct args *a)
{
	char msg[256];
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (!strcmp(w, "--")) {
			a->extra = argv + i + 1;
			a->nextra = argc - i - 1;
			break;
		}
		if (!strcmp(w, "--version")) {
			printf("Jailer %s\n\n", JAILER_VERSION);
			exit(0);
		}
		if (!strcmp(w, "--help")) {
			usage();
			exit(0);
		}
		if (!strcmp(w, "--daemonize") || !strcmp(w, "--new-pid-ns")) {
			*(w[2] == 'd' ? &a->daemonize : &a->new_pid_ns) = true;
			continue;
		}
		const char **slot = strncmp(w, "--", 2) ? NULL : single(a, w + 2);
		bool list = !strcmp(w, "--cgroup") || !strcmp(w, "--resource-limit");
		if (!slot && !list) {
			snprintf(msg, sizeof msg, "Found argument '%s' which wasn't expected, or isn't valid "
				 "in this context.", w + strspn(w, "-"));
			parse_fail(msg);
		}
		if (i + 1 >= argc) {
			snprintf(msg, sizeof msg, "Argument '%s' requires a value, but none was supplied.", w + 2);
			parse_fail(msg);
		}
		const char *v = argv[++i];
		if (slot)
			*slot = v;
		else if (w[2] == 'c' && a->ncgroups < MAX_LIST)
			a->cgroups[a->ncgroups++] = v;
		else if (a->nlimits < MAX_LIST)
			a->limits[a->nlimits++] = v;
	}
	static const char *required[] = {"id", "exec-file", "uid", "gid"};
	for (size_t i = 0; i < 4; i++)
		if (!*single(a, required[i])) {
			snprintf(msg, sizeof msg, "Argument '%s' required, but not found.", required[i]);
			parse_fail(msg);
		}
	if (!a->base)
		a->base = "/srv/jailer";
	if (!a->cgroup_version)
		a->cgroup_version = "1";
}

static void check_id(const char *id)
{
	size_t n = strlen(id);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			fail("Invalid instance ID: Invalid char (%c) at position %zu", id[i], i);
	if (n < 1 || n > 64)
		fail("Invalid instance ID: Invalid len (%zu);  the length must be between 1 and 64", n);
}

static unsigned parse_id_number(const char *what, const char *v)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || !*v || *end || n > UINT32_MAX || v[0] == '-')
		fail("Invalid %s: %s", what, v);
	return (unsigned)n;
}

static const char *rlimit_names[] = {"fsize", "no-file"};
static const int rlimit_ids[] = {RLIMIT_FSIZE, RLIMIT_NOFILE};

/* Each --resource-limit: a known resource and a number; no-file 2048 unless given. */
static void set_limits(const struct args *a)
{
	bool nofile = false;
	for (int i = 0; i < a->nlimits; i++) {
		const char *eq = strchr(a->limits[i], '=');
		if (!eq)
			fail("Invalid format for resources limits: %s", a->limits[i]);
		size_t k = 0, len = (size_t)(eq - a->limits[i]);
		while (k < 2 && (strlen(rlimit_names[k]) != len || strncmp(rlimit_names[k], a->limits[i], len)))
			k++;
		if (k == 2)
			fail("Invalid resource argument: %.*s", (int)len, a->limits[i]);
		char *end;
		errno = 0;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		bool digits = eq[1] && eq[1] != '-' && !*end;
		if (!digits || errno)
			fail("Invalid limit value for resource: %s: %s", eq + 1,
			     digits ? "number too large to fit in target type" : "invalid digit found in string");
		struct rlimit r = {v, v};
		if (setrlimit(rlimit_ids[k], &r) != 0)
			fail("Failed to set limit for resource %s: %s", rlimit_names[k], strerror(errno));
		nofile |= k == 1;
	}
	struct rlimit r = {2048, 2048};
	if (!nofile && setrlimit(RLIMIT_NOFILE, &r) != 0)
		fail("Failed to set limit for resource no-file: %s", strerror(errno));
}

static void mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, mode) != 0 && errno != EEXIST)
				fail("Failed to create directory %s: %s", p, strerror(errno));
			*s = '/';
		}
	if (mkdir(p, mode) != 0 && errno != EEXIST)
		fail("Failed to create directory %s: %s", p, strerror(errno));
}

/* The mount point of a v1 controller (a cgroup mount whose options name it), or
 * the unified hierarchy for v2. */
static bool controller_dir(const char *controller, bool v2, char *out, size_t len)
{
	FILE *f = fopen("/proc/mounts", "re");
	if (!f)
		return false;
	char dev[256], dir[PATH_MAX], type[64], opts[1024];
	bool found = false;
	while (!found && fscanf(f, "%255s %4095s %63s %1023s %*d %*d", dev, dir, type, opts) == 4) {
		if (v2 && !strcmp(type, "cgroup2")) {
			/* the unified hierarchy offers it: in its root's cgroup.controllers */
			char p[PATH_MAX + 32], list[1024] = "";
			snprintf(p, sizeof p, "%s/cgroup.controllers", dir);
			FILE *c = fopen(p, "re");
			if (c && fgets(list, sizeof list, c))
				for (char *save = NULL, *w = strtok_r(list, " \n", &save); w && !found;
				     w = strtok_r(NULL, " \n", &save))
					found = !strcmp(w, controller);
			if (c)
				fclose(c);
		} else if (!v2 && !strcmp(type, "cgroup")) {
			for (char *o = strtok(opts, ","); o && !found; o = strtok(NULL, ","))
				found = !strcmp(o, controller);
		}
		if (found)
			snprintf(out, len, "%s", dir);
	}
	fclose(f);
	return found;
}

static void write_file(const char *dir, const char *name, const char *value)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		panic_io("Write", p, errno);
	close(fd);
}

/* v1: the file's value in the parent cgroup, which the real jailer reads first
 * (a file the controller does not have fails there). */
static void read_parent(const char *base, const char *parent, const char *file)
{
	char p[PATH_MAX * 2], buf[256];
	snprintf(p, sizeof p, "%s/%s/%s", base, parent, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof buf) < 0)
		panic_io("ReadToString", p, errno);
	close(fd);
}

/* v2: the controller enabled from the root of the hierarchy down to parent. */
static void enable_down(const char *base, const char *parent, const char *controller)
{
	char dir[PATH_MAX * 2], word[80];
	snprintf(dir, sizeof dir, "%s/%s", base, parent);
	snprintf(word, sizeof word, "+%s", controller);
	write_file(base, "cgroup.subtree_control", word);
	for (char *s = dir + strlen(base) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			write_file(dir, "cgroup.subtree_control", word);
			*s = '/';
		}
	write_file(dir, "cgroup.subtree_control", word);
}

/* --cgroup FILE=VALUE: BASE_OF_CONTROLLER/PARENT/ID made, the value written, this
 * process moved in (v1: tasks; v2: cgroup.procs). */
static void set_cgroups(const struct args *a, const char *exec_name)
{
	bool v2 = !strcmp(a->cgroup_version, "2");
	if (!v2 && strcmp(a->cgroup_version, "1"))
		fail("Invalid cgroup version: %s", a->cgroup_version);
	const char *parent = a->parent ? a->parent : exec_name;
	char pid[32];
	snprintf(pid, sizeof pid, "%d", getpid());
	for (int i = 0; i < a->ncgroups; i++) {
		const char *eq = strchr(a->cgroups[i], '='), *dot = strchr(a->cgroups[i], '.');
		if (!eq || !dot || dot > eq)
			fail("Invalid format for cgroups: %s", a->cgroups[i]);
		char controller[64], file[256], base[PATH_MAX], dir[PATH_MAX * 2];
		snprintf(controller, sizeof controller, "%.*s", (int)(dot - a->cgroups[i]), a->cgroups[i]);
		snprintf(file, sizeof file, "%.*s", (int)(eq - a->cgroups[i]), a->cgroups[i]);
		if (!controller_dir(controller, v2, base, sizeof base))
			fail("Controller %s is unavailable", controller);
		snprintf(dir, sizeof dir, "%s/%s/%s", base, parent, a->id);
		if (v2) {
			char up[PATH_MAX * 2];
			snprintf(up, sizeof up, "%s/%s", base, parent);
			mkdirs(up, 0755);
			enable_down(base, parent, controller);
		}
		mkdirs(dir, 0755);
		if (!v2)
			read_parent(base, parent, file);
		write_file(dir, file, eq + 1);
		write_file(dir, v2 ? "cgroup.procs" : "tasks", pid);
	}
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	char buf[65536];
	ssize_t n = 0;
	while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	if (in < 0 || out < 0 || n < 0)
		fail("Failed to copy %s to %s: %s", from, to, strerror(errno));
	fchmod(out, 0755);
	close(in);
	close(out);
}

static void close_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int keep = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0])) {
			int fd = atoi(e->d_name);
			if (fd > 2 && fd != keep)
				close(fd);
		}
	closedir(d);
}

/* pivot_root into the jail: a mount namespace of its own, the old root gone.
 * A slave of the host's, as the jailer's (mounts made later under a shared
 * mount of the host reach the jail; none go back). */
static void enter_jail(const char *root)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) != 0 ||
	    mount(root, root, NULL, MS_BIND | MS_REC, NULL) != 0 || chdir(root) != 0)
		fail("Failed to enter the jail %s: %s", root, strerror(errno));
	mkdir("old_root", 0700);
	if (syscall(SYS_pivot_root, ".", "old_root") != 0 || umount2("old_root", MNT_DETACH) != 0 ||
	    rmdir("old_root") != 0 || chroot(".") != 0 || chdir("/") != 0)
		fail("Failed to pivot into the jail: %s", strerror(errno));
}

static void make_node(const char *path, unsigned major_, unsigned minor_, uid_t uid, gid_t gid)
{
	/* a node there already (a jail used before) is an error, as for the real one */
	if (mknod(path, S_IFCHR | S_IRUSR | S_IWUSR, makedev(major_, minor_)) != 0)
		fail("Failed to create %s via mknod inside the jail: %s (os error %d)", path,
		     strerror(errno), errno);
	if (chown(path, uid, gid) != 0)
		fail("Failed to change owner for %s: %s", path, strerror(errno));
}

static void make_devices(uid_t uid, gid_t gid)
{
	static const char *dirs[] = {"/dev", "/dev/net", "/run"};
	for (size_t i = 0; i < 3; i++)
		if ((mkdir(dirs[i], 0700) != 0 && errno != EEXIST) || chown(dirs[i], uid, gid) != 0)
			fail("Failed to create %s inside the jail: %s", dirs[i], strerror(errno));
	make_node("/dev/net/tun", 10, 200, uid, gid);
	make_node("/dev/kvm", 10, 232, uid, gid);
	make_node("/dev/userfaultfd", 10, 257, uid, gid);
	make_node("/dev/urandom", 1, 9, uid, gid);
	if (chown("/", uid, gid) != 0 || chmod("/", 0700) != 0)
		fail("Failed to change owner for the jail's root: %s", strerror(errno));
}

static long long usecs(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void exec_jailed(const struct args *a, const char *exec_name, uid_t uid, gid_t gid,
			long long t0, long long cpu)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		fail("Failed to drop privileges: %s", strerror(errno));
	char path[PATH_MAX], t[32], c[32];
	snprintf(path, sizeof path, "/%s", exec_name);
	snprintf(t, sizeof t, "%lld", t0);
	snprintf(c, sizeof c, "%lld", cpu);
	char **argv = calloc((size_t)a->nextra + 12, sizeof *argv);
	int n = 0;
	argv[n++] = path;
	argv[n++] = "--id";
	argv[n++] = (char *)a->id;
	argv[n++] = "--start-time-us";
	argv[n++] = t;
	argv[n++] = "--start-time-cpu-us";
	argv[n++] = c;
	argv[n++] = "--parent-cpu-time-us";
	argv[n++] = "0";
	for (int i = 0; i < a->nextra; i++)
		argv[n++] = a->extra[i];
	char *env[] = {NULL};
	execve(path, argv, env);
	fail("Failed to exec into %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	long long t0 = usecs(CLOCK_MONOTONIC), c0 = usecs(CLOCK_PROCESS_CPUTIME_ID);
	struct args a = {0};
	parse(argc, argv, &a);
	check_id(a.id);
	char exec_path[PATH_MAX];
	if (!realpath(a.exec_file, exec_path))
		fail("Failed to canonicalize path %s: %s (os error %d)", a.exec_file, strerror(errno), errno);
	const char *exec_name = strrchr(exec_path, '/') + 1;
	if (!strstr(exec_name, "firecracker"))
		fail("Invalid filename. The filename of `--exec-file` option must contain \"firecracker\": %s",
		     exec_name);
	uid_t uid = parse_id_number("uid", a.uid);
	gid_t gid = parse_id_number("gid", a.gid);
	close_fds();
	clearenv();
	/* opened after the descriptors are closed, before the jail hides it */
	int netns = -1;
	if (a.netns && (netns = open(a.netns, O_RDONLY | O_CLOEXEC)) < 0)
		fail("Failed to open file %s: %s (os error %d)", a.netns, strerror(errno), errno);
	char root[PATH_MAX], exec_copy[PATH_MAX * 2];
	snprintf(root, sizeof root, "%s/%s/%s/root", a.base, exec_name, a.id);
	mkdirs(root, 0755);
	snprintf(exec_copy, sizeof exec_copy, "%s/%s", root, exec_name);
	copy_file(exec_path, exec_copy);
	set_limits(&a);
	set_cgroups(&a, exec_name);
	enter_jail(root);
	make_devices(uid, gid);
	if (netns >= 0 && setns(netns, CLONE_NEWNET) != 0)
		fail("Failed to join the network namespace %s: %s", a.netns, strerror(errno));
	if (a.daemonize) {
		int null = open("/dev/null", O_RDWR);
		if (setsid() < 0)
			fail("Failed to daemonize: setsid: %s", strerror(errno));
		if (null < 0) /* no /dev/null inside the jail: stdio closed instead */
			null = open("/", O_RDONLY);
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		if (null > 2)
			close(null);
	}
	/* the jailer's own CPU time, as measured before a clone (a child's clock
	 * starts again at 0) */
	long long cpu = usecs(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (a.new_pid_ns) {
		pid_t child = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
		if (child < 0)
			fail("Failed to clone into a new PID namespace: %s", strerror(errno));
		if (child > 0) {
			char pidfile[PATH_MAX], text[32];
			snprintf(pidfile, sizeof pidfile, "/%s.pid", exec_name);
			snprintf(text, sizeof text, "%d", child);
			int fd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || write(fd, text, strlen(text)) < 0)
				fail("Failed to write the pid file: %s", strerror(errno));
			close(fd);
			return 0;
		}
	}
	exec_jailed(&a, exec_name, uid, gid, t0, cpu);
	return 1;
}
