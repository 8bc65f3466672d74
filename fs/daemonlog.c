/*
 * daemonlog.c - the daemon's log on stderr, in syslog or the journal, with
 * levels; VM stop lines with their timings; the sd_notify protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemonlog.h"
#include "serve/serve.h"

/* ------------------------------------------------------------ fd 2 routing */

static struct {
	bool routed;
	bool journal;   /* "<N>line" to journal_fd, else syslog(3) */
	int journal_fd; /* the journal stream that was fd 2 */
	int read_fd;
	pthread_t thread;
	volatile bool done;
} route = {.journal_fd = -1, .read_fd = -1};

int fs_log_level(const char *l)
{
	if (!strncmp(l, "smartvmfs: ", 11))
		l += 11;
	/* "vm web: …", "net: …", "images: …": the level is in what follows */
	const char *after = l;
	const char *colon = strstr(l, ": ");
	if (colon && (!strncmp(l, "vm ", 3) || !strncmp(l, "net:", 4) || !strncmp(l, "images:", 7)))
		after = colon + 2;
	if (!strncasecmp(after, "warning", 7) || !strncasecmp(l, "warning", 7))
		return LOG_WARNING;
	if (!strncasecmp(after, "error", 5) || !strncasecmp(after, "fatal", 5) ||
	    !strncmp(l, "fuse: ", 6) || strstr(after, "cannot ") || strstr(after, "could not ") ||
	    strstr(after, "failed") || strstr(after, "ended unexpectedly") ||
	    strstr(after, "(ENOTCONN)"))
		return LOG_ERR;
	if (strstr(l, " mounted on ") || !strncmp(l, "unmounted ", 10) ||
	    !strncmp(l, "stopped every VM", 16))
		return LOG_NOTICE;
	return LOG_INFO;
}

static void sink(char *line)
{
	int level = fs_log_level(line);
	const char *text = !strncmp(line, "smartvmfs: ", 11) ? line + 11 : line;
	if (route.journal) {
		/* sd-daemon(3): a "<N>" prefix is the line's priority in the journal */
		char buf[4200];
		int n = snprintf(buf, sizeof buf, "<%d>%s\n", level, text);
		if (n > 0) {
			size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
			ssize_t w;
			do
				w = write(route.journal_fd, buf, len);
			while (w < 0 && errno == EINTR);
		}
	} else {
		syslog(level, "%s", text);
	}
}

static void *reader(void *arg)
{
	(void)arg;
	char buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(route.read_fd, buf + have, sizeof buf - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
			*nl = '\0';
			if (*start)
				sink(start);
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
		if (have == sizeof buf - 1) { /* a line too long: cut it */
			buf[have] = '\0';
			sink(buf);
			have = 0;
		}
	}
	if (have) {
		buf[have] = '\0';
		sink(buf);
	}
	route.done = true;
	return NULL;
}

/* systemd connects stderr to the journal and says so in JOURNAL_STREAM=DEV:INO */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool fs_log_route(bool foreground)
{
	route.journal = foreground && stderr_is_journal();
	if (foreground && !route.journal)
		return true; /* the terminal: lines as they are */
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return foreground;
	if (route.journal) {
		route.journal_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (route.journal_fd < 0) {
			close(p[0]);
			close(p[1]);
			return true;
		}
	} else {
		openlog("smartvmfs", LOG_PID, LOG_DAEMON);
	}
	/* fd 2 (no O_CLOEXEC) is the pipe: the core's copies of log lines, libfuse's
	 * messages and the stderr of helper programs all arrive there */
	if (dup2(p[1], 2) < 0) {
		close(p[0]);
		close(p[1]);
		return foreground;
	}
	close(p[1]);
	route.read_fd = p[0];
	if (pthread_create(&route.thread, NULL, reader, NULL) != 0) {
		close(p[0]);
		route.read_fd = -1;
		return foreground;
	}
	route.routed = true;
	return true;
}

