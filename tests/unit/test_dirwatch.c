/*
 * test_dirwatch.c - the daemon's one inotify instance: a wait wakes at the
 * creation in its own directory (not another's), at once for one made before
 * it slept, and after its timeout otherwise; two waits on one directory share
 * its watch; a wait opens no descriptor of its own (the reason it exists:
 * a per-wait instance, closed while a spawned child still held a copy, made
 * that child wait out an SRCU grace period).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dirwatch.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void touch(const char *dir, const char *name)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

struct later {
	const char *dir, *name;
	int ms;
};

static void *touch_later(void *arg)
{
	struct later *l = arg;
	usleep((useconds_t)l->ms * 1000);
	touch(l->dir, l->name);
	return NULL;
}

/* Sleeps once with a long timeout while a thread creates name in dir after
 * 30 ms; returns how long the sleep took. */
static double sleep_through(svm_dirwatch *d, dirwatch_wait *w, const char *dir, const char *name)
{
	struct later l = {dir, name, 30};
	pthread_t t;
	pthread_create(&t, NULL, touch_later, &l);
	double t0 = now_ms();
	dirwatch_sleep(d, w, 10000);
	double took = now_ms() - t0;
	pthread_join(t, NULL);
	return took;
}

int main(void)
{
	char a[] = "/tmp/svm-dirwatch-a-XXXXXX", b[] = "/tmp/svm-dirwatch-b-XXXXXX";
	if (!mkdtemp(a) || !mkdtemp(b)) {
		perror("mkdtemp");
		return 1;
	}
	svm_loop *l = loop_new();
	svm_dirwatch *d = dirwatch_new(l);
	CHECK(d != NULL, "an instance is made");

	int fds0 = open_fds();
	dirwatch_wait wa, wb;
	CHECK_INT(dirwatch_begin(d, a, &wa), 0, "a watch of a directory");
	CHECK_INT(dirwatch_begin(d, b, &wb), 0, "and of another");
	CHECK_INT(open_fds(), fds0, "a wait opens no descriptor of its own");

	double took = sleep_through(d, &wa, a, "sock");
	CHECK(took < 5000, "a creation in the directory wakes its wait");

	touch(a, "early");
	usleep(50 * 1000); /* the loop has counted it */
	double t0 = now_ms();
	dirwatch_sleep(d, &wa, 10000);
	CHECK(now_ms() - t0 < 5000, "a creation before the sleep: the sleep returns at once");

	t0 = now_ms();
	touch(b, "other");
	dirwatch_sleep(d, &wa, 150);
	CHECK(now_ms() - t0 >= 140, "a creation in another directory does not wake it");
	t0 = now_ms();
	dirwatch_sleep(d, &wb, 10000);
	CHECK(now_ms() - t0 < 5000, "it wakes the other directory's wait");

	/* two waits on one directory share its watch: ending one keeps the other's */
	dirwatch_wait wa2;
	CHECK_INT(dirwatch_begin(d, a, &wa2), 0, "a second wait on the same directory");
	dirwatch_end(d, &wa);
	took = sleep_through(d, &wa2, a, "sock2");
	CHECK(took < 5000, "the second wait still wakes after the first ended");
	dirwatch_end(d, &wa2);
	dirwatch_end(d, &wb);

	/* a directory that is not there: no watch, the sleep only sleeps */
	dirwatch_wait wn;
	CHECK(dirwatch_begin(d, "/nonexistent/svm-dirwatch", &wn) < 0, "no watch of a missing directory");
	t0 = now_ms();
	dirwatch_sleep(d, &wn, 30);
	CHECK(now_ms() - t0 >= 25, "then the sleep lasts its timeout");
	dirwatch_end(d, &wn);

	/* a watch outlives nothing: its directory removed under it */
	char c[] = "/tmp/svm-dirwatch-c-XXXXXX";
	dirwatch_wait wc;
	CHECK(mkdtemp(c) && dirwatch_begin(d, c, &wc) == 0, "a watch of a third directory");
	rmdir(c);
	dirwatch_sleep(d, &wc, 20);
	dirwatch_end(d, &wc);
	CHECK_INT(open_fds(), fds0, "every wait ended: still no descriptor of its own");

	loop_free(l);
	dirwatch_free(d);
	/* without an instance, waits only sleep */
	dirwatch_wait wz;
	CHECK(dirwatch_begin(NULL, a, &wz) < 0, "no instance: no watch");
	t0 = now_ms();
	dirwatch_sleep(NULL, &wz, 30);
	CHECK(now_ms() - t0 >= 25, "and the sleep lasts its timeout");
	dirwatch_end(NULL, &wz);

	char p[512];
	snprintf(p, sizeof p, "%s/sock", a), unlink(p);
	snprintf(p, sizeof p, "%s/early", a), unlink(p);
	snprintf(p, sizeof p, "%s/sock2", a), unlink(p);
	snprintf(p, sizeof p, "%s/other", b), unlink(p);
	rmdir(a);
	rmdir(b);
	return check_done();
}
