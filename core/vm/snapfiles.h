/*
 * snapfiles.h - a snapshot's directory and its files, opened with the right
 * rights.
 *
 * A snapshot NAME lives in the daemon's own store, DATADIR/snapshots/VM/NAME, and
 * is the daemon's (it refuses to write over another owner's). A snapshot DIR (a
 * path) is the VM owner's: the directory is opened, or made, with the owner's
 * rights under the host roots, and every file in it is made fresh there (0600,
 * O_EXCL, never through a link) or read from it as the owner. The VMM gets the
 * open files (/proc/PID/fd/N), never a name it would resolve as root.
 *
 * Reading one back for a restore trusts nothing a user could have written: the
 * seal (seal.h) in origin.json must match the owner, the runtime dir and the
 * bytes of vmstate and config.json, and the device state the VMM loads is a
 * private copy of the bytes that were checked.
 */
#ifndef SVM_SNAPFILES_H
#define SVM_SNAPFILES_H

#include <limits.h>
#include <stdbool.h>

#include "hostpath.h"
#include "internal.h"

typedef struct snapdir {
	int dfd;
	bool named;          /* in the daemon's store */
	hostpath_who who;    /* the rights its files are made and read with */
	char path[PATH_MAX];
	/* the names of the state file and of the sealed origin in it: "vmstate" and
	 * "origin.json" (with config.json beside them); for the two-file form, the
	 * file's own name and NAME.seal, which holds the config too */
	char state[NAME_MAX + 1], origin[NAME_MAX + 1];
	bool embed_config;
	/* the files made fresh so far, as NAME.new until snapdir_commit */
	char **fresh;
	size_t nfresh;
} snapdir;

/* The directory of a snapshot argument (a NAME already checked valid, or a path
 * with a '/'); create: make it (and a NAME's parents) if missing. */
int snapdir_open(svm_vm *vm, const char *arg, bool create, snapdir *d, svm_error *err);
/* Closes; files made fresh and not committed go (a failed snapshot leaves the
 * one before it as it was). */
void snapdir_close(snapdir *d);
/* Puts every fresh file in place of its name, in the order they were made (the
 * origin, written last, last): a reader meets the old snapshot or the new one,
 * and a mix of the two fails the seal. */
int snapdir_commit(snapdir *d, svm_error *err);
/* The two-file form (the seed's snapshotPath / memFilePath): the directory of
 * path (which must exist), opened with the owner's rights; d->state is path's
 * name, d->origin NAME.seal. */
int snapdir_open_file(svm_vm *vm, const char *path, snapdir *d, svm_error *err);

/* A new empty file for name: made as NAME.new (O_EXCL, O_RDWR, 0600, never
 * through a link), put in place by snapdir_commit. */
int snapdir_fresh(snapdir *d, const char *name, svm_error *err);
/* An existing regular file in it, read-only; -1 and errno ENOENT when missing
 * (err set in every case). */
int snapdir_file(snapdir *d, const char *name, svm_error *err);
/* Writes text as a fresh file. */
int snapdir_write(snapdir *d, const char *name, const char *text, svm_error *err);

/* After the VMM wrote the state file (vmstate_fd) and config.json was written
 * from config_text (or, embed_config, is to go into the origin): the origin
 * with the seal. vmm_rundir: the runtime dir as the VMM saw it. */
int snapdir_seal(snapdir *d, svm_vm *vm, int vmstate_fd, const char *config_text,
		 const char *vmm_rundir, svm_error *err);

/* What a restore may use, once the seal holds. */
typedef struct snap_checked {
	int vmstate_fd;        /* a private copy of the checked bytes (memfd) */
	char *config;          /* config.json's checked text (malloc'd) */
	char rundir[PATH_MAX]; /* the runtime dir the snapshot's VMM had */
} snap_checked;
int snapdir_verify(snapdir *d, svm_vm *vm, snap_checked *out, svm_error *err);

#endif
