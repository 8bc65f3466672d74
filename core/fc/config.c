/*
 * config.c - the VM config model: one field table drives type checking,
 * unknown-field rejection, validation and the camelCase -> snake_case payloads.
 *
 * Adding a config field is adding a row to one of the tables below. Only the rules
 * that relate two fields (one root drive, unique ids, MMDS interfaces that exist,
 * SMT and odd vCPU counts) are written by hand, in cross_checks().
 *
 * Nothing here modifies its input: payloads are built from deep copies, so a
 * payload never shares a json_t with the caller's document.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "limitspec.h"

/* ---------------------------------------------------------------- the table */

enum ftype {
	FT_STRING,
	FT_INT,
	FT_BOOL,
	FT_OBJECT,       /* members described by .sub */
	FT_OBJECT_ARRAY, /* array of objects described by .sub */
	FT_STRING_ARRAY,
	FT_CPU_TEMPLATE, /* Firecracker's custom CPU template, as its own JSON (cpu-config) */
	FT_LIMITS,       /* the VM's resource limits (limitspec.h): never sent to Firecracker */
};

enum {
	F_REQUIRED = 1u << 0, /* absent (or null) is a problem */
	F_NONEMPTY = 1u << 1, /* a string that must not be "" (paths) */
	F_FC_FALSE = 1u << 2, /* absent: the payload carries false (Firecracker needs it) */
	F_RANGE = 1u << 3,    /* say "between MIN and MAX" rather than ">= MIN" / "<= MAX" */
};

/* A format check for a string: NULL when s is fine, else what it must be
 * (completes "PATH must be ..."). */
typedef const char *(*str_check_fn)(const char *s);

struct field {
	const char *name;   /* camelCase key in config.json */
	const char *fc;     /* snake_case key in Firecracker's body; NULL: never sent */
	enum ftype type;
	unsigned flags;
	json_int_t min, max;          /* FT_INT bounds, inclusive */
	const char *const *choices;   /* FT_STRING: the allowed values, NULL-terminated */
	str_check_fn check;           /* FT_STRING / FT_STRING_ARRAY items */
	const struct field *sub;      /* FT_OBJECT / FT_OBJECT_ARRAY members */
};

#define NO_MIN ((json_int_t)LLONG_MIN)
#define NO_MAX ((json_int_t)LLONG_MAX)

#define STR(n, f, fl) {.name = n, .fc = f, .type = FT_STRING, .flags = fl}
#define STRC(n, f, fl, chk) {.name = n, .fc = f, .type = FT_STRING, .flags = fl, .check = chk}
#define ENUM(n, f, fl, ch) {.name = n, .fc = f, .type = FT_STRING, .flags = fl, .choices = ch}
#define INT(n, f, fl, lo, hi) {.name = n, .fc = f, .type = FT_INT, .flags = fl, .min = lo, .max = hi}
#define BOOL(n, f, fl) {.name = n, .fc = f, .type = FT_BOOL, .flags = fl}
#define OBJ(n, f, fl, s) {.name = n, .fc = f, .type = FT_OBJECT, .flags = fl, .sub = s}
#define OBJS(n, f, fl, s) {.name = n, .fc = f, .type = FT_OBJECT_ARRAY, .flags = fl, .sub = s}
#define STRS(n, f, fl, chk) {.name = n, .fc = f, .type = FT_STRING_ARRAY, .flags = fl, .check = chk}
#define CPUTEMPLATE(n) {.name = n, .fc = NULL, .type = FT_CPU_TEMPLATE}
#define LIMITS(n) {.name = n, .fc = NULL, .type = FT_LIMITS}
#define END {.name = NULL}

static const char *check_resource_id(const char *s);
static const char *check_mac(const char *s);
static const char *check_ifname(const char *s);
static const char *check_link_local(const char *s);
static const char *check_absolute(const char *s);
static const char *check_image(const char *s);

