/*
 * main.c - smartvmfs [-f] [-o options] MOUNTPOINT: options, mount, the loop, and
 * an orderly end (unmount, SIGTERM and SIGINT all stop every VM and remove what
 * the daemon made).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"

extern char **environ;

struct fsd fsd;

/* The options of DESIGN §3, as fuse_opt parses them. */
struct fs_conf {
	char *datadir, *runtimedir, *imagecache, *manifest, *firecracker, *fcversion, *arch;
	char *bridge, *subnet, *paths, *dns, *releasesurl, *cibucketurl;
	char *maximages;
	unsigned long consolesize;
	int noephemeral;
	int allow_other;
	int help, version;
	int foreground;
};

enum { KEY_ALLOW_OTHER, KEY_HELP, KEY_VERSION };

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
	CONF("consolesize=%lu", consolesize),
	CONF("noephemeral", noephemeral),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

/* fstab-only words that mount.fuse3 may hand us and the kernel must not see. */
static bool fstab_only(const char *arg)
{
	static const char *const words[] = {"noauto", "auto", "_netdev", "nofail", "defaults",
	                                    "user", "users", "nouser", NULL};
	for (int i = 0; words[i]; i++)
		if (!strcmp(arg, words[i]))
			return true;
	return !strncmp(arg, "x-systemd.", 10) || !strncmp(arg, "comment=", 8) ||
	       !strncmp(arg, "x-", 2);
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
		return 1;
	case KEY_VERSION:
		c->version = 1;
		return 1;
	case FUSE_OPT_KEY_OPT:
		return fstab_only(arg) ? 0 : 1;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-o option[,option...]] MOUNTPOINT\n\n"
	       "smartvmfs options:\n"
	       "    -o firecracker=PATH    the Firecracker binary\n"
	       "    -o fcversion=VERSION   Firecracker version to use\n"
	       "    -o datadir=DIR         data directory (/tmp/.smartvm)\n"
	       "    -o runtimedir=DIR      per-VM runtime directories (/dev/shm/.smartvm/runtime)\n"
	       "    -o imagecache=DIR      base images (DATADIR/base-images)\n"
	       "    -o maximages=N         base images kept (2)\n"
	       "    -o manifest=URL|PATH   hosted base-image manifest\n"
	       "    -o arch=ARCH           x86_64 | aarch64 (the host's)\n"
	       "    -o bridge=NAME         bridge (svbr0)\n"
	       "    -o subnet=CIDR         guest subnet (172.30.0.0/24)\n"
	       "    -o dns=ADDR            nameserver in the guests' ip= boot argument\n"
	       "    -o releasesurl=URL     Firecracker releases page (tests, mirrors)\n"
	       "    -o cibucketurl=URL     Firecracker CI bucket (tests, mirrors)\n"
	       "    -o noephemeral         do not stage writable drives\n"
	       "    -o consolesize=BYTES   console bytes kept per VM (1048576)\n"
	       "    -o paths=DIR:DIR...    with allow_other: where host paths may lie\n"
	       "    -o allow_other         let other users in (VMs belong to their creator)\n\n"
	       "FUSE options:\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
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

