/*
 * smartvm.h - the orchestration core of smartvmfs: Firecracker microVMs as objects.
 *
 * This is the one public header of libsmartvm. It has no FUSE in it: the
 * filesystem (fs/) is one front end, a test program is another.
 *
 * Conventions
 *  - Every fallible call takes an `svm_error *err` (may be NULL) and returns 0 on
 *    success, -1 on failure with err filled in.
 *  - Strings returned as `char *` are malloc'd and belong to the caller (free()).
 *    Strings returned as `const char *` belong to the object and live as long as it.
 *  - svm_vm objects are reference counted. svm_get_vm() and svm_create_vm() return
 *    a new reference; drop it with svm_vm_unref(). A removed VM stays a valid object
 *    (state reads keep working, verbs answer INVALID_STATE) until its last reference
 *    goes.
 *  - Callbacks (svm_options.on_event, svm_done_fn) run on core threads. They must
 *    not block and must not call back into a verb of the same VM synchronously.
 *    svm_done_fn and the events of a VM (svm_event.vm set) come holding none of
 *    the core's locks; an event of no VM (the daemon log) may come under them,
 *    so its handler only queues.
 */
#ifndef SMARTVM_H
#define SMARTVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

/* The seed's SmartVMError codes, then the few more DESIGN §3's errno table needs. */
typedef enum svm_code {
	SVM_OK = 0,
	SVM_INVALID_STATE,
	SVM_INVALID_CONFIG,
	SVM_SOCKET_TIMEOUT,
	SVM_API_TIMEOUT,
	SVM_SOCKET_REQUEST_FAILED,
	SVM_API_ERROR,
	SVM_BINARY_NOT_FOUND,
	SVM_DOWNLOAD_FAILED,
	SVM_VERSION_FETCH_FAILED,
	SVM_BASE_IMAGE_RESOLVE_FAILED,
	SVM_BASE_IMAGE_MANIFEST_FAILED,
	SVM_BASE_IMAGE_PREPARE_FAILED,
	SVM_INVALID_BASE_IMAGE_MANIFEST,
	SVM_INVALID_BASE_IMAGE_CACHE_LIMIT,
	SVM_INVALID_SUBNET,
	SVM_INVALID_INTERFACE_NAME,
	SVM_IP_EXHAUSTED,
	SVM_BRIDGE_SETUP_FAILED,
	SVM_TAP_CREATE_FAILED,
	SVM_ROOTFS_CREATE_FAILED,
	SVM_ROOTFS_CLONE_FAILED,
	SVM_START_FAILED,
	SVM_NO_CLIENT,
	/* beyond the seed */
	SVM_INVALID_ARGUMENT, /* unknown verb, bad arguments          -> EINVAL */
	SVM_NOT_FOUND,        /* missing kernel/rootfs/drive/VM       -> ENOENT */
	SVM_NO_SPACE,         /* no room in the runtime dir           -> ENOSPC */
	SVM_PERMISSION,       /* /dev/kvm, netlink, /dev/net/tun, ... -> EACCES */
	SVM_TOO_LARGE,        /* MMDS or config over its limit (413)  -> EFBIG  */
	SVM_NAME_TOO_LONG,    /* id or socket path too long           -> ENAMETOOLONG */
	SVM_EXISTS,           /* VM or bundle exists                  -> EEXIST */
	SVM_INTERRUPTED,      /* cancelled by the caller, rolled back -> EINTR  */
	SVM_QUOTA,            /* a user's quota (max_vms, ...) reached -> EDQUOT */
	SVM_CODE_COUNT
} svm_code;

typedef struct svm_error {
	svm_code code;
	int http_status;    /* Firecracker's HTTP status for API errors, else 0 */
	char message[1024]; /* one line, no trailing newline; for API errors it
	                       carries Firecracker's fault_message */
} svm_error;

