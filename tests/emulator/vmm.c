/* The emulated VMM: Firecracker's request routing (api_server/parsed_request)
 * and its two controllers, pre-boot and runtime (vmm/rpc_interface), with
 * their rules and their error texts. Devices are records, not devices: paths
 * are opened and checked the way Firecracker opens them, then closed. */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct vmm g_vmm;

#define NOT_PRE "The requested operation is not supported before starting the microVM."
#define NOT_POST "The requested operation is not supported after starting the microVM."
#define NO_DEVICE "Failed perform action on device: Device not found"

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

void api_fail(struct api_result *r, int status, const char *fmt, ...)
{
	va_list ap;
	r->status = status;
	free(r->fault);
	va_start(ap, fmt);
	if (vasprintf(&r->fault, fmt, ap) < 0)
		r->fault = NULL;
	va_end(ap);
}

static void ok(struct api_result *r) { r->status = 204; }
static void ok_body(struct api_result *r, json_t *b)
{
	r->status = 200;
	r->body = b;
}
/* Parse errors are logged in their Rust Debug form, as Firecracker does. */
static void parse_fail(struct api_result *r, char *msg)
{
	api_fail(r, 400, "An error occurred when deserializing the json body of a request: %s.", msg);
	r->parse_error = true;
	char *at = strstr(msg, " at line ");
	unsigned line = 0, col = 0;
	if (at && sscanf(at, " at line %u column %u", &line, &col) == 2) {
		*at = 0;
		r->log = xasprintf("SerdeJson(Error(\"%s\", line: %u, column: %u))", msg, line, col);
	} else {
		r->log = xasprintf("SerdeJson(Error(\"%s\", line: 0, column: 0))", msg);
	}
	free(msg);
}
static void generic(struct api_result *r, const char *msg)
{
	api_fail(r, 400, "%s", msg);
	r->parse_error = true;
	if (strcmp(msg, "The ID cannot be empty.") == 0)
		r->log = strdup("EmptyID");
	else if (strncmp(msg, "API Resource IDs", 16) == 0)
		r->log = strdup("InvalidID");
	else
		r->log = xasprintf("Generic(BadRequest, \"%s\")", msg);
}

static json_t *machine_default(void)
{
	return json_pack("{s:i,s:i,s:b,s:b,s:s}", "vcpu_count", 1, "mem_size_mib", 128, "smt", 0,
			 "track_dirty_pages", 0, "huge_pages", "None");
}

void vmm_init(const char *id, size_t mmds_limit)
{
	g_vmm.id = id;
	g_vmm.state = VM_NOT_STARTED;
	g_vmm.mmds_limit = mmds_limit;
	g_vmm.machine = machine_default();
	g_vmm.drives = json_array();
	g_vmm.nets = json_array();
	g_vmm.pmem = json_array();
	g_vmm.vsock_fd = -1;
	guest_parse_knobs(NULL, &g_vmm.knobs);
}

static const char *state_name(void)
{
	switch (g_vmm.state) {
	case VM_RUNNING: return "Running";
	case VM_PAUSED: return "Paused";
	default: return "Not started";
	}
}

/* "No such file or directory (os error 2)", as Rust prints an io::Error. */
static char *os_error(int e) { return xasprintf("%s (os error %d)", strerror(e), e); }

