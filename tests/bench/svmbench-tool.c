/*
 * svmbench-tool.c - the timing loops of the benchmarks that must not pay for an
 * interpreter: reading a small file (open, read, close) and many writers at once.
 *
 *   svmbench-tool readloop ROUNDS ITERS PATH...
 *       For each round, for each PATH in turn (interleaved): ITERS times open,
 *       read until EOF, close. Prints per PATH a line
 *       "PATH median_ns min_ns max_ns p10_ns p90_ns count" over all iterations,
 *       and "PATH rounds M1 M2 ..." with the median of each round.
 *   svmbench-tool parwrite TEXT PATH...
 *       One thread per PATH; all start at once (barrier), each opens PATH for
 *       writing, writes TEXT and a newline, closes. Prints "ok N wall_ms W" and
 *       one "lat MS" per writer (its own open..close). Exit 1 if any failed.
 *   svmbench-tool exitwait read|poll EVENTS PID
 *       Waits on EVENTS as a program does (read: opened read-write, the first
 *       read at once, the second waits; poll: opened read-only, read to its end,
 *       then poll()) while another thread waits on a pidfd of PID, then kills
 *       PID. Prints "exit OURS_US PIDFD_US": when each woke, from the kill; the
 *       pidfd's wake is the kernel telling that the process ended.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i];
}

static int readloop(int rounds, int iters, int npaths, char **paths)
{
	size_t per = (size_t)rounds * (size_t)iters;
	uint64_t **all = calloc((size_t)npaths, sizeof *all);
	uint64_t **rmed = calloc((size_t)npaths, sizeof *rmed);
	uint64_t *tmp = calloc((size_t)iters, sizeof *tmp);
	for (int p = 0; p < npaths; p++) {
		all[p] = calloc(per, sizeof **all);
		rmed[p] = calloc((size_t)rounds, sizeof **rmed);
	}
	char buf[4096];
	for (int r = 0; r < rounds; r++) {
		for (int p = 0; p < npaths; p++) {
			for (int i = 0; i < iters; i++) {
				uint64_t t0 = now_ns();
				int fd = open(paths[p], O_RDONLY | O_CLOEXEC);
				if (fd < 0) {
					fprintf(stderr, "open %s: %s\n", paths[p], strerror(errno));
					return 1;
				}
				ssize_t n;
				while ((n = read(fd, buf, sizeof buf)) > 0)
					;
				close(fd);
				uint64_t dt = now_ns() - t0;
				if (n < 0) {
					fprintf(stderr, "read %s: %s\n", paths[p], strerror(errno));
					return 1;
				}
				all[p][(size_t)r * (size_t)iters + (size_t)i] = dt;
				tmp[i] = dt;
			}
			qsort(tmp, (size_t)iters, sizeof *tmp, cmp_u64);
			rmed[p][r] = pct(tmp, (size_t)iters, 0.5);
		}
	}
	for (int p = 0; p < npaths; p++) {
		qsort(all[p], per, sizeof **all, cmp_u64);
		printf("%s %llu %llu %llu %llu %llu %zu\n", paths[p],
		       (unsigned long long)pct(all[p], per, 0.5), (unsigned long long)all[p][0],
		       (unsigned long long)all[p][per - 1], (unsigned long long)pct(all[p], per, 0.1),
		       (unsigned long long)pct(all[p], per, 0.9), per);
		printf("%s rounds", paths[p]);
		for (int r = 0; r < rounds; r++)
			printf(" %llu", (unsigned long long)rmed[p][r]);
		printf("\n");
		free(all[p]);
		free(rmed[p]);
	}
	free(all);
	free(rmed);
	free(tmp);
	return 0;
}

struct writer {
	const char *path, *text;
	pthread_barrier_t *bar;
	double ms;
	int err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	pthread_barrier_wait(w->bar);
	uint64_t t0 = now_ns();
	int fd = open(w->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		w->err = errno;
		return NULL;
	}
	size_t len = strlen(w->text);
	char *line = malloc(len + 2);
	memcpy(line, w->text, len);
	line[len] = '\n';
	ssize_t n = write(fd, line, len + 1);
	if (n != (ssize_t)(len + 1))
		w->err = n < 0 ? errno : EIO;
	if (close(fd) < 0 && !w->err)
		w->err = errno;
	free(line);
	w->ms = (double)(now_ns() - t0) / 1e6;
	return NULL;
}

static int parwrite(const char *text, int n, char **paths)
{
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	struct writer *ws = calloc((size_t)n, sizeof *ws);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < n; i++) {
		ws[i] = (struct writer){.path = paths[i], .text = text, .bar = &bar};
		if (pthread_create(&th[i], &attr, writer_main, &ws[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	uint64_t t0 = now_ns();
	pthread_barrier_wait(&bar);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	double wall = (double)(now_ns() - t0) / 1e6;
	int ok = 0;
	for (int i = 0; i < n; i++) {
		if (ws[i].err)
			fprintf(stderr, "%s: %s\n", ws[i].path, strerror(ws[i].err));
		else
			ok++;
	}
	printf("ok %d wall_ms %.4f\n", ok, wall);
	for (int i = 0; i < n; i++)
		if (!ws[i].err)
			printf("lat %.4f\n", ws[i].ms);
	free(ws);
	free(th);
	return ok == n ? 0 : 1;
}

struct exitwait {
	int fd, pidfd;
	bool by_poll;
	uint64_t t_ours, t_pidfd;
};

static void *events_waiter(void *arg)
{
	struct exitwait *e = arg;
	char buf[4096];
	if (e->by_poll) {
		struct pollfd p = {.fd = e->fd, .events = POLLIN};
		if (poll(&p, 1, 5000) == 1)
			e->t_ours = now_ns();
	} else if (read(e->fd, buf, sizeof buf) > 0) {
		e->t_ours = now_ns();
	}
	return NULL;
}

static void *pidfd_waiter(void *arg)
{
	struct exitwait *e = arg;
	struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
	if (poll(&p, 1, 5000) == 1)
		e->t_pidfd = now_ns();
	return NULL;
}

static int exitwait(const char *mode, const char *events, pid_t pid)
{
	struct exitwait e = {.by_poll = !strcmp(mode, "poll")};
	e.fd = open(events, (e.by_poll ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	e.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (e.fd < 0 || e.pidfd < 0) {
		fprintf(stderr, "exitwait: %s\n", strerror(errno));
		return 1;
	}
	/* what is there now: the history (read-only) or the state (read-write) */
	char buf[65536];
	ssize_t n;
	while ((n = read(e.fd, buf, sizeof buf)) > 0 && e.by_poll)
		;
	pthread_t a, b;
	pthread_create(&a, NULL, events_waiter, &e);
	pthread_create(&b, NULL, pidfd_waiter, &e);
	usleep(50000); /* both are waiting */
	uint64_t t0 = now_ns();
	kill(pid, SIGKILL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	close(e.fd);
	close(e.pidfd);
	if (!e.t_ours || !e.t_pidfd) {
		fprintf(stderr, "exitwait: no wake (ours %d, pidfd %d)\n", !!e.t_ours, !!e.t_pidfd);
		return 1;
	}
	printf("exit %.3f %.3f\n", (double)(e.t_ours - t0) / 1e3, (double)(e.t_pidfd - t0) / 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "exitwait"))
		return exitwait(argv[2], argv[3], (pid_t)atoi(argv[4]));
	if (argc >= 5 && !strcmp(argv[1], "readloop"))
		return readloop(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	if (argc >= 4 && !strcmp(argv[1], "parwrite"))
		return parwrite(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: svmbench-tool readloop ROUNDS ITERS PATH... | "
	                "parwrite TEXT PATH... | exitwait read|poll EVENTS PID\n");
	return 2;
}
