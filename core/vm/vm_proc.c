/*
 * vm_proc.c - the process side of a VM: spawn with FIFOs and pipes, drain its
 * output on the event loop, notice and classify its exit (DESIGN §3: an exit we
 * asked for, or an unasked exit 0 (a guest reboot), is `stopped`; any other
 * unasked exit or signal is `error`).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "internal.h"
#include "stage.h"
#include "vmm.h"
#include "hostpath.h"
#include "images.h"
#include "jail.h"
#include "vmlimits.h"
#include "vmstate.h"

/* ------------------------------------------------------------ draining */

/* Appends to a copy the user asked for (logger.logPath, metrics.metricsPath).
 * Never blocks the loop (O_NONBLOCK: a FIFO nobody reads loses the bytes); a
 * failing copy is the user's file's business, the VM's own files have it all. */
static void copy_out(int fd, const char *buf, size_t len)
{
	while (fd >= 0 && len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Reads what is there now (and copies it to copy_fd, -1: none); returns false at
 * EOF or on a hard error. */
static bool drain_into(int fd, svm_ring *ring, size_t *got, int copy_fd)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			ring_append(ring, buf, (size_t)n);
			copy_out(copy_fd, buf, (size_t)n);
			*got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

static void stop_watch(svm_vm *vm, svm_watch **w)
{
	/* EOF on one stream: stop polling it (it would report HUP forever); the fd
	 * itself is closed with the others when the process is reaped */
	pthread_mutex_lock(&vm->mu);
	loop_del(vm->s->loop, *w);
	*w = NULL;
	pthread_mutex_unlock(&vm->mu);
}

static void console_closed(svm_vm *vm);

static void on_console(svm_watch *w, void *ud, uint32_t ev)
{
	(void)ev;
	svm_vm *vm = ud;
	size_t got = 0;
	bool open = drain_into(loop_fd(w), &vm->console, &got, vm->sercopy_fd);
	if (got)
		sink_emit(&vm->s->sink, SVM_EV_CONSOLE, vm, 0, NULL);
	if (!open) {
		stop_watch(vm, &vm->w_out);
		console_closed(vm);
	}
}

static void on_fclog(svm_watch *w, void *ud, uint32_t ev)
{
	(void)ev;
	svm_vm *vm = ud;
	size_t got = 0;
	bool open = drain_into(loop_fd(w), &vm->fclog, &got, vm->logcopy_fd);
	if (got)
		sink_emit(&vm->s->sink, SVM_EV_LOG, vm, 0, NULL);
	if (!open)
		stop_watch(vm, &vm->w_log);
}

/* Metrics arrive as one JSON object per line, and a line (several KiB) may come
 * in pieces: collect pieces until the newline, keep the newest complete line. */
#define METRICS_LINE_MAX (1024 * 1024)
static void on_metrics(svm_watch *w, void *ud, uint32_t ev)
{
	(void)ev;
	svm_vm *vm = ud;
	char buf[16384];
	bool open = true, fresh = false;
	for (;;) {
		ssize_t n = read(loop_fd(w), buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			open = n < 0 && errno == EAGAIN;
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (vm->mpart_len + 1 >= vm->mpart_cap) {
					size_t cap = vm->mpart_cap ? vm->mpart_cap * 2 : 8192;
					char *p = cap <= METRICS_LINE_MAX ? realloc(vm->mpart, cap) : NULL;
					if (!p) {
						vm->mpart_len = 0; /* an absurd line: drop it */
						continue;
					}
					vm->mpart = p;
					vm->mpart_cap = cap;
				}
				vm->mpart[vm->mpart_len++] = buf[i];
				continue;
			}
			if (!vm->mpart_len)
				continue;
			char *line = strndup(vm->mpart, vm->mpart_len);
			vm->mpart[vm->mpart_len++] = '\n';
			copy_out(vm->metcopy_fd, vm->mpart, vm->mpart_len);
			vm->mpart_len = 0;
			pthread_mutex_lock(&vm->mu);
			free(vm->metrics_line);
			vm->metrics_line = line;
			vm->metrics_seq++;
			pthread_cond_broadcast(&vm->cv);
			pthread_mutex_unlock(&vm->mu);
			fresh = true;
		}
	}
	if (!vm->mpart_len) {
		/* no piece of a line pending: the buffer goes until the next line (one
		 * a minute, or on FlushMetrics), not kept by every running VM */
		free(vm->mpart);
		vm->mpart = NULL;
		vm->mpart_cap = 0;
	}
	if (fresh)
		sink_emit(&vm->s->sink, SVM_EV_METRICS, vm, 0, NULL);
	if (!open)
		stop_watch(vm, &vm->w_metrics);
}

/* Last line(s) of Firecracker's stderr, for error messages. */
static void stderr_tail(svm_vm *vm, char *buf, size_t len)
{
	char *t = ring_text(&vm->errtail);
	buf[0] = '\0';
	if (!t)
		return;
	size_t n = strlen(t);
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
		t[--n] = '\0';
	const char *p = t;
	if (n > 300)
		p = t + n - 300;
	snprintf(buf, len, "%s", p);
	for (char *q = buf; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	free(t);
}

/* The directories vm_proc_spawn made for a clone's view of its runtime dir, from
 * the deepest up to the topmost it made; only empty ones go (rmdir). Runs before
 * the state says stopped, so the next start's mkdir never races with it. */
static void remove_made_dirs(svm_vm *vm)
{
	if (!vm->made_dir[0])
		return;
	char p[SVM_SOCK_MAX];
	snprintf(p, sizeof p, "%s", vm->vmm_rundir);
	size_t top = strlen(vm->made_dir);
	while (strlen(p) >= top && rmdir(p) == 0) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
	vm->made_dir[0] = '\0';
}

/* The VMM's streams (vm_proc_spawn makes them): a FIFO outlives its users, so
 * they go with the VMM, and a stopped VM's runtime dir holds no FIFO. stderr is
 * a file, read when the VMM has ended (stderr_keep). */
static const char *const stream_fifos[] = {"log.fifo", "metrics.fifo", "console.fifo",
					   "stdin.fifo", "stderr.log"};

/* The tail of what the VMM wrote to its stderr, into vm->errtail. A file, not a
 * FIFO the daemon drains: Firecracker writes to stderr only when it fails (its
 * log goes to log.fifo), and a file costs the daemon no descriptor while the
 * VMM runs, and keeps what a VMM wrote while no daemon ran. */
static void stderr_keep(svm_vm *vm)
{
	char p[PATH_MAX], buf[SVM_STDERR_KEPT];
	snprintf(p, sizeof p, "%s/stderr.log", vm->rundir);
	ring_reset(&vm->errtail);
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t off = st.st_size > (off_t)sizeof buf ? st.st_size - (off_t)sizeof buf : 0;
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n > 0)
			ring_append(&vm->errtail, buf, (size_t)n);
	}
	close(fd);
}

