/*
 * fc-direct.c - the reference of the start benchmarks: a minimal direct client
 * that does by hand what a start through smartvmfs does, and nothing more.
 *
 * Per run it makes its runtime directory and the log and metrics FIFOs, spawns
 * the VMM with the same command line the daemon uses, waits for the API socket
 * as the daemon does (inotify until it appears, then connect; one that refuses
 * is tried again after 50 us, doubling up to 1 ms), sends the same requests over
 * one persistent libcurl connection (GET /version, PUT /boot-source, PUT
 * /machine-config, PUT /actions InstanceStart), then waits for the event: the
 * InstanceStart answer ("running") or the guest's line on the VMM's stdout
 * ("line"). The time from the mkdir of its directory to the event is one sample.
 * Then (not timed) the VMM is killed and its files removed.
 *
 *   fc-direct --vmm PATH --kernel PATH --dir DIR [--args BOOTARGS]
 *             [--wait running|line] [--runs N] [--parallel K]
 *
 * Prints one sample per line in ms, with the steps from just before the spawn to
 * the API's answer to GET /version and to InstanceStart's ("sample 3.214 2.6
 * 3.1"); with --parallel K, starts K VMMs at once (one thread each) and prints
 * "parallel K WALL_MS" per run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *vmm, *kernel, *basedir;
static const char *bootargs = "console=ttyS0 reboot=k panic=1 pci=off";
static bool wait_line;
static const char *LINE = "smartvm-guest: ready";

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

/* One request; returns the HTTP status, or -1. */
static long request(CURL *c, const char *method, const char *path, const char *body)
{
	char url[256];
	snprintf(url, sizeof url, "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	struct curl_slist *h = NULL;
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	CURLcode rc = curl_easy_perform(c);
	long status = -1;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, -1L);
	}
	return status;
}