static const char *const cpu_templates[] = {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None", NULL};
static const char *const huge_pages[] = {"None", "2M", NULL};
static const char *const cache_types[] = {"Unsafe", "Writeback", NULL};
static const char *const io_engines[] = {"Sync", "Async", NULL};
static const char *const mmds_versions[] = {"V1", "V2", NULL};
static const char *const log_levels[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off", NULL};

/* Firecracker's TokenBucket: size and refill_time are required, all are u64. */
static const struct field token_bucket[] = {
	INT("size", "size", F_REQUIRED, 0, NO_MAX),
	INT("refillTime", "refill_time", F_REQUIRED, 0, NO_MAX),
	INT("oneTimeBurst", "one_time_burst", 0, 0, NO_MAX),
	END,
};

static const struct field rate_limiter[] = {
	OBJ("bandwidth", "bandwidth", 0, token_bucket),
	OBJ("ops", "ops", 0, token_bucket),
	END,
};

/* kernelImagePath is not F_REQUIRED: a stored config may take its kernel from
 * "image" or not have one yet (the default); svm_config_check_bootable asks. */
static const struct field boot_source[] = {
	STR("kernelImagePath", "kernel_image_path", F_NONEMPTY),
	STR("bootArgs", "boot_args", 0),
	STR("initrdPath", "initrd_path", F_NONEMPTY),
	END,
};

static const struct field machine_config[] = {
	INT("vcpuCount", "vcpu_count", F_REQUIRED | F_RANGE, 1, 32),
	INT("memSizeMib", "mem_size_mib", F_REQUIRED, 1, NO_MAX),
	BOOL("smt", "smt", 0),
	ENUM("cpuTemplate", "cpu_template", 0, cpu_templates),
	BOOL("trackDirtyPages", "track_dirty_pages", 0),
	ENUM("hugePages", "huge_pages", 0, huge_pages),
	END,
};

/* is_read_only is required by Firecracker for virtio-block drives; the seed sends
 * false when the config leaves it out. ephemeral is ours only (staging). */
static const struct field drive[] = {
	STRC("driveId", "drive_id", F_REQUIRED, check_resource_id),
	STR("pathOnHost", "path_on_host", F_REQUIRED | F_NONEMPTY),
	BOOL("isRootDevice", "is_root_device", F_REQUIRED),
	BOOL("isReadOnly", "is_read_only", F_FC_FALSE),
	STR("partuuid", "partuuid", F_NONEMPTY),
	ENUM("cacheType", "cache_type", 0, cache_types),
	ENUM("ioEngine", "io_engine", 0, io_engines),
	OBJ("rateLimiter", "rate_limiter", 0, rate_limiter),
	BOOL("ephemeral", NULL, 0),
	END,
};

/* virtio-pmem: a host file mapped into the guest as persistent memory. */
static const struct field pmem[] = {
	STRC("id", "id", F_REQUIRED, check_resource_id),
	STR("pathOnHost", "path_on_host", F_REQUIRED | F_NONEMPTY),
	BOOL("rootDevice", "root_device", 0),
	BOOL("readOnly", "read_only", 0),
	END,
};

/* The memory hotplug region (virtio-mem); its rules are Firecracker's (below). */
static const struct field memory_hotplug[] = {
	INT("totalSizeMib", "total_size_mib", F_REQUIRED, 0, NO_MAX),
	INT("slotSizeMib", "slot_size_mib", 0, 0, NO_MAX),
	INT("blockSizeMib", "block_size_mib", 0, 0, NO_MAX),
	END,
};

/* hostDevName and guestMac are filled in by the core (TAP, deterministic MAC)
 * when left out, as in the seed. */
static const struct field network_interface[] = {
	STRC("ifaceId", "iface_id", F_REQUIRED, check_resource_id),
	STRC("hostDevName", "host_dev_name", 0, check_ifname),
	STRC("guestMac", "guest_mac", 0, check_mac),
	OBJ("rxRateLimiter", "rx_rate_limiter", 0, rate_limiter),
	OBJ("txRateLimiter", "tx_rate_limiter", 0, rate_limiter),
	END,
};

/* The body of the netif verb: PartialNetworkInterface without iface_id. */
static const struct field network_interface_update[] = {
	OBJ("rxRateLimiter", "rx_rate_limiter", 0, rate_limiter),
	OBJ("txRateLimiter", "tx_rate_limiter", 0, rate_limiter),
	END,
};

/* guest_cid is a u32; 0-2 are reserved (hypervisor, local, host). */
static const struct field vsock[] = {
	INT("guestCid", "guest_cid", F_REQUIRED, 3, UINT32_MAX),
	STRC("udsPath", "uds_path", F_NONEMPTY, check_absolute), /* absent: RUNTIME/vsock.sock */
	END,
};

/* stats_polling_interval_s is a u16 in Firecracker. */
static const struct field balloon[] = {
	INT("amountMib", "amount_mib", F_REQUIRED, 0, UINT32_MAX),
	BOOL("deflateOnOom", "deflate_on_oom", F_REQUIRED),
	INT("statsPollingIntervalS", "stats_polling_interval_s", 0, 0, UINT16_MAX),
	BOOL("freePageHinting", "free_page_hinting", 0),
	BOOL("freePageReporting", "free_page_reporting", 0),
	END,
};

static const struct field mmds[] = {
	ENUM("version", "version", 0, mmds_versions),
	STRS("networkInterfaces", "network_interfaces", F_REQUIRED, NULL),
	STRC("ipv4Address", "ipv4_address", 0, check_link_local),
	BOOL("imdsCompat", "imds_compat", 0),
	END,
};

static const struct field logger[] = {
	STRC("logPath", "log_path", F_NONEMPTY, check_absolute), /* a copy; the VM's log has all */
	ENUM("level", "level", 0, log_levels),
	BOOL("showLevel", "show_level", 0),
	BOOL("showLogOrigin", "show_log_origin", 0),
	STR("module", "module", F_NONEMPTY), /* --module: only this module's lines */
	END,
};

static const struct field metrics[] = {
	STRC("metricsPath", "metrics_path", F_NONEMPTY, check_absolute), /* a copy of every line */
	END,
};

/* The serial console is the VMM's stdout, which the daemon reads (the console
 * file): serialOutPath gets a copy of it, as logPath does of the log. */
static const struct field serial[] = {
	STRC("serialOutPath", NULL, F_NONEMPTY, check_absolute),
	END,
};

static const struct field entropy[] = {
	OBJ("rateLimiter", "rate_limiter", 0, rate_limiter),
	END,
};

/* The document. Sections are sent one by one (svm_payload_*), each to its own
 * endpoint, so the top level has no snake_case names. bootSource is optional so
 * that "image" alone can boot. */
static const struct field top[] = {
	STR("id", NULL, 0),
	STRC("image", NULL, 0, check_image),
	OBJ("bootSource", NULL, 0, boot_source),                 /* PUT /boot-source */
	OBJ("machineConfig", NULL, F_REQUIRED, machine_config),  /* PUT /machine-config */
	OBJS("drives", NULL, 0, drive),                          /* PUT /drives/{id} */
	OBJS("networkInterfaces", NULL, 0, network_interface),   /* PUT /network-interfaces/{id} */
	OBJ("vsock", NULL, 0, vsock),                            /* PUT /vsock */
	OBJ("balloon", NULL, 0, balloon),                        /* PUT /balloon */
	OBJ("mmds", NULL, 0, mmds),                              /* PUT /mmds/config */
	OBJ("logger", NULL, 0, logger),                          /* PUT /logger */
	OBJ("metrics", NULL, 0, metrics),                        /* PUT /metrics */
	OBJ("entropy", NULL, 0, entropy),                        /* PUT /entropy */
	CPUTEMPLATE("cpuConfig"),                                /* PUT /cpu-config */
	OBJS("pmem", NULL, 0, pmem),                             /* PUT /pmem/{id} */
	OBJ("memoryHotplug", NULL, 0, memory_hotplug),           /* PUT /hotplug/memory */
	OBJ("serial", NULL, 0, serial),                          /* a copy of the console */
	STRC("netns", NULL, F_NONEMPTY, check_absolute),         /* the jailer's --netns */
	LIMITS("limits"),                                        /* cgroup and rlimits */
	BOOL("agent", NULL, 0),      /* the agent's initrd and a vsock device (docs/exec.md) */
	END,
};

/* ------------------------------------------------------------ string checks */

/* Firecracker's API server accepts only alphanumerics and '_' in the ids it
 * takes in URLs (/drives/{drive_id}); catching it here says which field. */
static const char *check_resource_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		goto bad;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			goto bad;
	return NULL;
bad:
	return "1 to 64 letters, digits or underscores";
}

static const char *check_mac(const char *s)
{
	if (strlen(s) != 17)
		goto bad;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			goto bad;
	}
	return NULL;
bad:
	return "a MAC address like 02:00:00:00:00:01";
}