static void remove_fifos(svm_vm *vm)
{
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof stream_fifos / sizeof *stream_fifos; i++) {
		snprintf(p, sizeof p, "%s/%s", vm->rundir, stream_fifos[i]);
		unlink(p);
	}
}

/* What a VMM wrote before dying is still in the pipes: taken first. */
static void drain_final(svm_vm *vm)
{
	if (vm->w_out)
		on_console(vm->w_out, vm, 0);
	stderr_keep(vm);
	if (vm->w_log)
		on_fclog(vm->w_log, vm, 0);
	if (vm->w_metrics)
		on_metrics(vm->w_metrics, vm, 0);
}

/* Reaps the VMM if it has ended (*ws: its wait status; *adopted: not our
 * child, so no status). -1: a spurious wake (not exited yet), or handled
 * already. */
static int reap_vmm(svm_vm *vm, int *ws, bool *adopted)
{
	pthread_mutex_lock(&vm->mu);
	*adopted = vm->adopted; /* vm_proc_adopt may be finishing on another thread */
	/* our child is reaped under the lock that signals take: a reaped pid is
	 * never signalled (it may be another process's by then) */
	int reaped = vm->pid == 0 || vm->reaped ? -1 : *adopted ? 0
		     : vm->pidfd >= 0 ? svm_reap(vm->pidfd, ws) : svm_reap_pid(vm->pid, ws);
	if (reaped == 0 && !*adopted)
		vm->reaped = true;
	pthread_mutex_unlock(&vm->mu);
	if (reaped < 0)
		return -1;
	if (*adopted) {
		/* not our child: nothing to reap, and no exit status to know; the
		 * pidfd is readable once the process has ended */
		struct pollfd p = {.fd = vm->pidfd, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			return -1;
	}
	return 0;
}

/* What the error file says if this end was not asked for. */
static void exit_reason(svm_vm *vm, bool adopted, const char *status, svm_error *why)
{
	char tail[320];
	stderr_tail(vm, tail, sizeof tail);
	if (adopted)
		svm_error_set(why, SVM_START_FAILED,
			      "firecracker ended unexpectedly (its exit status is unknown: it was "
			      "re-adopted after a daemon restart, so it is not our child)%s%s",
			      tail[0] ? ": " : "", tail);
	else
		svm_error_set(why, SVM_START_FAILED, "firecracker ended unexpectedly (%s)%s%s", status,
			      tail[0] ? ": " : "", tail);
}

/* The ended VMM's resources go (vm->mu held): its watches and descriptors, the
 * sockets and FIFOs it leaves behind, the bundle it was started from. */
static void release_process_locked(svm_vm *vm)
{
	svm_loop *l = vm->s->loop;
	loop_del(l, vm->w_pid);
	loop_del(l, vm->w_out);
	loop_del(l, vm->w_log);
	loop_del(l, vm->w_metrics);
	vm->w_pid = vm->w_out = vm->w_log = vm->w_metrics = NULL;
	int *fds[] = {&vm->pidfd,      &vm->out_fd,     &vm->log_fd,    &vm->metrics_fd,
		      &vm->logcopy_fd, &vm->metcopy_fd, &vm->sercopy_fd};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		close_and_reset(fds[i]);
	/* Firecracker never unlinks its API socket (DESIGN §6), nor its vsock one */
	unlink(vm->sock);
	remove_fifos(vm);
	char *uds = vm_vsock_path_locked(vm, vm->config);
	struct stat ust;
	if (uds && lstat(uds, &ust) == 0 && S_ISSOCK(ust.st_mode))
		unlink(uds);
	free(uds);
	vm->pid = 0;
	/* the bundle is free before anyone sees the VM stopped (lock order: a VM's
	 * lock, then the images' one) */
	images_release(vm->s->images, vm->image_held);
	free(vm->image_held);
	vm->image_held = NULL;
	vm->pid_start = 0;
	vm->adopted = false;
	vm->reaped = false;
}

/* What an end changed, told once the lock is dropped. */
struct exit_news {
	uint64_t exit_seq, state_seq; /* 0: no state change */
	bool failed;                  /* an end nobody asked for */
	char exit_text[32];
	svm_state now;
};

/* The VM's record of the end and its state after it (vm->mu held). */
static void settle_locked(svm_vm *vm, bool adopted, int ws, const char *status,
			  const svm_error *why, struct exit_news *n)
{
	snprintf(vm->last_exit, sizeof vm->last_exit, "%s", adopted ? "exit unknown" : status);
	n->exit_seq = vm_event_locked(vm, vm->last_exit);
	n->state_seq = 0;
	n->failed = false;
	svm_state st = vm->state;
	/* a start in progress owns the state: it rolls back and reports */
	if (st != SVM_STARTING) {
		bool clean = vm->expect_exit || (!adopted && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
		n->failed = !clean;
		/* the error file first: whoever sees `error` finds why */
		if (n->failed)
			ring_printf(&vm->errors, "vmm: %s", why->message);
		if (st != SVM_STOPPED && st != SVM_ERROR)
			n->state_seq = vm_state_locked(vm, clean ? SVM_STOPPED : SVM_ERROR);
	}
	if (!n->state_seq)
		vmstate_save_locked(vm); /* no pid any more */
	snprintf(n->exit_text, sizeof n->exit_text, "%s", vm->last_exit);
	n->now = vm->state;
}

static void tell_exit(svm_vm *vm, const struct exit_news *n)
{
	if (n->failed) {
		sink_emit(&vm->s->sink, SVM_EV_ERROR, vm, 0, NULL);
		sink_log(&vm->s->sink, "vm %s: firecracker ended unexpectedly (%s)", vm->name,
			 n->exit_text);
	}
	sink_emit(&vm->s->sink, SVM_EV_EXIT, vm, n->exit_seq, n->exit_text);
	if (n->state_seq) {
		char line[32];
		snprintf(line, sizeof line, "state %s", svm_state_name(n->now));
		sink_emit(&vm->s->sink, SVM_EV_STATE, vm, n->state_seq, line);
	}
}

/* The VMM's end: its exit watch (the pidfd, or the console's hang-up). */
static void on_exit_(svm_watch *w, void *ud, uint32_t ev)
{
	(void)w;
	(void)ev;
	svm_vm *vm = ud;
	drain_final(vm);
	int ws = 0;
	bool adopted;
	if (reap_vmm(vm, &ws, &adopted) < 0)
		return;
	char status[32];
	svm_status_text(ws, status, sizeof status);
	svm_error why;
	exit_reason(vm, adopted, status, &why);
	/* staged drives go with the VMM that used them; removed before the state
	 * says stopped (and without vm->mu, which stage_cleanup takes), so a new
	 * start cannot race with this cleanup */
	stage_cleanup(vm);
	jail_release(vm);
	vmlim_release(vm); /* its cgroups: the jailer leaves them */
	remove_made_dirs(vm);

	struct exit_news news;
	pthread_mutex_lock(&vm->mu);
	release_process_locked(vm);
	settle_locked(vm, adopted, ws, status, &why, &news);
	vm->exit_telling = true;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->mu);
	tell_exit(vm, &news);
	/* a kill or stop that waited for this end replies now: its reply comes
	 * after the end's events, and the front end's handling of them (the
	 * cached values they make stale) */
	pthread_mutex_lock(&vm->mu);
	vm->exit_telling = false;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->mu);
	svm_vm_unref(vm); /* the reference the process held */
}

