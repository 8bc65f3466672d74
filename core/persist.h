/*
 * persist.h - VM definitions that outlast the mount (-o persist): each VM's name,
 * owner, config, metadata and autostart flag in DATADIR/vms/NAME.json (0600),
 * written at every change, removed with the VM; read back at the next mount.
 */
#ifndef SVM_PERSIST_H
#define SVM_PERSIST_H

#include "internal.h"

#define PERSIST_FORMAT 1 /* the "format" of a definition file */

/* Writes the VM's definition (no-op without -o persist). Caller holds vm->mu. */
void persist_save_locked(svm_vm *vm);
/* Removes the definition of a VM that was removed (no-op without -o persist). */
void persist_remove(svm *s, const char *name);

#endif
