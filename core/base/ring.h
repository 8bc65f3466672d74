/*
 * ring.h - bounded byte rings with absolute offsets, and numbered line logs.
 *
 * A ring keeps the last `cap` bytes of a stream and counts every byte ever
 * appended, so readers address bytes by their absolute offset (console, logs).
 * Each has its own lock: producers (the event loop) and readers (fs) never
 * need the VM's lock to touch them.
 */
#ifndef SVM_RING_H
#define SVM_RING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct svm_ring {
	pthread_mutex_t mu;
	char *buf;      /* allocated on first append: idle VMs cost nothing */
	size_t alloc;   /* bytes of buf: grows with the contents up to cap */
	size_t cap;
	uint64_t total; /* bytes ever appended */
} svm_ring;

void ring_init(svm_ring *r, size_t cap);
void ring_destroy(svm_ring *r);
void ring_append(svm_ring *r, const char *data, size_t len);
/* Forget the contents, free the buffer and restart the offsets at 0 (a new boot). */
void ring_reset(svm_ring *r);
uint64_t ring_total(svm_ring *r);
/* Copies from max(off, oldest kept); returns bytes copied, 0 at the end. */
ssize_t ring_read(svm_ring *r, uint64_t off, char *dst, size_t len);
/* The same, and *from is the offset the copied bytes start at (> off when the
 * bytes at off were dropped). */
ssize_t ring_read_from(svm_ring *r, uint64_t off, char *dst, size_t len, uint64_t *from);
/* The kept bytes as a NUL-terminated string (malloc'd). */
char *ring_text(svm_ring *r);
/* Appends "YYYY-mm-ddTHH:MM:SSZ " + printf text + "\n". */
void ring_printf(svm_ring *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A log of numbered lines (events): keeps the last SVM_LINES_KEPT. */
#define SVM_LINES_KEPT 64
typedef struct svm_lines {
	char *line[SVM_LINES_KEPT];
	uint64_t seq; /* number of the newest line; 0: none yet */
} svm_lines;

/* Caller holds whatever lock protects the log. Returns the new line's number. */
uint64_t lines_add(svm_lines *l, const char *text);
/* See svm_vm_event_line(). */
char *lines_get(const svm_lines *l, uint64_t seq, uint64_t *got);
void lines_clear(svm_lines *l);

#endif