/* The kernel's dev_valid_name(): 1..15 bytes (IFNAMSIZ), no '/', ':' or space,
 * not "." or "..". */
static const char *check_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		goto bad;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			goto bad;
	return NULL;
bad:
	return "an interface name of 1 to 15 characters without '/', ':' or spaces";
}

/* Paths the daemon opens or hands to Firecracker for the user: relative to what? */
static const char *check_absolute(const char *s)
{
	return s[0] == '/' ? NULL : "an absolute path";
}

/* Firecracker's ipv4_address format: 169.254.[1-254].[0-255], plain dotted
 * decimal (sscanf alone would take signs and spaces). */
static const char *check_link_local(const char *s)
{
	unsigned a, b, c, d;
	int end = -1;
	if (strspn(s, "0123456789.") != strlen(s) ||
	    sscanf(s, "%3u.%3u.%3u.%3u%n", &a, &b, &c, &d, &end) != 4 ||
	    (size_t)end != strlen(s) || a != 169 || b != 254 || c < 1 || c > 254 || d > 255)
		return "a link-local IPv4 address (169.254.1.0 to 169.254.254.255)";
	return NULL;
}

/* "latest", "lts" or a bundle id; the id becomes a directory name under the image
 * cache, hence no "." / ".." and the NAME_MAX bound. */
static const char *check_image(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, ".."))
		goto bad;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			goto bad;
	return NULL;
bad:
	return "\"latest\", \"lts\" or a bundle id ([A-Za-z0-9._-]+)";
}

bool svm_config_id_valid(const char *id)
{
	return id && check_resource_id(id) == NULL;
}

/* ------------------------------------------------------------- the problems */