static json_t *getj(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_null(v) ? NULL : v;
}
static const char *gets(const json_t *o, const char *k) { return json_string_value(getj(o, k)); }
static bool getb(const json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

/* Rate limiters as Firecracker reports them back: every field present. */
static json_t *norm_bucket(json_t *b)
{
	if (!b || json_is_null(b))
		return json_null();
	return json_pack("{s:O,s:O,s:O}", "size", json_object_get(b, "size"), "one_time_burst",
			 json_object_get(b, "one_time_burst") ?: json_null(), "refill_time",
			 json_object_get(b, "refill_time"));
}

static json_t *norm_limiter(json_t *rl)
{
	if (!rl || json_is_null(rl))
		return json_null();
	return json_pack("{s:o,s:o}", "bandwidth", norm_bucket(json_object_get(rl, "bandwidth")), "ops",
			 norm_bucket(json_object_get(rl, "ops")));
}

/* ---- GET ------------------------------------------------------------- */

static void get_instance(struct api_result *r)
{
	metrics_count("get_api_requests", "instance_info_count");
	ok_body(r, json_pack("{s:s,s:s,s:s,s:s}", "id", g_vmm.id, "state", state_name(),
			     "vmm_version", EMU_FC_VERSION, "app_name", "Firecracker"));
}

json_t *vmm_full_config(void)
{
	json_t *boot = g_vmm.boot_source ? json_deep_copy(g_vmm.boot_source)
					 : json_pack("{s:s,s:n,s:n}", "kernel_image_path", "",
						     "initrd_path", "boot_args");
	/* Firecracker reports cpu-config, logger and metrics as null: they are
	 * not part of the exported VM configuration. */
	return json_pack("{s:O?,s:O,s:o,s:n,s:n,s:O,s:n,s:O?,s:O,s:O?,s:O?,s:O,s:O?}",
			 "balloon", g_vmm.balloon, "drives", g_vmm.drives, "boot-source", boot,
			 "cpu-config", "logger", "machine-config",
			 g_vmm.machine, "metrics", "mmds-config", g_vmm.mmds_config,
			 "network-interfaces", g_vmm.nets, "vsock", g_vmm.vsock, "entropy",
			 g_vmm.entropy, "pmem", g_vmm.pmem, "memory-hotplug", g_vmm.hotplug);
}

static void get_balloon(struct api_result *r, const char *sub, const char *sub2)
{
	if (sub && strcmp(sub, "statistics") != 0 && strcmp(sub, "hinting") != 0) {
		char *m = xasprintf("Unrecognized GET request path `%s`.", sub);
		generic(r, m);
		free(m);
		return;
	}
	if (sub && strcmp(sub, "hinting") == 0 && (!sub2 || strcmp(sub2, "status") != 0)) {
		char *m = xasprintf("Unrecognized GET request path `/hinting/%s`.", sub2 ? sub2 : "");
		generic(r, m);
		free(m);
		return;
	}
	if (g_vmm.state == VM_NOT_STARTED) {
		if (sub)
			return api_fail(r, 400, NOT_PRE);
		if (!g_vmm.balloon)
			return api_fail(r, 400, "Balloon config error: No balloon device found.");
		return ok_body(r, json_deep_copy(g_vmm.balloon));
	}
	if (!g_vmm.balloon)
		return api_fail(r, 400, "Internal VMM error: " NO_DEVICE);
	if (!sub)
		return ok_body(r, json_deep_copy(g_vmm.balloon));
	if (strcmp(sub, "hinting") == 0) {
		if (!getb(g_vmm.balloon, "free_page_hinting"))
			return api_fail(r, 400, "Balloon update error: Balloon: Attempting to use hinting when not enabled");
		return ok_body(r, json_pack("{s:i,s:n}", "host_cmd", 0, "guest_cmd"));
	}
	if (json_integer_value(json_object_get(g_vmm.balloon, "stats_polling_interval_s")) == 0)
		return api_fail(r, 400, "Internal VMM error: Balloon: Received stats query when stats are disabled.");
	/* The guest has no balloon driver: the target is set, nothing is ever reclaimed. */
	json_int_t mib = json_integer_value(json_object_get(g_vmm.balloon, "amount_mib"));
	ok_body(r, json_pack("{s:I,s:i,s:I,s:i}", "target_pages", mib * 256, "actual_pages", 0,
			     "target_mib", mib, "actual_mib", 0));
}

/* ---- pre-boot configuration ------------------------------------------ */

static void put_boot_source(struct api_result *r, json_t *cfg)
{
	metrics_count("put_api_requests", "boot_source_count");
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	const char *k = gets(cfg, "kernel_image_path"), *i = gets(cfg, "initrd_path");
	int fd = open(k, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		char *e = os_error(errno);
		api_fail(r, 400, "Boot source error: The kernel file cannot be opened: %s", e);
		free(e);
		return;
	}
	close(fd);
	if (i) {
		fd = open(i, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			char *e = os_error(errno);
			api_fail(r, 400, "Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. %s", e);
			free(e);
			return;
		}
		vsock_agent_from_initrd(fd); /* the guest runs the agent its initrd holds */
		close(fd);
	}
	json_decref(g_vmm.boot_source);
	g_vmm.boot_source = json_pack("{s:s,s:O,s:O}", "kernel_image_path", k, "initrd_path",
				      json_object_get(cfg, "initrd_path") ?: json_null(), "boot_args",
				      json_object_get(cfg, "boot_args") ?: json_null());
	ok(r);
}

static void update_machine(struct api_result *r, json_t *upd, bool is_put)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	json_t *m = is_put ? machine_default() : json_deep_copy(g_vmm.machine);
	const char *k;
	json_t *v;
	json_object_foreach(upd, k, v) if (!json_is_null(v)) json_object_set(m, k, v);
	if (is_put && !getj(upd, "cpu_template"))
		json_object_del(m, "cpu_template");
	json_int_t vcpu = json_integer_value(json_object_get(m, "vcpu_count"));
	json_int_t mem = json_integer_value(json_object_get(m, "mem_size_mib"));
	const char *huge = gets(m, "huge_pages");
	if (vcpu < 1 || vcpu > 32 || (getb(m, "smt") && vcpu > 1 && vcpu % 2)) {
		json_decref(m);
		return api_fail(r, 400, "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.");
	}
	if (mem == 0 || (huge && strcmp(huge, "2M") == 0 && mem % 2)) {
		json_decref(m);
		return api_fail(r, 400, "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.");
	}
	if (g_vmm.balloon && json_integer_value(json_object_get(g_vmm.balloon, "amount_mib")) > mem) {
		json_decref(m);
		return api_fail(r, 400, "Machine config error: The memory size (MiB) is smaller than the previously set balloon device target size.");
	}
	/* Keep Firecracker's key order: cpu_template sits after smt. */
	json_t *out = json_pack("{s:O,s:O,s:O}", "vcpu_count", json_object_get(m, "vcpu_count"),
				"mem_size_mib", json_object_get(m, "mem_size_mib"), "smt",
				json_object_get(m, "smt"));
	const char *tpl = gets(m, "cpu_template");
	if (tpl && strcmp(tpl, "None") != 0) /* "None" is no template at all */
		json_object_set(out, "cpu_template", json_object_get(m, "cpu_template"));
	json_object_set(out, "track_dirty_pages", json_object_get(m, "track_dirty_pages"));
	json_object_set(out, "huge_pages", json_object_get(m, "huge_pages"));
	json_decref(m);
	json_decref(g_vmm.machine);
	g_vmm.machine = out;
	if (getj(upd, "cpu_template")) {
		r->deprecated = true;
		LOGW("fc_api", "%s /machine-config: cpu_template field is deprecated.", is_put ? "PUT" : "PATCH");
	}
	ok(r);
}

static size_t find_by(json_t *arr, const char *key, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) if (strcmp(gets(e, key), id) == 0) return i;
	return (size_t)-1;
}

/* The backing files, held open as Firecracker holds them for the VM's life (a
 * PUT before boot or a PATCH after replaces one; they go with the process). */
static struct held_drive {
	char id[72];
	int fd;
} held_drives[64];

static void hold_drive(const char *id, int fd)
{
	struct held_drive *free_slot = NULL;
	for (size_t i = 0; i < sizeof held_drives / sizeof held_drives[0]; i++) {
		struct held_drive *h = &held_drives[i];
		if (h->id[0] && strcmp(h->id, id) == 0) {
			close(h->fd);
			h->fd = fd;
			return;
		}
		if (!h->id[0] && !free_slot)
			free_slot = h;
	}
	if (!free_slot) {
		close(fd);
		return;
	}
	snprintf(free_slot->id, sizeof free_slot->id, "%s", id);
	free_slot->fd = fd;
}