/* "INVALID_STATE", ... as in the seed. */
const char *svm_code_name(svm_code code);
/* The one mapping of core codes to errno (DESIGN §3). SVM_OK -> 0. */
int svm_code_errno(svm_code code);
/* Fill err (if not NULL) and return -1. printf-style message. */
int svm_error_set(svm_error *err, svm_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void svm_error_clear(svm_error *err);

/* ------------------------------------------------------------- the states */

typedef enum svm_state {
	SVM_CREATED = 0,
	SVM_STARTING,
	SVM_RUNNING,
	SVM_PAUSED,
	SVM_STOPPING,
	SVM_STOPPED,
	SVM_ERROR,
	SVM_STATE_COUNT
} svm_state;

/* "created", "starting", ... */
const char *svm_state_name(svm_state s);

/* ------------------------------------------------------------- the verbs */

typedef enum svm_verb {
	SVM_V_START = 0, /* ()                        created|stopped|error -> running */
	SVM_V_PAUSE,     /* ()                        running -> paused */
	SVM_V_RESUME,    /* ()                        paused -> running */
	SVM_V_STOP,      /* ()                        running|paused -> stopped (graceful) */
	SVM_V_KILL,      /* ()                        starting|running|paused|stopping -> stopped */
	SVM_V_SNAPSHOT,  /* (DIR|NAME [full|diff])    paused: writes DIR/vmstate, DIR/mem, DIR/config.json
	                                              (and copies of staged drives); a NAME (no '/')
	                                              is kept under svm_vm_snapshot_dir();
	                    (STATE MEM [full|diff])   the two files, and STATE.seal */
	SVM_V_RESTORE,   /* (DIR|NAME|STATE MEM [resume]) created|stopped|error -> paused|running */
	SVM_V_BALLOON,   /* (MIB)                     running|paused: PATCH /balloon */
	SVM_V_DRIVE,     /* (ID PATH|- [RL-JSON])     running|paused: PATCH /drives/ID path_on_host
	                                              (- keeps it) and the camelCase rate limiter */
	SVM_V_NETIF,     /* (ID JSON)                 running|paused: PATCH /network-interfaces/ID,
	                                              JSON is {"rxRateLimiter":…, "txRateLimiter":…} */
	SVM_V_METADATA,  /* (JSON)                    running|paused: PATCH /mmds (merge) */
	SVM_V_FLUSH_METRICS, /* ()                    running|paused: FlushMetrics */
	SVM_V_HINTING,   /* (start [ack]|stop)        running|paused: PATCH /balloon/hinting/start|stop
	                                              (a free page hinting run of the balloon) */
	SVM_V_HOTPLUG,   /* (MIB)                     running|paused: PATCH /hotplug/memory
	                                              (memory of the hotplug region to plug) */
	SVM_VERB_COUNT
} svm_verb;

/* ------------------------------------------------- the commands of ctl files
 * Every ctl file (a VM's ctl, /ctl, /images/ctl, /net/ctl) is a table of
 * commands and the one parser below (Plan 9's Cmdtab and parsecmd/lookupcmd):
 * a new command is one enum value, one row and one handler. */

enum {
	SVM_CF_REST = 1u << 0,    /* the last argument takes the rest of the line (JSON) */
	SVM_CF_BOOTS = 1u << 1,   /* starts a VMM: cancellable while starting, timed in the log */
	SVM_CF_SECRET = 1u << 2,  /* the arguments are never echoed (MMDS contents) */
	SVM_CF_PATH_IF_SLASH = 1u << 3, /* path_arg is a host path only with a '/' (else a name) */
	SVM_CF_DASH_KEEPS = 1u << 4,    /* path_arg "-" names no file (keep the one there) */
};

typedef struct svm_cmd {
	int index;             /* the command's value in its table's enum (svm_verb, ...) */
	const char *name;      /* "start", ... : the first word of a line */
	int min_args, max_args;
	unsigned valid_states; /* VM verbs: bit (1u << svm_state) per state it is valid in */
	unsigned flags;        /* SVM_CF_* */
	int path_arg;          /* the argument that names a host path (a caller's rule
	                          checks it), or -1 */
	const char *usage;     /* "snapshot DIR [full|diff]" */
} svm_cmd;

typedef struct svm_cmdtab {
	const svm_cmd *rows;
	int n;
} svm_cmdtab;

#define SVM_MAX_ARGS 4
typedef struct svm_cmdline {
	const svm_cmd *cmd;
	int argc;
	const char *argv[SVM_MAX_ARGS]; /* into the caller's scratch copy of the line */
} svm_cmdline;

/* The longest line a ctl file takes: a `metadata JSON` line carries up to
 * Firecracker's MMDS limit (51200 bytes); nothing valid comes near this. */
#define SVM_CMD_LINE_MAX 65536
/* Parses one trimmed line: the first word names the command, then up to its
 * max_args blank-separated arguments (with SVM_CF_REST the last one takes the
 * rest of the line, blanks and all). scratch is a modifiable copy of line (as
 * long). Returns 0 with out filled, or -1 with err (INVALID_ARGUMENT: an unknown
 * command or bad arguments, echoing line and the usage). */
int svm_cmd_parse(const svm_cmdtab *t, const char *line, char *scratch, svm_cmdline *out,
		  svm_error *err);
/* The argument of a parsed line that names a host path, or NULL. */
const char *svm_cmd_path(const svm_cmdline *c);
/* Judges the raw bytes of one line (its newline left out) before any C string
 * is made of them: a NUL byte (a C string would end there and the part before
 * it would run) or another control byte (but a tab, or a CR ending the line) is
 * INVALID_ARGUMENT, a line over SVM_CMD_LINE_MAX is TOO_LARGE. */
int svm_cmd_check_bytes(const char *bytes, size_t len, svm_error *err);
/* A line as an error file echoes it (malloc'd, NULL on ENOMEM): control bytes as
 * \xHH so it stays one line, at most SVM_CMD_ECHO_MAX bytes then "... (N bytes)";
 * the arguments of a SVM_CF_SECRET command of t are left out. */
#define SVM_CMD_ECHO_MAX 200
char *svm_cmd_echo(const svm_cmdtab *t, const char *bytes, size_t len);

/* The VM verbs: SVM_VERB_COUNT rows, indexed by svm_verb. */
typedef svm_cmd svm_verb_info;
const svm_cmdtab *svm_vm_commands(void);
const svm_verb_info *svm_verb_table(void);
/* Bitmask (1u << verb) of the verbs valid in state s. */
unsigned svm_verbs_valid_in(svm_state s);

typedef struct svm_request {
	svm_verb verb;
	int argc;
	const char *argv[SVM_MAX_ARGS]; /* the verb's arguments (not the verb itself);
	                                   copied by the core before an async submit returns */
} svm_request;

/* ------------------------------------------------------------ the events */

typedef enum svm_event_kind {
	SVM_EV_STATE,    /* the state changed; text: "state running" */
	SVM_EV_EXIT,     /* the VMM exited; text: "exit 0" | "exit 1" | "signal 9" */
	SVM_EV_CONSOLE,  /* guest console grew (coalesce: may fire per chunk) */
	SVM_EV_LOG,      /* Firecracker's log grew */
	SVM_EV_METRICS,  /* a new metrics line arrived */
	SVM_EV_CONFIG,   /* config.json or metadata changed */
	SVM_EV_ERROR,    /* a line was added to the VM's error file */
	SVM_EV_REMOVED,  /* the VM was removed from the orchestrator */
	SVM_EV_ROOT_ERROR, /* vm == NULL: a line was added to the root error file */
	SVM_EV_DAEMON_LOG, /* vm == NULL: the daemon log grew */
	SVM_EV_IMAGES,     /* vm == NULL: text = a bundle id whose files changed (status,
	                      added, removed), or NULL when the list, the presets or the
	                      /images/ctl read-out changed */
} svm_event_kind;

typedef struct svm_vm svm_vm;
typedef struct svm svm;

typedef struct svm_event {
	svm_event_kind kind;
	svm_vm *vm;       /* borrowed for the call; NULL for root events */
	uint64_t seq;     /* the VM's event sequence number (STATE and EXIT events) */
	const char *text; /* one line, no newline (STATE, EXIT), else NULL */
} svm_event;

typedef void (*svm_event_fn)(void *ud, const svm_event *ev);

/* ---------------------------------------------------------- orchestrator */

typedef struct svm_options {
	const char *data_dir;      /* default /tmp/.smartvm */
	const char *runtime_dir;   /* default /dev/shm/.smartvm/runtime, else $TMPDIR/.smartvm/runtime */
	const char *image_cache;   /* default DATADIR/base-images */
	const char *firecracker;   /* path to the VMM binary (required until binary download exists) */
	const char *fc_version;    /* Firecracker version to use; NULL = what the binary says */
	const char *arch;          /* default: the host's (x86_64 | aarch64) */
	const char *bridge;        /* default svbr0 */
	const char *subnet;        /* default 172.30.0.0/24 */
	const char *manifest;      /* hosted base-image manifest URL or path */
	const char *dns;           /* nameserver added to the guests' ip= argument */
	const char *releases_url;  /* Firecracker releases page ("…/releases": latest, download/V/…);
	                              default GitHub's. Borrowed, not copied: must outlive the svm */
	const char *ci_bucket_url; /* Firecracker CI bucket; default https://s3.amazonaws.com/spec.ccfc.min.
	                              Borrowed, not copied: must outlive the svm */
	unsigned max_images;       /* default 2 */
	/* Per-user quotas, for owners other than root and quota_exempt (0: none):
	 * VMs defined, VMs starting/running/paused, and their memory in MiB. */
	unsigned max_vms, max_running, max_mem_mib;
	unsigned max_data_mib;     /* the same: named snapshots in DATADIR/snapshots */
	uid_t quota_exempt;        /* the mount's owner */
	bool no_ephemeral;         /* do not stage writable drives */
	const char *jailer;        /* Firecracker's jailer: every VMM runs under it, chrooted, with
	                              a uid of its own (docs/jailer.md); NULL: unjailed. Borrowed */
	const char *jail_uids;     /* "FROM-TO": the jailed uids (and gids); NULL: 900000000-900065535.
	                              Borrowed */
	bool no_jailer;            /* unjailed, whatever jailer says */
	size_t console_size;       /* console bytes kept per VM, default 1 MiB */
	int stop_timeout_ms;       /* stop: wait for the guest after Ctrl-Alt-Del, default 5000 */
	int kill_timeout_ms;       /* after SIGTERM, before SIGKILL, default 2000 */
	int ready_timeout_ms;      /* VMM spawn to API socket answering, default 5000 */
	int api_timeout_ms;        /* one API request, default 5000 */
	const char *default_config; /* JSON document a new VM starts with; NULL = built-in */
	bool log_stderr;           /* also copy daemon log lines to stderr */
	bool no_adopt;             /* a killed daemon's VMs are all killed and collected,
	                              never re-adopted (docs/restart.md) */
	bool persist;              /* VM definitions outlast the mount: DATADIR/vms/NAME.json */
	svm_event_fn on_event;     /* may be NULL */
	void *event_ud;
	/* Called at every start and restore, when nothing is built yet, with the
	 * config about to be used (camelCase JSON text: a restore's is the one its
	 * snapshot holds) and the VM's owner: a front end's own rule for host paths
	 * (allow_other). Non-zero, with err set, refuses the start. May be NULL. */
	int (*check_config)(void *ud, uid_t owner, const char *json, size_t len, svm_error *err);
	void *check_ud;
} svm_options;

/* Creates the orchestrator: fills defaults, creates the runtime dir (0700), raises
 * RLIMIT_NOFILE, starts the event loop. Fails ENAMETOOLONG-style when the runtime dir
 * is too long for a socket path. */
svm *svm_new(const svm_options *opts, svm_error *err);
/* Stops every VM (kill), removes everything the core made, frees. */
void svm_free(svm *s);
/* What a daemon killed without its cleanup left in the runtime dir, under this
 * mount's identity (runtime dir + bridge; docs/restart.md): each VM whose
 * Firecracker still runs and answers GET / is re-adopted (listed again, running
 * or paused, controllable; no_adopt: killed instead), every other VM's runtime
 * dir, TAPs, bridge and rules are collected; one log line per VM says which.
 * Once per orchestrator, by the front end once it is up (one that may still fail
 * to start must not kill the VMs it re-adopted on its way out). Returns 0. */
int svm_adopt(svm *s, svm_error *err);
/* What this mount can still afford now, one "KEY VALUE" per line (malloc'd): how
 * many more VMs its descriptors allow, the descriptors free and the limit, what a
 * VM keeps, the host's available memory and the runtime dir's free bytes. */
char *svm_room_text(svm *s);
/* Descriptors the daemon keeps per running VM (docs/architecture.md says which:
 * the console, log and metrics FIFOs; one more for each of logger.logPath and
 * metrics.metricsPath a config names), and what a start takes on top while it
 * runs. */
#define SVM_FDS_PER_VM 3
#define SVM_FDS_FOR_START 16
/* With opts.persist: makes again the VMs whose definitions an earlier mount kept
 * (name, owner, config, metadata; not those re-adopted), and starts in the
 * background those marked autostart. Call after svm_adopt. Returns how many. */
int svm_persist_restore(svm *s);

/* Effective settings (defaults filled in). */
const svm_options *svm_get_options(const svm *s);
const char *svm_runtime_dir(const svm *s);
/* Where the host paths users name (config.json, verbs, snapshot directories) may
 * lie: absolute directories; NULL (the default) allows any absolute path, an
 * empty list none. Each such path is then opened with its VM owner's rights,
 * beneath its directory (no link or .. out of it), when it is used. Call before
 * serving. */
int svm_set_host_roots(svm *s, const char *const *roots, svm_error *err);
/* Whether path lies under one of those directories as written (a front end's
 * early answer; the open at use decides). */
bool svm_host_path_allowed(const svm *s, const char *path);
/* The Firecracker version this orchestrator will use ("v1.14.2"), without network
 * access; "unknown" if it cannot be told. */
const char *svm_fc_version(svm *s);
/* The binary is fc-emulator, the project's test double of Firecracker's API (its
 * --version says so): VMs start and answer, but no guest boots. */
bool svm_fc_emulated(svm *s);
const char *svm_lib_version(void);

/* Is NAME a valid VM name: [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
bool svm_name_valid(const char *name);

/* Creates a VM (state created) with the default config. name NULL: a generated one.
 * EXISTS if taken, INVALID_ARGUMENT if the name is invalid. Returns a new reference. */
svm_vm *svm_create_vm(svm *s, const char *name, svm_error *err);
/* The same for owner (svm_vm_owner_uid), within its max_vms quota (SVM_QUOTA). */
svm_vm *svm_create_vm_for(svm *s, const char *name, uid_t owner, svm_error *err);
/* A new reference, or NULL if there is no such VM. */
svm_vm *svm_get_vm(svm *s, const char *name);
/* Names of all VMs, in creation order; NULL-terminated malloc'd array of malloc'd
 * strings (free with svm_strv_free). *count gets the number if count != NULL. */
char **svm_list_vms(svm *s, size_t *count);
void svm_strv_free(char **v);
size_t svm_count_vms(svm *s);
/* Count of VMs per state; counts must have SVM_STATE_COUNT slots. */
void svm_count_by_state(svm *s, size_t *counts);
/* Destroys a VM that is not starting, running, paused or stopping (INVALID_STATE
 * then): removes its runtime dir and everything it made. */
int svm_remove_vm(svm *s, const char *name, svm_error *err);
/* Stops every running or paused VM (graceful stop, in parallel). */
int svm_stop_all(svm *s, svm_error *err);
/* Kills every VM and removes every VM's runtime files; VMs stay, in state stopped. */
int svm_cleanup(svm *s, svm_error *err);
/* The seed's cleanup(): every VM killed and removed (its runtime dir, its state
 * and, with persist, its kept definition; named snapshots stay), every TAP, the
 * bridge and the NAT rules removed, ip_forward put back. The orchestrator stays
 * usable: a later start builds the network again. */
int svm_purge(svm *s, svm_error *err);
/* /ctl: one line, "stopall", "cleanup" or "purge" (the three above). */
int svm_root_ctl(svm *s, const char *line, svm_error *err);

/* Runs argv (no shell; argv[0] a path, or a name looked up in PATH) to its end,
 * the one way the core runs a child: stdin /dev/null, stdout and stderr into out
 * (NUL-terminated, at most len - 1 bytes; out NULL: nowhere), killed after
 * timeout_ms without output (-1: no limit). Returns the bytes captured, -1 if it
 * did not run; *status gets its exit status (-1: killed, or not run). */
ssize_t svm_run_capture(char *const argv[], char *out, size_t len, int timeout_ms, int *status);

/* The daemon's own log (ring of recent lines); fs and core both write to it. */
void svm_log(svm *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whole current text of the log ring (malloc'd). */
char *svm_log_text(svm *s);
/* The root error file: the last failures of root-level commands. */
void svm_note_error(svm *s, const char *command, const svm_error *e);
char *svm_error_text(svm *s);

/* ------------------------------------------------------------- networking */

/* Values of /net: "bridge", "subnet", "gateway" (one line each, newline-terminated),
 * "leases" (one line per address in use: ADDRESS MAC TAP VM IFACE). NULL for an
 * unknown name. */
char *svm_net_text(svm *s, const char *name);
/* A /net/ctl line: "tap VM IFACE" (manual mode: a TAP and its lease ahead of time). */
int svm_net_ctl(svm *s, const char *line, svm_error *err);

/* ------------------------------------------------------------- base images */

/* Parses a base-image retention limit (-o maximages): a whole number >= 1, else
 * INVALID_BASE_IMAGE_CACHE_LIMIT. */
int svm_parse_cache_limit(const char *text, unsigned *out, svm_error *err);

/* One /images/ctl line: fetch latest | fetch lts | fetch hosted |
 * fetch manifest PATH-OR-URL [force] | verify ID | prune | evict ID |
 * blank NAME MIB | clone SRC NAME | import kernel|rootfs URL NAME.
 * Blocks for the whole download: call it from a thread of its own. A failure is
 * also kept for svm_images_error_text(). */
/* The mount is ending: every download in progress stops now (it fails,
 * "cancelled", and leaves nothing), and none starts. */
void svm_images_cancel(svm *s);
int svm_images_ctl(svm *s, const char *line, svm_error *err);
/* Adds a line to /images/error (a front end's own refusal of a command). */
void svm_images_note_error(svm *s, const char *command, const svm_error *e);
/* The read side of /images/ctl: what is cached, the presets, the last failure. */
char *svm_images_summary(svm *s);
/* /images/error: the last failures of /images/ctl lines (time, command, reason). */
char *svm_images_error_text(svm *s);
/* Cached bundle ids (and ones downloading), NULL-terminated; svm_strv_free. */
char **svm_images_list(svm *s, size_t *count);
/* A bundle's file: "manifest.json", "bootargs", "rootfstype", "firecracker"
 * (its Firecracker version), "status" (per artifact "DONE/TOTAL" while
 * downloading, then "ready") — newline-terminated text; or the host path a
 * symlink leads to for "kernel" and "rootfs". NULL + err if there is no such
 * bundle or file. */
char *svm_image_file(svm *s, const char *id, const char *file, svm_error *err);
/* The bundle id a preset ("latest", "lts") last resolved to, or NULL. */
char *svm_images_preset(svm *s, const char *preset);
/* Files made by blank/clone/import: kind "kernels" or "rootfs"; names, then
 * svm_images_user_file gives the host path of one. */
char **svm_images_user_files(svm *s, const char *kind, size_t *count);
char *svm_images_user_file(svm *s, const char *kind, const char *name);

/* ------------------------------------------------------------------ a VM */

void svm_vm_ref(svm_vm *vm);
void svm_vm_unref(svm_vm *vm);

const char *svm_vm_name(const svm_vm *vm);
/* Short internal id (letters, digits, dash): --id, runtime dir, socket, TAP names. */
const char *svm_vm_id(const svm_vm *vm);
/* The orchestrator it belongs to. */
svm *svm_vm_owner(const svm_vm *vm);
/* A number that changes whenever this name is reused for a new VM. */
uint64_t svm_vm_generation(const svm_vm *vm);
bool svm_vm_removed(const svm_vm *vm);

/* Lock-free read of the current state. */
svm_state svm_vm_state(const svm_vm *vm);
/* The VMM's pid while it runs, else 0. */
pid_t svm_vm_pid(const svm_vm *vm);
/* The per-VM runtime directory path (exists while the VM exists after first start). */
const char *svm_vm_runtime_dir(const svm_vm *vm);
/* uid that created it (ownership with allow_other); set by the front end. */
uid_t svm_vm_owner_uid(const svm_vm *vm);
/* A front end's own pointer for this VM, NULL until set (fs/ keeps its node there,
 * so finding it costs the same with 10,000 VMs as with 10). The core never uses it. */
void svm_vm_set_front_data(svm_vm *vm, void *data);
void *svm_vm_front_data(const svm_vm *vm);
void svm_vm_set_owner_uid(svm_vm *vm, uid_t uid);
/* Real time (CLOCK_REALTIME ns) of the last change of state, config, metadata. */
int64_t svm_vm_mtime_ns(const svm_vm *vm);

/* Is text (a config.json or metadata document being written in pieces) a prefix
 * of a document that more bytes could still complete? True for jansson's
 * "premature end of input" and for a cut inside a token or a UTF-8 character;
 * false for any other error (which fails the write at once) and past the size
 * limit. */
bool svm_text_incomplete(const char *text, size_t len);
/* Largest config.json or metadata text accepted (bigger: SVM_TOO_LARGE, EFBIG). */
#define SVM_DOC_MAX_BYTES (64 * 1024)

/* Runs a verb and waits for it. */
int svm_vm_do(svm_vm *vm, const svm_request *req, svm_error *err);

/* Asynchronous verbs. done() runs exactly once on a core thread, never inside
 * svm_vm_submit itself; err->code == SVM_OK on success. The returned handle may be
 * passed to svm_op_cancel until done() has started; after done() returns it is gone.
 * NULL (errno set: ENOMEM, EAGAIN) when no thread could be started for it. */
typedef void (*svm_done_fn)(void *ud, const svm_error *err);
typedef struct svm_op svm_op;
svm_op *svm_vm_submit(svm_vm *vm, const svm_request *req, svm_done_fn done, void *ud);
/* (svm_vm_submit returns NULL, and never calls done, only when no thread can be
 * started: the caller answers the request itself.) */
/* Whether an op submitted now would go to a thread already waiting for one: the
 * submit is then a lock and a wake, never a thread to create. A hint (another
 * submit may take that thread first). */
bool svm_op_thread_waiting(void);
/* Asks a running op to stop: a start rolls back and completes with SVM_INTERRUPTED;
 * an op past its point of no return completes normally. Safe to call at any time
 * before done() has returned; idempotent. */
void svm_op_cancel(svm_op *op);

/* Autostart (with opts.persist only, else INVALID_CONFIG): the VM starts when a
 * later mount restores its definition. */
bool svm_vm_autostart(svm_vm *vm);
int svm_vm_set_autostart(svm_vm *vm, bool on, svm_error *err);

/* Resource limits (docs/limits.md), by name: cpu.max, memory.max, pids.max,
 * fsize, nofile. The text ("VALUE\n") in force: the kernel's while a VMM runs,
 * else what the next start gives. A write (one value, the file's syntax) is
 * applied at once to a running or paused VMM and kept in config.json's
 * "limits"; INVALID_ARGUMENT for a bad value, INVALID_CONFIG when the host
 * lacks the cgroup controller, INVALID_STATE while starting or stopping. */
char *svm_vm_limit_text(svm_vm *vm, const char *name, svm_error *err);
int svm_vm_set_limit(svm_vm *vm, const char *name, const char *text, size_t len, svm_error *err);

/* Config: the camelCase JSON document (DESIGN §3 config.json). */
char *svm_vm_config_json(svm_vm *vm);
/* Replaces the config whole after parsing and validating it. Allowed in created,
 * stopped, error (INVALID_STATE otherwise). INVALID_CONFIG with the reason
 * otherwise; on any failure the old config stays. */
int svm_vm_set_config_json(svm_vm *vm, const char *text, size_t len, svm_error *err);

/* MMDS metadata: running/paused asks Firecracker (GET /mmds); otherwise the stored
 * document ("{}" when none). */
char *svm_vm_metadata_json(svm_vm *vm, svm_error *err);
/* Replaces the MMDS contents (PUT /mmds when running/paused; stored and applied at
 * next start otherwise). TOO_LARGE over the limit, INVALID_CONFIG if not JSON. */
int svm_vm_set_metadata_json(svm_vm *vm, const char *text, size_t len, svm_error *err);

/* The byte streams the core keeps: the daemon log, the error files, a VM's console
 * and Firecracker log (vm NULL for the first three). Absolute offsets: size() counts
 * every byte ever appended (a VM's console and log restart at 0 with a new boot);
 * read() copies from max(off, oldest byte kept) and returns bytes, 0 at the end. */
typedef enum {
	SVM_STREAM_LOG,          /* the daemon log (svm_log) */
	SVM_STREAM_ERRORS,       /* root-level failures (svm_note_error) */
	SVM_STREAM_IMAGE_ERRORS, /* /images/ctl failures (svm_images_note_error) */
	SVM_STREAM_VM_CONSOLE,   /* the guest's serial output */
	SVM_STREAM_VM_LOG,       /* Firecracker's own log */
	SVM_STREAM_VM_ERRORS,    /* the VM's failures (svm_vm_note_error) */
	SVM_STREAM_VM_EVENTS,    /* the VM's event lines (as svm_vm_event_line gives them) */
} svm_stream;
uint64_t svm_stream_size(svm *s, svm_vm *vm, svm_stream which);
/* from (may be NULL): the offset the bytes copied start at, > off when the bytes
 * at off were dropped (a reader that falls behind the ring skips what is gone). */
ssize_t svm_stream_read(svm *s, svm_vm *vm, svm_stream which, uint64_t off, char *buf, size_t len,
                        uint64_t *from);

/* GET / (instance info) when the VM is running or paused; otherwise (also while
 * it is starting or stopping) a document built from what is known ({"id":…,"state":…}). */
char *svm_vm_info_json(svm_vm *vm, svm_error *err);
/* GET /version of the running VMM. */
char *svm_vm_version_json(svm_vm *vm, svm_error *err);

/* Console: absolute offsets since the VM's boot. size() is the number of bytes the
 * guest printed; read() copies from max(off, oldest kept); returns bytes (0 at end). */
uint64_t svm_vm_console_size(svm_vm *vm);
ssize_t svm_vm_console_read(svm_vm *vm, uint64_t off, char *buf, size_t len);
/* Bytes to the guest's serial input. Returns bytes taken, -1 + err when not running. */
ssize_t svm_vm_console_write(svm_vm *vm, const char *buf, size_t len, svm_error *err);

/* Firecracker's own log (drained from its log FIFO), same offset rules as console. */
uint64_t svm_vm_log_size(svm_vm *vm);
ssize_t svm_vm_log_read(svm_vm *vm, uint64_t off, char *buf, size_t len);
/* The latest metrics line; flush=true asks Firecracker for a fresh one first.
 * "" when none has arrived. */
char *svm_vm_metrics(svm_vm *vm, bool flush, svm_error *err);

/* State/exit events: the VM keeps its recent event lines numbered from 1.
 * svm_vm_event_seq() is the number of the newest one. event_line(seq) gives the line
 * for seq (malloc'd, no newline), or NULL if seq is newer than the newest; for a seq
 * older than the oldest kept it gives the oldest kept and sets *got to its seq. */
uint64_t svm_vm_event_seq(svm_vm *vm);
char *svm_vm_event_line(svm_vm *vm, uint64_t seq, uint64_t *got);

/* The VM's error file: last failures (time, command, reason). */
void svm_vm_note_error(svm_vm *vm, const char *command, const svm_error *e);
char *svm_vm_error_text(svm_vm *vm);
/* Where named snapshots of this VM are kept: DATADIR/snapshots/NAME (may not
 * exist yet). Each snapshot is a directory holding vmstate, mem, config.json. */
char *svm_vm_snapshot_dir(svm_vm *vm);
/* Names of the VM's named snapshots (directories there), NULL-terminated;
 * svm_strv_free. */
char **svm_vm_snapshot_list(svm_vm *vm, size_t *count);
/* GET /balloon/statistics of the running VMM (Firecracker's JSON). */
char *svm_vm_balloon_stats_json(svm_vm *vm, svm_error *err);
/* GET /balloon/hinting/status while the VMM runs (a balloon with freePageHinting). */
char *svm_vm_balloon_hinting_json(svm_vm *vm, svm_error *err);
/* GET /hotplug/memory while the VMM runs (a config with memoryHotplug). */
char *svm_vm_hotplug_json(svm_vm *vm, svm_error *err);
/* The host side of the VM's vsock (RUNDIR/vsock.sock) when its config has a
 * vsock device, else NULL. */
char *svm_vm_vsock_path(svm_vm *vm);
/* The VM's network interfaces (TAP, MAC, address) and the boot argument its
 * last start was given; "" when it has none. */
char *svm_vm_net_text(svm_vm *vm);
/* "exit N" / "signal N" of the last VMM exit, "" if none. */
char *svm_vm_last_exit(svm_vm *vm);

typedef struct svm_vm_stat {
	uint64_t cpu_user_ns, cpu_system_ns; /* the VMM's CPU time */
	uint64_t rss_bytes;                  /* the VMM's resident set */
	uint64_t uptime_ns;                  /* since the VMM answered InstanceStart */
	uint64_t boot_ns;                    /* spawn -> InstanceStart answered */
	pid_t pid;
} svm_vm_stat;
int svm_vm_get_stat(svm_vm *vm, svm_vm_stat *st, svm_error *err);

/* ------------------------------------------------- exec sessions (docs/exec.md)
 * A command run in a running guest by its agent (assets/agent), over the VM's
 * vsock device: its stdin, stdout, stderr and status. A session is listed from
 * svm_exec_new until its command has ended (or never started) and the front
 * end holds no open of it; a VM's stop ends its commands (status "lost"). */
typedef struct svm_exec svm_exec;
typedef enum svm_exec_stream { SVM_EXEC_STDOUT = 0, SVM_EXEC_STDERR = 1 } svm_exec_stream;
/* A new session of vm, held once (svm_exec_hold), and a reference; NULL with err
 * (INVALID_STATE: the VM does not run; INVALID_CONFIG: it has no vsock device). */
svm_exec *svm_exec_new(svm_vm *vm, svm_error *err);
/* A reference to the listed session of that name, or NULL. */
svm_exec *svm_exec_get(svm_vm *vm, const char *name);
void svm_exec_unref(svm_exec *x);
/* The names of the VM's listed sessions (svm_strv_free). */
char **svm_exec_list(svm_vm *vm, size_t *count);
const char *svm_exec_name(const svm_exec *x);
/* The front end's opens: a session whose command ended is unlisted at the last
 * release; while none is held its output is dropped, never waited on. */
void svm_exec_hold(svm_exec *x);
void svm_exec_release(svm_exec *x);
/* One ctl line: env NAME=VALUE | cwd DIR | user UID[:GID] | timeout MS |
 * run ARG... | sh LINE | signal N|NAME | eof. 0, or -1 with err (a run also
 * fails with SOCKET_TIMEOUT when no agent answers in time, and with the
 * agent's reason when the command cannot start). */
int svm_exec_ctl(svm_exec *x, const char *line, svm_error *err);
/* Starts argv (the ctl line "run ARG..." without its quoting rules), or one
 * command line for the guest's shell (the ctl line "sh LINE"). */
int svm_exec_run(svm_exec *x, char *const *argv, size_t argc, svm_error *err);
int svm_exec_sh(svm_exec *x, const char *line, svm_error *err);
/* Bytes to the command's stdin: all of them, or -1 with err. It waits while the
 * command does not read, asking stop(ud) every 200 ms: when that says so, it
 * returns the bytes sent so far, or -1 with INTERRUPTED if none were. */
ssize_t svm_exec_write_stdin(svm_exec *x, const void *buf, size_t len, bool (*stop)(void *ud),
                             void *ud, svm_error *err);
/* Output bytes from off (earlier ones were read and are gone: a read at off
 * says the reader has all before it). >0 bytes, 0 at the end (the command
 * ended and all was read), -1 when none yet (EAGAIN). */
ssize_t svm_exec_read(svm_exec *x, svm_exec_stream which, uint64_t off, char *buf, size_t len);
/* Bytes of the stream so far (read or not). */
uint64_t svm_exec_size(svm_exec *x, svm_exec_stream which);
/* "new\n", "running\n", "exit N\n", "signal N\n" or "lost\n" (malloc'd). */
char *svm_exec_status(svm_exec *x);
bool svm_exec_ended(svm_exec *x);
/* Is the session in its VM's list (svm_exec_list)? false once it ended and
 * was closed; its VM (borrowed, as long as x is held). */
bool svm_exec_listed(svm_exec *x);
svm_vm *svm_exec_vm(svm_exec *x);
/* The session's error file: failures with the command that met them. */
ssize_t svm_exec_error_read(svm_exec *x, uint64_t off, char *buf, size_t len);
uint64_t svm_exec_error_size(svm_exec *x);
void svm_exec_note_error(svm_exec *x, const char *command, const svm_error *err);
/* Called (on any thread, no lock held) when a session's output, status or
 * listing changed: the front end wakes its waiting reads and polls. */
void svm_exec_set_notify(void (*fn)(svm_exec *x, void *ud), void *ud);

#ifdef __cplusplus
}
#endif
#endif /* SMARTVM_H */
