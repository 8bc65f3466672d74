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
 * Other waits: "api" is the machine's floor of a start, the VMM spawned and
 * answering GET / and nothing else; "restore" loads a snapshot into the fresh
 * VMM (PUT /snapshot/load, resumed) instead of configuring it, the snapshot made
 * once beforehand from a booted VMM; "ops" boots one VMM (not timed), then times
 * the bare requests of pause, resume and a full snapshot of the paused VM over
 * its persistent connection ("op pause 0.12"); "hold" boots one VMM the same way,
 * prints "hold SOCKET" and keeps it running (its log, metrics and stdio drained
 * as the daemon drains them) until its stdin ends: the VMM another client (the
 * FUSE floor of figure 11, minfuse -o api) sends its requests to.
 *
 * --floor K is the machine's floor of a burst of K starts: from one thread, K
 * VMMs spawned at once with nothing but their API socket (stdio on /dev/null),
 * each asked GET / as soon as its socket appears (one inotify instance, plain
 * non-blocking sockets), until all answered: "parallel K WALL_MS". No libcurl,
 * no FIFOs, no thread per VMM: the least a burst can cost here. With --wait
 * restore the one request is the snapshot load instead (K clones at once); with
 * --wait running, the requests of a start follow on each connection, one after
 * the other (boot source, machine, InstanceStart): the least a burst of starts
 * can cost, with the work of a start and nothing around it.
 *
 *   fc-direct --vmm PATH --kernel PATH --dir DIR [--args BOOTARGS]
 *             [--wait running|line|api|restore|ops|hold] [--runs N] [--parallel K]
 *   fc-direct --vmm PATH --kernel PATH --dir DIR --floor K [--runs N]
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
enum wait { W_RUNNING, W_LINE, W_API, W_RESTORE, W_OPS, W_HOLD };
static enum wait wait_for;
static const char *LINE = "smartvm-guest: ready";
/* the snapshot every "restore" run loads (made once, before the runs) */
static char snap_state[600], snap_mem[600];

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

/* One VMM of a run: its files, its descriptors, its connection. */
struct vmm {
	char dir[512], sock[600], logp[600], metp[600], id[32];
	pid_t pid;
	int ino, in, out, er, logfd, metfd;
	CURL *c;
	double t0, t_spawn;
};

/* From the mkdir of its directory (the daemon makes the VM's runtime directory
 * within the measured mkdir) to the spawn. */