static void put_drive(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	const char *id = gets(cfg, "drive_id"), *path = gets(cfg, "path_on_host");
	bool root = getb(cfg, "is_root_device");
	size_t at = find_by(g_vmm.drives, "drive_id", id);
	if (root) {
		size_t i;
		json_t *e;
		json_array_foreach(g_vmm.drives, i, e) if (i != at && getb(e, "is_root_device"))
			return api_fail(r, 400, "Drive config error: A root block device already exists!");
	}
	if (!gets(cfg, "socket")) {
		if (!path)
			return api_fail(r, 400, "Drive config error: Unable to create the virtio block device: Invalid block config.");
		int fd = open(path, (getb(cfg, "is_read_only") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			char *e = os_error(errno);
			api_fail(r, 400, "Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: %s %s", e, path);
			free(e);
			return;
		}
		hold_drive(id, fd);
	}
	bool vhost = gets(cfg, "socket") != NULL;
	if (vhost) {
		/* Firecracker connects to the vhost-user backend right away. */
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof a.sun_path, "%s", gets(cfg, "socket"));
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
			char *e = os_error(errno);
			api_fail(r, 400, "Drive config error: Unable to create the virtio block device: Vhost user backend error: Vhost-user error: Failed to connect to UDS Unix stream: %s", e);
			free(e);
			if (fd >= 0)
				close(fd);
			return;
		}
		close(fd);
	}
	json_t *d = json_pack("{s:s,s:O,s:b,s:O,s:O,s:O,s:o,s:O,s:O}", "drive_id", id, "partuuid",
			      json_object_get(cfg, "partuuid") ?: json_null(), "is_root_device", root,
			      "cache_type", json_object_get(cfg, "cache_type") ?: json_string("Unsafe"),
			      "is_read_only", vhost ? json_null() : json_boolean(getb(cfg, "is_read_only")),
			      "path_on_host", json_object_get(cfg, "path_on_host") ?: json_null(),
			      "rate_limiter", norm_limiter(json_object_get(cfg, "rate_limiter")),
			      "io_engine", vhost ? json_null() : (getj(cfg, "io_engine") ?: json_string("Sync")),
			      "socket", json_object_get(cfg, "socket") ?: json_null());
	if (at != (size_t)-1)
		json_array_remove(g_vmm.drives, at);
	/* Firecracker keeps the root device first. */
	if (root)
		json_array_insert_new(g_vmm.drives, 0, d);
	else
		json_array_append_new(g_vmm.drives, d);
	ok(r);
}

