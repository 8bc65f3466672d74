/*
 * table.c - the smartvmfs tree as three tables (Plan 9 Dirtab style): the root
 * (with net/ and images/, each row naming its parent directory), a VM directory,
 * and a base-image bundle directory. Adding a file is adding a row here (and its
 * handler); the engine (serve/) serves whatever rows it is handed.
 */
#include <sys/stat.h>

#include "tree.h"

#define EV(k) (1u << SVM_EV_##k)
#define STATEY (EV(STATE) | EV(EXIT))

#define IMG_EV EV(IMAGES)

/* One row per file of a bundle; the row's name is the core's file name. */
static const struct fs_row bundle_rows[] = {
	{.name = "manifest.json", .mode = S_IFREG | 0444, .text = fs_bundle_text, .changes_on = IMG_EV},
	{.name = "bootargs", .mode = S_IFREG | 0444, .text = fs_bundle_text, .changes_on = IMG_EV},
	{.name = "rootfstype", .mode = S_IFREG | 0444, .text = fs_bundle_text, .changes_on = IMG_EV},
	{.name = "firecracker", .mode = S_IFREG | 0444, .text = fs_bundle_text, .changes_on = IMG_EV},
	/* bytes done / total: its events are throttled (10/s), so attributes are not cached */
	{.name = "status", .mode = S_IFREG | 0444, .flags = FS_NOATTR, .text = fs_bundle_text,
	 .changes_on = IMG_EV},
	{.name = "kernel", .mode = S_IFLNK | 0777, .link = fs_bundle_link, .changes_on = IMG_EV},
	{.name = "rootfs", .mode = S_IFLNK | 0777, .link = fs_bundle_link, .changes_on = IMG_EV},
};
_Static_assert(sizeof bundle_rows / sizeof bundle_rows[0] <= FS_ENT_ROWS_MAX, "bundle table");

static const struct fs_table bundle_table = {bundle_rows, sizeof bundle_rows / sizeof bundle_rows[0]};

static const struct fs_row root_rows[] = {
	/* counts VMs by state: mkdir changes it with no event of the core */
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_NOATTR, .text = fs_root_ctl_text,
	 .write = fs_cmd_write, .cmd = fs_root_command, .changes_on = STATEY | EV(REMOVED),
	 .parent = ""},
	{.name = "version", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_root_version_text,
	 .parent = ""},
	/* where the mount keeps things: fixed for its life */
	{.name = "paths", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_root_paths_text,
	 .parent = ""},
	/* live: what the mount can still afford (a scheduler asks before it starts) */
	{.name = "room", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_root_room_text,
	 .parent = ""},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_ERRORS,
	 .changes_on = EV(ROOT_ERROR), .parent = ""},
	{.name = "log", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_LOG,
	 .changes_on = EV(DAEMON_LOG), .parent = ""},
	/* its entries are the VMs: mkdir makes one, rmdir removes it */
	{.name = "vms", .mode = S_IFDIR | 0755, .flags = FS_VMS, .parent = ""},
	{.name = "net", .mode = S_IFDIR | 0555, .parent = ""},
	{.name = "images", .mode = S_IFDIR | 0555, .list = fs_images_list, .entries = &bundle_table,
	 .changes_on = EV(IMAGES), .parent = ""},
	/* opened for writing it makes a VM; writes on that descriptor go to the VM's ctl */
	{.name = "clone", .mode = S_IFREG | 0666, .flags = FS_CLONE, .read = fs_clone_read,
	 .write = fs_vm_ctl_write, .parent = "vms"},
	/* /net: the values never change while mounted; leases move with starts and rmdirs */
	{.name = "bridge", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	{.name = "subnet", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	{.name = "gateway", .mode = S_IFREG | 0444, .flags = FS_STABLE, .text = fs_net_text,
	 .parent = "net"},
	/* a start takes its lease before the state event that ends it: not cached */
	{.name = "leases", .mode = S_IFREG | 0444, .flags = FS_NOATTR, .text = fs_net_text,
	 .changes_on = STATEY | EV(REMOVED), .parent = "net"},
	{.name = "ctl", .mode = S_IFREG | 0200, .write = fs_cmd_write, .cmd = fs_net_command,
	 .parent = "net"},
	/* /images: downloads block for long, so ctl lines may be left running (FS_DETACH);
	 * its read-out shows download progress, whose events are throttled (FS_NOATTR).
	 * 0644 whatever allow_other says: base images are what every user boots, so
	 * only the mount's owner (and root) change them */
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_DETACH | FS_NOATTR,
	 .text = fs_images_summary_text, .write = fs_cmd_write, .cmd = fs_images_command,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET,
	 .stream = SVM_STREAM_IMAGE_ERRORS, .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "latest", .mode = S_IFLNK | 0777, .link = fs_images_preset_link,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "lts", .mode = S_IFLNK | 0777, .link = fs_images_preset_link,
	 .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "kernels", .mode = S_IFDIR | 0555, .list = fs_images_user_list,
	 .entry_link = fs_images_user_link, .changes_on = EV(IMAGES), .parent = "images"},
	{.name = "rootfs", .mode = S_IFDIR | 0555, .list = fs_images_user_list,
	 .entry_link = fs_images_user_link, .changes_on = EV(IMAGES), .parent = "images"},
};