/* The console FIFO's hang-up: the VMM has closed its stdout, which it does by
 * ending (a process's descriptors close before it becomes a zombie). This is
 * the exit watch of our own children: the daemon holds no pidfd per VM. A
 * re-adopted VMM (not our child) has its pidfd watch instead. */
static void console_closed(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	pid_t pid = vm->pid;
	bool ours = pid != 0 && !vm->adopted && !vm->w_pid;
	pthread_mutex_unlock(&vm->mu);
	if (!ours)
		return;
	/* on_exit_ drops the process's reference, which may be the last */
	svm_vm_ref(vm);
	on_exit_(NULL, vm, 0);
	if (svm_vm_pid(vm) == 0) {
		svm_vm_unref(vm);
		return;
	}
	/* closed, but not a zombie yet (microseconds): a pidfd watches this
	 * moment (on_exit_ closes it) */
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	pthread_mutex_lock(&vm->mu);
	if (fd >= 0 && vm->pid == pid) {
		vm->pidfd = fd;
		vm->w_pid = loop_add(vm->s->loop, fd, EPOLLIN, on_exit_, vm);
		if (!vm->w_pid)
			vm->pidfd = -1;
	}
	bool watched = vm->w_pid != NULL;
	pthread_mutex_unlock(&vm->mu);
	if (watched) {
		svm_vm_unref(vm);
		return;
	}
	if (fd >= 0)
		close(fd);
	/* no descriptor for that: wait here, bounded */
	for (int i = 0; i < 1000 && svm_vm_pid(vm) == pid; i++) {
		usleep(1000);
		on_exit_(NULL, vm, 0);
	}
	pthread_mutex_lock(&vm->mu);
	bool hung = vm->pid == pid && !vm->reaped; /* not reaped: still ours to signal */
	if (hung)
		kill(pid, SIGKILL);
	pthread_mutex_unlock(&vm->mu);
	if (hung) {
		/* never Firecracker: a VMM without its stdout is no VMM to keep */
		sink_log(&vm->s->sink, "vm %s: its VMM (pid %d) closed its stdout but did not end: ended it",
			vm->name, (int)pid);
		siginfo_t si;
		waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
		on_exit_(NULL, vm, 0);
	}
	svm_vm_unref(vm);
}