static void patch_drive(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	size_t at = find_by(g_vmm.drives, "drive_id", gets(cfg, "drive_id"));
	if (at == (size_t)-1)
		return api_fail(r, 400, "Drive config error: Unable to patch the block device: " NO_DEVICE " Please verify the request arguments.");
	json_t *d = json_array_get(g_vmm.drives, at);
	const char *path = gets(cfg, "path_on_host");
	if (path) {
		int fd = open(path, (getb(d, "is_read_only") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			char *e = os_error(errno);
			api_fail(r, 400, "Drive config error: Unable to patch the block device: Block: Virtio backend error: Error manipulating the backing file: %s %s Please verify the request arguments.", e, path);
			free(e);
			return;
		}
		hold_drive(gets(cfg, "drive_id"), fd);
		json_object_set_new(d, "path_on_host", json_string(path));
	}
	if (getj(cfg, "rate_limiter"))
		json_object_set_new(d, "rate_limiter", norm_limiter(json_object_get(cfg, "rate_limiter")));
	ok(r);
}

/* The TAP attached as Firecracker attaches it (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR),
 * its queue held while the VMM lives: -1 with errno as the kernel answers. */
static int open_tap(const char *name)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Each interface's TAP queue, replaced when the interface is put again. */
static struct { char id[64]; int fd; } g_taps[64];

static void keep_tap(const char *id, int fd)
{
	size_t free_at = sizeof g_taps / sizeof *g_taps;
	for (size_t i = 0; i < sizeof g_taps / sizeof *g_taps; i++) {
		if (g_taps[i].id[0] && strcmp(g_taps[i].id, id) == 0) {
			if (g_taps[i].fd >= 0)
				close(g_taps[i].fd);
			g_taps[i].fd = fd;
			return;
		}
		if (!g_taps[i].id[0] && free_at == sizeof g_taps / sizeof *g_taps)
			free_at = i;
	}
	if (fd < 0 || free_at == sizeof g_taps / sizeof *g_taps) {
		if (fd >= 0)
			close(fd); /* more than a VM has: checked as opened, not held */
		return;
	}
	snprintf(g_taps[free_at].id, sizeof g_taps[free_at].id, "%s", id);
	g_taps[free_at].fd = fd;
}

static void put_net(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	const char *id = gets(cfg, "iface_id"), *mac = gets(cfg, "guest_mac");
	size_t at = find_by(g_vmm.nets, "iface_id", id), i;
	json_t *e;
	json_array_foreach(g_vmm.nets, i, e) if (i != at && mac && gets(e, "guest_mac") && strcasecmp(mac, gets(e, "guest_mac")) == 0)
		return api_fail(r, 400, "Network config error: The MAC address is already in use: %s", mac);
	/* Firecracker's checks, then its TUNSETIFF (below): the name fits
	 * IFNAMSIZ, a TAP already attached to another interface answers EBUSY, and
	 * the kernel decides who may attach (a jailed VMM: the TAP's owner). */
	const char *tap = gets(cfg, "host_dev_name");
	if (access("/dev/net/tun", R_OK | W_OK) != 0) /* a host without TUN: Firecracker's open fails */
		return api_fail(r, 400, "Network config error: Could not create the network device: Open tap device failed: Couldn't open /dev/net/tun: %s (os error %d)", strerror(errno), errno);
	if (strlen(tap) >= 16)
		return api_fail(r, 400, "Network config error: Could not create the network device: Open tap device failed: Invalid interface name");
	json_array_foreach(g_vmm.nets, i, e) if (i != at && strcmp(tap, gets(e, "host_dev_name")) == 0)
		return api_fail(r, 400, "Network config error: Could not create the network device: Open tap device failed: Error while creating ifreq structure: Resource busy (os error 16). Invalid TUN/TAP Backend provided by %s. Check our documentation on setting up the network devices.", tap);
	keep_tap(id, -1); /* this interface's earlier TAP let go first */
	int tfd = open_tap(tap);
	if (tfd < 0) {
		int e = errno;
		return api_fail(r, 400, "Network config error: Could not create the network device: Open tap device failed: Error while creating ifreq structure: %s (os error %d). Invalid TUN/TAP Backend provided by %s. Check our documentation on setting up the network devices.", strerror(e), e, tap);
	}
	keep_tap(id, tfd);
	json_t *n = json_pack("{s:s,s:O,s:O,s:o,s:o}", "iface_id", id, "host_dev_name",
			      json_object_get(cfg, "host_dev_name"), "guest_mac",
			      json_object_get(cfg, "guest_mac") ?: json_null(), "rx_rate_limiter",
			      norm_limiter(json_object_get(cfg, "rx_rate_limiter")), "tx_rate_limiter",
			      norm_limiter(json_object_get(cfg, "tx_rate_limiter")));
	if (at != (size_t)-1)
		json_array_set_new(g_vmm.nets, at, n);
	else
		json_array_append_new(g_vmm.nets, n);
	ok(r);
}

static void patch_net(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	size_t at = find_by(g_vmm.nets, "iface_id", gets(cfg, "iface_id"));
	if (at == (size_t)-1)
		return api_fail(r, 400, "Network config error: Unable to update the net device: " NO_DEVICE);
	json_t *n = json_array_get(g_vmm.nets, at);
	if (getj(cfg, "rx_rate_limiter"))
		json_object_set_new(n, "rx_rate_limiter", norm_limiter(json_object_get(cfg, "rx_rate_limiter")));
	if (getj(cfg, "tx_rate_limiter"))
		json_object_set_new(n, "tx_rate_limiter", norm_limiter(json_object_get(cfg, "tx_rate_limiter")));
	ok(r);
}

/* Firecracker binds the vsock's host-side socket at configuration time. */
static int bind_uds(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void put_vsock(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	if (g_vmm.vsock_fd >= 0) {
		close(g_vmm.vsock_fd);
		g_vmm.vsock_fd = -1;
	}
	int fd = bind_uds(gets(cfg, "uds_path"));
	if (fd < 0) {
		char *e = os_error(-fd);
		api_fail(r, 400, "Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: %s", e);
		free(e);
		return;
	}
	g_vmm.vsock_fd = fd;
	json_decref(g_vmm.vsock);
	g_vmm.vsock = json_pack("{s:O,s:O}", "guest_cid", json_object_get(cfg, "guest_cid"),
				"uds_path", json_object_get(cfg, "uds_path"));
	if (getj(cfg, "vsock_id")) {
		r->deprecated = true;
		LOGW("fc_api", "PUT /vsock: vsock_id field is deprecated.");
	}
	ok(r);
}

static void put_balloon(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	if (json_integer_value(json_object_get(cfg, "amount_mib")) >
	    json_integer_value(json_object_get(g_vmm.machine, "mem_size_mib")))
		return api_fail(r, 400, "Balloon config error: Amount of pages requested is too large.");
	json_decref(g_vmm.balloon);
	g_vmm.balloon = json_pack("{s:O,s:O,s:I,s:b,s:b}", "amount_mib", json_object_get(cfg, "amount_mib"),
				  "deflate_on_oom", json_object_get(cfg, "deflate_on_oom"),
				  "stats_polling_interval_s",
				  json_integer_value(json_object_get(cfg, "stats_polling_interval_s")),
				  "free_page_hinting", getb(cfg, "free_page_hinting"),
				  "free_page_reporting", getb(cfg, "free_page_reporting"));
	ok(r);
}

/* PATCH /balloon after boot. The project's guest has no virtio-balloon
 * driver, so the device exists but is never activated by the guest - unless its
 * boot arguments say emu.balloon (a guest that has one). */
static void patch_balloon(struct api_result *r, json_t *cfg, bool stats)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	if (!g_vmm.balloon)
		return api_fail(r, 400, "Balloon update error: " NO_DEVICE);
	if (stats) {
		bool was = json_integer_value(json_object_get(g_vmm.balloon, "stats_polling_interval_s")) != 0;
		bool now = json_integer_value(json_object_get(cfg, "stats_polling_interval_s")) != 0;
		if (was != now)
			return api_fail(r, 400, "Balloon update error: Balloon: Statistics cannot be enabled/disabled after activation.");
		json_object_set(g_vmm.balloon, "stats_polling_interval_s",
				json_object_get(cfg, "stats_polling_interval_s"));
		return ok(r);
	}
	/* a guest with a balloon driver (emu.balloon) activated the device: the
	 * target changes, and the statistics follow it */
	if (g_vmm.knobs.balloon_driver && g_vmm.state != VM_NOT_STARTED) {
		json_object_set(g_vmm.balloon, "amount_mib", json_object_get(cfg, "amount_mib"));
		return ok(r);
	}
	api_fail(r, 400, "Balloon update error: Balloon: Device not activated yet.");
}

static void put_mmds_config(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	json_t *ifs = json_object_get(cfg, "network_interfaces"), *e;
	size_t i;
	if (json_array_size(ifs) == 0)
		return api_fail(r, 400, "MMMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.");
	json_array_foreach(ifs, i, e) if (find_by(g_vmm.nets, "iface_id", json_string_value(e)) == (size_t)-1)
		return api_fail(r, 400, "MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.");
	const char *ip = gets(cfg, "ipv4_address") ?: "169.254.169.254";
	unsigned a, b, c, d;
	char extra;
	if (sscanf(ip, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4 || a != 169 || b != 254 || c > 255 || d > 255)
		return api_fail(r, 400, "MMMDS config error: The MMDS IPv4 address is not link local.");
	const char *ver = gets(cfg, "version") ?: "V1";
	json_decref(g_vmm.mmds_config);
	g_vmm.mmds_config = json_pack("{s:s,s:O,s:s,s:b}", "version", ver, "network_interfaces", ifs,
				      "ipv4_address", ip, "imds_compat", getb(cfg, "imds_compat"));
	if (strcmp(ver, "V1") == 0) {
		r->deprecated = true;
		LOGW("fc_api", "PUT /mmds/config: V1 is deprecated. Use V2 instead.");
	}
	ok(r);
}

/* ---- MMDS data store ------------------------------------------------- */

static size_t json_len(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = s ? strlen(s) : 0;
	free(s);
	return n;
}

/* RFC 7396 JSON merge patch, which Firecracker's MMDS PATCH applies. */
static json_t *merge_patch(json_t *target, json_t *patch)
{
	if (!json_is_object(patch))
		return json_incref(patch);
	json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
	const char *k;
	json_t *v;
	json_object_foreach(patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(out, k);
		} else {
			json_t *m = merge_patch(json_object_get(out, k), v);
			json_object_set_new(out, k, m);
		}
	}
	return out;
}

static void mmds_store(struct api_result *r, json_t *v, bool patch)
{
	/* The real binary (v1.14.2) always has a data store after boot. */
	json_t *next = patch ? merge_patch(g_vmm.mmds ? g_vmm.mmds : json_null(), v) : json_incref(v);
	if (json_len(next) > g_vmm.mmds_limit) {
		json_decref(next);
		return api_fail(r, 413, "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
	}
	json_decref(g_vmm.mmds);
	g_vmm.mmds = next;
	ok(r);
}

static void get_mmds(struct api_result *r)
{
	metrics_count("get_api_requests", "mmds_count");
	if (!g_vmm.mmds)
		g_vmm.mmds = json_null(); /* locked_mmds_or_default() */
	ok_body(r, json_is_null(g_vmm.mmds) ? json_object() : json_incref(g_vmm.mmds));
}

/* ---- logger / metrics / misc ----------------------------------------- */

static void put_logger(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	const char *lvl = gets(cfg, "level"), *path = gets(cfg, "log_path");
	enum log_level l = LVL_INFO;
	if (lvl)
		log_set_level(lvl, &l);
	log_set_level_value(l);
	if (path) {
		int e = log_open(path);
		if (e < 0) {
			char *m = os_error(-e);
			api_fail(r, 400, "Logger error: Failed to open target file: %s", m);
			free(m);
			return;
		}
	}
	log_set_format(getb(cfg, "show_level"), getb(cfg, "show_log_origin"));
	json_decref(g_vmm.logger);
	g_vmm.logger = json_deep_copy(cfg);
	ok(r);
}

static void put_metrics(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	int e = metrics_open(gets(cfg, "metrics_path"));
	if (e == -EALREADY)
		return api_fail(r, 400, "Metrics error: Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.");
	if (e < 0) {
		char *m = os_error(-e);
		api_fail(r, 400, "Metrics error: Cannot initialize the metrics system due to bad user input: %s", m);
		free(m);
		return;
	}
	json_decref(g_vmm.metrics);
	g_vmm.metrics = json_pack("{s:O}", "metrics_path", json_object_get(cfg, "metrics_path"));
	ok(r);
}

/* ---- virtio-pmem and memory hotplug (virtio-mem) ---------------------- */

static void put_pmem(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	g_vmm.boot_path = true;
	const char *path = gets(cfg, "path_on_host");
	int fd = open(path, (getb(cfg, "read_only") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		char *e = os_error(errno);
		api_fail(r, 400, "Pmem device error: Unable to create the virtio-pmem device: Error accessing backing file: %s", e);
		free(e);
		return;
	}
	close(fd);
	json_t *d = json_pack("{s:s,s:s,s:b,s:b}", "id", gets(cfg, "id"), "path_on_host", path,
			      "root_device", getb(cfg, "root_device"), "read_only", getb(cfg, "read_only"));
	size_t at = find_by(g_vmm.pmem, "id", gets(cfg, "id"));
	if (at != (size_t)-1)
		json_array_set_new(g_vmm.pmem, at, d);
	else
		json_array_append_new(g_vmm.pmem, d);
	ok(r);
}

/* Firecracker's rules, in its order: block at least 2 MiB and a power of two,
 * slot at least 128 MiB and a multiple of the block, total at least a slot and
 * a multiple of it. Absent: block 2, slot 128. */
static void put_hotplug(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	json_int_t total = json_integer_value(json_object_get(cfg, "total_size_mib"));
	json_int_t block = json_object_get(cfg, "block_size_mib")
				   ? json_integer_value(json_object_get(cfg, "block_size_mib")) : 2;
	json_int_t slot = json_object_get(cfg, "slot_size_mib")
				  ? json_integer_value(json_object_get(cfg, "slot_size_mib")) : 128;
	const char *pre = "Memory hotplug config error: ";
	if (block < 2)
		return api_fail(r, 400, "%sBlock size must not be lower than 2 MiB", pre);
	if (block & (block - 1))
		return api_fail(r, 400, "%sBlock size must be a power of 2", pre);
	if (slot < 128)
		return api_fail(r, 400, "%sSlot size must not be lower than 128 MiB", pre);
	if (slot % block)
		return api_fail(r, 400, "%sSlot size must be a multiple of block size (%lld MiB)", pre,
				(long long)block);
	if (total < slot)
		return api_fail(r, 400, "%sTotal size must not be lower than slot size (%lld MiB)", pre,
				(long long)slot);
	if (total % slot)
		return api_fail(r, 400, "%sTotal size must be a multiple of slot size (%lld MiB)", pre,
				(long long)slot);
	g_vmm.boot_path = true;
	json_decref(g_vmm.hotplug);
	g_vmm.hotplug = json_pack("{s:I,s:I,s:I}", "total_size_mib", total, "block_size_mib", block,
				  "slot_size_mib", slot);
	ok(r);
}

/* After boot: the region's sizes and what is plugged. The project's guest has
 * no virtio-mem driver, so the device never becomes active: nothing plugs. */
static void get_hotplug(struct api_result *r)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	if (!g_vmm.hotplug)
		return api_fail(r, 400, "Internal VMM error: Failed perform action on device: Device not found");
	json_t *b = json_deep_copy(g_vmm.hotplug);
	json_object_set_new(b, "plugged_size_mib", json_integer(0));
	json_object_set_new(b, "requested_size_mib", json_integer(0));
	ok_body(r, b);
}

static void patch_hotplug(struct api_result *r)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	if (!g_vmm.hotplug)
		return api_fail(r, 400, "Memory hotplug update error: Failed perform action on device: Device not found");
	api_fail(r, 400, "Memory hotplug update error: Failed to create memory hotplug device: Device is not active");
}

static void put_simple(struct api_result *r, json_t **slot, json_t *cfg, bool boot_specific)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	if (boot_specific)
		g_vmm.boot_path = true;
	if (slot) {
		json_decref(*slot);
		*slot = json_deep_copy(cfg);
	}
	ok(r);
}