/* Files of exec sessions (execfiles.c): each open holds its session. */
#define EXEC_HOOKS .open = fs_exec_open, .release = fs_exec_release, .poll = fs_exec_poll
static const struct fs_row exec_rows[] = {
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_LIVE, .text = fs_exec_text,
	 .write = fs_exec_ctl_write, EXEC_HOOKS},
	{.name = "stdin", .mode = S_IFREG | 0222, .flags = FS_OWNED | FS_LIVE,
	 .write = fs_exec_stdin_write, EXEC_HOOKS},
	/* read-only opens never wait; read-write ones wait for the bytes as they come */
	{.name = "stdout", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_LIVE,
	 .read = fs_exec_output_read, .write = fs_exec_output_write, EXEC_HOOKS},
	{.name = "stderr", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_LIVE,
	 .read = fs_exec_output_read, .write = fs_exec_output_write, EXEC_HOOKS},
	{.name = "status", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_exec_text, EXEC_HOOKS},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_LIVE, .read = fs_exec_error_read,
	 EXEC_HOOKS},
};
_Static_assert(sizeof exec_rows / sizeof exec_rows[0] <= FS_ENT_ROWS_MAX, "exec table");
const struct fs_table fs_exec_table = {exec_rows, sizeof exec_rows / sizeof exec_rows[0]};

/* FS_PAGE: small read-only values, read through the page cache while they hold
 * still (`cat state` is one OPEN), direct_io from the open's snapshot while they
 * change under open readers (serve/pcache.c). FS_QUICK: read from the VM
 * without a lock (its state, pid and runtime dir are atomics or fixed), so the
 * loop's reader answers their opens itself (serve/loop.c); not net, which waits
 * for the network's lock that a start holds while it makes TAPs, nor vsock,
 * which takes the VM's lock. */
#define LIMIT_ROW(n)                                                                    \
	{.name = n, .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_LIVE, .text = fs_vm_limit_text, \
	 .write = fs_vm_limit_write, .changes_on = EV(CONFIG) | STATEY, .parent = "limits"}

