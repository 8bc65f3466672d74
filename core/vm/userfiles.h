/*
 * userfiles.h - the host files one start, restore or drive change uses, opened
 * with the VM owner's rights (hostpath.h) and held open until the VMM has opened
 * them in turn.
 *
 * The config the VMM sees names each of them /proc/PID/fd/N (the daemon's open
 * file: no path swap can change it). A drive used in place gets a stable name
 * in the VM's runtime dir, RUNDIR/drive-ID.host, a link to that: the device
 * state of a snapshot keeps the name, and a restore makes the link again to the
 * file it opens then. Every name and descriptor goes at userfiles_free.
 */
#ifndef SVM_USERFILES_H
#define SVM_USERFILES_H

#include <jansson.h>
#include <stdbool.h>

#include "hostpath.h"
#include "internal.h"

typedef struct userfiles userfiles;

userfiles *userfiles_new(svm_vm *vm, svm_error *err);
/* Closes every descriptor and removes every link made. NULL is fine. */
void userfiles_free(userfiles *uf);
/* The VM owner's rights (for callers opening files of their own). */
const hostpath_who *userfiles_who(const userfiles *uf);

/* Takes fd (the caller's no more) and names it /proc/PID/fd/N in name. */
int userfiles_hold(userfiles *uf, int fd, char *name, size_t len, svm_error *err);
/* Opens path as the owner under the host roots (flags as open(2)), holds it and
 * names it; a path in the image cache is opened as the daemon, beneath it. */
int userfiles_open(userfiles *uf, const char *what, const char *path, int flags, char *name,
		   size_t len, svm_error *err);

/* Opens the host files cfg names - kernel, initrd, drives, pmem - and puts their names
 * in cfg in place of the paths. Paths already naming a held file are left. */
int userfiles_open_config(userfiles *uf, json_t *cfg, svm_error *err);
/* After staging: each drive still naming a held file is used in place, and is
 * named RUNDIR/drive-ID.host instead (a pmem device RUNDIR/pmem-ID.host). */
int userfiles_link_in_place(userfiles *uf, json_t *cfg, svm_error *err);
/* One drive's new backing file (the drive verb): opened, linked as above; the
 * link's path in out. */
int userfiles_link_drive(userfiles *uf, const char *id, const char *path, bool read_only,
			 char *out, size_t len, svm_error *err);

/* A user's vsock.udsPath: the VMM (root) binds a socket there, so its directory
 * must be one the owner may write to; an old socket of a previous run is removed
 * (with the owner's rights, never anything else). */
int userfiles_check_socket_path(svm_vm *vm, const char *path, svm_error *err);

/* Once the VMM made the VM's vsock socket (path): it becomes the owner's (0600),
 * and a socket in the runtime dir reachable for them (0711 on the way). -1 with
 * errno when it could not be given. */
int userfiles_give_vsock(svm_vm *vm, const char *path);

#endif