/* ---- actions --------------------------------------------------------- */

static bool kernel_loadable(const char *path)
{
	unsigned char h[0x206] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, h, sizeof h);
	close(fd);
	if (n >= 4 && memcmp(h, "\x7f" "ELF", 4) == 0)
		return true;
	return n >= 0x206 && memcmp(h + 0x202, "HdrS", 4) == 0; /* a bzImage */
}

static void instance_start(struct api_result *r)
{
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	if (!g_vmm.boot_source)
		return api_fail(r, 400, "Start microvm error: Cannot start microvm without kernel configuration.");
	const char *k = gets(g_vmm.boot_source, "kernel_image_path");
	if (!kernel_loadable(k))
		return api_fail(r, 400, "Start microvm error: System configuration error: Cannot load kernel due to invalid memory configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image: Kernel Loader: Unable to read elf header");
	guest_parse_knobs(gets(g_vmm.boot_source, "boot_args"), &g_vmm.knobs);
	if (g_vmm.knobs.crash_ms >= 0)
		main_arm_crash_timer(g_vmm.knobs.crash_ms);
	if (g_vmm.knobs.boot_ms > 0) {
		/* Firecracker's API thread waits for the VMM: nothing else is
		 * served meanwhile, so a plain sleep is the faithful delay. A
		 * crash due earlier happens during the start. */
		long ms = g_vmm.knobs.boot_ms;
		if (g_vmm.knobs.crash_ms >= 0 && g_vmm.knobs.crash_ms < ms) {
			nanosleep(&(struct timespec){g_vmm.knobs.crash_ms / 1000, (g_vmm.knobs.crash_ms % 1000) * 1000000L}, NULL);
			guest_crash();
		}
		nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
	}
	g_vmm.state = VM_RUNNING;
	vmm_start_timers_after_boot();
	guest_boot();
	vsock_host_start(); /* vsock_host.c: the guest's vsock side, now that it runs */
	ok(r);
}

