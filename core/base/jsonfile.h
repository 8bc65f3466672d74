/*
 * jsonfile.h - a small JSON file read whole, then parsed (jsonfile.c). jansson's
 * own file readers read a byte per system call (json_loadfd: read(2)) or per
 * getc (json_load_file); a mount restoring 10,000 kept VMs spent most of its
 * time there.
 */
#ifndef SVM_JSONFILE_H
#define SVM_JSONFILE_H

#include <jansson.h>
#include <stddef.h>

/* The document in fd (read from its position, at most max bytes), parsed with
 * flags as json_loadb takes them; NULL when it cannot be read (je->text says
 * why, if je) or parsed. fd stays open. */
json_t *svm_json_load_fd(int fd, size_t max, size_t flags, json_error_t *je);
/* The same for the file at path (opened read-only; je->text says why it could
 * not be). */
json_t *svm_json_load_path(const char *path, size_t max, size_t flags, json_error_t *je);

#endif