/* ------------------------------------------------------------ spawning */

static int make_fifo(const char *path, int *rfd, svm_error *err)
{
	unlink(path);
	if (mkfifo(path, 0600) < 0)
		return svm_error_set(err, svm_start_code(errno), "mkfifo %s: %s", path, strerror(errno));
	/* our read end first, so Firecracker's open for writing finds a reader */
	*rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*rfd < 0)
		return svm_error_set(err, svm_start_code(errno), "open %s: %s", path, strerror(errno));
	return 0;
}

/* A FIFO at path, nobody's open yet (the VMM's stdin). */
static int make_fifo_at(const char *path, svm_error *err)
{
	unlink(path);
	if (mkfifo(path, 0600) < 0)
		return svm_error_set(err, svm_start_code(errno), "mkfifo %s: %s", path, strerror(errno));
	return 0;
}

/* logger.logPath, metrics.metricsPath: the daemon keeps reading Firecracker's log
 * and metrics (the VM's log and metrics files) and appends a copy of each where
 * the config asks, created 0600 if new, never through a link at its name. Opened
 * before the VMM runs: a path that cannot be written fails the start with nothing
 * built. */
static int open_copy(svm_vm *vm, const json_t *cfg, const char *section, const char *key,
		     int *fd, svm_error *err)
{
	const char *p = json_string_value(json_object_get(json_object_get(cfg, section), key));
	*fd = -1;
	if (!p)
		return 0;
	/* a user's path: created or appended to with the VM owner's rights, beneath
	 * the host roots (core/base/hostpath.h), never by the daemon's own */
	char what[64];
	snprintf(what, sizeof what, "%s.%s", section, key);
	hostpath_who who;
	hostpath_who_of(svm_vm_owner_uid(vm), &who);
	*fd = hostpath_open(vm->s->roots, &who, what, p,
			    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600, err);
	return *fd < 0 ? -1 : 0;
}

static const char *logger_level(const json_t *cfg)
{
	const char *lv = json_string_value(json_object_get(json_object_get(cfg, "logger"), "level"));
	return lv ? lv : "Info";
}

/* mkdir -p for the mount point of a clone's view; records the topmost directory
 * it made in vm->made_dir. The directories are on the host (mount namespaces do
 * not separate files), hence the record. */
static int make_mount_point(svm_vm *vm, const char *path, svm_error *err)
{
	char p[SVM_SOCK_MAX];
	snprintf(p, sizeof p, "%s", path);
	vm->made_dir[0] = '\0';
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char saved = *c;
		*c = '\0';
		if (mkdir(p, 0700) == 0) {
			if (!vm->made_dir[0])
				snprintf(vm->made_dir, sizeof vm->made_dir, "%s", p);
		} else if (errno != EEXIST) {
			*c = saved;
			return svm_error_set(err, SVM_START_FAILED, "cannot create %s: %s", p,
					     strerror(errno));
		}
		*c = saved;
		if (!saved)
			return 0;
	}
}

/* The VMM's streams while a start makes them: our read ends, its own ends and
 * the user's copies. Every stream of the VMM is a FIFO in its runtime dir,
 * reachable by name, so a daemon started after this one was killed can take
 * them over (docs/restart.md); stderr is a file (stderr_keep), stdin a FIFO the
 * daemon opens for each write (svm_vm_console_write). */
struct vmm_streams {
	char logp[PATH_MAX], metp[PATH_MAX], inp[PATH_MAX], outp[PATH_MAX], errp[PATH_MAX];
	char jlogp[64], jmetp[64]; /* jailed: the log and metrics FIFOs as the VMM sees them */
	int log_r, met_r, out_r; /* ours */
	int in, out_w, err_w;    /* the VMM's stdin, stdout, stderr */
	int lcopy, mcopy, scopy; /* logger.logPath, metrics.metricsPath, serial.serialOutPath */
};
#define VMM_STREAMS_INIT                                                                    \
	{.log_r = -1, .met_r = -1, .out_r = -1, .in = -1, .out_w = -1, .err_w = -1, .lcopy = -1, \
	 .mcopy = -1, .scopy = -1}

