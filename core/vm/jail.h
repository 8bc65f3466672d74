/*
 * jail.h - every VMM under Firecracker's jailer (-o jailer=PATH; docs/jailer.md):
 * the mode and its checks, a uid and gid of its own per VM from -o jailuids,
 * the chroot under the VM's runtime dir with the files the VMM uses made
 * visible in it, the jailer's command line, and the jail's complete removal.
 */
#ifndef SVM_JAIL_H
#define SVM_JAIL_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "internal.h"

/* The default uid range: far above the ranges useradd gives users and their
 * subordinate ids, below 2^31 (which some tools take for negative). */
#define JAIL_UIDS_FIRST 900000000u
#define JAIL_UIDS_LAST 900065535u

typedef struct jail_conf jail_conf;

/* The mode the options ask for: *out NULL when VMMs run unjailed, else the
 * jailer checked (executable; and when firecracker names the VMM, its version
 * equal to the jailer's). mode gets the log line's text either way. -1 with
 * err when jailing was asked for and cannot be had. */
int jail_conf_new(const svm_options *o, const char *firecracker, jail_conf **out, char *mode,
		  size_t len, svm_error *err);
void jail_conf_free(jail_conf *jc);


/* A config's netns (a network namespace of the user's, which the jailer joins
 * the VMM to): only jailed, and a path that is there. */
int jail_check_netns(const svm *s, const json_t *cfg, svm_error *err);
/* The jail of one start, after staging and the in-place links: the binary's
 * version checked, a uid taken, the chroot made with the kernel, initrd and
 * drives in it, and cfg's paths rewritten to the VMM's view. On failure nothing
 * of it remains. Nothing happens when the mount does not jail. */
int jail_prepare(svm_vm *vm, const char *binary, json_t *cfg, svm_error *err);
/* A FIFO of the runtime dir (host path) made visible in the jail as /name, the
 * jailed uid's; its path for the VMM in out. */
int jail_link_stream(svm_vm *vm, const char *host, const char *name, char *out, size_t len,
		     svm_error *err);
/* The jailer's command line before the VMM's own arguments (the jailer gives
 * the VMM its --id), with the host's cgroup version, the VM's limits' arguments
 * (vmlimits.h) and its netns; returns the count put in argv (room for 20 and
 * nlimits). */
int jail_argv(svm_vm *vm, const char *binary, const char *cgroup_version, char *const limits[],
	      int nlimits, char *argv[], char bufs[2][32]);
/* Where the jailed VMM binds its API socket, as it sees it. */
const char *jail_api_sock(void);
/* The VMM's API socket, as the daemon reaches it: once the VMM has bound it in
 * the jail, a hard link at vm->sock (a directory of the daemon's, so the jailed
 * uid cannot swap it for a link to another socket). 1 when there, 0 not yet. */
int jail_take_socket(svm_vm *vm);
/* A host file (src: a path or /proc/self/fd/N) in the jail as /name, readable
 * by the uid alone: linked when it is the daemon's and all may read it, else
 * copied (a reflink where the filesystem offers one); the path for the VMM in
 * out. For a restore's snapshot files, which the user owns. */
int jail_place_file(svm_vm *vm, const char *src, const char *name, char *out, size_t len,
		    svm_error *err);
/* A file the running VMM writes (a snapshot's, just made: fd) lent to it:
 * bind-mounted as /name in the jail's mount namespace (the jailer's own, which
 * the daemon joins for that) and the uid's until jail_unlend gives it back to
 * its owner and takes the mount away. out: the path for the VMM. */
typedef struct jail_loan {
	int fd;
	uid_t uid;
	gid_t gid;
	char at[4096];
} jail_loan;
int jail_lend(svm_vm *vm, int fd, const char *name, jail_loan *loan, char *out, size_t len,
	      svm_error *err);
void jail_unlend(jail_loan *loan);
/* A running VM's drive given a new file (src: the owner's file, opened with
 * the owner's rights already): bind-mounted as /drive-ID.N into the jail's
 * namespace (read-only when ro), given to the uid as a drive used in place
 * is; out: the path for the VMM. */
int jail_lend_drive(svm_vm *vm, const char *id, const char *src, bool ro, char *out, size_t len,
		    svm_error *err);
/* Where the jailed VMM binds its vsock socket, as it sees it. */
const char *jail_vsock_sock(void);
/* Its vsock socket once bound in the jail: hard linked to RUNDIR/vsock.sock (a
 * directory of the daemon's) and, when host (the config's udsPath) is another
 * path, named there by a symbolic link to it; both go with the jail. */
int jail_take_vsock(svm_vm *vm, const char *host, svm_error *err);
/* The VMM has ended (or never ran): every mount in the jail undone, the jail
 * removed, the uid free. Idempotent. */
void jail_release(svm_vm *vm);
/* The jail as the VM's state file keeps it (vm.json "jail"), NULL unjailed;
 * and a VM taking it over again for a re-adopted VMM (pid): the mount must
 * jail, the VMM must run as the uid it names, which this mount then holds. */
json_t *jail_state_locked(const svm_vm *vm);
int jail_adopt(svm_vm *vm, const json_t *state, pid_t pid, svm_error *err);
/* What a collected jailed VMM (not taken over) was given outside its jail,
 * from its state file's "jail": the users' files' ACL entries and its TAPs
 * taken back. */
void jail_forget(const json_t *state);
/* What a killed daemon's jail left in runtime dir dir: unmounted and removed. */
void jail_collect(const char *dir);
/* Does runtime dir dir hold a jail (its VMM ran jailed)? */
bool jail_present(const char *dir);

#endif
