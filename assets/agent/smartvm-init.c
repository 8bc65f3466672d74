/*
 * smartvm-init - /init of the agent's initrd (config.json "agent": true): it
 * asks nothing of the user's root filesystem. It mounts the root filesystem the
 * kernel command line names, hands over to it as switch_root does (the root
 * moved onto /, chroot there, the initrd's files freed), starts smartvm-agent
 * inside it and becomes the root filesystem's own init, as PID 1.
 *
 * The agent's binary is copied into memory (a memfd) before the hand-over and
 * run from there after it: it runs in the real root, whose files it serves,
 * while the root filesystem holds no copy of it.
 *
 * Kernel modules the guest kernel needs before its root (a distribution kernel's
 * virtio drivers) may ride in the initrd as /modules/NN-NAME.ko: they are loaded
 * in the order of their names, each with the NAME.KEY=VALUE parameters of the
 * kernel command line (virtio_mmio.device=..., which Firecracker adds), as
 * modprobe would pass them.
 *
 * Read from the kernel command line: root= (a device, /dev/... or
 * PARTUUID=/UUID= are not resolved: a path), rootfstype=, rootflags=, ro or rw,
 * init= (default /sbin/init, then /etc/init, /bin/init, /bin/sh). A root= that is
 * a directory is bind-mounted (a test harness runs this in a container that way;
 * SMARTVM_INIT_CMDLINE then stands for /proc/cmdline).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AGENT "/smartvm-agent"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* the kernel gives init the console as stdin, stdout and stderr */
	ssize_t w = write(2, buf, (size_t)n);
	(void)w;
}

/* No root: PID 1 cannot go on. Its exit stops the machine with the reason said. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char buf[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	say("smartvm-init: %s", buf);
	_exit(1);
}

struct cmdline {
	char raw[4096];
	char root[256], fstype[64], flags[256], init[256];
	bool ro;
};

static void parse_cmdline(struct cmdline *c)
{
	char buf[4096] = "";
	const char *env = getenv("SMARTVM_INIT_CMDLINE");
	if (env) {
		snprintf(buf, sizeof buf, "%s", env);
	} else {
		int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		buf[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
	}
	memset(c, 0, sizeof *c);
	snprintf(c->raw, sizeof c->raw, "%s", buf);
	c->ro = true; /* as the kernel mounts a root without rw */
	for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		if (!strncmp(t, "root=", 5))
			snprintf(c->root, sizeof c->root, "%s", t + 5);
		else if (!strncmp(t, "rootfstype=", 11))
			snprintf(c->fstype, sizeof c->fstype, "%s", t + 11);
		else if (!strncmp(t, "rootflags=", 10))
			snprintf(c->flags, sizeof c->flags, "%s", t + 10);
		else if (!strncmp(t, "init=", 5))
			snprintf(c->init, sizeof c->init, "%s", t + 5);
		else if (!strcmp(t, "rw"))
			c->ro = false;
		else if (!strcmp(t, "ro"))
			c->ro = true;
	}
}

/* NAME.KEY=VALUE words of the command line for module name, as "KEY=VALUE ..."
 * ('-' and '_' are one in module names). */
static void module_params(const char *raw, const char *name, char *out, size_t size)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", raw);
	size_t used = 0, n = strlen(name);
	out[0] = '\0';
	for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		bool same = strlen(t) > n && t[n] == '.';
		for (size_t i = 0; same && i < n; i++)
			same = (t[i] == '-' ? '_' : t[i]) == (name[i] == '-' ? '_' : name[i]);
		if (same && used + strlen(t + n + 1) + 2 < size)
			used += (size_t)snprintf(out + used, size - used, "%s%s", used ? " " : "", t + n + 1);
	}
}