/* Closes what is still the start's (what the VM took is -1 here): the scope's
 * end, on every path out of vm_proc_spawn. */
static void streams_close(struct vmm_streams *st)
{
	int *fds[] = {&st->log_r, &st->met_r, &st->out_r, &st->in,    &st->out_w,
		      &st->err_w, &st->lcopy, &st->mcopy, &st->scopy};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		close_and_reset(fds[i]);
}

/* The runtime dir made ready: the binary checked, a clone's view of another
 * runtime dir made (*show_at; NULL when it is the VM's own), no stale
 * socket. */
static int prepare_rundir(svm_vm *vm, const char *binary, const char **show_at, svm_error *err)
{
	if (vmm_check_binary(binary, err) < 0)
		return -1;
	if (*show_at && strcmp(*show_at, vm->rundir) == 0)
		*show_at = NULL; /* its own snapshot: nothing to map */
	snprintf(vm->vmm_rundir, sizeof vm->vmm_rundir, "%s", *show_at ? *show_at : "");
	vm->made_dir[0] = '\0';
	if (*show_at && make_mount_point(vm, *show_at, err) < 0) {
		remove_made_dirs(vm);
		return -1;
	}
	if (unlink(vm->sock) < 0 && errno != ENOENT)
		return svm_error_set(err, SVM_START_FAILED,
				     "a stale API socket is in the way and cannot be removed: %s: %s",
				     vm->sock, strerror(errno));
	return 0;
}

/* The FIFOs and files of the VMM's streams and the user's copies; our read
 * ends first, so the VMM's opens find a reader. */
static int open_streams(svm_vm *vm, const json_t *cfg, struct vmm_streams *st, svm_error *err)
{
	snprintf(st->logp, sizeof st->logp, "%s/log.fifo", vm->rundir);
	snprintf(st->metp, sizeof st->metp, "%s/metrics.fifo", vm->rundir);
	snprintf(st->inp, sizeof st->inp, "%s/stdin.fifo", vm->rundir);
	snprintf(st->outp, sizeof st->outp, "%s/console.fifo", vm->rundir);
	snprintf(st->errp, sizeof st->errp, "%s/stderr.log", vm->rundir);
	if (open_copy(vm, cfg, "logger", "logPath", &st->lcopy, err) < 0 ||
	    open_copy(vm, cfg, "metrics", "metricsPath", &st->mcopy, err) < 0 ||
	    open_copy(vm, cfg, "serial", "serialOutPath", &st->scopy, err) < 0 ||
	    make_fifo(st->logp, &st->log_r, err) < 0 || make_fifo(st->metp, &st->met_r, err) < 0 ||
	    make_fifo(st->outp, &st->out_r, err) < 0 || make_fifo_at(st->inp, err) < 0)
		return -1;
	/* the VMM's ends. stdout blocking, as with a terminal; while no daemon
	 * reads it its writes fail (EPIPE: Firecracker ignores SIGPIPE) and the
	 * output is lost, but the guest never stalls on a full pipe. stdin
	 * read-write: the VMM is a writer of its own input too, so it never sees
	 * EOF, and the daemon's opens for writing always find a reader. stderr
	 * appends to a fresh file. */
	int e = 0;
	st->out_w = open(st->outp, O_WRONLY | O_CLOEXEC);
	if (st->out_w < 0)
		e = errno;
	if (!e)
		unlink(st->errp); /* a stale one (an earlier daemon's crash): O_EXCL below */
	if (!e && (st->err_w = open(st->errp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW |
						      O_CLOEXEC, 0600)) < 0)
		e = errno;
	if (!e && (st->in = open(st->inp, O_RDWR | O_CLOEXEC)) < 0)
		e = errno;
	if (e)
		return svm_error_set(err, svm_start_code(e), "opening the VMM's streams in %s: %s",
				     vm->rundir, strerror(e));
	return 0;
}

/* Firecracker's command line: the API socket, the id, the log and metrics
 * FIFOs and the logger's options; jailed, after the jailer's own (which gives
 * the VMM its --id) and with the paths as the VMM sees them (argv has room for
 * 56). */
