/*
 * main.c - smartvmfs [-f] [-o options] [SOURCE] MOUNTPOINT: options (unknown ones
 * refused, those of fstab and mount.fuse3 accepted), --help, --version, --check,
 * mount, the loop, and an orderly end (unmount, SIGTERM and SIGINT all stop every
 * VM and remove what the daemon made).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "daemonlog.h"
#include "serve/cleanup.h"
#include "tree/tree.h"

extern char **environ;

/* The options of DESIGN §3, as fuse_opt parses them. */
struct fs_conf {
	char *datadir, *runtimedir, *imagecache, *manifest, *firecracker, *fcversion, *arch;
	char *bridge, *subnet, *paths, *dns, *releasesurl, *cibucketurl;
	char *maximages;
	unsigned maxvms, maxrunning, maxmem, maxdata;
	unsigned long consolesize;
	int readytimeout;
	int noephemeral, nocheck, noadopt, persist;
	int allow_other;
	int help, version, check;
	int foreground;
	char *words[2];    /* [SOURCE] MOUNTPOINT: mount.fuse3 passes both */
	int nwords;
	char refused[512]; /* the first option refused, with why */
};

enum { KEY_ALLOW_OTHER, KEY_HELP, KEY_VERSION, KEY_CHECK };

#define CONF(t, p) {t, offsetof(struct fs_conf, p), 1}
static const struct fuse_opt conf_opts[] = {
	CONF("datadir=%s", datadir),
	CONF("runtimedir=%s", runtimedir),
	CONF("imagecache=%s", imagecache),
	CONF("manifest=%s", manifest),
	CONF("firecracker=%s", firecracker),
	CONF("fcversion=%s", fcversion),
	CONF("arch=%s", arch),
	CONF("bridge=%s", bridge),
	CONF("subnet=%s", subnet),
	CONF("paths=%s", paths),
	CONF("dns=%s", dns),
	CONF("releasesurl=%s", releasesurl),
	CONF("cibucketurl=%s", cibucketurl),
	CONF("maximages=%s", maximages),
	CONF("maxvms=%u", maxvms),
	CONF("maxrunning=%u", maxrunning),
	CONF("maxmem=%u", maxmem),
	CONF("maxdata=%u", maxdata),
	CONF("consolesize=%lu", consolesize),
	CONF("readytimeout=%d", readytimeout),
	CONF("noephemeral", noephemeral),
	CONF("nocheck", nocheck),
	CONF("noadopt", noadopt),
	CONF("persist", persist),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("--check", KEY_CHECK),
	FUSE_OPT_END,
};

/* Our options that take a value: "datadir" alone is a value forgotten. */
static const char *const valued[] = {"datadir", "runtimedir", "imagecache", "manifest",
                                     "firecracker", "fcversion", "arch", "bridge", "subnet",
                                     "paths", "dns", "releasesurl", "cibucketurl", "maximages",
                                     "consolesize", "readytimeout", "maxvms", "maxrunning",
                                     "maxmem", "maxdata", NULL};

static bool word_in(const char *arg, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (!strcmp(arg, words[i]))
			return true;
	return false;
}