static void do_action(struct api_result *r, json_t *cfg)
{
	metrics_count("put_api_requests", "actions_count");
	const char *a = gets(cfg, "action_type");
	if (strcmp(a, "InstanceStart") == 0)
		return instance_start(r);
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	if (strcmp(a, "FlushMetrics") == 0) {
		metrics_write();
		return ok(r);
	}
	guest_ctrl_alt_del();
	ok(r);
}

static void patch_vm(struct api_result *r, json_t *cfg)
{
	if (g_vmm.state == VM_NOT_STARTED)
		return api_fail(r, 400, NOT_PRE);
	if (strcmp(gets(cfg, "state"), "Paused") == 0) {
		g_vmm.state = VM_PAUSED;
		LOGI("main", "'pause vm' VMM action took 0 us.");
	} else {
		g_vmm.state = VM_RUNNING;
		LOGI("main", "'resume vm' VMM action took 0 us.");
		guest_resumed();
	}
	ok(r);
}

static void put_snapshot(struct api_result *r, const char *op, json_t *cfg)
{
	char *err = NULL;
	if (strcmp(op, "create") == 0) {
		if (g_vmm.state == VM_NOT_STARTED)
			return api_fail(r, 400, NOT_PRE);
		if (g_vmm.state != VM_PAUSED)
			return api_fail(r, 400, "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running");
		if (strcmp(gets(cfg, "snapshot_type") ?: "Full", "Diff") == 0)
			LOGW("main", "[DevPreview] Virtual machine diff snapshots is in development preview.");
		if (snapshot_create(cfg, &err) < 0) {
			api_fail(r, 400, "Create snapshot error: %s", err);
			free(err);
			return;
		}
		return ok(r);
	}
	if (g_vmm.state != VM_NOT_STARTED)
		return api_fail(r, 400, NOT_POST);
	if (g_vmm.boot_path)
		return api_fail(r, 400, "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.");
	if (getj(cfg, "mem_file_path") || getb(cfg, "enable_diff_snapshots")) {
		r->deprecated = true;
		LOGW("fc_api", "PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields are deprecated.");
	}
	if (snapshot_load(cfg, &err) < 0) {
		api_fail(r, 400, "Load snapshot error: Failed to restore from snapshot: %s", err);
		free(err);
		/* A failed restore is fatal in Firecracker: the process exits. */
		main_arm_crash_timer(-2);
		return;
	}
	ok(r);
}

/* ---- routing (api_server/parsed_request.rs) --------------------------- */

static bool checked_id(struct api_result *r, const char *id)
{
	if (!id || !*id) {
		generic(r, "The ID cannot be empty.");
		return false;
	}
	for (const char *p = id; *p; p++)
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || (unsigned char)*p >= 0x80)) {
			generic(r, "API Resource IDs can only contain alphanumeric characters and underscores.");
			return false;
		}
	return true;
}

static json_t *decode(struct api_result *r, const char *body, size_t len, const struct schema *s)
{
	char *err = NULL;
	json_t *v = serde_decode(body, len, s, &err);
	if (!v)
		parse_fail(r, err);
	return v;
}

static void invalid_path(struct api_result *r, const char *method, const char *path)
{
	api_fail(r, 400, "Invalid request method and/or path: %s %s.", method, path);
	r->parse_error = true;
	r->log = xasprintf("InvalidPathMethod(\"%s\", %s)", path,
			   strcmp(method, "GET") == 0 ? "Get" : strcmp(method, "PUT") == 0 ? "Put" : "Patch");
}

