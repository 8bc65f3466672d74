/*
 * persist.h - VM definitions that outlast the mount (-o persist): each VM's name,
 * owner, config, metadata and autostart flag in DATADIR/vms/NAME.json (0600),
 * written at every change, removed with the VM; read back at the next mount.
 */
#ifndef SVM_PERSIST_H
#define SVM_PERSIST_H

#include "internal.h"

#define PERSIST_FORMAT 1 /* the "format" of a definition file */

/* Writes the VM's definition (0 at once without -o persist); -1 and err when it
 * cannot. Caller holds vm->mu. */
int persist_save_locked(svm_vm *vm, svm_error *err);
/* The same, but nothing is written when kept (the file as read) says it
 * already: a mount with 10,000 kept VMs fsyncs none of them again. */
int persist_save_unless_kept_locked(svm_vm *vm, const json_t *kept, svm_error *err);
/* Removes the definition of a VM that was removed (no-op without -o persist). */
void persist_remove(svm *s, const char *name);
/* While on, on the calling thread only, persist_save_locked writes nothing: a
 * kept definition read back at mount makes its VM through calls that each save
 * (create, config, metadata, owner), and is written once at the end. */
void persist_quiet(bool on);

#endif