static const struct fs_row vm_rows[] = {
	/* FS_QUICK: its text is the state and the verbs valid in it (an atomic, a
	 * table), and every state change makes the next `echo verb > ctl` ask
	 * its attributes */
	{.name = "ctl", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_QUICK, .text = fs_vm_ctl_text,
	 .write = fs_vm_ctl_write, .changes_on = STATEY},
	{.name = "state", .mode = S_IFREG | 0444, .flags = FS_PAGE | FS_QUICK,
	 .text = fs_vm_state_text,
	 .changes_on = STATEY},
	/* read-only: the history, ends like any file; read-write: reads wait (events.c) */
	{.name = "events", .mode = S_IFREG | 0644, .flags = FS_STREAM | FS_OFFSET | FS_OWNED,
	 .stream = SVM_STREAM_VM_EVENTS, .read = fs_events_read, .write = fs_events_write,
	 .changes_on = STATEY},
	{.name = "config.json", .mode = S_IFREG | 0644, .flags = FS_OWNED, .text = fs_vm_config_text,
	 .write = fs_doc_write, .doc_apply = fs_config_apply, .changes_on = EV(CONFIG)},
	/* 0600: MMDS contents may carry secrets. Live: asked of Firecracker while it runs. */
	{.name = "metadata", .mode = S_IFREG | 0600, .flags = FS_OWNED | FS_LIVE,
	 .text = fs_vm_metadata_text, .write = fs_doc_write, .doc_apply = fs_metadata_apply,
	 .changes_on = EV(CONFIG) | STATEY},
	{.name = "console", .mode = S_IFREG | 0644, .flags = FS_OWNED | FS_OFFSET,
	 .stream = SVM_STREAM_VM_CONSOLE, .write = fs_console_write,
	 .changes_on = EV(CONSOLE) | STATEY},
	{.name = "error", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_VM_ERRORS,
	 .changes_on = EV(ERROR) | EV(EXIT)},
	{.name = "info", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_info_text,
	 .changes_on = STATEY},
	{.name = "pid", .mode = S_IFREG | 0444, .flags = FS_PAGE | FS_QUICK,
	 .text = fs_vm_pid_text,
	 .changes_on = STATEY},
	{.name = "net", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_net_text,
	 .changes_on = STATEY},
	{.name = "runtime", .mode = S_IFREG | 0444, .flags = FS_PAGE | FS_QUICK,
	 .text = fs_vm_runtime_text,
	 .changes_on = STATEY},
	{.name = "stat", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_stat_text,
	 .changes_on = STATEY},
	{.name = "log", .mode = S_IFREG | 0444, .flags = FS_OFFSET, .stream = SVM_STREAM_VM_LOG,
	 .changes_on = EV(LOG) | STATEY},
	{.name = "metrics", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_metrics_text,
	 .changes_on = EV(METRICS) | STATEY},
	/* named snapshots: symlinks to their host directories */
	{.name = "snapshots", .mode = S_IFDIR | 0555, .list = fs_vm_snapshot_list,
	 .entry_link = fs_vm_snapshot_link, .changes_on = STATEY},
	{.name = "balloon", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_balloon_text,
	 .changes_on = STATEY},
	/* live: the memory hotplug region (memoryHotplug), while it runs */
	{.name = "hotplug", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_hotplug_text,
	 .changes_on = STATEY},
	/* live: the balloon's free page hinting status (freePageHinting), while it runs */
	{.name = "hinting", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_hinting_text,
	 .changes_on = STATEY},
	{.name = "vsock", .mode = S_IFREG | 0444, .flags = FS_PAGE, .text = fs_vm_vsock_text,
	 .changes_on = EV(CONFIG) | STATEY},
	/* live: the VMM's own GET /version, while it runs */
	{.name = "version", .mode = S_IFREG | 0444, .flags = FS_LIVE, .text = fs_vm_version_text,
	 .changes_on = STATEY},
	/* commands in the guest through its agent (execfiles.c, docs/exec.md): the
	 * sessions, and beside them clone (makes one) and run (the one-liner), whose
	 * attributes never change (cached: no GETATTR at each open) */
	{.name = "exec", .mode = S_IFDIR | 0555, .list = fs_exec_list, .entries = &fs_exec_table},
	{.name = "clone", .mode = S_IFREG | 0666, .flags = FS_OWNED, .parent = "exec",
	 .read = fs_exec_clone_read, .write = fs_exec_ctl_write, EXEC_HOOKS},
	{.name = "run", .mode = S_IFREG | 0666, .flags = FS_OWNED, .parent = "exec",
	 .read = fs_exec_output_read, .write = fs_exec_run_write, EXEC_HOOKS},
	/* -o persist: on, and a later mount starts the VM it restores */
	{.name = "autostart", .mode = S_IFREG | 0644, .flags = FS_OWNED, .text = fs_vm_autostart_text,
	 .write = fs_autostart_write, .changes_on = EV(CONFIG)},
	/* resource limits (docs/limits.md): live, the kernel's value while a VMM runs */
	{.name = "limits", .mode = S_IFDIR | 0555},
	LIMIT_ROW("cpu.max"),
	LIMIT_ROW("memory.max"),
	LIMIT_ROW("pids.max"),
	LIMIT_ROW("fsize"),
	LIMIT_ROW("nofile"),
};

_Static_assert(sizeof vm_rows / sizeof vm_rows[0] < FS_VM_STRIDE, "VM table too big");
_Static_assert(sizeof vm_rows / sizeof vm_rows[0] <= FS_VM_ROWS_MAX, "VM table too big");
_Static_assert(sizeof root_rows / sizeof root_rows[0] <= FS_ROOT_ROWS_MAX, "root table");

const struct fs_table fs_root_table = {root_rows, sizeof root_rows / sizeof root_rows[0]};
const struct fs_table fs_vm_table = {vm_rows, sizeof vm_rows / sizeof vm_rows[0]};
const struct fs_tree fs_smartvm_tree = {&fs_root_table, &fs_vm_table};
