/*
 * check.h - what the host must offer smartvmfs (`smartvmfs --check`, and the same
 * checks at mount as warnings): /dev/kvm, /dev/net/tun, /dev/fuse, iptables,
 * RLIMIT_NOFILE, free space in the runtime dir, the Firecracker binary, the jailer.
 */
#ifndef SMARTVMFS_CHECK_H
#define SMARTVMFS_CHECK_H

#include <stdbool.h>

struct fs_check_in {
	const char *runtime_dir; /* NULL: the core's default */
	const char *firecracker; /* NULL: a release is downloaded at first start */
	const char *data_dir;    /* NULL: /tmp/.smartvm */
	bool emulator;           /* firecracker is fc-emulator, the test double: no KVM needed */
	const char *jailer;      /* -o jailer: NULL, VMMs run unjailed */
	bool no_jailer;          /* -o nojailer */
};

/* Called once per check: ok, and one line (no newline) saying what was found
 * or what is wrong and how to fix it. */
typedef void (*fs_check_fn)(void *ud, bool ok, const char *what, const char *line);

/* Runs every check; returns the number of problems. */
int fs_check_run(const struct fs_check_in *in, fs_check_fn fn, void *ud);

/* The runtime dir the core will use when none is given (DESIGN §3 defaults). */
const char *fs_check_default_runtime_dir(char *buf, unsigned len);

#endif
