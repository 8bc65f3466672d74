/*
 * loop.h - the one event loop that drains every VMM (DESIGN §6: Firecracker does
 * not set its stdout non-blocking, so the daemon's end is drained at all times by
 * an epoll loop, not a thread per VM), and notices every VMM's death at once
 * through its pidfd.
 *
 * Watches are added from any thread. Callbacks run on the loop thread only, and a
 * watch is removed (loop_del) only from the loop thread, inside a callback; its
 * memory is reclaimed after the current batch, so a later event of the same batch
 * never touches freed memory.
 */
#ifndef SVM_LOOP_H
#define SVM_LOOP_H

#include <stdint.h>

typedef struct svm_loop svm_loop;
typedef struct svm_watch svm_watch;
/* events: EPOLLIN/EPOLLHUP/... as epoll reported them */
typedef void (*loop_fn)(svm_watch *w, void *ud, uint32_t events);

svm_loop *loop_new(void);
/* Stops the thread; remaining watches are freed, their fds left to the caller. */
void loop_free(svm_loop *l);
svm_watch *loop_add(svm_loop *l, int fd, uint32_t events, loop_fn fn, void *ud);
/* Loop thread only. Stops watching; does not close fd. */
void loop_del(svm_loop *l, svm_watch *w);
int loop_fd(const svm_watch *w);
/* Runs fn(ud) on the loop thread soon (used to hand work to the loop). */
int loop_call(svm_loop *l, void (*fn)(void *), void *ud);
/* Says that much memory was just allocated and freed (a start, a kill): once no
 * such note has come for LOOP_TRIM_QUIET_MS, the loop thread gives the free
 * pages of every malloc arena back to the system (malloc_trim). A burst of 200
 * starts on many threads leaves megabytes free but dirty in the arenas. */
void loop_note_churn(svm_loop *l);
#define LOOP_TRIM_QUIET_MS 200

#endif