struct problems {
	json_t *list; /* array of strings */
};

static void problem(struct problems *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_array_append_new(p->list, json_string(buf));
}

/* A path for messages: "drives[0].rateLimiter". Long ones (a user's unknown key)
 * are cut: the message still says where. Through vsnprintf so the compiler does
 * not warn about the cut it cannot rule out. */
static void pathf(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

/* The same as pathf "%s.%s" (or name alone at the top), without printf: it
 * runs for every key of every config checked, three times in a restore. */
static void path_join(char *out, size_t size, const char *prefix, const char *name)
{
	size_t used = 0;
	const char *parts[] = {prefix, *prefix ? "." : "", name};
	for (size_t i = 0; i < 3 && size; i++) {
		size_t n = strlen(parts[i]);
		if (n > size - 1 - used)
			n = size - 1 - used;
		memcpy(out + used, parts[i], n);
		used += n;
	}
	if (size)
		out[used] = '\0';
}

static bool absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

static void check_object(struct problems *p, const struct field *tab, const json_t *obj,
			 const char *path);

static const struct field *find_field(const struct field *tab, const char *name)
{
	for (; tab->name; tab++)
		if (!strcmp(tab->name, name))
			return tab;
	return NULL;
}

static void check_choices(struct problems *p, const struct field *f, const char *s,
			  const char *path)
{
	char list[256] = "";
	for (const char *const *c = f->choices; *c; c++) {
		if (!strcmp(*c, s))
			return;
		size_t used = strlen(list);
		snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *c);
	}
	problem(p, "%s must be one of: %s", path, list);
}

static void check_string(struct problems *p, const struct field *f, const json_t *v,
			 const char *path)
{
	if (!json_is_string(v)) {
		problem(p, "%s must be a string", path);
		return;
	}
	const char *s = json_string_value(v);
	if ((f->flags & F_NONEMPTY) && !*s) {
		problem(p, "%s must not be empty", path);
		return;
	}
	if (f->choices)
		check_choices(p, f, s, path);
	const char *want = f->check ? f->check(s) : NULL;
	if (want)
		problem(p, "%s must be %s", path, want);
}

static void check_int(struct problems *p, const struct field *f, const json_t *v,
		      const char *path)
{
	if (!json_is_integer(v)) {
		problem(p, "%s must be an integer", path);
		return;
	}
	json_int_t n = json_integer_value(v);
	if (n >= f->min && n <= f->max)
		return;
	/* ">= 3" is the seed's wording for vsock.guestCid; F_RANGE fields are small
	 * ranges where both ends help */
	if (f->flags & F_RANGE)
		problem(p, "%s must be between %lld and %lld", path, (long long)f->min,
			(long long)f->max);
	else if (n > f->max)
		problem(p, "%s must be <= %lld", path, (long long)f->max);
	else if (f->min == 0)
		problem(p, "%s must be a non-negative integer", path);
	else
		problem(p, "%s must be >= %lld", path, (long long)f->min);
}

static void check_array(struct problems *p, const struct field *f, const json_t *v,
			const char *path)
{
	if (!json_is_array(v)) {
		problem(p, "%s must be an array", path);
		return;
	}
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item) {
		char ipath[256];
		pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
		if (f->type == FT_OBJECT_ARRAY)
			check_object(p, f->sub, item, ipath);
		else
			check_string(p, f, item, ipath);
	}
}

/* A custom CPU template is Firecracker's own document (its docs give them as
 * files): passed as it is, its members' insides judged by Firecracker at start.
 * Here: an object of the members Firecracker knows, each an array. */
static void check_cpu_template(struct problems *p, const json_t *v, const char *path)
{
	static const char *const members[] = {"kvm_capabilities", "vcpu_features", "cpuid_modifiers",
					      "msr_modifiers", "reg_modifiers", NULL};
	if (!json_is_object(v)) {
		problem(p, "%s must be an object (a custom CPU template, Firecracker's format)", path);
		return;
	}
	const char *key;
	const json_t *m;
	json_object_foreach((json_t *)v, key, m) {
		bool known = false;
		for (size_t i = 0; members[i] && !known; i++)
			known = !strcmp(key, members[i]);
		if (!known)
			problem(p, "unknown field \"%s.%s\" (a CPU template has kvm_capabilities, "
				"vcpu_features, cpuid_modifiers, msr_modifiers, reg_modifiers)", path, key);
		else if (!json_is_array(m))
			problem(p, "%s.%s must be an array", path, key);
	}
}