void api_dispatch(const char *method, const char *url, const char *body, size_t len, bool has_body,
		  struct api_result *r)
{
	char path[512];
	snprintf(path, sizeof path, "%s", url);
	path[strcspn(path, "?")] = 0;
	char *tok[4] = {0}, *save = NULL, *p = path;
	while (*p == '/')
		p++;
	int nt = 0;
	for (char *t = strtok_r(p, "/", &save); t && nt < 4; t = strtok_r(NULL, "/", &save))
		tok[nt++] = t;
	const char *first = tok[0] ? tok[0] : "";
	/* strtok drops empty segments; Firecracker's split_terminator keeps
	 * inner ones, which only matters for ids ("/drives//x"). */
	const char *second = tok[1];
	json_t *cfg = NULL;
	bool get = strcmp(method, "GET") == 0, put = strcmp(method, "PUT") == 0;

#define DECODE(s) do { if (!(cfg = decode(r, body, len, &(s)))) return; } while (0)
	if (get) {
		if (!has_body && !*first)
			return get_instance(r);
		if (!has_body && strcmp(first, "balloon") == 0)
			return get_balloon(r, second, tok[2]);
		if (!has_body && strcmp(first, "version") == 0) {
			metrics_count("get_api_requests", "vmm_version_count");
			return ok_body(r, json_pack("{s:s}", "firecracker_version", EMU_FC_VERSION));
		}
		if (!has_body && strcmp(first, "vm") == 0 && second && strcmp(second, "config") == 0) {
			LOGW("main", "If the VM was restored from snapshot, boot-source, machine-config.smt, and machine-config.cpu_template will all be empty.");
			return ok_body(r, vmm_full_config());
		}
		if (!has_body && strcmp(first, "machine-config") == 0) {
			metrics_count("get_api_requests", "machine_cfg_count");
			return ok_body(r, json_deep_copy(g_vmm.machine));
		}
		if (!has_body && strcmp(first, "mmds") == 0)
			return get_mmds(r);
		if (!has_body && strcmp(first, "hotplug") == 0 && second && strcmp(second, "memory") == 0)
			return get_hotplug(r);
		if (has_body)
			return generic(r, "GET request cannot have a body.");
		return invalid_path(r, "GET", first);
	}
	if (put) {
		if (!has_body) {
			static const char *known[] = {"actions", "balloon", "boot-source", "cpu-config", "drives",
				"pmem", "logger", "serial", "machine-config", "metrics", "mmds",
				"network-interfaces", "snapshot", "vsock", "entropy", "hotplug", NULL};
			(void)known;
			return generic(r, "Empty PUT request.");
		}
		if (strcmp(first, "actions") == 0) {
			DECODE(S_ACTION);
			do_action(r, cfg);
		} else if (strcmp(first, "balloon") == 0) {
			DECODE(S_BALLOON);
			put_balloon(r, cfg);
		} else if (strcmp(first, "boot-source") == 0) {
			DECODE(S_BOOT);
			put_boot_source(r, cfg);
		} else if (strcmp(first, "cpu-config") == 0) {
			DECODE(S_CPU_CONFIG);
			put_simple(r, &g_vmm.cpu_config, cfg, false);
		} else if (strcmp(first, "drives") == 0) {
			if (!checked_id(r, second))
				return;
			DECODE(S_DRIVE);
			if (strcmp(second, gets(cfg, "drive_id")) != 0)
				generic(r, "The id from the path does not match the id from the body!");
			else
				put_drive(r, cfg);
		} else if (strcmp(first, "logger") == 0) {
			DECODE(S_LOGGER);
			put_logger(r, cfg);
		} else if (strcmp(first, "serial") == 0) {
			DECODE(S_SERIAL);
			put_simple(r, NULL, cfg, false);
		} else if (strcmp(first, "machine-config") == 0) {
			DECODE(S_MACHINE);
			update_machine(r, cfg, true);
		} else if (strcmp(first, "metrics") == 0) {
			DECODE(S_METRICS);
			put_metrics(r, cfg);
		} else if (strcmp(first, "mmds") == 0 && !second) {
			char *err = NULL;
			if (!(cfg = serde_value(body, len, &err)))
				return parse_fail(r, err);
			mmds_store(r, cfg, false);
		} else if (strcmp(first, "mmds") == 0 && strcmp(second, "config") == 0) {
			DECODE(S_MMDS_CONFIG);
			put_mmds_config(r, cfg);
		} else if (strcmp(first, "mmds") == 0) {
			char *m = xasprintf("Unrecognized PUT request path `%s`.", second);
			generic(r, m);
			free(m);
		} else if (strcmp(first, "network-interfaces") == 0) {
			if (!checked_id(r, second))
				return;
			DECODE(S_NET);
			if (strcmp(second, gets(cfg, "iface_id")) != 0) {
				char *m = xasprintf("The id from the path [%s] does not match the id from the body [%s]!",
						    second, gets(cfg, "iface_id"));
				generic(r, m);
				free(m);
			} else {
				put_net(r, cfg);
			}
		} else if (strcmp(first, "snapshot") == 0) {
			if (!second)
				return generic(r, "Missing snapshot operation type.");
			if (strcmp(second, "create") == 0) {
				DECODE(S_SNAP_CREATE);
			} else if (strcmp(second, "load") == 0) {
				DECODE(S_SNAP_LOAD);
				bool f = getj(cfg, "mem_file_path"), b = getj(cfg, "mem_backend");
				if (f && b) {
					json_decref(cfg);
					return parse_fail(r, strdup("too many fields: either `mem_backend` or `mem_file_path` exclusively is required"));
				}
				if (!f && !b) {
					json_decref(cfg);
					return parse_fail(r, strdup("missing field: either `mem_backend` or `mem_file_path` is required"));
				}
			} else {
				char *m = xasprintf("/snapshot/%s", second);
				invalid_path(r, "PUT", m);
				free(m);
				return;
			}
			put_snapshot(r, second, cfg);
		} else if (strcmp(first, "vsock") == 0) {
			DECODE(S_VSOCK);
			put_vsock(r, cfg);
		} else if (strcmp(first, "entropy") == 0) {
			DECODE(S_ENTROPY);
			json_t *e = json_pack("{s:o}", "rate_limiter", norm_limiter(json_object_get(cfg, "rate_limiter")));
			put_simple(r, &g_vmm.entropy, e, true);
			json_decref(e);
		} else if (strcmp(first, "pmem") == 0) {
			if (!checked_id(r, second))
				return;
			DECODE(S_PMEM);
			if (strcmp(second, gets(cfg, "id")) != 0)
				generic(r, "The id from the path does not match the id from the body!");
			else
				put_pmem(r, cfg);
		} else if (strcmp(first, "hotplug") == 0 && second && strcmp(second, "memory") == 0) {
			DECODE(S_HOTPLUG);
			put_hotplug(r, cfg);
		} else {
			invalid_path(r, "PUT", first);
		}
		json_decref(cfg);
		return;
	}
	/* PATCH */
	if (strcmp(first, "balloon") == 0) {
		if (second && strcmp(second, "hinting") == 0) {
			if (g_vmm.state == VM_NOT_STARTED)
				return api_fail(r, 400, NOT_PRE);
			if (!g_vmm.balloon)
				return api_fail(r, 400, "Balloon update error: " NO_DEVICE);
			if (!getb(g_vmm.balloon, "free_page_hinting"))
				return api_fail(r, 400, "Balloon update error: Balloon: Attempting to use hinting when not enabled");
			/* enabled, but the guest never activated the device (as Firecracker
			 * v1.14.2 answers for the project's guest) */
			return api_fail(r, 400, "Balloon update error: Balloon: Device not activated yet.");
		}
		if (!has_body)
			return generic(r, "Empty PATCH request.");
		bool stats = second && strcmp(second, "statistics") == 0;
		if (stats)
			DECODE(S_BALLOON_STATS);
		else
			DECODE(S_BALLOON_UPDATE);
		patch_balloon(r, cfg, stats);
		json_decref(cfg);
		return;
	}
	if (!has_body)
		return generic(r, "Empty PATCH request.");
	if (strcmp(first, "drives") == 0) {
		if (!checked_id(r, second))
			return;
		DECODE(S_DRIVE_UPDATE);
		if (strcmp(second, gets(cfg, "drive_id")) != 0)
			generic(r, "The id from the path does not match the id from the body!");
		else
			patch_drive(r, cfg);
	} else if (strcmp(first, "machine-config") == 0) {
		DECODE(S_MACHINE_UPDATE);
		const char *k;
		json_t *v;
		bool any = false;
		json_object_foreach(cfg, k, v) any = any || !json_is_null(v);
		if (!any)
			generic(r, "Empty PATCH request.");
		else
			update_machine(r, cfg, false);
	} else if (strcmp(first, "mmds") == 0) {
		char *err = NULL;
		if (!(cfg = serde_value(body, len, &err)))
			return parse_fail(r, err);
		mmds_store(r, cfg, true);
	} else if (strcmp(first, "network-interfaces") == 0) {
		if (!checked_id(r, second))
			return;
		DECODE(S_NET_UPDATE);
		if (strcmp(second, gets(cfg, "iface_id")) != 0) {
			char *m = xasprintf("The id from the path [%s] does not match the id from the body [%s]!",
					    second, gets(cfg, "iface_id"));
			generic(r, m);
			free(m);
		} else {
			patch_net(r, cfg);
		}
	} else if (strcmp(first, "vm") == 0) {
		DECODE(S_VM);
		patch_vm(r, cfg);
	} else if (strcmp(first, "hotplug") == 0 && second && strcmp(second, "memory") == 0) {
		DECODE(S_HOTPLUG_UPDATE);
		patch_hotplug(r);
	} else {
		invalid_path(r, "PATCH", first);
	}
	json_decref(cfg);
#undef DECODE
}

