/* fc-emulator: process lifecycle and the one event loop.
 *
 * Startup and exit mirror Firecracker: the same log lines, the same exit
 * codes, the API socket is never unlinked (not even at exit), SIGTERM and
 * SIGINT keep their default action (Firecracker installs no handler for
 * them, so it dies by the signal). Everything then runs on one thread: MHD's
 * epoll fd, the guest's stdin and stdout, and a few timerfds. */
#include "emu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { EV_HTTP = 1, EV_STDIN, EV_STDOUT, EV_METRICS, EV_CRASH, EV_RESET };

static int ep = -1;
static int t_metrics = -1, t_crash = -1, t_reset = -1;
static bool crash_is_fatal_restore;
static bool stdin_polled, stdout_polled, stdin_closed;

static void fail_exit(int code, const char *log, const char *dbg)
{
	if (log)
		LOGE("main", "%s", log);
	if (dbg)
		fprintf(stderr, "Error: %s\n", dbg);
	LOGE("main", "Firecracker exiting with error. exit_code=%d", code);
	console_drain(500);
	exit(code);
}

static int add_timer(int *fd, int tag)
{
	if (*fd < 0) {
		*fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)tag};
		epoll_ctl(ep, EPOLL_CTL_ADD, *fd, &e);
	}
	return *fd;
}

static void arm(int fd, long ms, long period_ms)
{
	struct itimerspec it = {
		.it_value = {ms / 1000, (ms % 1000) * 1000000L + (ms == 0)},
		.it_interval = {period_ms / 1000, (period_ms % 1000) * 1000000L},
	};
	timerfd_settime(fd, 0, &it, NULL);
}

void main_arm_crash_timer(long ms)
{
	if (ms == -2) { /* a failed snapshot load ends the process, as in Firecracker */
		crash_is_fatal_restore = true;
		ms = 20;
	}
	arm(add_timer(&t_crash, EV_CRASH), ms, 0);
}

void main_arm_reset_timer(long ms) { arm(add_timer(&t_reset, EV_RESET), ms, 0); }

/* Firecracker writes metrics at boot, then every 60 s. */
void vmm_start_timers_after_boot(void)
{
	metrics_write();
	arm(add_timer(&t_metrics, EV_METRICS), 60000, 60000);
}

static void drain_timer(int fd)
{
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof n);
	(void)r;
}

/* Interest in stdin only while the guest runs (a paused guest reads nothing),
 * in stdout only while output is pending. Unwanted fds are removed from the
 * epoll set, not masked: epoll reports EPOLLHUP/EPOLLERR even with an empty
 * mask, and a closed pipe would then spin the loop. Regular files cannot be
 * polled (EPERM) and never need to be. */
static void set_interest(int fd, bool *polled, bool want, uint32_t events, uint32_t tag)
{
	if (want == *polled)
		return;
	if (want) {
		struct epoll_event e = {.events = events, .data.u32 = tag};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
	} else {
		epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	}
	*polled = want;
}

static void update_interest(void)
{
	set_interest(0, &stdin_polled, !stdin_closed && g_vmm.state == VM_RUNNING, EPOLLIN, EV_STDIN);
	if (console_out_fd() >= 0)
		set_interest(console_out_fd(), &stdout_polled, console_pending(), EPOLLOUT, EV_STDOUT);
}