static int vmm_argv(svm_vm *vm, const char *binary, const json_t *cfg,
		    struct vmm_streams *st, char *argv[], char ids[2][32], svm_error *err)
{
	const json_t *logger = json_object_get(cfg, "logger");
	int a = 0;
	const char *sock = vm->sock, *logp = st->logp, *metp = st->metp;
	if (vm->jailed) {
		if (jail_link_stream(vm, st->logp, "log.fifo", st->jlogp, sizeof st->jlogp, err) < 0 ||
		    jail_link_stream(vm, st->metp, "metrics.fifo", st->jmetp, sizeof st->jmetp, err) < 0)
			return -1;
		char *lim[16];
		int nlim = vmlim_jail_argv(vm, lim);
		a = jail_argv(vm, binary, vmlim_cgroup_version(), lim, nlim, argv, ids);
		sock = jail_api_sock();
		logp = st->jlogp;
		metp = st->jmetp;
	} else {
		argv[a++] = (char *)binary;
	}
	argv[a++] = "--api-sock";
	argv[a++] = (char *)sock;
	if (!vm->jailed) {
		argv[a++] = "--id";
		argv[a++] = vm->id;
	}
	argv[a++] = "--log-path";
	argv[a++] = (char *)logp;
	argv[a++] = "--level";
	argv[a++] = (char *)logger_level(cfg);
	argv[a++] = "--metrics-path";
	argv[a++] = (char *)metp;
	if (json_is_true(json_object_get(logger, "showLevel")))
		argv[a++] = "--show-level";
	if (json_is_true(json_object_get(logger, "showLogOrigin")))
		argv[a++] = "--show-log-origin";
	const char *module = json_string_value(json_object_get(logger, "module"));
	if (module) {
		argv[a++] = "--module";
		argv[a++] = (char *)module;
	}
	argv[a] = NULL;
	return 0;
}

/* A new VMM's output starts from nothing. */
static void reset_outputs(svm_vm *vm)
{
	ring_reset(&vm->console);
	ring_reset(&vm->fclog);
	ring_reset(&vm->errtail);
	pthread_mutex_lock(&vm->mu);
	free(vm->metrics_line);
	vm->metrics_line = NULL;
	vm->mpart_len = 0;
	pthread_mutex_unlock(&vm->mu);
}

/* The started VMM becomes the VM's: its pid, its streams (taken from st) and
 * their watches on the event loop. 0; -1 when not even its console is watched
 * (the VMM was ended, the streams are still st's); 1 when its other streams
 * are not (the VMM was ended as any VMM ends: its exit watch closes and removes
 * all, and the start rolls back as after a VMM that died). err says why. */
static int watch_vmm(svm_vm *vm, pid_t pid, uint64_t spawn_ns, struct vmm_streams *st,
		     svm_error *err)
{
	svm_loop *loop = vm->s->loop;
	svm_vm_ref(vm); /* held by the process until it is reaped */
	unsigned long long started = proc_start_time(pid);
	pthread_mutex_lock(&vm->mu);
	vm->spawn_ns = spawn_ns;
	vm->pid = pid;
	vm->pid_start = started;
	vm->adopted = false;
	vm->reaped = false;
	vm->pidfd = -1;
	vm->out_fd = st->out_r;
	vm->log_fd = st->log_r;
	vm->metrics_fd = st->met_r;
	vm->logcopy_fd = st->lcopy;
	vm->metcopy_fd = st->mcopy;
	vm->sercopy_fd = st->scopy;
	vm->expect_exit = false;
	vm->last_exit[0] = '\0';
	/* the console first: its hang-up is the exit watch, without which
	 * nobody would reap the VMM */
	vm->w_out = loop_add(loop, st->out_r, EPOLLIN, on_console, vm);
	if (!vm->w_out) {
		int e = errno;
		vm->pid = 0;
		vm->pid_start = 0;
		vm->out_fd = vm->log_fd = vm->metrics_fd = -1;
		vm->logcopy_fd = vm->metcopy_fd = vm->sercopy_fd = -1;
		pthread_mutex_unlock(&vm->mu);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		svm_vm_unref(vm);
		return svm_error_set(err, svm_start_code(e),
				     "cannot watch the VMM process (epoll_ctl: %s)", strerror(e));
	}
	/* the VM's now: its exit watch closes them */
	st->out_r = st->log_r = st->met_r = st->lcopy = st->mcopy = st->scopy = -1;
	/* every stream drained, or no VMM: one nobody reads stalls its guest */
	vm->w_log = loop_add(loop, vm->log_fd, EPOLLIN, on_fclog, vm);
	vm->w_metrics = vm->w_log ? loop_add(loop, vm->metrics_fd, EPOLLIN, on_metrics, vm) : NULL;
	bool ok = vm->w_metrics != NULL;
	int e = errno;
	if (ok)
		vmstate_save_locked(vm); /* its pid: a later daemon finds it */
	pthread_mutex_unlock(&vm->mu);
	if (ok)
		return 0;
	vm_proc_signal_wait(vm, SIGKILL, -1);
	svm_error_set(err, svm_start_code(e), "cannot watch the VMM's output streams (epoll_ctl: %s)",
		      strerror(e));
	return 1;
}

int vm_proc_spawn(svm_vm *vm, const char *binary, const json_t *cfg, const char *show_at,
		  svm_error *err)
{
	if (prepare_rundir(vm, binary, &show_at, err) < 0)
		return -1;
	__attribute__((cleanup(streams_close))) struct vmm_streams st = VMM_STREAMS_INIT;
	if (open_streams(vm, cfg, &st, err) < 0)
		goto fail;
	char *argv[56], ids[2][32]; /* the jailer's limit arguments: up to 16 */
	if (vmm_argv(vm, binary, cfg, &st, argv, ids, err) < 0)
		goto fail;
	reset_outputs(vm);

	pid_t pid;
	int fds[3] = {st.in, st.out_w, st.err_w};
	uint64_t spawn_ns = svm_now_ns(); /* published with the pid: stat reads both */
	/* no pidfd: the console's hang-up is the exit watch (console_closed) */
	if ((show_at ? svm_spawn_bind(argv, fds, vm->rundir, show_at, &pid, NULL, err)
		     : svm_spawn(argv, fds, &pid, NULL, err)) < 0)
		goto fail;
	/* the VMM's own ends are its alone now */
	close_and_reset(&st.in);
	close_and_reset(&st.out_w);
	close_and_reset(&st.err_w);
	int watched = watch_vmm(vm, pid, spawn_ns, &st, err);
	if (watched >= 0)
		return watched == 0 ? 0 : -1;
fail:
	streams_close(&st);
	remove_fifos(vm);
	unlink(vm->sock); /* a VMM ended here may have made it */
	remove_made_dirs(vm);
	return -1;
}