static bool prefix_in(const char *arg, const char *const *prefixes)
{
	for (int i = 0; prefixes[i]; i++)
		if (!strncmp(arg, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* fstab-only words that mount(8), mount.fuse3 or systemd may hand us and the
 * kernel must not see: accepted and dropped. */
static bool fstab_only(const char *arg)
{
	static const char *const words[] = {"noauto", "auto", "_netdev", "nofail", "defaults",
	                                    "user", "users", "nouser", "owner", "group", "",
	                                    /* atime flavours FUSE does not take: the files'
	                                       times are the daemon's anyway */
	                                    "nodiratime", "relatime", "norelatime", "strictatime",
	                                    "nostrictatime", "lazytime", "nolazytime", NULL};
	static const char *const prefixes[] = {"x-", "comment=", NULL};
	return word_in(arg, words) || prefix_in(arg, prefixes);
}

/* What libfuse itself takes (mount flags for the kernel, loop settings). */
static bool fuse_option(const char *arg)
{
	static const char *const words[] = {
		"rw", "ro", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync",
		"dirsync", "atime", "noatime", "default_permissions", "auto_unmount", "allow_root",
		"debug", "clone_fd", "-f", "-d", "-s", NULL};
	static const char *const prefixes[] = {"fsname=", "subtype=", "max_threads=",
	                                       "max_idle_threads=", "context=", "fscontext=",
	                                       "defcontext=", "rootcontext=", NULL};
	return word_in(arg, words) || prefix_in(arg, prefixes);
}

static int conf_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)out;
	struct fs_conf *c = data;
	switch (key) {
	case KEY_ALLOW_OTHER:
		c->allow_other = 1;
		return 1; /* the kernel needs it too */
	case KEY_HELP:
		c->help = 1;
		return 0;
	case KEY_VERSION:
		c->version = 1;
		return 0;
	case KEY_CHECK:
		c->check = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (c->nwords < 2) {
			c->words[c->nwords++] = strdup(arg);
		} else if (!c->refused[0]) {
			snprintf(c->refused, sizeof c->refused,
			         "one more argument than [SOURCE] MOUNTPOINT: \"%s\"", arg);
		}
		return 0;
	case FUSE_OPT_KEY_OPT:
		if (fstab_only(arg))
			return 0;
		if (fuse_option(arg))
			return 1;
		if (c->refused[0])
			return 0;
		if (arg[0] == '-')
			snprintf(c->refused, sizeof c->refused, "unknown option \"%s\"", arg);
		else if (word_in(arg, valued))
			snprintf(c->refused, sizeof c->refused,
			         "option \"-o %s\" needs a value: -o %s=VALUE", arg, arg);
		else
			snprintf(c->refused, sizeof c->refused, "unknown option \"-o %s\"", arg);
		return 0;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	char rt[PATH_MAX];
	struct utsname u;
	const char *arch = uname(&u) == 0 && !strcmp(u.machine, "aarch64") ? "aarch64" : "x86_64";
	printf(
	"usage: %s [-f] [-o option[,option...]] MOUNTPOINT\n"
	"       %s SOURCE MOUNTPOINT [-o ...]   (as mount.fuse3 runs it; SOURCE is not used)\n"
	"       %s --check [-o runtimedir=DIR,firecracker=PATH]\n"
	"       %s --version [-o firecracker=PATH]\n"
	"\n"
	"Runs Firecracker microVMs and shows them as a tree of small files on MOUNTPOINT:\n"
	"mkdir MOUNTPOINT/vms/web creates a VM, echo start > MOUNTPOINT/vms/web/ctl boots it.\n"
	"The tree is smartvmfs(5); this command and its options are smartvmfs(1).\n"
	"Unmount with fusermount3 -u MOUNTPOINT (or SIGTERM): every VM is stopped and\n"
	"everything the daemon made is removed.\n"
	"\n"
	"Command options:\n"
	"    -h, --help             this text\n"
	"    -V, --version          the version, and the Firecracker version it will use\n"
	"    --check                check the host (KVM, TUN, FUSE, iptables, limits, space)\n"
	"                           and exit: 0 when all is well, 1 otherwise\n"
	"    -f                     stay in the foreground, the log on stderr\n"
	"                           [off: detach once mounted, the log to syslog]\n"
	"    -d, -o debug           FUSE debug output, implies -f [off]\n"
	"    -s                     a single-threaded FUSE loop [off: multi-threaded]\n"
	"\n"
	"smartvmfs options (-o NAME=VALUE, comma separated) [default]:\n"
	"    firecracker=PATH       the Firecracker binary [a release downloaded into\n"
	"                           DATADIR/bin at the first start]\n"
	"    fcversion=VERSION      the Firecracker version to download, or to report for\n"
	"                           firecracker=PATH [what the binary says; without a binary,\n"
	"                           the newest one in DATADIR/bin, else the latest release]\n"
	"    datadir=DIR            downloads, snapshots, user files [/tmp/.smartvm]\n"
	"    runtimedir=DIR         per-VM runtime directories: sockets, FIFOs, staged drives\n"
	"                           [%s]\n"
	"    imagecache=DIR         base-image bundles [DATADIR/base-images]\n"
	"    maximages=N            base-image bundles kept, N >= 1 [2]\n"
	"    manifest=URL|PATH      hosted base-image manifest for `fetch hosted` [none]\n"
	"    arch=ARCH              x86_64 | aarch64 [this host's: %s]\n"
	"    bridge=NAME            the guests' host bridge [svbr0]\n"
	"    subnet=CIDR            the guests' subnet [172.30.0.0/24]\n"
	"    dns=ADDR               nameserver in the guests' ip= boot argument [none]\n"
	"    releasesurl=URL        Firecracker releases page, for mirrors and tests\n"
	"                           [https://github.com/firecracker-microvm/firecracker/releases]\n"
	"    cibucketurl=URL        Firecracker CI bucket, for mirrors and tests\n"
	"                           [https://s3.amazonaws.com/spec.ccfc.min]\n"
	"    noephemeral            do not stage writable drives [off: they are staged]\n"
	"    consolesize=BYTES      console bytes kept per VM [1048576]\n"
	"    readytimeout=MS        how long a start waits for Firecracker's API socket\n"
	"                           and its first answer [5000]\n"
	"    paths=DIR:DIR...       with allow_other: the directories beneath which users'\n"
	"                           host paths are opened, with each VM owner's rights\n"
	"                           [DATADIR:IMAGECACHE:RUNTIMEDIR]\n"
	"    allow_other            let other users in; a VM belongs to its creator [off]\n"
	"    maxvms=N               per user (not root, not the mount's owner): VMs [no limit]\n"
	"    maxrunning=N           per user: VMs starting, running or paused [no limit]\n"
	"    maxmem=MIB             per user: memory of those VMs [no limit]\n"
	"    maxdata=MIB            per user: named snapshots in the data dir [no limit]\n"
	"    nocheck                no host checks at mount [off: problems are logged as\n"
	"                           warnings, as --check words them]\n"
	"    noadopt                kill the VMs a killed daemon left running [off: those\n"
	"                           whose Firecracker still answers are re-adopted]\n"
	"    persist                keep each VM's definition (config.json, metadata, owner,\n"
	"                           autostart) in DATADIR/vms across unmounts and reboots\n"
	"                           [off: VMs last as long as the mount]\n"
	"\n"
	"FUSE options:\n"
	"    rw, ro, nosuid, suid, nodev, dev, noexec, exec, sync, async, dirsync, atime,\n"
	"    noatime                mount flags for the kernel [rw,nosuid,nodev: FUSE's]\n"
	"    context=, fscontext=, defcontext=, rootcontext=   SELinux labels [none]\n"
	"    default_permissions    the mode bits are the access rules [always on]\n"
	"    auto_unmount           unmount when the daemon dies [off]\n"
	"    allow_root             let root in besides the owner [off]\n"
	"    max_threads=N          FUSE worker threads at most [64]\n"
	"    max_idle_threads=N     idle FUSE workers kept (libfuse's own loop) [-1, all]\n"
	"    clone_fd               a /dev/fuse descriptor per worker (libfuse's own loop) [off]\n"
	"\n"
	"Accepted and ignored (what fstab, mount(8), mount.fuse3 and systemd pass):\n"
	"    defaults, auto, noauto, _netdev, nofail, user, users, nouser, owner, group,\n"
	"    comment=..., x-systemd.*, x-*, and relatime, strictatime, lazytime, nodiratime\n"
	"    (and their no- forms)\n"
	"\n"
	"Examples:\n"
	"    smartvmfs -o firecracker=/usr/local/bin/firecracker /mnt/vm\n"
	"    mount -t fuse.smartvmfs smartvmfs /mnt/vm -o datadir=/var/lib/smartvmfs\n"
	"    fstab: smartvmfs /mnt/vm fuse.smartvmfs datadir=/var/lib/smartvmfs,_netdev 0 0\n"
	"    systemctl start smartvmfs@mnt-vm     (systemd-escape --path /mnt/vm)\n",
	prog, prog, prog, prog, fs_check_default_runtime_dir(rt, sizeof rt), arch);
}

/* Runs argv (no shell) with stdout and stderr into out; waits at most
 * timeout_ms, then kills it. Returns bytes read, -1 if it did not run. */
static ssize_t capture_argv(char *const argv[], char *out, size_t len, int timeout_ms)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return -1;
	}
	size_t have = 0;
	int64_t deadline = fs_now_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int64_t left = (deadline - fs_now_ns()) / 1000000;
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		ssize_t n = read(p[0], out + have, len - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == len - 1)
			break;
	}
	out[have] = '\0';
	close(p[0]);
	kill(pid, SIGKILL); /* done or too slow: it has said what it will */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return (ssize_t)have;
}