static int vmm_spawn(struct vmm *v, int idx)
{
	*v = (struct vmm){.pid = -1, .ino = -1, .in = -1, .out = -1, .er = -1, .logfd = -1,
	                  .metfd = -1};
	snprintf(v->dir, sizeof v->dir, "%s/d%d", basedir, idx);
	snprintf(v->sock, sizeof v->sock, "%s/api.sock", v->dir);
	snprintf(v->logp, sizeof v->logp, "%s/log.fifo", v->dir);
	snprintf(v->metp, sizeof v->metp, "%s/metrics.fifo", v->dir);
	snprintf(v->id, sizeof v->id, "direct-%d", idx);
	v->t0 = now_ms();
	mkdir(v->dir, 0700);
	v->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	inotify_add_watch(v->ino, v->dir, IN_CREATE);
	unlink(v->sock);
	unlink(v->logp);
	unlink(v->metp);
	mkfifo(v->logp, 0600);
	mkfifo(v->metp, 0600);
	v->logfd = open(v->logp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	v->metfd = open(v->metp, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int in[2], out[2], er[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0)
		return -1;
	v->in = in[1], v->out = out[0], v->er = er[0];
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(er[0], F_SETFL, O_NONBLOCK);
	char *argv[] = {(char *)vmm, "--api-sock", v->sock, "--id", v->id, "--log-path", v->logp,
	                "--level", "Info", "--metrics-path", v->metp, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, er[1], 2);
	v->t_spawn = now_ms();
	int rc = posix_spawn(&v->pid, vmm, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	close(er[1]);
	if (rc != 0)
		v->pid = -1;
	return rc == 0 ? 0 : -1;
}

/* The socket: inotify says it appeared; connect says it listens. The same wait
 * as the daemon's (vm_proc_wait_ready): bound but refusing, again after 50 us,
 * doubling up to 1 ms. Then one libcurl connection. */
static int vmm_connect(struct vmm *v)
{
	useconds_t refused_pause_us = 0;
	while (!socket_answers(v->sock)) {
		if (access(v->sock, F_OK) == 0) {
			refused_pause_us = refused_pause_us ? refused_pause_us * 2 : 50;
			if (refused_pause_us > 1000)
				refused_pause_us = 1000;
			usleep(refused_pause_us);
		} else {
			struct pollfd p = {.fd = v->ino, .events = POLLIN};
			if (poll(&p, 1, 1) > 0) {
				char b[4096];
				while (read(v->ino, b, sizeof b) > 0)
					;
			}
		}
		if (now_ms() - v->t0 > 5000)
			return -1;
	}
	v->c = curl_easy_init();
	curl_easy_setopt(v->c, CURLOPT_UNIX_SOCKET_PATH, v->sock);
	curl_easy_setopt(v->c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(v->c, CURLOPT_TIMEOUT_MS, 5000L);
	return 0;
}

/* Not timed: the VMM killed, its files removed. */
static void vmm_end(struct vmm *v)
{
	if (v->c)
		curl_easy_cleanup(v->c);
	if (v->pid > 0) {
		kill(v->pid, SIGKILL);
		waitpid(v->pid, NULL, 0);
	}
	int fds[] = {v->ino, v->in, v->out, v->er, v->logfd, v->metfd};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	unlink(v->sock);
	unlink(v->logp);
	unlink(v->metp);
	rmdir(v->dir);
}

/* The configuration requests of a fresh boot, then InstanceStart. */
static long vmm_boot(struct vmm *v)
{
	char boot[1024];
	snprintf(boot, sizeof boot, "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel,
	         bootargs);
	long st = request(v->c, "PUT", "/boot-source", boot);
	if (st == 204)
		st = request(v->c, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
	if (st == 204)
		st = request(v->c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	return st;
}

static long vmm_load(struct vmm *v)
{
	char body[1400];
	snprintf(body, sizeof body,
	         "{\"snapshot_path\":\"%s\",\"mem_backend\":{\"backend_type\":\"File\","
	         "\"backend_path\":\"%s\"},\"resume_vm\":true}",
	         snap_state, snap_mem);
	return request(v->c, "PUT", "/snapshot/load", body);
}

/* The guest's line on stdout, drained as the daemon does (log, metrics too). */
static bool wait_guest_line(struct vmm *v)
{
	char acc[8192];
	size_t len = 0;
	while (now_ms() - v->t0 <= 10000) {
		struct pollfd p[3] = {{.fd = v->out, .events = POLLIN},
		                      {.fd = v->logfd, .events = POLLIN},
		                      {.fd = v->metfd, .events = POLLIN}};
		if (poll(p, 3, 100) < 0 && errno != EINTR)
			return false;
		if (p[1].revents)
			drain(v->logfd);
		if (p[2].revents)
			drain(v->metfd);
		if (!p[0].revents)
			continue;
		ssize_t n = read(v->out, acc + len, sizeof acc - 1 - len);
		if (n <= 0 && !(n < 0 && errno == EAGAIN))
			return false;
		if (n <= 0)
			continue;
		len += (size_t)n;
		acc[len] = '\0';
		if (strstr(acc, LINE))
			return true;
		if (len > sizeof acc / 2) {
			memmove(acc, acc + len - 64, 64);
			len = 64;
		}
	}
	return false;
}

/* One start (or load, or the floor); returns its time in ms, or -1. */
static double one_start(int idx)
{
	struct vmm v;
	double result = -1;
	if (vmm_spawn(&v, idx) < 0 || vmm_connect(&v) < 0)
		goto end;
	long st = request(v.c, "GET", wait_for == W_API ? "/" : "/version", NULL);
	last_ready_ms = now_ms() - v.t_spawn;
	if (st == 200 && wait_for == W_API) {
		result = now_ms() - v.t0;
		goto end;
	}
	if (st == 200)
		st = wait_for == W_RESTORE ? vmm_load(&v) : vmm_boot(&v);
	if (st != 204) {
		fprintf(stderr, "fc-direct: request failed (%ld)\n", st);
		goto end;
	}
	last_running_ms = now_ms() - v.t_spawn;
	if (wait_for != W_LINE || wait_guest_line(&v))
		result = now_ms() - v.t0;
end:
	vmm_end(&v);
	return result;
}

static const char *PAUSE = "{\"state\":\"Paused\"}", *RESUME = "{\"state\":\"Resumed\"}";

static long snapshot_create(struct vmm *v, const char *state, const char *mem)
{
	char body[1400];
	snprintf(body, sizeof body,
	         "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}",
	         state, mem);
	return request(v->c, "PUT", "/snapshot/create", body);
}

/* The snapshot the restore runs load: a booted VMM, paused, snapshotted. */
static int make_snapshot(void)
{
	struct vmm v;
	snprintf(snap_state, sizeof snap_state, "%s/snap.vmstate", basedir);
	snprintf(snap_mem, sizeof snap_mem, "%s/snap.mem", basedir);
	int rc = -1;
	if (vmm_spawn(&v, 999999) == 0 && vmm_connect(&v) == 0 &&
	    request(v.c, "GET", "/version", NULL) == 200 && vmm_boot(&v) == 204 &&
	    request(v.c, "PATCH", "/vm", PAUSE) == 204 && snapshot_create(&v, snap_state, snap_mem) == 204)
		rc = 0;
	vmm_end(&v);
	if (rc < 0)
		fprintf(stderr, "fc-direct: could not make the snapshot to restore\n");
	return rc;
}

/* The bare requests of pause, resume and a snapshot, timed one by one over the
 * VMM's persistent connection. */
static int ops(int runs)
{
	struct vmm v;
	char state[600], mem[600];
	snprintf(state, sizeof state, "%s/ops.vmstate", basedir);
	snprintf(mem, sizeof mem, "%s/ops.mem", basedir);
	int failed = 0;
	if (vmm_spawn(&v, 0) < 0 || vmm_connect(&v) < 0 ||
	    request(v.c, "GET", "/version", NULL) != 200 || vmm_boot(&v) != 204) {
		vmm_end(&v);
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		double t0 = now_ms();
		failed += request(v.c, "PATCH", "/vm", PAUSE) != 204;
		double t1 = now_ms();
		failed += snapshot_create(&v, state, mem) != 204;
		double t2 = now_ms();
		failed += request(v.c, "PATCH", "/vm", RESUME) != 204;
		double t3 = now_ms();
		printf("op pause %.4f\nop snapshot %.4f\nop resume %.4f\n", t1 - t0, t2 - t1, t3 - t2);
		fflush(stdout);
	}
	vmm_end(&v);
	unlink(state);
	unlink(mem);
	return failed ? 1 : 0;
}

/* A booted VMM for another client, until stdin ends. */
static int hold(void)
{
	struct vmm v;
	if (vmm_spawn(&v, 0) < 0 || vmm_connect(&v) < 0 ||
	    request(v.c, "GET", "/version", NULL) != 200 || vmm_boot(&v) != 204) {
		vmm_end(&v);
		return 1;
	}
	printf("hold %s\n", v.sock);
	fflush(stdout);
	/* stdin, then what the VMM writes; a pipe whose writer closed is dropped */
	struct pollfd p[5] = {{.fd = 0}, {.fd = v.logfd}, {.fd = v.metfd}, {.fd = v.out}, {.fd = v.er}};
	for (int i = 0; i < 5; i++)
		p[i].events = POLLIN;
	for (;;) {
		if (poll(p, 5, -1) < 0 && errno != EINTR)
			break;
		char b[512];
		if (p[0].revents && read(0, b, sizeof b) <= 0)
			break;
		for (int i = 1; i < 5; i++) {
			if (p[i].revents & POLLIN)
				drain(p[i].fd);
			else if (p[i].revents)
				p[i].fd = -1;
		}
	}
	vmm_end(&v);
	return 0;
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

/* K starts at once, one thread each; returns how many failed. */
static int parallel_run(int parallel)
{
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
	printf("parallel %d %.4f\n", ok, wall);
	fflush(stdout);
	free(ps);
	free(th);
	pthread_barrier_destroy(&bar);
	return parallel - ok;
}


/* ------------------------------------------------------------ the floor */

/* The requests of each VMM of the floor, in order, each answered by floor_ok
 * before the next is sent: GET / alone; with --wait running, the requests of a
 * start (boot source, machine, InstanceStart); with --wait restore, the load. */
#define FLOOR_MAX_REQS 3
static char floor_reqs[FLOOR_MAX_REQS][2048];
static int floor_nreqs = 1;
static const char *floor_ok = "HTTP/1.1 200";

static void floor_put(int i, const char *method, const char *path, const char *body)
{
	snprintf(floor_reqs[i], sizeof floor_reqs[i],
	         "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         method, path, strlen(body), body);
}

static void floor_request_init(void)
{
	char body[1400];
	if (wait_for == W_RESTORE) {
		snprintf(body, sizeof body,
		         "{\"snapshot_path\":\"%s\",\"mem_backend\":{\"backend_type\":\"File\","
		         "\"backend_path\":\"%s\"},\"resume_vm\":true}",
		         snap_state, snap_mem);
		floor_put(0, "PUT", "/snapshot/load", body);
		floor_ok = "HTTP/1.1 204";
	} else if (wait_for == W_RUNNING) { /* --wait api: GET / alone */
		snprintf(body, sizeof body, "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}",
		         kernel, bootargs);
		floor_put(0, "PUT", "/boot-source", body);
		floor_put(1, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
		floor_put(2, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
		floor_nreqs = 3;
		floor_ok = "HTTP/1.1 204";
	} else {
		snprintf(floor_reqs[0], sizeof floor_reqs[0],
		         "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
	}
}

struct fl {
	pid_t pid;
	int fd;       /* the API connection, -1 before it */
	int next;     /* the request to send next (floor_reqs) */
	bool done, appeared;
	char sock[600];
};

/* The next request of f on its connection; false if it could not be sent. */
static bool floor_send(struct fl *f)
{
	size_t len = strlen(floor_reqs[f->next]);
	return write(f->fd, floor_reqs[f->next++], len) == (ssize_t)len;
}

/* A connect to a VMM whose socket appeared: 0 connected and asked, 1 not yet
 * (bound, not listening), -1 failed. */
static int floor_ask(struct fl *f)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, f->sock, strlen(f->sock) + 1);
	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(f->fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(f->fd);
		f->fd = -1;
		return errno == ECONNREFUSED || errno == ENOENT || errno == EAGAIN ? 1 : -1;
	}
	return floor_send(f) ? 0 : -1;
}

/* Sockets that appeared (inotify), asked as soon as they listen. */
static void floor_inotify(int ino, const int *wds, struct fl *fs, int k)
{
	char b[8192] __attribute__((aligned(8)));
	ssize_t n;
	while ((n = read(ino, b, sizeof b)) > 0)
		for (char *p = b; p < b + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			for (int i = 0; i < k; i++)
				if (wds[i] == e->wd && !strcmp(e->name, "api.sock"))
					fs[i].appeared = true;
			p += sizeof *e + e->len;
		}
}

/* One burst; returns its wall time in ms, or -1. */
static double floor_burst(int k)
{
	struct fl *fs = calloc((size_t)k, sizeof *fs);
	int *wds = calloc((size_t)k, sizeof *wds);
	struct pollfd *ps = calloc((size_t)k + 1, sizeof *ps);
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), devnull = open("/dev/null", O_RDWR);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_adddup2(&fa, devnull, fd);
	double t0 = now_ms();
	for (int i = 0; i < k; i++) {
		char dir[512], id[32];
		snprintf(dir, sizeof dir, "%s/f%d", basedir, i);
		snprintf(fs[i].sock, sizeof fs[i].sock, "%s/api.sock", dir);
		snprintf(id, sizeof id, "floor-%d", i);
		mkdir(dir, 0700);
		wds[i] = inotify_add_watch(ino, dir, IN_CREATE);
		fs[i].fd = -1;
		char *argv[] = {(char *)vmm, "--api-sock", fs[i].sock, "--id", id, NULL};
		if (posix_spawn(&fs[i].pid, vmm, &fa, NULL, argv, environ) != 0)
			fs[i].pid = -1;
	}
	int done = 0, failed = 0;
	while (done + failed < k && now_ms() - t0 < 30000) {
		int np = 0, waiting = 0;
		ps[np++] = (struct pollfd){.fd = ino, .events = POLLIN};
		for (int i = 0; i < k; i++) {
			if (fs[i].done || fs[i].pid < 0)
				continue;
			if (fs[i].appeared && fs[i].fd < 0) {
				int r = floor_ask(&fs[i]);
				waiting += r == 1;
				if (r < 0) {
					fs[i].done = true;
					failed++;
					continue;
				}
			}
			if (fs[i].fd >= 0)
				ps[np++] = (struct pollfd){.fd = fs[i].fd, .events = POLLIN};
		}
		poll(ps, (nfds_t)np, waiting ? 0 : 10);
		if (waiting)
			usleep(50); /* bound but not listening yet: as the daemon's wait */
		floor_inotify(ino, wds, fs, k);
		for (int j = 1; j < np; j++) {
			if (!ps[j].revents)
				continue;
			for (int i = 0; i < k; i++)
				if (fs[i].fd == ps[j].fd && !fs[i].done) {
					/* an answer is one read: a short head, no body */
					char r[512];
					ssize_t n = read(fs[i].fd, r, sizeof r - 1);
					bool ok = n > 12 && !strncmp(r, floor_ok, 12);
					if (ok && fs[i].next < floor_nreqs && floor_send(&fs[i]))
						break; /* the next request of this start */
					fs[i].done = true;
					ok && fs[i].next == floor_nreqs ? done++ : failed++;
				}
		}
	}
	double wall = now_ms() - t0;
	for (int i = 0; i < k; i++) {
		if (fs[i].pid > 0) {
			kill(fs[i].pid, SIGKILL);
			waitpid(fs[i].pid, NULL, 0);
		}
		if (fs[i].fd >= 0)
			close(fs[i].fd);
		unlink(fs[i].sock);
		*strrchr(fs[i].sock, '/') = '\0';
		rmdir(fs[i].sock);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(ino);
	close(devnull);
	free(fs);
	free(wds);
	free(ps);
	printf("parallel %d %.4f\n", done, wall);
	fflush(stdout);
	return done == k ? wall : -1;
}

static enum wait parse_wait(const char *w)
{
	static const char *names[] = {"running", "line", "api", "restore", "ops", "hold"};
	for (int i = 0; i < 6; i++)
		if (!strcmp(w, names[i]))
			return (enum wait)i;
	fprintf(stderr, "fc-direct: unknown --wait %s\n", w);
	exit(2);
}

int main(int argc, char **argv)
{
	int runs = 1, parallel = 0, floor_k = 0;
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
			wait_for = parse_wait(argv[++i]);
		else if (!strcmp(a, "--runs") && v)
			runs = atoi(argv[++i]);
		else if (!strcmp(a, "--parallel") && v)
			parallel = atoi(argv[++i]);
		else if (!strcmp(a, "--floor") && v)
			floor_k = atoi(argv[++i]);
		else {
			fprintf(stderr, "fc-direct: unknown argument %s\n", a);
			return 2;
		}
	}
	if (!vmm || !kernel || !basedir) {
		fprintf(stderr, "usage: fc-direct --vmm PATH --kernel PATH --dir DIR [--args A] "
		                "[--wait running|line|api|restore|ops|hold] [--runs N] [--parallel K]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int failed = 0;
	if (floor_k > 0) {
		if (wait_for == W_RESTORE && make_snapshot() < 0)
			return 1;
		floor_request_init();
		for (int r = 0; r < runs; r++)
			failed += floor_burst(floor_k) < 0;
		if (wait_for == W_RESTORE) {
			unlink(snap_state);
			unlink(snap_mem);
		}
		return failed ? 1 : 0;
	}
	if (wait_for == W_HOLD)
		return hold();
	if (wait_for == W_OPS)
		failed = ops(runs);
	else if (wait_for == W_RESTORE && make_snapshot() < 0)
		failed = 1;
	for (int r = 0; r < runs && wait_for != W_OPS && !(wait_for == W_RESTORE && failed); r++) {
		if (parallel > 0) {
			failed += parallel_run(parallel);
			continue;
		}
		double ms = one_start(0);
		if (ms < 0)
			failed++;
		else
			printf("sample %.4f %.4f %.4f\n", ms, last_ready_ms, last_running_ms);
		fflush(stdout);
	}
	if (wait_for == W_RESTORE) {
		unlink(snap_state);
		unlink(snap_mem);
	}
	curl_global_cleanup();
	return failed ? 1 : 0;
}
