/*
 * base.h - the small utilities every layer of the core uses (base.c): the clocks,
 * growing an array, escaping control bytes. The VM-name rule and string vectors
 * are public (smartvm.h).
 */
#ifndef SVM_BASE_H
#define SVM_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

uint64_t svm_now_ns(void);      /* CLOCK_MONOTONIC */
int64_t svm_wall_ns(void);      /* CLOCK_REALTIME */
/* The time in_ns from now on clock, as a timed wait takes it (a condition's
 * clock: CLOCK_REALTIME by default, CLOCK_MONOTONIC when set so). */
struct timespec svm_time_after(clockid_t clock, uint64_t in_ns);
/* n bytes as 2n lowercase hex digits and a NUL in out (a digest's text: a
 * snprintf per byte cost a restore's three digests 100 calls of printf). */
void svm_hex(const unsigned char *in, size_t n, char *out);
/* The daemon's effective uid, asked of the kernel once: the daemon never changes
 * it (hostpath.c changes a thread's fsuid alone), and a snapshot's checks of
 * owners asked it a dozen times, each a system call. */
uid_t svm_euid(void);

/* Makes room for need elements of elem bytes in the array at *(T **)pv, whose
 * room is *cap elements: realloc to the larger of need and twice *cap (at least
 * 8). 0, or -1 (out of memory) with the array and *cap unchanged. The added
 * room is not zeroed. */
int svm_grow(void *pv, size_t *cap, size_t need, size_t elem);

/* A copy of text (malloc'd, NULL when out of memory) with every control byte as
 * \xHH: a line that shows a name or a command stays one line, and no escape
 * sequence reaches a terminal through `cat`. */
char *svm_escape(const char *text);
/* The same for n bytes that may hold a NUL (shown as \x00), with room more bytes
 * allocated after the text for the caller to append. */
char *svm_escape_bytes(const char *bytes, size_t n, size_t room);

#endif