static void loop(void)
{
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = EV_HTTP};
	epoll_ctl(ep, EPOLL_CTL_ADD, http_epoll_fd(), &e);
	for (;;) {
		update_interest();
		long long t = http_timeout_ms();
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, t < 0 || t > 60000 ? -1 : (int)t);
		http_run();
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case EV_STDIN:
				/* At EOF a pipe stays readable: stop watching it, or spin. */
				if (g_vmm.state == VM_RUNNING && console_on_stdin() < 0)
					stdin_closed = true; /* removed at the next update_interest */
				break;
			case EV_STDOUT:
				console_flush_some();
				break;
			case EV_METRICS:
				drain_timer(t_metrics);
				metrics_write();
				break;
			case EV_CRASH:
				drain_timer(t_crash);
				if (crash_is_fatal_restore)
					fail_exit(FC_EXIT_GENERIC, "Failed to build MicroVM: Restore.",
						  "RunWithApi(BuildMicroVmError(Restore))");
				guest_crash();
			case EV_RESET:
				drain_timer(t_reset);
				guest_reset();
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct emu_args a = {0};
	console_init();
	signal(SIGPIPE, SIG_IGN); /* Firecracker only counts SIGPIPE; EPIPE is handled */

	int rc = args_parse(argc, argv, &a);
	if (rc != 0) {
		fflush(stdout);
		if (rc > 0)
			LOGI("main", "Firecracker exiting successfully. exit_code=0");
		console_drain(500);
		return rc > 0 ? 0 : -rc;
	}
	log_configure_id(a.id);
	if (a.level) {
		enum log_level l;
		if (log_set_level(a.level, &l) < 0) {
			char *m = xasprintf("Invalid value for logger level: Failed to parse string to level filter: %s.Possible values: [Error, Warning, Info, Debug]", a.level);
			char *d = xasprintf("InvalidLogLevel(LevelFilterFromStrError(\"%s\"))", a.level);
			fail_exit(FC_EXIT_BAD_CONFIG, m, d);
		}
		log_set_level_value(l);
	}
	log_set_format(a.show_level, a.show_log_origin);
	if (a.log_path) {
		int e = log_open(a.log_path);
		if (e < 0) {
			char *m = xasprintf("Failed to initialize logger: Failed to open target file: %s (os error %d)", strerror(-e), -e);
			fail_exit(FC_EXIT_GENERIC, m, "LoggerInitialization(LoggerUpdateError(...))");
		}
	}
	LOGI("main", "Running Firecracker v%s", EMU_FC_VERSION);

	vmm_init(a.id, a.mmds_limit);
	if (a.log_path)
		g_vmm.logger = json_pack("{s:s,s:s,s:b,s:b}", "log_path", a.log_path, "level",
					 a.level ? a.level : "Info", "show_level", a.show_level,
					 "show_log_origin", a.show_log_origin);
	if (a.metrics_path) {
		int e = metrics_open(a.metrics_path);
		if (e < 0) {
			char *m = xasprintf("Failed to initialize metrics: Cannot initialize the metrics system due to bad user input: %s (os error %d)", strerror(-e), -e);
			fail_exit(FC_EXIT_GENERIC, m, "MetricsInitialization(InitializationFailure(...))");
		}
		g_vmm.metrics = json_pack("{s:s}", "metrics_path", a.metrics_path);
	}
	if (a.metadata) {
		json_error_t je;
		g_vmm.mmds = json_load_file(a.metadata, JSON_DECODE_ANY, &je);
		if (!g_vmm.mmds) {
			LOGE("main", "Firecracker panicked at src/firecracker/src/main.rs:0:0:\nUnable to open or read from the mmds content file");
			console_drain(200);
			abort();
		}
		LOGI("main", "Successfully added metadata to mmds from file");
	}
	if (a.no_api)
		fail_exit(FC_EXIT_GENERIC, "fc-emulator: --no-api is not emulated", "NoApiNotEmulated");

	int lfd;
	char *err = NULL;
	int e = http_listen(a.api_sock, &lfd, &err);
	if (e == -EADDRINUSE) {
		char *m = xasprintf("RunWithApiError error: Failed to open the API socket at: %s. Check that it is not already used.", a.api_sock);
		char *d = xasprintf("RunWithApi(FailedToBindSocket(\"%s\"))", a.api_sock);
		fail_exit(FC_EXIT_GENERIC, m, d);
	} else if (e < 0) {
		char *m = xasprintf("RunWithApiError error: Failed to bind and run the HTTP server: IO error: %s", err);
		char *d = xasprintf("RunWithApi(FailedToBindAndRunHttpServer(IOError(Os { code: %d, message: \"%s\" })))", -e, strerror(-e));
		fail_exit(FC_EXIT_GENERIC, m, d);
	}
	LOGI("main", "Listening on API socket (\"%s\").", a.api_sock);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (http_start(lfd, a.payload_limit) < 0)
		fail_exit(FC_EXIT_GENERIC, "fc-emulator: cannot start the HTTP server", "HttpServer");
	LOGI("fc_api", "API server started.");

	if (a.config_file && vmm_apply_config_file(a.config_file, &err) < 0) {
		char *m = xasprintf("RunWithApiError error: Failed to build MicroVM from Json: %s", err);
		fail_exit(FC_EXIT_GENERIC, m, "RunWithApi(BuildFromJson(...))");
	}
	loop();
	return 0;
}