void fs_log_unroute(void)
{
	if (!route.routed)
		return;
	fflush(stderr);
	/* fd 2 goes back to the journal or /dev/null; the pipe's last writer is gone */
	int back = route.journal ? route.journal_fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (back >= 0) {
		dup2(back, 2);
		if (!route.journal)
			close(back);
	} else {
		close(2);
	}
	/* a helper program that still holds the pipe must not keep us: wait 2 s at most */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	if (pthread_timedjoin_np(route.thread, NULL, &ts) == 0)
		close(route.read_fd);
	route.routed = false;
	if (!route.journal)
		closelog();
}

void fs_logf(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (fsd.s)
		svm_log(fsd.s, "%s", line);
	else
		fprintf(stderr, "smartvmfs: %s\n", line);
}

/* ------------------------------------------------------------ VM timings */

/* When each VM began to run and to stop, to say how long a stop took and how
 * long the VM ran. A few entries: one per VM that has run. */
struct timing {
	svm_vm *vm;
	uint64_t gen;
	int64_t running_ns, stopping_ns;
};
static struct {
	pthread_mutex_t mu;
	struct timing *v;
	size_t n, cap;
} timings = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Caller holds timings.mu. NULL if absent and !add (or out of memory). */
static struct timing *timing_of(svm_vm *vm, bool add)
{
	uint64_t gen = svm_vm_generation(vm);
	for (size_t i = 0; i < timings.n; i++)
		if (timings.v[i].vm == vm && timings.v[i].gen == gen)
			return &timings.v[i];
	if (!add)
		return NULL;
	struct timing *v = fs_grow(timings.v, &timings.cap, timings.n + 1, sizeof *v, 16);
	if (!v)
		return NULL;
	timings.v = v;
	timings.v[timings.n] = (struct timing){.vm = vm, .gen = gen};
	return &timings.v[timings.n++];
}

static void on_vm_event(const svm_event *ev)
{
	svm_vm *vm = ev->vm;
	char line[256];
	line[0] = '\0';
	pthread_mutex_lock(&timings.mu);
	if (ev->kind == SVM_EV_STATE && ev->text) {
		struct timing *t = timing_of(vm, true);
		if (t && !strcmp(ev->text, "state running") && !t->running_ns)
			t->running_ns = mono_ns();
		else if (t && !strcmp(ev->text, "state stopping"))
			t->stopping_ns = mono_ns();
	} else if (ev->kind == SVM_EV_EXIT) {
		struct timing *t = timing_of(vm, false);
		svm_state st = svm_vm_state(vm);
		/* a crash is logged by the core, a start's rollback by the start */
		if (t && t->running_ns && (st == SVM_STOPPED || st == SVM_STOPPING)) {
			int64_t now = mono_ns();
			char took[64] = "";
			if (t->stopping_ns)
				snprintf(took, sizeof took, ", stop took %.1f ms",
				         (now - t->stopping_ns) / 1e6);
			snprintf(line, sizeof line, "vm %s: stopped (%s) after %.2f s%s", svm_vm_name(vm),
			         ev->text ? ev->text : "exit", (now - t->running_ns) / 1e9, took);
		}
		if (t)
			t->running_ns = t->stopping_ns = 0;
	} else if (ev->kind == SVM_EV_REMOVED) {
		struct timing *t = timing_of(vm, false);
		if (t)
			*t = timings.v[--timings.n];
	}
	pthread_mutex_unlock(&timings.mu);
	if (line[0] && fsd.s)
		svm_log(fsd.s, "%s", line);
}

void fs_log_on_event(void *ud, const svm_event *ev)
{
	if (ev->vm && (ev->kind == SVM_EV_STATE || ev->kind == SVM_EV_EXIT ||
	               ev->kind == SVM_EV_REMOVED))
		on_vm_event(ev);
	fs_on_core_event(ud, ev);
}

/* ------------------------------------------------------------ sd_notify */

static char notify_path[sizeof ((struct sockaddr_un *)0)->sun_path];

void fs_systemd_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	if (e && (e[0] == '/' || e[0] == '@') && strlen(e) < sizeof notify_path)
		snprintf(notify_path, sizeof notify_path, "%s", e);
	unsetenv("NOTIFY_SOCKET"); /* not for the VMMs */
}

void fs_systemd_notify(const char *msg)
{
	if (!notify_path[0])
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(notify_path);
	memcpy(sa.sun_path, notify_path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}
