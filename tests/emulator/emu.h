/* fc-emulator: a test double of Firecracker's API process (DESIGN §5).
 * One process, one thread: MHD runs in "external epoll" mode inside the
 * main loop, so an emulated VM costs one small process and nothing more. */
#ifndef FC_EMU_H
#define FC_EMU_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version we claim to be: the API contract we follow is v1.15.1. */
#define EMU_FC_VERSION "1.15.1"
/* The second line of --version: the word smartvmfs looks for (core/svm.c) */
#define EMU_VERSION_NOTE "fc-emulator: the smartvmfs test double of Firecracker's API (boots no guest)"
#define EMU_DEFAULT_PAYLOAD 51200

/* Firecracker's exit codes (vmm::FcExitCode). */
enum { FC_EXIT_OK = 0, FC_EXIT_GENERIC = 1, FC_EXIT_BAD_CONFIG = 152, FC_EXIT_ARG_PARSING = 153,
       FC_EXIT_SIGPIPE = 155 };

enum vm_state { VM_NOT_STARTED, VM_RUNNING, VM_PAUSED };

/* Log levels, ordered as Rust's log crate orders them. */
enum log_level { LVL_OFF, LVL_ERROR, LVL_WARN, LVL_INFO, LVL_DEBUG, LVL_TRACE };

struct emu_args {
	const char *api_sock, *id, *level, *log_path, *metrics_path, *config_file,
		*seccomp_filter, *metadata, *module;
	bool show_level, show_log_origin, boot_timer, no_seccomp, no_api;
	size_t payload_limit, mmds_limit;
};

/* Knobs read from the guest's boot arguments (the only way tests steer us). */
struct guest_knobs {
	bool nocad, exit_after_line;
	bool balloon_driver; /* emu.balloon: the guest drives its virtio-balloon */
	long crash_ms, crash_exit, crash_signal, boot_ms; /* -1: not given */
};

/* Everything the emulated VMM knows. Configuration lives in jansson objects
 * shaped exactly like Firecracker's GET /vm/config output, so that output and
 * the snapshot file are plain dumps. */
struct vmm {
	const char *id;
	enum vm_state state;
	bool boot_path;         /* a boot-specific resource was configured */
	bool restored;          /* came from /snapshot/load */
	size_t mmds_limit;
	json_t *boot_source;    /* object or NULL */
	json_t *machine;        /* object, always */
	json_t *drives, *nets;  /* arrays */
	json_t *vsock, *balloon, *entropy, *mmds_config, *cpu_config, *logger, *metrics;
	json_t *pmem;           /* array of virtio-pmem devices */
	json_t *hotplug;        /* the memory hotplug region (virtio-mem), or NULL */
	json_t *mmds;           /* the data store; NULL = never touched */
	int vsock_fd;
	struct guest_knobs knobs;
	bool metrics_on;
};

extern struct vmm g_vmm;

/* args.c */
int args_parse(int argc, char **argv, struct emu_args *a);

/* logger.c */
void log_configure_id(const char *id);
int log_set_level(const char *s, enum log_level *out);
void log_set_format(bool show_level, bool show_origin);
void log_set_level_value(enum log_level l);
int log_open(const char *path);          /* returns 0 or -errno */
void log_msg(enum log_level l, const char *thread, const char *file, int line,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define LOGI(th, ...) log_msg(LVL_INFO, th, __FILE__, __LINE__, __VA_ARGS__)
#define LOGW(th, ...) log_msg(LVL_WARN, th, __FILE__, __LINE__, __VA_ARGS__)
#define LOGE(th, ...) log_msg(LVL_ERROR, th, __FILE__, __LINE__, __VA_ARGS__)
int metrics_open(const char *path);      /* 0, -errno, or -EALREADY */
bool metrics_enabled(void);
void metrics_write(void);
void metrics_count(const char *group, const char *key);

/* console.c: the guest serial port on stdin/stdout */
void console_init(void);
void console_write(const void *buf, size_t n);
int console_out_fd(void);                /* fd to poll for POLLOUT, or -1 */
bool console_pending(void);
void console_flush_some(void);
void console_drain(int timeout_ms);
int console_on_stdin(void);
void guest_parse_knobs(const char *boot_args, struct guest_knobs *k);
void guest_boot(void);                   /* guest starts running */
void guest_ctrl_alt_del(void);
void guest_resumed(void);
void guest_reset(void) __attribute__((noreturn));
void guest_crash(void) __attribute__((noreturn));

/* serde.c: strict decoding with serde_json-like error texts */
struct schema;
extern const struct schema S_PMEM, S_HOTPLUG, S_HOTPLUG_UPDATE;
extern const struct schema S_MACHINE, S_MACHINE_UPDATE, S_BOOT, S_DRIVE, S_DRIVE_UPDATE, S_NET,
	S_NET_UPDATE, S_VSOCK, S_BALLOON, S_BALLOON_UPDATE, S_BALLOON_STATS, S_MMDS_CONFIG,
	S_ENTROPY, S_SERIAL, S_LOGGER, S_METRICS, S_ACTION, S_VM, S_SNAP_CREATE, S_SNAP_LOAD,
	S_CPU_CONFIG;
/* Decode body against schema; on error returns NULL and a malloc'ed message
 * ("missing field `x` at line 1 column 2"). JSON_VALUE = any JSON value. */
json_t *serde_decode(const char *body, size_t len, const struct schema *s, char **err);
json_t *serde_value(const char *body, size_t len, char **err);

/* vmm.c: the API operations; each returns an HTTP status, sets *out (body
 * object for 200) or *fault (message for errors). */
struct api_result {
	int status;        /* 200, 204, 400, 413 */
	json_t *body;      /* for 200 */
	char *fault;       /* for errors: fault_message */
	bool deprecated;   /* "Deprecation: true" header */
	bool parse_error;  /* error came from request parsing (logged differently) */
	char *log;         /* for parse errors: Firecracker's Debug form of the error */
};
void vmm_init(const char *id, size_t mmds_limit);
void api_dispatch(const char *method, const char *url, const char *body, size_t len,
		  bool has_body, struct api_result *r);
void api_fail(struct api_result *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_t *vmm_full_config(void);
int vmm_apply_config_file(const char *path, char **err);
void vmm_start_timers_after_boot(void);

/* vsock_host.c: serves the vsock device's host socket once the guest runs */
void vsock_host_start(void);
/* An initrd given at boot (fd) that holds the project's agent (a newc cpio with
 * /smartvm-agent, as assets/agent makes it): the emulated guest runs that one. */
void vsock_agent_from_initrd(int fd);

/* snapshot.c */
int snapshot_create(const json_t *params, char **err);
int snapshot_load(const json_t *params, char **err);

/* http.c */
int http_listen(const char *path, int *fd_out, char **err);
int http_start(int listen_fd, size_t payload_limit);
int http_epoll_fd(void);
void http_run(void);
long long http_timeout_ms(void);

/* main.c: timers the VMM asks for */
void main_arm_crash_timer(long ms);
void main_arm_reset_timer(long ms);
void main_arm_metrics_timer(void);

char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
