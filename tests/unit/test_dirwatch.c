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

/* The watches the daemon's inotify instance holds, from its fdinfo (the one
 * inotify descriptor of this process); -1 when it is not found. */
static int watches(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1;
	for (struct dirent *de; d && n < 0 && (de = readdir(d));) {
		char p[300], link[64] = "";
		snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(p, link, sizeof link - 1);
		if (len <= 0 || strncmp(link, "anon_inode:inotify", 18) != 0)
			continue;
		snprintf(p, sizeof p, "/proc/self/fdinfo/%s", de->d_name);
		FILE *f = fopen(p, "re");
		char line[512];
		n = 0;
		while (f && fgets(line, sizeof line, f))
			n += strncmp(line, "inotify wd:", 11) == 0;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
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
	CHECK_INT(watches(), 2, "one watch each");

	double took = sleep_through(d, &wa, a, "sock");
	CHECK(took < 5000, "a creation in the directory wakes its wait");

	/* counted while nobody sleeps: a sleep of no length takes it */
	touch(a, "early");
	uint64_t before = wa.seen;
	double t0 = now_ms();
	while (wa.seen == before && now_ms() - t0 < 5000) {
		dirwatch_sleep(d, &wa, 0);
		usleep(1000);
	}
	CHECK(wa.seen > before, "a creation while nobody sleeps is counted for the next sleep");

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
	CHECK_INT(watches(), 2, "shares its watch");
	dirwatch_end(d, &wa);
	CHECK_INT(watches(), 2, "which stays while a wait has it");
	took = sleep_through(d, &wa2, a, "sock2");
	CHECK(took < 5000, "the second wait still wakes after the first ended");
	dirwatch_end(d, &wa2);
	dirwatch_end(d, &wb);
	CHECK_INT(watches(), 0, "the last wait of a directory removes its watch");

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
	t0 = now_ms();
	dirwatch_sleep(d, &wc, 150);
	CHECK(now_ms() - t0 >= 140, "its removal is no creation: the sleep lasts its timeout");
	dirwatch_end(d, &wc);
	CHECK_INT(watches(), 0, "and the kernel's end of its watch leaves none");
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