/* --config-file: Firecracker builds and boots the VM from one JSON document
 * (VmmConfig) before serving the API. Best effort: the same handlers run. */
int vmm_apply_config_file(const char *path, char **err)
{
	json_error_t e;
	json_t *c = json_load_file(path, 0, &e);
	if (!c) {
		*err = xasprintf("Unable to open or read from the configuration file: %s", e.text);
		return -1;
	}
	static const struct { const char *key, *method, *url; bool array; const char *idkey; } steps[] = {
		{"logger", "PUT", "/logger", false, NULL}, {"metrics", "PUT", "/metrics", false, NULL},
		{"machine-config", "PUT", "/machine-config", false, NULL},
		{"cpu-config", "PUT", "/cpu-config", false, NULL},
		{"boot-source", "PUT", "/boot-source", false, NULL},
		{"drives", "PUT", "/drives/", true, "drive_id"},
		{"network-interfaces", "PUT", "/network-interfaces/", true, "iface_id"},
		{"vsock", "PUT", "/vsock", false, NULL}, {"balloon", "PUT", "/balloon", false, NULL},
		{"entropy", "PUT", "/entropy", false, NULL}, {"mmds-config", "PUT", "/mmds/config", false, NULL},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == 0; i++) {
		json_t *v = json_object_get(c, steps[i].key);
		if (!v || json_is_null(v))
			continue;
		size_t n = steps[i].array ? json_array_size(v) : 1;
		for (size_t k = 0; k < n && rc == 0; k++) {
			json_t *item = steps[i].array ? json_array_get(v, k) : v;
			char url[256];
			snprintf(url, sizeof url, "%s%s", steps[i].url,
				 steps[i].array ? (gets(item, steps[i].idkey) ?: "") : "");
			char *body = json_dumps(item, JSON_COMPACT);
			struct api_result r = {0};
			api_dispatch(steps[i].method, url, body, strlen(body), true, &r);
			if (r.status >= 400) {
				*err = xasprintf("%s", r.fault ? r.fault : "error");
				rc = -1;
			}
			free(r.fault);
			free(r.log);
			json_decref(r.body);
			free(body);
		}
	}
	if (rc == 0) {
		struct api_result r = {0};
		const char *b = "{\"action_type\":\"InstanceStart\"}";
		api_dispatch("PUT", "/actions", b, strlen(b), true, &r);
		if (r.status >= 400) {
			*err = xasprintf("%s", r.fault ? r.fault : "error");
			rc = -1;
		} else {
			LOGI("main", "Successfully started microvm that was configured from one single json");
		}
		free(r.fault);
		free(r.log);
	}
	json_decref(c);
	return rc;
}