/* fc-emulator says what it is in its --version (a second line). */
static bool is_emulator(const char *firecracker)
{
	char out[512] = "";
	char *argv[] = {(char *)firecracker, "--version", NULL};
	return firecracker && capture_argv(argv, out, sizeof out, 2000) > 0 &&
	       strstr(out, "\nfc-emulator:") != NULL;
}

/* --version: ours, and the Firecracker version a mount with these options would
 * use, told without the network (DESIGN §3 /version). */
static void version(const struct fs_conf *c)
{
	printf("smartvmfs %s\n", SMARTVMFS_VERSION);
	const char *data = c->datadir ? c->datadir : "/tmp/.smartvm";
	if (c->firecracker) {
		char out[512] = "";
		char *argv[] = {c->firecracker, "--version", NULL};
		char *v = capture_argv(argv, out, sizeof out, 2000) > 0 ? strstr(out, " v") : NULL;
		bool emulator = strstr(out, "\nfc-emulator:") != NULL;
		if (v) {
			v++;
			v[strcspn(v, " \r\n")] = '\0';
		}
		if (c->fcversion)
			printf("firecracker %s (-o fcversion; %s says %s)\n", c->fcversion, c->firecracker,
			       v ? v : "no version");
		else if (v)
			printf("firecracker %s (%s%s)\n", v, c->firecracker,
			       emulator ? ": fc-emulator, the test double" : "");
		else
			printf("firecracker unknown (%s does not answer --version)\n", c->firecracker);
	} else if (c->fcversion) {
		printf("firecracker %s (downloaded into %s/bin/%s at the first start)\n", c->fcversion,
		       data, c->fcversion);
	} else {
		/* the newest release already downloaded, as the core picks it */
		char dir[PATH_MAX], best[256] = "";
		snprintf(dir, sizeof dir, "%s/bin", data);
		DIR *d = opendir(dir);
		for (struct dirent *e; d && (e = readdir(d));) {
			char fc[PATH_MAX + 300];
			snprintf(fc, sizeof fc, "%s/%s/firecracker", dir, e->d_name);
			if (e->d_name[0] == 'v' && access(fc, X_OK) == 0 && strlen(e->d_name) < sizeof best &&
			    (!best[0] || strverscmp(e->d_name, best) > 0))
				snprintf(best, sizeof best, "%s", e->d_name);
		}
		if (d)
			closedir(d);
		if (best[0])
			printf("firecracker %s (%s/%s/firecracker)\n", best, dir, best);
		else
			printf("firecracker latest (no -o firecracker: the latest release is downloaded into "
			       "%s at the first start)\n", dir);
	}
	printf("libfuse %s\n", fuse_pkgversion());
}