static void check_value(struct problems *p, const struct field *f, const json_t *v,
			const char *path)
{
	switch (f->type) {
	case FT_STRING:
		check_string(p, f, v, path);
		break;
	case FT_INT:
		check_int(p, f, v, path);
		break;
	case FT_BOOL:
		if (!json_is_boolean(v))
			problem(p, "%s must be a boolean", path);
		break;
	case FT_OBJECT:
		check_object(p, f->sub, v, path);
		break;
	case FT_OBJECT_ARRAY:
	case FT_STRING_ARRAY:
		check_array(p, f, v, path);
		break;
	case FT_CPU_TEMPLATE:
		check_cpu_template(p, v, path);
		break;
	case FT_LIMITS:
		svm_limits_problems(v, p->list);
		break;
	}
}

/* Type, bounds and format of every member, then unknown members. path "" is
 * the document itself. */
static void check_object(struct problems *p, const struct field *tab, const json_t *obj,
			 const char *path)
{
	if (!json_is_object(obj)) {
		problem(p, "%s must be an object", *path ? path : "config");
		return;
	}
	for (const struct field *f = tab; f->name; f++) {
		char fpath[256];
		path_join(fpath, sizeof fpath, path, f->name);
		const json_t *v = json_object_get(obj, f->name);
		if (absent(v)) {
			if (f->flags & F_REQUIRED)
				problem(p, "%s is required", fpath);
			continue;
		}
		check_value(p, f, v, fpath);
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		if (!find_field(tab, key)) {
			char fpath[256];
			path_join(fpath, sizeof fpath, path, key);
			problem(p, "unknown field \"%s\"", fpath);
		}
	}
}

/* ------------------------------------------------------- cross-field rules */

/* The string member name of element i of arr, or NULL. */
static const char *member_str(const json_t *arr, size_t i, const char *name)
{
	return json_string_value(json_object_get(json_array_get(arr, i), name));
}

/* Reports every element whose member `name` repeats an earlier one's. */
static void check_unique(struct problems *p, const json_t *arr, const char *arr_name,
			 const char *name)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *s = member_str(arr, i, name);
		for (size_t j = 0; s && j < i; j++) {
			const char *t = member_str(arr, j, name);
			if (t && !strcmp(s, t)) {
				problem(p, "%s[%zu].%s \"%s\" is already used by %s[%zu]",
					arr_name, i, name, s, arr_name, j);
				break;
			}
		}
	}
}

/* One root device, a drive or a pmem device (Firecracker refuses a second). */
static void check_drives(struct problems *p, const json_t *drives, const json_t *pm)
{
	size_t roots = 0;
	for (size_t i = 0; i < json_array_size(drives); i++)
		if (json_is_true(json_object_get(json_array_get(drives, i), "isRootDevice")))
			roots++;
	for (size_t i = 0; i < json_array_size(pm); i++)
		if (json_is_true(json_object_get(json_array_get(pm, i), "rootDevice")))
			roots++;
	if (roots > 1)
		problem(p, "Only one root drive is allowed"); /* the seed's words; pmem counts too */
	if (drives)
		check_unique(p, drives, "drives", "driveId");
	if (pm)
		check_unique(p, pm, "pmem", "id");
}

/* Firecracker's rules for the hotplug region, said at the write rather than at
 * start: block at least 2 MiB and a power of two, slot at least 128 MiB and a
 * multiple of the block, total at least a slot and a multiple of it. */
static void check_hotplug(struct problems *p, const json_t *h)
{
	const json_t *t = json_object_get(h, "totalSizeMib"), *sl = json_object_get(h, "slotSizeMib"),
		     *bl = json_object_get(h, "blockSizeMib");
	if (!json_is_integer(t) || (sl && !json_is_integer(sl)) || (bl && !json_is_integer(bl)))
		return; /* the types are said already */
	json_int_t total = json_integer_value(t), slot = sl ? json_integer_value(sl) : 128,
		   block = bl ? json_integer_value(bl) : 2;
	if (block < 2)
		problem(p, "memoryHotplug.blockSizeMib must not be lower than 2");
	else if (block & (block - 1))
		problem(p, "memoryHotplug.blockSizeMib must be a power of 2");
	else if (slot < 128)
		problem(p, "memoryHotplug.slotSizeMib must not be lower than 128");
	else if (slot % block)
		problem(p, "memoryHotplug.slotSizeMib must be a multiple of blockSizeMib (%lld)",
			(long long)block);
	else if (total < slot)
		problem(p, "memoryHotplug.totalSizeMib must not be lower than slotSizeMib (%lld)",
			(long long)slot);
	else if (total % slot)
		problem(p, "memoryHotplug.totalSizeMib must be a multiple of slotSizeMib (%lld)",
			(long long)slot);
}

static bool iface_configured(const json_t *ifaces, const char *id)
{
	for (size_t i = 0; i < json_array_size(ifaces); i++) {
		const char *s = member_str(ifaces, i, "ifaceId");
		if (s && !strcmp(s, id))
			return true;
	}
	return false;
}

/* Firecracker rejects an MMDS config with no interface, or one naming an
 * interface it has not been given. */
