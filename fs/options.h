/*
 * options.h - the daemon's options (options.c) and the FUSE connection's end
 * (fusectl.c), as main.c's phases use them.
 */
#ifndef SMARTVMFS_OPTIONS_H
#define SMARTVMFS_OPTIONS_H

#include <stdbool.h>

#include "tree/tree.h"

/* The options of DESIGN §3, as fuse_opt parses them. */
struct fs_conf {
	char *datadir, *runtimedir, *imagecache, *manifest, *firecracker, *fcversion, *arch;
	char *bridge, *subnet, *paths, *dns, *releasesurl, *cibucketurl, *jailer, *jailuids;
	char *maximages;
	unsigned maxvms, maxrunning, maxmem, maxdata;
	unsigned long consolesize;
	int readytimeout;
	int noephemeral, nocheck, noadopt, persist, nojailer;
	int allow_other;
	int help, version, check;
	int foreground;
	char *words[2];    /* [SOURCE] MOUNTPOINT: mount.fuse3 passes both */
	int nwords;
	char refused[512]; /* the first option refused, with why */
};

/* The options: --help, --version and --check are answered here. Returns true
 * when there is a mount to make; else *ret is the exit status. */
bool fs_parse_conf(struct fuse_args *args, struct fs_conf *conf, int *ret);
void fs_free_conf(struct fs_conf *c);
/* The core's options from the daemon's. */
void fs_fill_svm_options(const struct fs_conf *c, unsigned maximages, bool log_stderr,
                         svm_options *o);
/* Is this Firecracker the project's emulator (its --version says so)? */
bool fs_is_emulator(const char *firecracker);

#endif