static void print_check(void *ud, bool ok, const char *what, const char *line)
{
	(void)ud;
	(void)what;
	printf("%-8s %s\n", ok ? "ok" : "PROBLEM", line);
}

static void log_check(void *ud, bool ok, const char *what, const char *line)
{
	(void)ud;
	(void)what;
	if (!ok)
		svm_log(fsd.s, "warning: %s", line);
}

/* The FUSE connection's number (its directory under /sys/fs/fuse/connections):
 * the device number of the mounted filesystem. */
static unsigned conn_id;
static char conn_mountpoint[PATH_MAX];
#define FUSECTL "/sys/fs/fuse/connections"

/* From /proc/self/mountinfo, not stat(): our own mount answers nothing yet. The
 * last fuse mount at mountpoint is ours (0 when not found). */
static unsigned mounted_conn_id(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[4096];
	unsigned id = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char at[PATH_MAX];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, at) == 3 && maj == 0 &&
		    !strcmp(at, mountpoint) && strstr(line, " - fuse"))
			id = min;
	}
	fclose(f);
	return id;
}

/* Writes to the connection's abort file; mounts fusectl there first if this
 * host has not (systemd does at boot). Returns 0 when the kernel took it. */
static int fusectl_abort(void)
{
	char path[128];
	snprintf(path, sizeof path, FUSECTL "/%u/abort", conn_id);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	return write(fd, "1", 1) == 1 ? 0 : -1;
}