static void check_mmds(struct problems *p, const json_t *mmds_cfg, const json_t *ifaces)
{
	const json_t *names = json_object_get(mmds_cfg, "networkInterfaces");
	if (!json_is_array(names))
		return;
	if (json_array_size(names) == 0)
		problem(p, "mmds.networkInterfaces must not be empty");
	size_t i;
	json_t *name;
	json_array_foreach(names, i, name) {
		const char *s = json_string_value(name);
		if (s && !iface_configured(ifaces, s))
			problem(p, "mmds.networkInterfaces[%zu] \"%s\" is not a configured network interface",
				i, s);
	}
}

/* Firecracker: with SMT on, the vCPU count must be 1 or even. */
static void check_smt(struct problems *p, const json_t *mc)
{
	const json_t *n = json_object_get(mc, "vcpuCount");
	if (json_is_true(json_object_get(mc, "smt")) && json_is_integer(n) &&
	    json_integer_value(n) > 1 && json_integer_value(n) % 2)
		problem(p, "machineConfig.vcpuCount must be 1 or an even number when smt is true");
}

static void cross_checks(struct problems *p, const json_t *cfg)
{
	const json_t *drives = json_object_get(cfg, "drives");
	const json_t *ifaces = json_object_get(cfg, "networkInterfaces");
	const json_t *pm = json_object_get(cfg, "pmem");
	check_drives(p, json_is_array(drives) ? drives : NULL, json_is_array(pm) ? pm : NULL);
	const json_t *hp = json_object_get(cfg, "memoryHotplug");
	if (json_is_object(hp))
		check_hotplug(p, hp);
	if (json_is_array(ifaces)) {
		check_unique(p, ifaces, "networkInterfaces", "ifaceId");
		check_unique(p, ifaces, "networkInterfaces", "hostDevName");
		check_unique(p, ifaces, "networkInterfaces", "guestMac");
		/* in a network namespace of the user's, the TAPs are the user's too */
		size_t i;
		const json_t *nic;
		json_array_foreach(json_object_get(cfg, "netns") ? ifaces : NULL, i, nic)
			if (!json_object_get(nic, "hostDevName"))
				problem(p, "networkInterfaces[%zu].hostDevName is required with netns (the "
					   "TAP in that network namespace)", i);
	}
	const json_t *m = json_object_get(cfg, "mmds");
	if (json_is_object(m))
		check_mmds(p, m, json_is_array(ifaces) ? ifaces : NULL);
	const json_t *mc = json_object_get(cfg, "machineConfig");
	if (json_is_object(mc))
		check_smt(p, mc);
	/* Firecracker boots one initrd: the agent's takes its place */
	if (json_is_true(json_object_get(cfg, "agent")) &&
	    json_object_get(json_object_get(cfg, "bootSource"), "initrdPath"))
		problem(p, "agent: true boots the agent's own initrd: bootSource.initrdPath cannot be "
		        "set with it (bake the agent into the image instead, docs/exec.md)");
}

static json_t *collect_problems(const json_t *cfg)
{
	struct problems p = {json_array()};
	check_object(&p, top, cfg, "");
	if (json_is_object(cfg))
		cross_checks(&p, cfg);
	return p.list;
}

int svm_config_problems(const json_t *cfg, json_t **errors)
{
	json_t *list = collect_problems(cfg);
	int n = (int)json_array_size(list);
	if (errors)
		*errors = list;
	else
		json_decref(list);
	return n;
}

/* INVALID_CONFIG with the messages joined by "; ", or 0 if list is empty.
 * Consumes list. */
static int fail_with(json_t *list, svm_error *err)
{
	size_t n = json_array_size(list);
	if (n == 0) {
		json_decref(list);
		return 0;
	}
	char msg[sizeof err->message] = "";
	size_t used = 0;
	for (size_t i = 0; i < n && used < sizeof msg; i++)
		used += snprintf(msg + used, sizeof msg - used, "%s%s", i ? "; " : "",
				 json_string_value(json_array_get(list, i)));
	json_decref(list);
	return svm_error_set(err, SVM_INVALID_CONFIG, "%s", msg);
}

int svm_config_validate(const json_t *cfg, svm_error *err)
{
	return fail_with(collect_problems(cfg), err);
}

int svm_config_check_bootable(const json_t *cfg, svm_error *err)
{
	json_t *list = collect_problems(cfg);
	const json_t *image = json_object_get(cfg, "image");
	const json_t *bs = json_object_get(cfg, "bootSource");
	const json_t *kernel = json_object_get(bs, "kernelImagePath");
	if (absent(image) && absent(kernel))
		json_array_insert_new(list, 0,
			json_string("bootSource.kernelImagePath is required (or set \"image\")"));
	return fail_with(list, err);
}

/* ------------------------------------------------------------ parse & dump */