static void load_modules(const struct cmdline *c)
{
	struct dirent **names;
	int n = scandir("/modules", &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		size_t len = strlen(f);
		if (len > 3 && !strcmp(f + len - 3, ".ko")) {
			/* NN-NAME.ko: the module's name is NAME */
			const char *dash = strchr(f, '-');
			char name[128], path[300], params[2048];
			snprintf(name, sizeof name, "%.*s", (int)(f + len - 3 - (dash ? dash + 1 : f)),
			         dash ? dash + 1 : f);
			snprintf(path, sizeof path, "/modules/%s", f);
			module_params(c->raw, name, params, sizeof params);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || (syscall(SYS_finit_module, fd, params, 0) != 0 && errno != EEXIST))
				say("smartvm-init: module %s: %s", name, strerror(errno));
			if (fd >= 0)
				close(fd);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

/* Tries each block filesystem the kernel knows (/proc/filesystems without nodev). */
static int mount_any(const char *dev, unsigned long fl, const char *data)
{
	FILE *f = fopen("/proc/filesystems", "re");
	char line[128];
	int e = ENODEV;
	while (f && fgets(line, sizeof line, f)) {
		if (!strncmp(line, "nodev", 5))
			continue;
		char *t = line;
		while (*t == ' ' || *t == '\t')
			t++;
		t[strcspn(t, "\n")] = '\0';
		if (mount(dev, "/newroot", t, fl, data) == 0) {
			fclose(f);
			return 0;
		}
		e = errno;
	}
	if (f)
		fclose(f);
	errno = e;
	return -1;
}

static void mount_root(const struct cmdline *c)
{
	if (!c->root[0])
		die("no root= on the kernel command line: nothing to hand over to");
	struct stat st;
	/* the device may come a little after the kernel started us */
	for (int i = 0; i < 200 && stat(c->root, &st) != 0; i++)
		usleep(50000);
	if (stat(c->root, &st) != 0)
		die("root %s: %s", c->root, strerror(errno));
	unsigned long fl = c->ro ? MS_RDONLY : 0;
	int rc;
	if (S_ISDIR(st.st_mode))
		rc = mount(c->root, "/newroot", NULL, MS_BIND | MS_REC, NULL);
	else if (c->fstype[0])
		rc = mount(c->root, "/newroot", c->fstype, fl, c->flags[0] ? c->flags : NULL);
	else
		rc = mount_any(c->root, fl, c->flags[0] ? c->flags : NULL);
	if (rc != 0)
		die("mount %s on /newroot: %s", c->root, strerror(errno));
}

/* The agent's binary, in memory: it outlives the initrd's files. */
static int agent_in_memory(void)
{
	int in = open(AGENT, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) != 0) {
		say("smartvm-init: %s: %s (no agent will run)", AGENT, strerror(errno));
		return -1;
	}
	int mfd = memfd_create("smartvm-agent", MFD_CLOEXEC);
	off_t off = 0;
	while (mfd >= 0 && off < st.st_size)
		if (sendfile(mfd, in, &off, (size_t)(st.st_size - off)) <= 0)
			break;
	close(in);
	if (mfd < 0 || off != st.st_size) {
		say("smartvm-init: copying the agent: %s (no agent will run)", strerror(errno));
		if (mfd >= 0)
			close(mfd);
		return -1;
	}
	return mfd;
}

/* switch_root: the root moved onto /, chroot into it; the initrd's own files go
 * (a ramfs keeps them in memory otherwise). */
static void switch_root(void)
{
	struct stat st;
	if (stat("/newroot/dev", &st) == 0 && S_ISDIR(st.st_mode)) {
		if (mount("/dev", "/newroot/dev", NULL, MS_MOVE, NULL) != 0)
			umount2("/dev", MNT_DETACH);
	} else {
		umount2("/dev", MNT_DETACH);
	}
	umount2("/proc", MNT_DETACH);
	umount2("/sys", MNT_DETACH);
	unlink(AGENT);
	unlink("/init");
	if (chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 ||
	    chdir("/") != 0)
		die("switching to the root filesystem: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	(void)argc;
	if (getpid() != 1)
		die("not PID 1: this is the initrd's /init");
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mkdir("/newroot", 0755);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	struct cmdline c;
	parse_cmdline(&c);
	load_modules(&c);
	mount_root(&c);
	int mfd = agent_in_memory();
	switch_root();
	if (mfd >= 0) {
		pid_t pid = fork();
		if (pid == 0) {
			setsid();
			char *av[] = {"smartvm-agent", NULL};
			fexecve(mfd, av, environ);
			say("smartvm-init: starting the agent: %s", strerror(errno));
			_exit(127);
		}
		close(mfd);
	}
	const char *inits[] = {c.init, "/sbin/init", "/etc/init", "/bin/init", "/bin/sh"};
	for (size_t i = 0; i < sizeof inits / sizeof *inits; i++) {
		if (!inits[i][0])
			continue;
		argv[0] = (char *)inits[i];
		execv(inits[i], argv);
		if (i == 0)
			say("smartvm-init: init=%s: %s", inits[i], strerror(errno));
	}
	die("no init in the root filesystem (init=, /sbin/init, /etc/init, /bin/init, /bin/sh)");
}