static bool socket_answers(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		return false;
	memcpy(a.sun_path, path, strlen(path) + 1);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void drain(int fd)
{
	char buf[16384];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* The steps of the last single start, from just before the spawn (as the
 * daemon's log line of a start counts them): API ready, InstanceStart answered. */
static double last_ready_ms, last_running_ms;

/* One start; returns its time in ms, or -1. */
static double one_start(int idx)
{
	char dir[512], sock[600], logp[600], metp[600], id[32];
	snprintf(dir, sizeof dir, "%s/d%d", basedir, idx);
	snprintf(sock, sizeof sock, "%s/api.sock", dir);
	snprintf(logp, sizeof logp, "%s/log.fifo", dir);
	snprintf(metp, sizeof metp, "%s/metrics.fifo", dir);
	snprintf(id, sizeof id, "direct-%d", idx);
	double result = -1;

	/* the daemon makes the VM's runtime directory within the measured mkdir */
	double t0 = now_ms();
	mkdir(dir, 0700);
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	inotify_add_watch(ino, dir, IN_CREATE);
	unlink(sock);
	unlink(logp);
	unlink(metp);
	mkfifo(logp, 0600);
	mkfifo(metp, 0600);
	int logfd = open(logp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int metfd = open(metp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int in[2], out[2], er[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0)
		return -1;
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(er[0], F_SETFL, O_NONBLOCK);
	char *argv[] = {(char *)vmm, "--api-sock", sock, "--id", id, "--log-path", logp,
	                "--level", "Info", "--metrics-path", metp, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, er[1], 2);
	pid_t pid;
	double t_spawn = now_ms();
	if (posix_spawn(&pid, vmm, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	close(er[1]);

	/* the socket: inotify says it appeared; connect says it listens. The same
	 * wait as the daemon's (vm_proc_wait_ready): bound but refusing, again
	 * after 50 us, doubling up to 1 ms */
	useconds_t refused_pause_us = 0;
	while (!socket_answers(sock)) {
		if (access(sock, F_OK) == 0) {
			refused_pause_us = refused_pause_us ? refused_pause_us * 2 : 50;
			if (refused_pause_us > 1000)
				refused_pause_us = 1000;
			usleep(refused_pause_us);
		} else {
			struct pollfd p = {.fd = ino, .events = POLLIN};
			if (poll(&p, 1, 1) > 0) {
				char b[4096];
				while (read(ino, b, sizeof b) > 0)
					;
			}
		}
		if (now_ms() - t0 > 5000)
			goto end;
	}
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	char boot[1024];
	snprintf(boot, sizeof boot, "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel,
	         bootargs);
	long st = request(c, "GET", "/version", NULL);
	last_ready_ms = now_ms() - t_spawn;
	if (st == 200)
		st = request(c, "PUT", "/boot-source", boot);
	if (st == 204)
		st = request(c, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
	if (st == 204)
		st = request(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	if (st != 204) {
		fprintf(stderr, "fc-direct: request failed (%ld)\n", st);
		curl_easy_cleanup(c);
		goto end;
	}
	last_running_ms = now_ms() - t_spawn;
	if (!wait_line) {
		result = now_ms() - t0;
	} else {
		/* the guest's line on stdout, drained as the daemon does (log, metrics too) */
		char acc[8192];
		size_t len = 0;
		for (;;) {
			struct pollfd p[3] = {{.fd = out[0], .events = POLLIN},
			                      {.fd = logfd, .events = POLLIN},
			                      {.fd = metfd, .events = POLLIN}};
			if (poll(p, 3, 100) < 0 && errno != EINTR)
				break;
			if (p[1].revents)
				drain(logfd);
			if (p[2].revents)
				drain(metfd);
			if (p[0].revents) {
				ssize_t n = read(out[0], acc + len, sizeof acc - 1 - len);
				if (n <= 0 && !(n < 0 && errno == EAGAIN))
					break;
				if (n > 0) {
					len += (size_t)n;
					acc[len] = '\0';
					if (strstr(acc, LINE)) {
						result = now_ms() - t0;
						break;
					}
					if (len > sizeof acc / 2) {
						memmove(acc, acc + len - 64, 64);
						len = 64;
					}
				}
			}
			if (now_ms() - t0 > 10000)
				break;
		}
	}
	curl_easy_cleanup(c);
end:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ino);
	close(in[1]);
	close(out[0]);
	close(er[0]);
	close(logfd);
	close(metfd);
	unlink(sock);
	unlink(logp);
	unlink(metp);
	rmdir(dir);
	return result;
}

struct par {
	int idx;
	double ms;
	pthread_barrier_t *bar;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	pthread_barrier_wait(p->bar);
	p->ms = one_start(p->idx);
	return NULL;
}

int main(int argc, char **argv)
{
	int runs = 1, parallel = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--vmm") && v)
			vmm = argv[++i];
		else if (!strcmp(a, "--kernel") && v)
			kernel = argv[++i];
		else if (!strcmp(a, "--dir") && v)
			basedir = argv[++i];
		else if (!strcmp(a, "--args") && v)
			bootargs = argv[++i];
		else if (!strcmp(a, "--wait") && v)
			wait_line = !strcmp(argv[++i], "line");
		else if (!strcmp(a, "--runs") && v)
			runs = atoi(argv[++i]);
		else if (!strcmp(a, "--parallel") && v)
			parallel = atoi(argv[++i]);
		else {
			fprintf(stderr, "fc-direct: unknown argument %s\n", a);
			return 2;
		}
	}
	if (!vmm || !kernel || !basedir) {
		fprintf(stderr, "usage: fc-direct --vmm PATH --kernel PATH --dir DIR [--args A] "
		                "[--wait running|line] [--runs N] [--parallel K]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int failed = 0;
	for (int r = 0; r < runs; r++) {
		if (parallel <= 0) {
			double ms = one_start(0);
			if (ms < 0)
				failed++;
			else
				printf("sample %.4f %.4f %.4f\n", ms, last_ready_ms, last_running_ms);
			fflush(stdout);
			continue;
		}
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, (unsigned)parallel + 1);
		struct par *ps = calloc((size_t)parallel, sizeof *ps);
		pthread_t *th = calloc((size_t)parallel, sizeof *th);
		for (int i = 0; i < parallel; i++) {
			ps[i].idx = i;
			ps[i].bar = &bar;
			pthread_create(&th[i], NULL, par_main, &ps[i]);
		}
		double t0 = now_ms();
		pthread_barrier_wait(&bar);
		for (int i = 0; i < parallel; i++)
			pthread_join(th[i], NULL);
		double wall = now_ms() - t0;
		int ok = 0;
		for (int i = 0; i < parallel; i++)
			ok += ps[i].ms >= 0;
		failed += parallel - ok;
		printf("parallel %d %.4f\n", ok, wall);
		fflush(stdout);
		free(ps);
		free(th);
		pthread_barrier_destroy(&bar);
	}
	curl_global_cleanup();
	return failed ? 1 : 0;
}