json_t *svm_config_default(void)
{
	return json_pack("{s:{s:s}, s:{s:i, s:i}}",
		"bootSource", "bootArgs", "console=ttyS0 reboot=k panic=1 pci=off",
		"machineConfig", "vcpuCount", 1, "memSizeMib", 128);
}

static json_t *load(const char *text, size_t len, json_error_t *jerr)
{
	/* DECODE_ANY: a scalar document gets our "must be an object", not a syntax
	 * error; duplicates would silently lose one of the values. */
	return json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, jerr);
}

json_t *svm_config_parse(const char *text, size_t len, svm_error *err)
{
	if (len > SVM_CONFIG_MAX_BYTES) {
		svm_error_set(err, SVM_TOO_LARGE, "config is %zu bytes, more than the %d allowed",
			      len, SVM_CONFIG_MAX_BYTES);
		return NULL;
	}
	/* jansson skips a NUL byte after a token (and then miscounts positions):
	 * JSON text has none outside escapes, so refuse it here */
	const char *nul = text ? memchr(text, '\0', len) : NULL;
	if (nul) {
		svm_error_set(err, SVM_INVALID_CONFIG, "invalid JSON: a NUL byte at offset %zu",
			      (size_t)(nul - text));
		return NULL;
	}
	json_error_t jerr;
	json_t *cfg = load(text ? text : "", text ? len : 0, &jerr);
	if (!cfg) {
		svm_error_set(err, SVM_INVALID_CONFIG, "invalid JSON at %d:%d: %s", jerr.line,
			      jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		svm_error_set(err, SVM_INVALID_CONFIG, "config must be a JSON object");
		return NULL;
	}
	if (svm_config_validate(cfg, err) < 0) {
		json_decref(cfg);
		return NULL;
	}
	return cfg;
}

/* Length of a UTF-8 sequence cut short at the end of text (0 if none). */
static size_t truncated_utf8(const char *text, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = (unsigned char)text[len - back];
		if ((c & 0xC0) == 0x80)
			continue; /* a continuation byte: look further back */
		size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		return need > back ? back : 0;
	}
	return 0;
}

/* Is the token at the end of text the start of a literal or a number? jansson
 * calls "tru" or "1e" an invalid token, though more bytes would complete it. */
static bool truncated_token(const char *text, size_t len)
{
	size_t start = len;
	while (start > 0 && (isalnum((unsigned char)text[start - 1]) ||
			     strchr("+-.", text[start - 1])))
		start--;
	size_t n = len - start;
	if (n == 0)
		return false;
	const char *tok = text + start;
	if (!strncmp(tok, "true", n) || !strncmp(tok, "false", n) || !strncmp(tok, "null", n))
		return n < 5;
	/* a number cut after '-', '.', 'e' or a sign is completed by a digit (a
	 * number has no length limit: one too big for an integer is a real) */
	char *buf = malloc(n + 2);
	if (!buf)
		return false;
	memcpy(buf, tok, n);
	memcpy(buf + n, "0", 2);
	json_t *num = json_loads(buf, JSON_DECODE_ANY, NULL);
	free(buf);
	bool ok = json_is_number(num);
	json_decref(num);
	return ok;
}

/* Does text end inside an escape: "\" or "\u" with fewer than 4 hex digits? */
static bool truncated_escape(const char *text, size_t len)
{
	const char *bs = NULL;
	for (size_t i = len; i > 0 && len - i < 6; i--)
		if (text[i - 1] == '\\') {
			bs = text + i - 1;
			break;
		}
	if (!bs)
		return false;
	size_t n = (size_t)(text + len - bs);
	if (n == 1)
		return true;
	if (bs[1] != 'u' || n > 5)
		return false;
	for (size_t i = 2; i < n; i++)
		if (!isxdigit((unsigned char)bs[i]))
			return false;
	return true;
}

bool svm_config_text_incomplete(const char *text, size_t len)
{
	if (!text || len > SVM_CONFIG_MAX_BYTES || memchr(text, '\0', len))
		return false;
	json_error_t jerr;
	json_t *doc = load(text, len, &jerr);
	if (doc) {
		json_decref(doc);
		return false;
	}
	switch (json_error_code(&jerr)) {
	case json_error_premature_end_of_input:
		return true;
	case json_error_invalid_utf8: {
		/* a write may end in the middle of a multi-byte character */
		size_t cut = truncated_utf8(text, len);
		return cut && svm_config_text_incomplete(text, len - cut);
	}
	case json_error_invalid_syntax:
		/* only an error at the very end can be cured by more input */
		if ((size_t)jerr.position != len)
			return false;
		return truncated_token(text, len) || truncated_escape(text, len);
	case json_error_numeric_overflow:
		/* an integer too big at the very end may still become a real with
		 * more input ("-22337203685477777777" then ".5"), which JSON takes */
		return (size_t)jerr.position == len && len > 0 && isdigit((unsigned char)text[len - 1]);
	default:
		return false;
	}
}

