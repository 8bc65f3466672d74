/*
 * options.c - the daemon's options (DESIGN §3): the -o words parsed and
 * checked (unknown ones refused, those of fstab and mount.fuse3 accepted),
 * relative paths made absolute, --help, --version and --check answered, and
 * the core's options filled in from them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "check.h"
#include "daemonlog.h"
#include "options.h"
#include "tree/tree.h"

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
	CONF("jailer=%s", jailer),
	CONF("jailuids=%s", jailuids),
	CONF("nojailer", nojailer),
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
                                     "maxmem", "maxdata", "jailer", "jailuids", NULL};

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

/* --help: the options of DESIGN §3, one line each (a printf format: the program
 * name four times, the default runtime dir, the arch). */
static const char usage_text[] =
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
	"    jailer=PATH            run every VMM under Firecracker's jailer, of the VMM's\n"
	"                           release: chrooted in its runtime dir, with a uid and gid\n"
	"                           of its own (smartvmfs(5), docs/jailer.md) [off: unjailed]\n"
	"    jailuids=FROM-TO       the jailed VMMs' uids (and gids), one per running VM\n"
	"                           [900000000-900065535]\n"
	"    nojailer               VMMs run unjailed, whatever jailer= says [off]\n"
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
	"    systemctl start smartvmfs@mnt-vm     (systemd-escape --path /mnt/vm)\n";

static void usage(const char *prog)
{
	char rt[PATH_MAX];
	struct utsname u;
	const char *arch = uname(&u) == 0 && !strcmp(u.machine, "aarch64") ? "aarch64" : "x86_64";
	printf(usage_text,
	       prog, prog, prog, prog, fs_check_default_runtime_dir(rt, sizeof rt), arch);
}

/* fc-emulator says what it is in its --version (a second line). */
bool fs_is_emulator(const char *firecracker)
{
	char out[512] = "";
	char *argv[] = {(char *)firecracker, "--version", NULL};
	return firecracker && svm_run_capture(argv, out, sizeof out, 2000, NULL) > 0 &&
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
		char *v = svm_run_capture(argv, out, sizeof out, 2000, NULL) > 0 ? strstr(out, " v") : NULL;
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

void fs_fill_svm_options(const struct fs_conf *c, unsigned maximages, bool log_stderr,
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
	o->jailer = c->jailer;
	o->jail_uids = c->jailuids;
	o->no_jailer = c->nojailer;
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

void fs_free_conf(struct fs_conf *c)
{
	char **strs[] = {&c->datadir, &c->runtimedir, &c->imagecache, &c->manifest, &c->firecracker,
	                 &c->fcversion, &c->arch, &c->bridge, &c->subnet, &c->paths, &c->dns,
	                 &c->releasesurl, &c->cibucketurl, &c->maximages, &c->jailer, &c->jailuids};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The options: --help, --version and --check are answered here. Returns true
 * when there is a mount to make; else *ret is the exit status. */
bool fs_parse_conf(struct fuse_args *args, struct fs_conf *conf, int *ret)
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
	conf->jailer = absolute(conf->jailer);
	conf->manifest = absolute(conf->manifest);
	if (conf->version) {
		version(conf);
		*ret = 0;
		return false;
	}
	if (conf->check) {
		struct fs_check_in in = {conf->runtimedir, conf->firecracker, conf->datadir,
		                         fs_is_emulator(conf->firecracker), conf->jailer,
		                         conf->nojailer};
		int problems = fs_check_run(&in, print_check, NULL);
		printf("smartvmfs --check: %s\n", problems ? "problems above" : "all is well");
		*ret = problems ? 1 : 0;
		return false;
	}
	return true;
}