/* Ends the FUSE connection at once. A request stuck in the kernel holds a
 * reference to our /dev/fuse descriptor (an entry invalidation waiting for a
 * directory lock that a request no worker will answer holds), so closing it is
 * not enough: the kernel's abort file fails every waiting request. Without it,
 * /dev/null takes the place of the descriptor (libfuse closes that number later,
 * harmlessly), which ends the connection once the last reference goes. */
static void abort_fuse_conn(bool in_fuse)
{
	/* only while the connection is still this mount's: once its superblock is
	 * gone, its number may already be another mount's (numbers are reused). A
	 * notifier waiting in the kernel's notification code holds the superblock;
	 * else the mount must still be in mountinfo. */
	if (conn_id && (in_fuse || mounted_conn_id(conn_mountpoint) == conn_id) && fusectl_abort() == 0) {
		fs_logf("the notifier was stuck in the kernel at the end: the FUSE connection was "
		        "aborted (" FUSECTL "/%u/abort)", conn_id);
		return;
	}
	int fd = fsd.se ? fuse_session_fd(fsd.se) : -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0 && null >= 0)
		dup2(null, fd);
	if (null >= 0)
		close(null);
	fs_logf("the notifier was stuck in the kernel at the end: the FUSE connection was ended");
}

/* Relative option paths would break once we chdir("/") as a daemon. */
static char *absolute(char *p)
{
	if (!p || p[0] == '/' || strstr(p, "://"))
		return p;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return p;
	char *abs = fs_strdupf(NULL, "%s/%s", cwd, p);
	if (!abs)
		return p;
	free(p);
	return abs;
}