char *svm_config_dump(const json_t *cfg)
{
	char *body = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!body)
		return NULL;
	size_t n = strlen(body);
	char *out = realloc(body, n + 2);
	if (!out) {
		free(body);
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	return out;
}

/* ------------------------------------------------------------------ payloads */

static json_t *build(const struct field *tab, const json_t *src);

static json_t *build_value(const struct field *f, const json_t *v)
{
	if (f->type == FT_OBJECT)
		return build(f->sub, v);
	if (f->type == FT_OBJECT_ARRAY) {
		json_t *arr = json_array();
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
			json_array_append_new(arr, build(f->sub, item));
		return arr;
	}
	/* a copy, never a shared reference: the caller may change its document */
	return json_deep_copy(v);
}

/* The snake_case body for the members of src that tab sends to Firecracker,
 * in table order. Absent and null members stay absent (F_FC_FALSE: false). */
static json_t *build(const struct field *tab, const json_t *src)
{
	json_t *out = json_object();
	for (const struct field *f = tab; f->name; f++) {
		if (!f->fc)
			continue;
		const json_t *v = json_object_get(src, f->name);
		if (absent(v)) {
			if (f->flags & F_FC_FALSE)
				json_object_set_new(out, f->fc, json_false());
			continue;
		}
		json_object_set_new(out, f->fc, build_value(f, v));
	}
	return out;
}

static json_t *section(const json_t *cfg, const char *name)
{
	const struct field *f = find_field(top, name);
	const json_t *v = json_object_get(cfg, name);
	if (!f || !json_is_object(v))
		return NULL;
	return build(f->sub, v);
}

json_t *svm_payload_boot_source(const json_t *cfg) { return section(cfg, "bootSource"); }
json_t *svm_payload_machine_config(const json_t *cfg) { return section(cfg, "machineConfig"); }
json_t *svm_payload_vsock(const json_t *cfg) { return section(cfg, "vsock"); }
json_t *svm_payload_balloon(const json_t *cfg) { return section(cfg, "balloon"); }
json_t *svm_payload_mmds_config(const json_t *cfg) { return section(cfg, "mmds"); }
json_t *svm_payload_logger(const json_t *cfg) { return section(cfg, "logger"); }
json_t *svm_payload_metrics(const json_t *cfg) { return section(cfg, "metrics"); }
json_t *svm_payload_entropy(const json_t *cfg) { return section(cfg, "entropy"); }

json_t *svm_payload_memory_hotplug(const json_t *cfg) { return section(cfg, "memoryHotplug"); }

json_t *svm_payload_pmem(const json_t *p) { return build(pmem, p); }

json_t *svm_payload_cpu_config(const json_t *cfg)
{
	const json_t *v = json_object_get(cfg, "cpuConfig");
	return json_is_object(v) ? json_deep_copy(v) : NULL;
}

json_t *svm_payload_drive(const json_t *d)
{
	return json_is_object(d) ? build(drive, d) : NULL;
}

json_t *svm_payload_network_interface(const json_t *iface)
{
	return json_is_object(iface) ? build(network_interface, iface) : NULL;
}

json_t *svm_payload_rate_limiter(const json_t *rl)
{
	return json_is_object(rl) ? build(rate_limiter, rl) : NULL;
}

json_t *svm_payload_netif_update(const char *iface_id, const json_t *update, svm_error *err)
{
	if (!svm_config_id_valid(iface_id)) {
		svm_error_set(err, SVM_INVALID_ARGUMENT,
			      "network interface id \"%s\" must be 1 to 64 letters, digits or underscores",
			      iface_id ? iface_id : "");
		return NULL;
	}
	if (!json_is_object(update)) {
		svm_error_set(err, SVM_INVALID_CONFIG,
			      "netif update must be a JSON object like {\"rxRateLimiter\": {...}}");
		return NULL;
	}
	struct problems p = {json_array()};
	check_object(&p, network_interface_update, update, "");
	if (fail_with(p.list, err) < 0)
		return NULL;
	json_t *body = build(network_interface_update, update);
	/* iface_id first, as Firecracker's docs write it */
	json_t *out = json_pack("{s:s}", "iface_id", iface_id);
	json_object_update(out, body);
	json_decref(body);
	return out;
}

char *svm_config_vsock_host_path(const json_t *cfg, const char *rundir)
{
	const json_t *vsock = json_object_get(cfg, "vsock");
	if (!vsock && !json_is_true(json_object_get(cfg, "agent")))
		return NULL; /* "agent": true brings a vsock device of its own */
	const char *user = json_string_value(json_object_get(vsock, "udsPath"));
	char *p = NULL;
	if (user)
		return strdup(user); /* where the user asked (under -o paths with allow_other) */
	if (asprintf(&p, "%s/vsock.sock", rundir) < 0)
		return NULL;
	return p;
}
