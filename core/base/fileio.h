/*
 * fileio.h - writing a whole buffer, reading a small file whole and listing a
 * directory (fileio.c): the loops every layer of the core wrote for itself.
 */
#ifndef SVM_FILEIO_H
#define SVM_FILEIO_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes (at off, for the p variant), through short writes and
 * EINTR. 0, or -1 with errno (ENOSPC when the file takes no more bytes). */
int svm_write_all(int fd, const void *p, size_t n);
int svm_pwrite_all(int fd, const void *p, size_t n, off_t off);

/* All of fd from its position, up to max bytes: malloc'd, NUL-terminated, its
 * length in *len. NULL with errno (EFBIG: more than max). For a small JSON file
 * then parsed with json_loadb: jansson's json_loadfd reads a byte per read(2),
 * and json_load_file a byte per getc. */
char *svm_read_fd(int fd, size_t max, size_t *len);

/* Which entries of dir to list: those keep says yes to (NULL: all). */
typedef bool (*svm_dir_keep)(void *ud, const char *dir, const struct dirent *de);

/* The names in dir, without hidden ones (a leading '.'), as a NULL-terminated,
 * unsorted string vector (svm_strv_free); *count (if not NULL) gets how many.
 * A directory that cannot be opened lists empty. NULL only when out of memory. */
char **svm_dir_names(const char *dir, svm_dir_keep keep, void *ud, size_t *count);

#endif
