/* The emulated guest and its serial console.
 *
 * stdout is the guest's serial output. Real Firecracker writes it blocking;
 * the emulator must never let a slow reader stall its API, so output goes
 * through a bounded buffer and a non-blocking descriptor of its own: for a
 * pipe, FIFO or tty we reopen /proc/self/fd/1, which yields a fresh open file
 * description, so O_NONBLOCK does not leak to whoever shares our stdout.
 *
 * The guest behaves like the project's tiny guest (assets/guest): it prints
 * one line, echoes its serial input, and resets (the VMM exits 0) on `q` or
 * Ctrl-Alt-Del. Tests steer it only through boot arguments. */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

#define OUT_CAP (1u << 20) /* beyond this, output is dropped like a stalled UART */

static int out_fd = 1;
static bool out_is_socket;
static char *buf;
static size_t len, cap;

void console_init(void)
{
	struct stat st;
	if (fstat(1, &st) < 0) {
		out_fd = -1;
		return;
	}
	if (S_ISREG(st.st_mode))
		return; /* regular files never block */
	if (S_ISSOCK(st.st_mode)) {
		out_is_socket = true; /* send(MSG_DONTWAIT) per write */
		return;
	}
	int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0)
		out_fd = fd;
}

static ssize_t out_write(const char *p, size_t n)
{
	if (out_is_socket)
		return send(out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(out_fd, p, n);
}

void console_flush_some(void)
{
	while (len > 0 && out_fd >= 0) {
		ssize_t w = out_write(buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			len = 0; /* EPIPE and friends: nobody will ever read it */
			return;
		}
		memmove(buf, buf + w, len - (size_t)w);
		len -= (size_t)w;
	}
}

void console_write(const void *p, size_t n)
{
	if (out_fd < 0)
		return;
	if (len + n > cap) {
		size_t want = len + n > OUT_CAP ? OUT_CAP : len + n;
		if (want < 4096)
			want = 4096;
		if (want > cap) {
			char *nb = realloc(buf, want);
			if (!nb)
				return;
			buf = nb;
			cap = want;
		}
	}
	if (len + n > cap)
		n = cap - len;
	memcpy(buf + len, p, n);
	len += n;
	console_flush_some();
}

bool console_pending(void) { return len > 0; }
int console_out_fd(void) { return out_fd; }

/* Before exiting, give the reader a bounded chance to take what is left. */
void console_drain(int timeout_ms)
{
	while (len > 0 && timeout_ms > 0) {
		struct pollfd p = {.fd = out_fd, .events = POLLOUT};
		if (poll(&p, 1, 50) > 0)
			console_flush_some();
		timeout_ms -= 50;
	}
}

/* ---- the guest ------------------------------------------------------- */

static bool reset_pending; /* Ctrl-Alt-Del arrived while paused */

void guest_parse_knobs(const char *args, struct guest_knobs *k)
{
	k->nocad = k->exit_after_line = k->balloon_driver = false;
	k->crash_ms = k->crash_exit = k->crash_signal = k->boot_ms = -1;
	if (!args)
		return;
	char *copy = strdup(args), *save = NULL;
	for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		long v;
		if (strcmp(t, "svmguest.nocad") == 0)
			k->nocad = true;
		else if (strcmp(t, "svmguest.exit") == 0)
			k->exit_after_line = true;
		else if (strcmp(t, "emu.balloon") == 0)
			k->balloon_driver = true;
		else if (sscanf(t, "emu.crash_ms=%ld", &v) == 1)
			k->crash_ms = v;
		else if (sscanf(t, "emu.crash_exit=%ld", &v) == 1)
			k->crash_exit = v;
		else if (sscanf(t, "emu.crash_signal=%ld", &v) == 1)
			k->crash_signal = v;
		else if (sscanf(t, "emu.boot_ms=%ld", &v) == 1)
			k->boot_ms = v;
	}
	free(copy);
}

static const char ready_line[] = "smartvm-guest: ready\n";

void guest_boot(void)
{
	console_write(ready_line, sizeof ready_line - 1);
	if (g_vmm.knobs.exit_after_line)
		main_arm_reset_timer(10); /* let the InstanceStart answer leave first */
}

void guest_ctrl_alt_del(void)
{
	if (g_vmm.knobs.nocad)
		return; /* this guest ignores the keyboard */
	if (g_vmm.state == VM_PAUSED) {
		reset_pending = true;
		return;
	}
	main_arm_reset_timer(5);
}

void guest_resumed(void)
{
	if (reset_pending)
		main_arm_reset_timer(5);
}

/* Serial input: echo, and `q` resets. Only a running guest reads.
 * Returns -1 once the input is closed for good. */
int console_on_stdin(void)
{
	char in[512];
	ssize_t n = read(0, in, sizeof in);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	if (n < 0)
		return 0;
	for (ssize_t i = 0; i < n; i++) {
		if (in[i] == 'q') {
			console_write(in, (size_t)i);
			guest_reset();
		}
	}
	console_write(in, (size_t)n);
	return 0;
}

/* An i8042 reset: Firecracker stops the VMM and exits 0. */
void guest_reset(void)
{
	LOGI("main", "Vmm is stopping.");
	metrics_write();
	LOGI("main", "Firecracker exiting successfully. exit_code=0");
	console_drain(2000);
	_exit(FC_EXIT_OK);
}

/* The VMM dies on its own (emu.crash_ms): by a signal or with an exit code. */
void guest_crash(void)
{
	console_drain(200);
	if (g_vmm.knobs.crash_signal > 0) {
		int sig = (int)g_vmm.knobs.crash_signal;
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		kill(getpid(), SIGKILL); /* the signal was not deadly: die anyway */
	}
	int code = g_vmm.knobs.crash_exit >= 0 ? (int)g_vmm.knobs.crash_exit : FC_EXIT_GENERIC;
	LOGE("main", "Firecracker exiting with error. exit_code=%d", code);
	fprintf(stderr, "Error: RunWithApi(MicroVMStoppedWithError(GenericError))\n");
	_exit(code);
}