static void fill_svm_options(const struct fs_conf *c, unsigned maximages, svm_options *o)
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
	o->console_size = c->consolesize;
	o->on_event = fs_on_core_event;
	o->event_ud = NULL;
	o->log_stderr = c->foreground; /* -f: the log on stderr too, as sshfs -f does */
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

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fs_conf conf = {0};
	struct fuse_cmdline_opts cl = {0};
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	char *dead = NULL;
	int ret = 1;

	if (fuse_opt_parse(&args, &conf, conf_opts, conf_proc) != 0)
		return 1;
	if (fuse_parse_cmdline(&args, &cl) != 0)
		return 1;
	conf.foreground = cl.foreground;
	if (conf.help || cl.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (conf.version || cl.show_version) {
		printf("smartvmfs %s (libsmartvm %s)\n", SMARTVMFS_VERSION, svm_lib_version());
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (!cl.mountpoint) {
		fprintf(stderr, "smartvmfs: no mountpoint (see %s --help)\n", argv[0]);
		goto out;
	}
	/* Mode bits are the access rules (VM files belong to their creator). */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	fuse_opt_add_arg(&args, "-ofsname=smartvmfs");
	fuse_opt_add_arg(&args, "-osubtype=smartvmfs");
	conf.datadir = absolute(conf.datadir);
	conf.runtimedir = absolute(conf.runtimedir);
	conf.imagecache = absolute(conf.imagecache);
	conf.firecracker = absolute(conf.firecracker);
	conf.manifest = absolute(conf.manifest);

	fsd.allow_other = conf.allow_other;
	fsd.mount_uid = getuid();
	fsd.mount_gid = getgid();
	fsd.mount_ns = fs_now_ns();

	/* options the core would only judge after mounting are judged here */
	unsigned maximages = 0;
	svm_error err;
	svm_error_clear(&err);
	if (conf.maximages && svm_parse_cache_limit(conf.maximages, &maximages, &err) != 0) {
		fprintf(stderr, "smartvmfs: -o maximages=%s: %s (%s)\n", conf.maximages, err.message,
		        svm_code_name(err.code));
		goto out;
	}

	dead = clear_dead_mount(cl.mountpoint);

	se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	/* The core starts threads: before daemonizing they would be lost in the
	 * fork, so in the background the core starts after the fork. In the
	 * foreground it starts first, so a bad option fails before mounting. */
	svm_options so;
	fill_svm_options(&conf, maximages, &so);
	if (cl.foreground) {
		fsd.s = svm_new(&so, &err);
		if (!fsd.s) {
			fprintf(stderr, "smartvmfs: %s (%s)\n", err.message, svm_code_name(err.code));
			goto out_signals;
		}
	}
	if (fuse_session_mount(se, cl.mountpoint) != 0)
		goto out_core;
	fsd.se = se;
	fuse_daemonize(cl.foreground);
	if (!fsd.s) {
		fsd.s = svm_new(&so, &err);
		if (!fsd.s) {
			fprintf(stderr, "smartvmfs: %s (%s)\n", err.message, svm_code_name(err.code));
			goto out_unmount;
		}
	}
	if (dead)
		svm_log(fsd.s, "%s", dead);
	if (!conf.paths)
		conf.paths = default_paths();
	if (fs_paths_init(conf.paths) != 0)
		goto out_unmount;
	svm_log(fsd.s, "smartvmfs %s mounted on %s%s", SMARTVMFS_VERSION, cl.mountpoint,
	        fsd.allow_other ? " (allow_other)" : "");
	if (fs_notify_start() != 0) {
		fprintf(stderr, "smartvmfs: cannot start threads\n");
		goto out_unmount;
	}

	if (cl.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, cl.clone_fd);
		if (cl.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, cl.max_idle_threads);
		/* Starts and events hold no worker; this bounds a burst of plain reads. */
		fuse_loop_cfg_set_max_threads(lc, cl.max_threads > 0 && cl.max_threads <= 100000
		                                      ? cl.max_threads : 64);
		ret = fuse_session_loop_mt(se, lc);
	}
	/* the signals we asked libfuse to handle are an orderly end, not a failure */
	ret = !(ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP);

out_unmount:
	/* Unmount first so nobody waits on a mount that no longer answers, then
	 * stop every VM; their completions still reply, to a closed channel: the
	 * session is marked exited so libfuse fails those writes quietly. */
	fsd.stopping = true;
	fuse_session_exit(se);
	fuse_session_unmount(se);
	/* a stopall, cleanup or download still running uses the core: let it finish
	 * (the core cannot cancel a download; freeing it under one would crash) */
	for (int i = 0; __atomic_load_n(&fsd.root_jobs, __ATOMIC_SEQ_CST) > 0; i++) {
		if (i % 200 == 199)
			svm_log(fsd.s, "unmounted; waiting for %d command(s) (a download?) to finish",
			        __atomic_load_n(&fsd.root_jobs, __ATOMIC_SEQ_CST));
		usleep(50 * 1000);
	}
out_core:
	if (fsd.s) {
		svm_free(fsd.s);
		fsd.s = NULL;
	}
	fs_notify_stop();
	fs_events_shutdown();
	fs_nodes_free();
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fsd.se = NULL;
	fuse_session_destroy(se);
out:
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (fsd.paths) {
		for (size_t i = 0; fsd.paths[i]; i++)
			free(fsd.paths[i]);
		free(fsd.paths);
	}
	free(dead);
	free(cl.mountpoint);
	free_conf(&conf);
	fuse_opt_free_args(&args);
	return ret;
}
