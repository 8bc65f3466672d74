/* safedir.h - the daemon's own directories, created safely (internal to core). */
#ifndef SVM_SAFEDIR_H
#define SVM_SAFEDIR_H

#include <stdbool.h>
#include "smartvm.h"

/* Creates path (and its parents, 0755) unless it exists; then requires every
 * component on the way to be a directory owned by us or root (and sticky, if
 * others may write to it) or a symlink of ours or root's to one, and path itself
 * a real directory (not a symlink) owned by us, made 0700. PERMISSION with the
 * offending path otherwise. */
int safedir_make(const char *path, svm_error *err);

#endif