/* ------------------------------------------------------------ re-adoption */

int vm_proc_pidfd_signal(int pidfd, int sig)
{
	if (pidfd < 0)
		return -1;
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Opens a FIFO of the runtime dir by name: our read end of a stream, or the
 * write end of the VMM's stdin (which has a reader: the VMM itself). */
static int reopen_fifo(svm_vm *vm, const char *name, int flags)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", vm->rundir, name);
	int fd = open(p, flags | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		sink_log(&vm->s->sink, "vm %s: cannot reopen %s: %s", vm->name, p, strerror(errno));
	return fd;
}

int vm_proc_adopt(svm_vm *vm, pid_t pid, int pidfd, svm_error *err)
{
	svm *s = vm->s;
	/* each missing stream is only that stream lost; the VM stays controllable
	 * (stdin and stderr are used by name: nothing to reopen) */
	int out = reopen_fifo(vm, "console.fifo", O_RDONLY);
	int lg = reopen_fifo(vm, "log.fifo", O_RDONLY);
	int met = reopen_fifo(vm, "metrics.fifo", O_RDONLY);
	int lcopy = -1, mcopy = -1, scopy = -1;
	svm_error ce;
	pthread_mutex_lock(&vm->mu);
	if (open_copy(vm, vm->config, "logger", "logPath", &lcopy, &ce) < 0 ||
	    open_copy(vm, vm->config, "metrics", "metricsPath", &mcopy, &ce) < 0 ||
	    open_copy(vm, vm->config, "serial", "serialOutPath", &scopy, &ce) < 0)
		sink_log(&s->sink, "vm %s: its copy of the log, metrics or console stops: %s", vm->name,
			ce.message);
	/* the exit watch first: without it nobody would ever notice the end */
	vm->w_pid = loop_add(s->loop, pidfd, EPOLLIN, on_exit_, vm);
	if (!vm->w_pid) {
		pthread_mutex_unlock(&vm->mu);
		int fds[] = {out, lg, met, lcopy, mcopy, scopy};
		for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return svm_error_set(err, SVM_START_FAILED, "cannot watch the VMM process");
	}
	svm_vm_ref(vm); /* held by the process until it ends */
	vm->pid = pid;
	vm->pidfd = pidfd;
	vm->adopted = true;
	vm->reaped = false;
	vm->out_fd = out;
	vm->log_fd = lg;
	vm->metrics_fd = met;
	vm->logcopy_fd = lcopy;
	vm->metcopy_fd = mcopy;
	vm->sercopy_fd = scopy;
	vm->expect_exit = false;
	vm->last_exit[0] = '\0';
	if (out >= 0)
		vm->w_out = loop_add(s->loop, out, EPOLLIN, on_console, vm);
	if (lg >= 0)
		vm->w_log = loop_add(s->loop, lg, EPOLLIN, on_fclog, vm);
	if (met >= 0)
		vm->w_metrics = loop_add(s->loop, met, EPOLLIN, on_metrics, vm);
	pthread_mutex_unlock(&vm->mu);
	return 0;
}

/* ------------------------------------------------------------ waiting */

static bool ends_before(svm_vm *vm, uint64_t deadline_ns)
{
	/* caller holds vm->mu; the end counts once its events are reported */
	while (vm->pid != 0 || vm->exit_telling) {
		if (deadline_ns) {
			uint64_t now = svm_now_ns();
			if (now >= deadline_ns)
				return false;
			struct timespec ts = svm_time_after(CLOCK_REALTIME, deadline_ns - now);
			pthread_cond_timedwait(&vm->cv, &vm->mu, &ts);
		} else {
			pthread_cond_wait(&vm->cv, &vm->mu);
		}
	}
	return true;
}

int vm_proc_wait_exit(svm_vm *vm, int timeout_ms)
{
	pthread_mutex_lock(&vm->mu);
	bool done = ends_before(vm, timeout_ms < 0 ? 0 : svm_now_ns() + (uint64_t)timeout_ms * 1000000ULL);
	pthread_mutex_unlock(&vm->mu);
	return done ? 0 : -1;
}

int vm_proc_signal_wait(svm_vm *vm, int sig, int timeout_ms)
{
	pthread_mutex_lock(&vm->mu);
	pid_t pid = vm->pid;
	if (pid != 0) {
		vm->expect_exit = true;
		/* our child's pid is ours until the loop reaps it (under this lock);
		 * a re-adopted VMM is not our child, and only its pidfd names it */
		if (vm->adopted)
			vm_proc_pidfd_signal(vm->pidfd, sig);
		else if (!vm->reaped)
			kill(pid, sig);
	}
	bool done = ends_before(vm, timeout_ms < 0 ? 0 : svm_now_ns() + (uint64_t)timeout_ms * 1000000ULL);
	pthread_mutex_unlock(&vm->mu);
	return done ? 0 : -1;
}

/* Watches the directory where the VMM's API socket appears: its runtime dir,
 * or, jailed, the jail's run/, which the jailer makes after the spawn (until it
 * is there, the jail's root, the daemon's own). dw is begun in every case.
 * Returns 2 (the socket's directory), 1 (the jail's root) or 0 (nothing: each
 * dirwatch_sleep then only sleeps). */
static int watch_socket_dir(svm_vm *vm, dirwatch_wait *dw)
{
	svm_dirwatch *d = vm->s->dirwatch;
	if (!vm->jailed)
		return dirwatch_begin(d, vm->rundir, dw) == 0 ? 2 : 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s%s", vm->jail_root, jail_api_sock());
	*strrchr(dir, '/') = '\0';
	/* the root first: a run/ made after the look below wakes it */
	if (dirwatch_begin(d, vm->jail_root, dw) == 0 && access(dir, F_OK) != 0)
		return 1;
	dirwatch_end(d, dw);
	return dirwatch_begin(d, dir, dw) == 0 ? 2 : 0;
}

int vm_proc_wait_ready(svm_vm *vm, const atomic_bool *cancel, svm_error *err)
{
	svm *s = vm->s;
	uint64_t deadline = svm_now_ns() + (uint64_t)s->opt.ready_timeout_ms * 1000000ULL;
	/* inotify tells us the moment the socket appears (the seed polls every 100
	 * ms); without a watch, a look every millisecond */
	dirwatch_wait dw;
	int watching = watch_socket_dir(vm, &dw);
	int rc = -1;
	useconds_t refused_pause_us = 0; /* 0: the socket has not refused yet */
	for (;;) {
		pthread_mutex_lock(&vm->mu);
		bool alive = vm->pid != 0, killed = vm->kill_requested;
		char exit_text[32];
		snprintf(exit_text, sizeof exit_text, "%s", vm->last_exit);
		pthread_mutex_unlock(&vm->mu);
		if (!alive) {
			char tail[320];
			stderr_tail(vm, tail, sizeof tail);
			svm_error_set(err, SVM_START_FAILED,
				      "firecracker exited before its API was ready (%s)%s%s", exit_text,
				      tail[0] ? ": " : "", tail);
			break;
		}
		if (killed || (cancel && atomic_load(cancel))) {
			svm_error_set(err, SVM_INTERRUPTED, "start interrupted");
			break;
		}
		/* jailed: the socket the VMM bound in its jail, once it is there,
		 * linked at vm->sock */
		bool exists = vm->jailed ? jail_take_socket(vm) == 1 : access(vm->sock, F_OK) == 0;
		if (exists) {
			/* this probe, too, ends by the readiness deadline */
			uint64_t now = svm_now_ns();
			int left_ms = deadline > now ? (int)((deadline - now) / 1000000ULL) + 1 : 1;
			svm_error e;
			if (svm_api_call_timeout(vm->api, "GET", "/version", NULL, left_ms, NULL, &e) == 0) {
				rc = 0;
				break;
			}
		}
		if (svm_now_ns() >= deadline) {
			/* as the seed tells them apart: no socket at all, or one that
			 * does not answer */
			if (exists)
				svm_error_set(err, SVM_API_TIMEOUT,
					      "firecracker's API socket %s is there but its API did not "
					      "answer within %d ms (-o readytimeout)", vm->sock,
					      s->opt.ready_timeout_ms);
			else
				svm_error_set(err, SVM_SOCKET_TIMEOUT,
					      "firecracker did not make its API socket %s within %d ms "
					      "(-o readytimeout)", vm->sock, s->opt.ready_timeout_ms);
			break;
		}
		if (exists) {
			/* bound, but not listening yet: no further inotify event will
			 * come, and listen() follows bind() within microseconds. Again
			 * after 50 us, doubling up to 1 ms: a fixed 1 ms pause cost a
			 * start 1 ms whenever inotify woke it between the two. */
			refused_pause_us = refused_pause_us ? refused_pause_us * 2 : 50;
			if (refused_pause_us > 1000)
				refused_pause_us = 1000;
			usleep(refused_pause_us);
		} else if (watching == 1) {
			/* the jail's root: woken when the jailer made run/ in it (or
			 * anything else), then watching run/ itself, and looking again
			 * before sleeping (the socket may be there already) */
			dirwatch_sleep(s->dirwatch, &dw, 5);
			dirwatch_end(s->dirwatch, &dw);
			watching = watch_socket_dir(vm, &dw);
		} else {
			dirwatch_sleep(s->dirwatch, &dw, watching ? 5 : 1);
		}
	}
	dirwatch_end(s->dirwatch, &dw);
	if (rc == 0)
		vm->ready_ns = svm_now_ns();
	return rc;
}
