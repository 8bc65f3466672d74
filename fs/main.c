/*
 * main.c - smartvmfs [-f] [-o options] [SOURCE] MOUNTPOINT, in its phases: the
 * options (options.c), the mount, the core started in one place, the loop, and
 * an orderly end (unmount, SIGTERM and SIGINT all stop every VM and remove what
 * the daemon made; a connection stuck in the kernel is ended by fusectl.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
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
#include "fusectl.h"
#include "options.h"
#include "daemonlog.h"
#include "cleanup.h"
#include "tree/tree.h"

extern char **environ;

static void log_check(void *ud, bool ok, const char *what, const char *line)
{
	(void)ud;
	(void)what;
	if (!ok)
		svm_log(fsd.s, "warning: %s", line);
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
		svm_run_capture(argv, NULL, 0, -1, &rc);
	}
	char *msg = fs_strdupf(NULL, "%s was a dead mount (ENOTCONN): %s", mp,
	                       rc == 0 ? "lazily unmounted it" : "could not unmount it");
	fprintf(stderr, "smartvmfs: %s\n", msg ? msg : "dead mount found");
	return msg;
}

static char *default_paths(void)
{
	const svm_options *o = svm_get_options(fsd.s);
	return fs_strdupf(NULL, "%s:%s:%s", o->data_dir ? o->data_dir : "/nonexistent",
	                  o->image_cache ? o->image_cache : "/nonexistent", svm_runtime_dir(fsd.s));
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
	fs_fill_svm_options(conf, maximages, fs_log_route(foreground), &so);
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
		                         svm_fc_emulated(fsd.s), conf->jailer, conf->nojailer};
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
	/* The kernel ended the connection under a read: someone wrote its abort
	 * file, or the last close of a lazily unmounted mount ended it while a
	 * request was being read (its read fails ECONNABORTED, not ENODEV, which
	 * libfuse would take for the unmount it is). The mount is gone either way:
	 * the end is the orderly one, libfuse's own line on stderr notwithstanding. */
	if (ret == -ECONNABORTED) {
		fs_logf("the kernel ended the FUSE connection during a read (ECONNABORTED: its "
		        "abort file, or the end of a lazily unmounted mount): ending as at an "
		        "unmount");
		return 0;
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
	fs_serve_stop(fs_fusectl_end);
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
		fs_fusectl_remember(cl->mountpoint);
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
	if (fs_parse_conf(&args, &conf, &ret) && parse_cmdline(&args, &conf, &cl))
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
	fs_free_conf(&conf);
	fuse_opt_free_args(&args);
	return ret;
}