/* Runs argv (no shell) and waits. Returns the exit status, -1 if not run. */
static int run_argv(char *const argv[])
{
	pid_t pid;
	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A smartvmfs killed with SIGKILL leaves its mount answering ENOTCONN; clear it
 * (lazily: a process may still have it as its cwd) before mounting again.
 * Returns a message for the log, or NULL if there was nothing to do. */
static char *clear_dead_mount(const char *mp)
{
	/* statfs, not stat: the kernel may answer stat from cached attributes,
	 * statfs always asks the (dead) daemon */
	struct statvfs sv;
	if (statvfs(mp, &sv) == 0 || errno != ENOTCONN)
		return NULL;
	int rc = -1;
	if (geteuid() == 0)
		rc = umount2(mp, MNT_DETACH);
	if (rc != 0) {
		char *argv[] = {"fusermount3", "-u", "-z", (char *)mp, NULL};
		rc = run_argv(argv);
	}
	char *msg = fs_strdupf(NULL, "%s was a dead mount (ENOTCONN): %s", mp,
	                       rc == 0 ? "lazily unmounted it" : "could not unmount it");
	fprintf(stderr, "smartvmfs: %s\n", msg ? msg : "dead mount found");
	return msg;
}

static void fill_svm_options(const struct fs_conf *c, unsigned maximages, bool log_stderr,
                             svm_options *o)
{
	memset(o, 0, sizeof *o);
	o->data_dir = c->datadir;
	o->runtime_dir = c->runtimedir;
	o->image_cache = c->imagecache;
	o->firecracker = c->firecracker;
	o->fc_version = c->fcversion;
	o->arch = c->arch;
	o->bridge = c->bridge;
	o->subnet = c->subnet;
	o->manifest = c->manifest;
	o->max_images = maximages;
	o->dns = c->dns;
	o->releases_url = c->releasesurl;
	o->ci_bucket_url = c->cibucketurl;
	o->no_ephemeral = c->noephemeral;
	o->no_adopt = c->noadopt;
	o->persist = c->persist;
	o->console_size = c->consolesize;
	o->max_vms = c->maxvms;
	o->max_running = c->maxrunning;
	o->max_mem_mib = c->maxmem;
	o->max_data_mib = c->maxdata;
	o->quota_exempt = getuid(); /* the mount's owner */
	o->ready_timeout_ms = c->readytimeout > 0 ? c->readytimeout : 0;
	o->on_event = fs_log_on_event;
	o->event_ud = NULL;
	/* with allow_other, the host paths of every config a VM starts with, its
	 * snapshot's included, are checked as a config write is (fs/access.c) */
	if (c->allow_other)
		o->check_config = fs_check_config_at_start;
	o->log_stderr = log_stderr; /* -f: the log on stderr, as sshfs -f does; else syslog */
}

static char *default_paths(void)
{
	const svm_options *o = svm_get_options(fsd.s);
	return fs_strdupf(NULL, "%s:%s:%s", o->data_dir ? o->data_dir : "/nonexistent",
	                  o->image_cache ? o->image_cache : "/nonexistent", svm_runtime_dir(fsd.s));
}

static void free_conf(struct fs_conf *c)
{
	char **strs[] = {&c->datadir, &c->runtimedir, &c->imagecache, &c->manifest, &c->firecracker,
	                 &c->fcversion, &c->arch, &c->bridge, &c->subnet, &c->paths, &c->dns,
	                 &c->releasesurl, &c->cibucketurl, &c->maximages};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The options: --help, --version and --check are answered here. Returns true
 * when there is a mount to make; else *ret is the exit status. */
static bool parse_conf(struct fuse_args *args, struct fs_conf *conf, int *ret)
{
	if (fuse_opt_parse(args, conf, conf_opts, conf_proc) != 0) {
		fprintf(stderr, "smartvmfs: bad options (smartvmfs --help lists them)\n");
		return false;
	}
	if (conf->help) {
		usage("smartvmfs");
		*ret = 0;
		return false;
	}
	if (conf->refused[0]) {
		fprintf(stderr, "smartvmfs: %s (smartvmfs --help lists the options)\n", conf->refused);
		return false;
	}
	conf->datadir = absolute(conf->datadir);
	conf->runtimedir = absolute(conf->runtimedir);
	conf->imagecache = absolute(conf->imagecache);
	conf->firecracker = absolute(conf->firecracker);
	conf->manifest = absolute(conf->manifest);
	if (conf->version) {
		version(conf);
		*ret = 0;
		return false;
	}
	if (conf->check) {
		struct fs_check_in in = {conf->runtimedir, conf->firecracker, conf->datadir,
		                         is_emulator(conf->firecracker)};
		int problems = fs_check_run(&in, print_check, NULL);
		printf("smartvmfs --check: %s\n", problems ? "problems above" : "all is well");
		*ret = problems ? 1 : 0;
		return false;
	}
	return true;
}

/* The mountpoint and libfuse's own options; the daemon's facts of the mount.
 * Returns true when there is a mountpoint. */
static bool parse_cmdline(struct fuse_args *args, struct fs_conf *conf,
                          struct fuse_cmdline_opts *cl)
{
	const char *mp = conf->nwords ? conf->words[conf->nwords - 1] : NULL;
	if (!mp) {
		fprintf(stderr, "smartvmfs: no mountpoint (smartvmfs --help)\n");
		return false;
	}
	fuse_opt_add_arg(args, mp);
	if (fuse_parse_cmdline(args, cl) != 0)
		return false;
	conf->foreground = cl->foreground;
	if (!cl->mountpoint) {
		fprintf(stderr, "smartvmfs: no mountpoint (smartvmfs --help)\n");
		return false;
	}
	/* Mode bits are the access rules (VM files belong to their creator). */
	fuse_opt_add_arg(args, "-odefault_permissions");
	fuse_opt_add_arg(args, "-ofsname=smartvmfs");
	fuse_opt_add_arg(args, "-osubtype=smartvmfs");

	fsd.allow_other = conf->allow_other;
	fsd.mount_uid = getuid();
	fsd.mount_gid = getgid();
	fsd.mount_ns = fs_now_ns();
	return true;
}

/* The one place the core starts. The core starts threads: before daemonizing
 * they would be lost in the fork, so in the background the core starts after
 * the fork. In the foreground it starts first, so a bad option fails before
 * mounting. */
static int start_core(const struct fs_conf *conf, unsigned maximages, bool foreground)
{
	svm_options so;
	svm_error err;
	svm_error_clear(&err);
	fill_svm_options(conf, maximages, fs_log_route(foreground), &so);
	fsd.s = svm_new(&so, &err);
	if (!fsd.s) {
		fprintf(stderr, "smartvmfs: %s (%s)\n", err.message, svm_code_name(err.code));
		return -1;
	}
	return 0;
}

/* Mounted, not serving yet: the core (in the background), the VMs a killed
 * daemon left (re-adopted or collected now, so the first lookup sees them:
 * docs/restart.md), the engine's threads, the checks. 0, or -1 to unmount. */
static int ready(struct fs_conf *conf, const struct fuse_cmdline_opts *cl, unsigned maximages,
                 const char *dead, int64_t t0)
{
	/* detached: stderr is /dev/null now; the log goes to syslog */
	if (!fsd.s && start_core(conf, maximages, false) != 0)
		return -1;
	if (dead)
		svm_log(fsd.s, "%s", dead);
	if (!conf->paths)
		conf->paths = default_paths();
	if (fs_paths_init(conf->paths) != 0) /* before any VM starts, autostarted ones too */
		return -1;
	svm_adopt(fsd.s, NULL);
	svm_persist_restore(fsd.s); /* -o persist: the kept definitions, autostart */
	if (fs_serve_start(&fs_smartvm_tree) != 0) {
		fprintf(stderr, "smartvmfs: cannot start threads\n");
		return -1;
	}
	svm_log(fsd.s, "smartvmfs %s mounted on %s%s in %.1f ms", SMARTVMFS_VERSION, cl->mountpoint,
	        fsd.allow_other ? " (allow_other)" : "", (fs_now_ns() - t0) / 1e6);
	if (!conf->nocheck) {
		struct fs_check_in in = {svm_runtime_dir(fsd.s), conf->firecracker, conf->datadir,
		                         svm_fc_emulated(fsd.s)};
		fs_check_run(&in, log_check, NULL);
	}
	char msg[PATH_MAX + 64];
	snprintf(msg, sizeof msg, "READY=1\nSTATUS=mounted on %s", cl->mountpoint);
	fs_systemd_notify(msg);
	return 0;
}

/* The FUSE loop, until unmount or a signal: the exit status. */
static int loop(struct fuse_session *se, const struct fuse_cmdline_opts *cl)
{
	int ret;
	if (cl->singlethread) {
		ret = fuse_session_loop(se);
	} else if (cl->clone_fd || cl->max_idle_threads != UINT_MAX) {
		/* options of libfuse's own multi-threaded loop: that loop, then */
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, cl->clone_fd);
		if (cl->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, cl->max_idle_threads);
		/* Starts and events hold no worker; this bounds a burst of plain reads. */
		fuse_loop_cfg_set_max_threads(lc, cl->max_threads > 0 && cl->max_threads <= 100000
		                                      ? cl->max_threads : 64);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	} else {
		/* Starts and events hold no worker; this bounds a burst of plain reads. */
		ret = fs_serve_loop(se, cl->max_threads > 0 && cl->max_threads <= 100000
		                            ? cl->max_threads : 64);
	}
	/* the signals we asked libfuse to handle are an orderly end, not a failure */
	return !(ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP);
}

/* Unmounts first so nobody waits on a mount that no longer answers; the VMs
 * stop after (stop_core): their completions still reply, to a closed channel:
 * the session is marked exited so libfuse fails those writes quietly. Returns
 * when it began, for the log of the stop. */
static int64_t unmount(struct fuse_session *se, const char *mountpoint)
{
	fs_systemd_notify("STOPPING=1");
	fsd.stopping = true;
	fuse_session_exit(se);
	fuse_session_unmount(se);
	int64_t t0 = fs_now_ns();
	if (fsd.s) {
		size_t n[SVM_STATE_COUNT];
		svm_count_by_state(fsd.s, n);
		size_t live = n[SVM_STARTING] + n[SVM_RUNNING] + n[SVM_PAUSED] + n[SVM_STOPPING];
		if (live)
			svm_log(fsd.s, "unmounted %s; stopping %zu VM(s)", mountpoint, live);
		else
			svm_log(fsd.s, "unmounted %s", mountpoint);
	}
	/* a stopall, cleanup or download still running uses the core: downloads
	 * stop now (a slow one must not hold the end), the others finish */
	svm_images_cancel(fsd.s);
	for (int i = 0; __atomic_load_n(&fsd.root_jobs, __ATOMIC_SEQ_CST) > 0; i++) {
		if (i % 200 == 199)
			svm_log(fsd.s, "unmounted; waiting for %d command(s) (a download?) to finish",
			        __atomic_load_n(&fsd.root_jobs, __ATOMIC_SEQ_CST));
		usleep(50 * 1000);
	}
	return t0;
}

/* Every VM stops and what the daemon made goes (svm_free), then the engine. */
static void stop_core(int64_t t0)
{
	if (fsd.s) {
		bool mounted = fsd.se != NULL;
		svm_free(fsd.s);
		fsd.s = NULL;
		if (mounted)
			fs_logf("stopped every VM and removed what the daemon made in %.1f ms",
			        (fs_now_ns() - t0) / 1e6);
	}
	fs_events_shutdown(); /* reads parked on events end first (end of file) */
	fs_serve_stop(abort_fuse_conn);
	fs_serve_free();
}

/* Mounts, serves until the end, and ends in order: the exit status. */
static int mount_and_serve(struct fuse_session *se, struct fs_conf *conf,
                           const struct fuse_cmdline_opts *cl, unsigned maximages,
                           const char *dead, int64_t t0)
{
	if (cl->foreground && start_core(conf, maximages, true) != 0)
		return 1;
	int ret = 1;
	if (fuse_session_mount(se, cl->mountpoint) == 0) {
		fsd.se = se;
		conn_id = mounted_conn_id(cl->mountpoint);
		snprintf(conn_mountpoint, sizeof conn_mountpoint, "%s", cl->mountpoint);
		fuse_daemonize(cl->foreground);
		if (ready(conf, cl, maximages, dead, t0) == 0)
			ret = loop(se, cl);
		t0 = unmount(se, cl->mountpoint);
	}
	stop_core(t0);
	return ret;
}

/* The session around the mount: the exit status. */
static int run(struct fuse_args *args, struct fs_conf *conf, const struct fuse_cmdline_opts *cl,
               int64_t t0)
{
	/* options the core would only judge after mounting are judged here */
	unsigned maximages = 0;
	svm_error err;
	svm_error_clear(&err);
	if (conf->maximages && svm_parse_cache_limit(conf->maximages, &maximages, &err) != 0) {
		fprintf(stderr, "smartvmfs: -o maximages=%s: %s (%s)\n", conf->maximages, err.message,
		        svm_code_name(err.code));
		return 1;
	}
	cleanup_free char *dead = clear_dead_mount(cl->mountpoint);
	struct fuse_session *se = fuse_session_new(args, &fs_ops, sizeof fs_ops, NULL);
	if (!se)
		return 1;
	int ret = 1;
	if (fuse_set_signal_handlers(se) == 0) {
		ret = mount_and_serve(se, conf, cl, maximages, dead, t0);
		fuse_remove_signal_handlers(se);
	}
	fsd.se = NULL;
	fuse_session_destroy(se);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fs_conf conf = {0};
	struct fuse_cmdline_opts cl = {0};
	int ret = 1;
	int64_t t0 = fs_now_ns();

	fs_systemd_init();
	if (parse_conf(&args, &conf, &ret) && parse_cmdline(&args, &conf, &cl))
		ret = run(&args, &conf, &cl, t0);
	fs_log_unroute();
	if (fsd.paths) {
		for (size_t i = 0; fsd.paths[i]; i++)
			free(fsd.paths[i]);
		free(fsd.paths);
	}
	free(cl.mountpoint);
	for (int i = 0; i < conf.nwords; i++)
		free(conf.words[i]);
	free_conf(&conf);
	fuse_opt_free_args(&args);
	return ret;
}
