/* Firecracker's logger and metrics, as seen from outside: log lines
 * "TIMESTAMP [ID:THREAD(:LEVEL)(:ORIGIN)] message" written to the log file
 * or, with no logger, to stdout (the guest console, as Firecracker does);
 * metrics as one JSON object per line.
 *
 * Files are opened as Firecracker opens them (open_file_nonblock):
 * O_RDWR|O_CREAT|O_NONBLOCK, no O_TRUNC, no O_APPEND. O_RDWR on a FIFO never
 * blocks and never fails for want of a reader, and O_NONBLOCK means a full
 * FIFO drops lines instead of stalling the VMM. */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_id = "anonymous-instance";
static enum log_level max_level = LVL_INFO;
static bool show_level, show_origin;
static int log_fd = -1;
static int met_fd = -1;

void log_configure_id(const char *id) { log_id = id; }
void log_set_format(bool lvl, bool origin)
{
	show_level = show_level || lvl;
	show_origin = show_origin || origin;
}
void log_set_level_value(enum log_level l) { max_level = l; }

/* Level names as Firecracker's LevelFilter accepts them (case-insensitive). */
int log_set_level(const char *s, enum log_level *out)
{
	static const struct { const char *n; enum log_level l; } t[] = {
		{"off", LVL_OFF}, {"error", LVL_ERROR}, {"warning", LVL_WARN}, {"warn", LVL_WARN},
		{"info", LVL_INFO}, {"debug", LVL_DEBUG}, {"trace", LVL_TRACE},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcasecmp(s, t[i].n) == 0) {
			*out = t[i].l;
			return 0;
		}
	return -1;
}

int log_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

static void timestamp(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ld", ts.tv_nsec);
}

void log_msg(enum log_level l, const char *thread, const char *file, int line, const char *fmt, ...)
{
	static const char *names[] = {"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
	if (l > max_level)
		return;
	char ts[48], lvl[16] = "", origin[128] = "", msg[4096];
	timestamp(ts, sizeof ts);
	if (show_level)
		snprintf(lvl, sizeof lvl, ":%s", names[l]);
	if (show_origin)
		snprintf(origin, sizeof origin, ":%s:%d", file, line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *out = xasprintf("%s [%s:%s%s%s] %s\n", ts, log_id, thread, lvl, origin, msg);
	if (!out)
		return;
	if (log_fd >= 0) {
		/* One write per line, as Firecracker does; a full FIFO loses it. */
		ssize_t r = write(log_fd, out, strlen(out));
		(void)r;
	} else {
		console_write(out, strlen(out));
	}
	free(out);
}

/* ---- metrics ---------------------------------------------------------- */

static json_t *counters; /* group -> key -> count, merged into each line */
static long long t0_us;

int metrics_open(const char *path)
{
	if (met_fd >= 0)
		return -EALREADY; /* "Reinitialization of metrics not allowed." */
	int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	met_fd = fd;
	return 0;
}

bool metrics_enabled(void) { return met_fd >= 0; }

void metrics_count(const char *group, const char *key)
{
	if (!counters)
		counters = json_object();
	json_t *g = json_object_get(counters, group);
	if (!g) {
		g = json_object();
		json_object_set_new(counters, group, g);
	}
	json_t *v = json_object_get(g, key);
	json_object_set_new(g, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

/* A few groups with Firecracker's key names; counters are reset after each
 * write, as Firecracker's SharedIncMetrics report deltas. */
static json_t *skeleton(void)
{
	static const char *const groups[][12] = {
		{"api_server", "process_startup_time_us", "process_startup_time_cpu_us", NULL},
		{"balloon", "activate_fails", "inflate_count", "stats_updates_count", "deflate_count", "event_fails", NULL},
		{"block", "activate_fails", "cfg_fails", "read_bytes", "write_bytes", "read_count", "write_count", "flush_count", NULL},
		{"deprecated_api", "deprecated_http_api_calls", NULL},
		{"get_api_requests", "instance_info_count", "machine_cfg_count", "mmds_count", "vmm_version_count", NULL},
		{"i8042", "error_count", "missed_read_count", "missed_write_count", "read_count", "reset_count", "write_count", NULL},
		{"uart", "error_count", "flush_count", "missed_read_count", "missed_write_count", "read_count", "write_count", NULL},
		{"latencies_us", "full_create_snapshot", "diff_create_snapshot", "load_snapshot", "pause_vm", "resume_vm", NULL},
		{"logger", "missed_metrics_count", "metrics_fails", "missed_log_count", NULL},
		{"mmds", "rx_accepted", "rx_count", "tx_bytes", "tx_count", "tx_errors", NULL},
		{"net", "activate_fails", "cfg_fails", "rx_bytes_count", "rx_packets_count", "tx_bytes_count", "tx_packets_count", NULL},
		{"patch_api_requests", "drive_count", "drive_fails", "network_count", "network_fails", "machine_cfg_count", "machine_cfg_fails", "mmds_count", "mmds_fails", NULL},
		{"put_api_requests", "actions_count", "actions_fails", "boot_source_count", "boot_source_fails", "drive_count", "drive_fails", "logger_count", "logger_fails", "machine_cfg_count", "machine_cfg_fails", NULL},
		{"seccomp", "num_faults", NULL},
		{"vcpu", "exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures", NULL},
		{"vmm", "panic_count", NULL},
		{"signals", "sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill", NULL},
		{"vsock", "activate_fails", "cfg_fails", "conns_added", "conns_killed", "conns_removed", NULL},
		{"entropy", "activate_fails", "entropy_event_fails", "entropy_event_count", "entropy_bytes", NULL},
	};
	json_t *root = json_object();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(root, "utc_timestamp_ms",
			    json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
		json_t *g = json_object();
		for (size_t k = 1; k < 12 && groups[i][k]; k++)
			json_object_set_new(g, groups[i][k], json_integer(0));
		json_object_set_new(root, groups[i][0], g);
	}
	json_object_set_new(json_object_get(root, "api_server"), "process_startup_time_us",
			    json_integer(t0_us));
	return root;
}

void metrics_write(void)
{
	if (met_fd < 0)
		return;
	json_t *root = skeleton();
	const char *g;
	json_t *gv;
	json_object_foreach(counters, g, gv) {
		json_t *dst = json_object_get(root, g);
		if (dst)
			json_object_update(dst, gv);
	}
	json_object_clear(counters ? counters : (counters = json_object()));
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return;
	size_t n = strlen(s);
	s = realloc(s, n + 2);
	s[n] = '\n';
	ssize_t r = write(met_fd, s, n + 1);
	(void)r;
	free(s);
}
