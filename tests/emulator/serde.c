/* Strict JSON decoding with serde_json's error texts.
 *
 * Firecracker deserialises every body with serde into Rust structs, most with
 * deny_unknown_fields, and answers the serde error verbatim inside its
 * fault_message ("missing field `mem_size_mib` at line 1 column 16"). A
 * client that maps errors by message needs these texts, so each body type
 * is a small schema table here, and a tiny scanner over the raw text finds
 * the positions serde would report (jansson does not keep them). */
#include "emu.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ft { T_U8, T_U16, T_U32, T_U64, T_USIZE, T_BOOL, T_STR, T_PATH, T_ENUM, T_STRUCT,
	  T_VEC_STR, T_VEC_STRUCT, T_ANY, T_LEVEL, T_MAC };
enum { DEF = 0, REQ = 1, OPT = 2 /* Option<T>: absent or null */ };

struct field {
	const char *name;
	enum ft t;
	int flags;
	const char *const *variants; /* T_ENUM, NULL-terminated */
	const struct schema *sub;    /* T_STRUCT, T_VEC_STRUCT */
};
struct schema {
	const char *name;
	bool deny_unknown;
	struct field f[12];
};

/* ---- schemas: field order matches Firecracker's structs --------------- */

static const char *const V_CPU_TEMPLATE[] = {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None", NULL};
static const char *const V_HUGE[] = {"None", "2M", NULL};
static const char *const V_CACHE[] = {"Unsafe", "Writeback", NULL};
static const char *const V_ENGINE[] = {"Sync", "Async", NULL};
static const char *const V_MMDS_VER[] = {"V1", "V2", NULL};
static const char *const V_ACTION[] = {"FlushMetrics", "InstanceStart", "SendCtrlAltDel", NULL};
static const char *const V_VMSTATE[] = {"Paused", "Resumed", NULL};
static const char *const V_SNAPTYPE[] = {"Full", "Diff", NULL};
static const char *const V_BACKEND[] = {"File", "Uffd", NULL};

static const struct schema S_TOKEN_BUCKET = {"TokenBucketConfig", false, {
	{.name = "size", .t = T_U64, .flags = REQ}, {.name = "one_time_burst", .t = T_U64, .flags = OPT}, {.name = "refill_time", .t = T_U64, .flags = REQ}}};
static const struct schema S_RATE_LIMITER = {"RateLimiterConfig", true, {
	{.name = "bandwidth", .t = T_STRUCT, .flags = OPT, .sub = &S_TOKEN_BUCKET}, {.name = "ops", .t = T_STRUCT, .flags = OPT, .sub = &S_TOKEN_BUCKET}}};
static const struct schema S_MEM_BACKEND = {"MemBackendConfig", true, {
	{.name = "backend_path", .t = T_PATH, .flags = REQ}, {.name = "backend_type", .t = T_ENUM, .flags = REQ, .variants = V_BACKEND}}};
static const struct schema S_NET_OVERRIDE = {"NetworkOverride", false, {
	{.name = "iface_id", .t = T_STR, .flags = REQ}, {.name = "host_dev_name", .t = T_STR, .flags = REQ}}};

const struct schema S_MACHINE = {"MachineConfig", true, {
	{.name = "vcpu_count", .t = T_U8, .flags = REQ}, {.name = "mem_size_mib", .t = T_USIZE, .flags = REQ}, {.name = "smt", .t = T_BOOL, .flags = DEF},
	{.name = "cpu_template", .t = T_ENUM, .flags = OPT, .variants = V_CPU_TEMPLATE}, {.name = "track_dirty_pages", .t = T_BOOL, .flags = DEF},
	{.name = "huge_pages", .t = T_ENUM, .flags = DEF, .variants = V_HUGE}}};
const struct schema S_MACHINE_UPDATE = {"MachineConfigUpdate", true, {
	{.name = "vcpu_count", .t = T_U8, .flags = OPT}, {.name = "mem_size_mib", .t = T_USIZE, .flags = OPT}, {.name = "smt", .t = T_BOOL, .flags = OPT},
	{.name = "cpu_template", .t = T_ENUM, .flags = OPT, .variants = V_CPU_TEMPLATE}, {.name = "track_dirty_pages", .t = T_BOOL, .flags = OPT},
	{.name = "huge_pages", .t = T_ENUM, .flags = OPT, .variants = V_HUGE}}};
const struct schema S_BOOT = {"BootSourceConfig", true, {
	{.name = "kernel_image_path", .t = T_STR, .flags = REQ}, {.name = "initrd_path", .t = T_STR, .flags = OPT}, {.name = "boot_args", .t = T_STR, .flags = OPT}}};
const struct schema S_DRIVE = {"BlockDeviceConfig", true, {
	{.name = "drive_id", .t = T_STR, .flags = REQ}, {.name = "partuuid", .t = T_STR, .flags = OPT}, {.name = "is_root_device", .t = T_BOOL, .flags = REQ},
	{.name = "cache_type", .t = T_ENUM, .flags = DEF, .variants = V_CACHE}, {.name = "is_read_only", .t = T_BOOL, .flags = OPT},
	{.name = "path_on_host", .t = T_STR, .flags = OPT}, {.name = "rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER},
	{.name = "io_engine", .t = T_ENUM, .flags = OPT, .variants = V_ENGINE}, {.name = "socket", .t = T_STR, .flags = OPT}}};
const struct schema S_DRIVE_UPDATE = {"BlockDeviceUpdateConfig", true, {
	{.name = "drive_id", .t = T_STR, .flags = REQ}, {.name = "path_on_host", .t = T_STR, .flags = OPT},
	{.name = "rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER}}};
const struct schema S_NET = {"NetworkInterfaceConfig", true, {
	{.name = "iface_id", .t = T_STR, .flags = REQ}, {.name = "host_dev_name", .t = T_STR, .flags = REQ}, {.name = "guest_mac", .t = T_MAC, .flags = OPT},
	{.name = "rx_rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER},
	{.name = "tx_rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER}}};
const struct schema S_NET_UPDATE = {"NetworkInterfaceUpdateConfig", true, {
	{.name = "iface_id", .t = T_STR, .flags = REQ}, {.name = "rx_rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER},
	{.name = "tx_rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER}}};
const struct schema S_VSOCK = {"VsockDeviceConfig", true, {
	{.name = "vsock_id", .t = T_STR, .flags = OPT}, {.name = "guest_cid", .t = T_U32, .flags = REQ}, {.name = "uds_path", .t = T_STR, .flags = REQ}}};
const struct schema S_BALLOON = {"BalloonDeviceConfig", true, {
	{.name = "amount_mib", .t = T_U32, .flags = REQ}, {.name = "deflate_on_oom", .t = T_BOOL, .flags = REQ},
	{.name = "stats_polling_interval_s", .t = T_U16, .flags = DEF}, {.name = "free_page_hinting", .t = T_BOOL, .flags = DEF},
	{.name = "free_page_reporting", .t = T_BOOL, .flags = DEF}}};
const struct schema S_BALLOON_UPDATE = {"BalloonUpdateConfig", true, {{.name = "amount_mib", .t = T_U32, .flags = REQ}}};
const struct schema S_BALLOON_STATS = {"BalloonUpdateStatsConfig", true, {
	{.name = "stats_polling_interval_s", .t = T_U16, .flags = REQ}}};
const struct schema S_MMDS_CONFIG = {"MmdsConfig", true, {
	{.name = "version", .t = T_ENUM, .flags = DEF, .variants = V_MMDS_VER}, {.name = "network_interfaces", .t = T_VEC_STR, .flags = REQ},
	{.name = "ipv4_address", .t = T_STR, .flags = OPT}, {.name = "imds_compat", .t = T_BOOL, .flags = DEF}}};
const struct schema S_ENTROPY = {"EntropyDeviceConfig", true, {
	{.name = "rate_limiter", .t = T_STRUCT, .flags = OPT, .sub = &S_RATE_LIMITER}}};
const struct schema S_SERIAL = {"SerialConfig", true, {{.name = "serial_out_path", .t = T_PATH, .flags = OPT}}};
const struct schema S_LOGGER = {"LoggerConfig", true, {
	{.name = "log_path", .t = T_PATH, .flags = OPT}, {.name = "level", .t = T_LEVEL, .flags = OPT}, {.name = "show_level", .t = T_BOOL, .flags = OPT},
	{.name = "show_log_origin", .t = T_BOOL, .flags = OPT}, {.name = "module", .t = T_STR, .flags = OPT}}};
const struct schema S_METRICS = {"MetricsConfig", false, {{.name = "metrics_path", .t = T_PATH, .flags = REQ}}};
const struct schema S_ACTION = {"ActionBody", true, {{.name = "action_type", .t = T_ENUM, .flags = REQ, .variants = V_ACTION}}};
const struct schema S_VM = {"Vm", true, {{.name = "state", .t = T_ENUM, .flags = REQ, .variants = V_VMSTATE}}};
const struct schema S_SNAP_CREATE = {"CreateSnapshotParams", true, {
	{.name = "snapshot_type", .t = T_ENUM, .flags = DEF, .variants = V_SNAPTYPE}, {.name = "snapshot_path", .t = T_PATH, .flags = REQ},
	{.name = "mem_file_path", .t = T_PATH, .flags = REQ}}};
const struct schema S_SNAP_LOAD = {"LoadSnapshotConfig", true, {
	{.name = "snapshot_path", .t = T_PATH, .flags = REQ}, {.name = "mem_file_path", .t = T_PATH, .flags = OPT},
	{.name = "mem_backend", .t = T_STRUCT, .flags = OPT, .sub = &S_MEM_BACKEND}, {.name = "enable_diff_snapshots", .t = T_BOOL, .flags = DEF},
	{.name = "track_dirty_pages", .t = T_BOOL, .flags = DEF}, {.name = "resume_vm", .t = T_BOOL, .flags = DEF},
	{.name = "network_overrides", .t = T_VEC_STRUCT, .flags = DEF, .sub = &S_NET_OVERRIDE}, {.name = "clock_realtime", .t = T_BOOL, .flags = DEF}}};
const struct schema S_PMEM = {"PmemConfig", true, {
	{.name = "id", .t = T_STR, .flags = REQ}, {.name = "path_on_host", .t = T_STR, .flags = REQ},
	{.name = "root_device", .t = T_BOOL, .flags = DEF}, {.name = "read_only", .t = T_BOOL, .flags = DEF}}};
const struct schema S_HOTPLUG = {"MemoryHotplugConfig", true, {
	{.name = "total_size_mib", .t = T_USIZE, .flags = REQ}, {.name = "block_size_mib", .t = T_USIZE, .flags = OPT},
	{.name = "slot_size_mib", .t = T_USIZE, .flags = OPT}}};
const struct schema S_HOTPLUG_UPDATE = {"MemoryHotplugSizeUpdate", true, {
	{.name = "requested_size_mib", .t = T_USIZE, .flags = REQ}}};
const struct schema S_CPU_CONFIG = {"CustomCpuTemplate", true, {
	{.name = "kvm_capabilities", .t = T_ANY, .flags = DEF}, {.name = "cpuid_modifiers", .t = T_ANY, .flags = DEF}, {.name = "msr_modifiers", .t = T_ANY, .flags = DEF}}};

/* ---- a scanner over text jansson already accepted --------------------- */

static size_t ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

static size_t skip_value(const char *s, size_t n, size_t i)
{
	i = ws(s, n, i);
	if (i >= n)
		return n;
	if (s[i] == '"') {
		for (i++; i < n && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		return i + 1;
	}
	if (s[i] == '{' || s[i] == '[') {
		int depth = 0;
		for (; i < n; i++) {
			if (s[i] == '"') {
				i = skip_value(s, n, i) - 1;
			} else if (s[i] == '{' || s[i] == '[') {
				depth++;
			} else if (s[i] == '}' || s[i] == ']') {
				if (--depth == 0)
					return i + 1;
			}
		}
		return n;
	}
	while (i < n && !strchr(" \t\r\n,]}", s[i]))
		i++;
	return i;
}

struct member { size_t key_end, val_start, val_end; };

/* Members of the object starting at s[i] ('{'); returns the offset after '}'. */
static size_t members(const char *s, size_t n, size_t i, struct member *m, size_t max, size_t *count)
{
	*count = 0;
	i = ws(s, n, i) + 1;
	for (;;) {
		i = ws(s, n, i);
		if (i >= n)
			return n;
		if (s[i] == '}')
			return i + 1;
		if (s[i] == ',') {
			i++;
			continue;
		}
		size_t ke = skip_value(s, n, i);
		i = ws(s, n, ke) + 1; /* ':' */
		size_t vs = ws(s, n, i), ve = skip_value(s, n, vs);
		if (*count < max)
			m[(*count)++] = (struct member){ke, vs, ve};
		i = ve;
	}
}

/* serde_json reports "line L column C": C counts the bytes consumed on line L. */
static void position(const char *s, size_t off, char *out, size_t outn)
{
	size_t line = 1, col = 0;
	for (size_t i = 0; i < off; i++) {
		if (s[i] == '\n') {
			line++;
			col = 0;
		} else {
			col++;
		}
	}
	snprintf(out, outn, "at line %zu column %zu", line, col);
}

/* ---- decoding --------------------------------------------------------- */

struct ctx {
	const char *s;
	size_t n;
	char *err;
};

static void fail(struct ctx *c, size_t off, const char *msg)
{
	char pos[64];
	if (c->err)
		return;
	position(c->s, off, pos, sizeof pos);
	c->err = xasprintf("%s %s", msg, pos);
}

/* "one of `a`, `b`" / "`a` or `b`" / "`a`", as serde words it. */
static char *expected_list(const char *const *v, size_t k)
{
	char buf[1024] = "";
	size_t used = 0;
	for (size_t i = 0; i < k; i++) {
		const char *sep = i == 0 ? (k > 2 ? "one of " : "") : (k == 2 ? " or " : ", ");
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s`%s`", sep, v[i]);
		if (used >= sizeof buf)
			break;
	}
	return strdup(buf);
}

static char *unexpected(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return xasprintf("string \"%s\"", json_string_value(v));
	case JSON_INTEGER: return xasprintf("integer `%" JSON_INTEGER_FORMAT "`", json_integer_value(v));
	case JSON_REAL: return xasprintf("floating point `%g`", json_real_value(v));
	case JSON_TRUE: return strdup("boolean `true`");
	case JSON_FALSE: return strdup("boolean `false`");
	case JSON_NULL: return strdup("null");
	case JSON_OBJECT: return strdup("map");
	default: return strdup("sequence");
	}
}

static void type_error(struct ctx *c, size_t off, const json_t *v, const char *expected)
{
	char *u = unexpected(v), *m = xasprintf("invalid type: %s, expected %s", u, expected);
	fail(c, off, m);
	free(u);
	free(m);
}

static json_t *decode_struct(struct ctx *c, size_t at, const json_t *obj, const struct schema *s);

static bool check_uint(struct ctx *c, size_t off, const json_t *v, const char *name, uint64_t max)
{
	if (!json_is_integer(v)) {
		type_error(c, off, v, name);
		return false;
	}
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > max) {
		char *m = xasprintf("invalid value: integer `%" JSON_INTEGER_FORMAT "`, expected %s", x, name);
		fail(c, off, m);
		free(m);
		return false;
	}
	return true;
}

static json_t *decode_value(struct ctx *c, const struct field *f, const struct member *m, json_t *v)
{
	size_t end = m->val_end;
	if (json_is_null(v) && (f->flags & OPT))
		return json_null();
	switch (f->t) {
	case T_U8: return check_uint(c, end, v, "u8", UINT8_MAX) ? json_incref(v) : NULL;
	case T_U16: return check_uint(c, end, v, "u16", UINT16_MAX) ? json_incref(v) : NULL;
	case T_U32: return check_uint(c, end, v, "u32", UINT32_MAX) ? json_incref(v) : NULL;
	case T_U64: return check_uint(c, end, v, "u64", INT64_MAX) ? json_incref(v) : NULL;
	case T_USIZE: return check_uint(c, end, v, "usize", INT64_MAX) ? json_incref(v) : NULL;
	case T_BOOL:
		if (json_is_boolean(v))
			return json_incref(v);
		type_error(c, end, v, "a boolean");
		return NULL;
	case T_STR:
	case T_PATH:
		if (json_is_string(v))
			return json_incref(v);
		type_error(c, end, v, f->t == T_PATH ? "path string" : "a string");
		return NULL;
	case T_LEVEL: {
		enum log_level l;
		if (json_is_string(v) && log_set_level(json_string_value(v), &l) == 0)
			return json_incref(v);
		fail(c, end, "Invalid LevelFilter");
		return NULL;
	}
	case T_ENUM: {
		if (!json_is_string(v)) {
			type_error(c, end, v, "variant identifier");
			return NULL;
		}
		size_t k = 0;
		for (; f->variants[k]; k++)
			if (strcmp(f->variants[k], json_string_value(v)) == 0)
				return json_incref(v);
		char *list = expected_list(f->variants, k);
		char *msg = xasprintf("unknown variant `%s`, expected %s", json_string_value(v), list);
		fail(c, end, msg);
		free(list);
		free(msg);
		return NULL;
	}
	case T_STRUCT:
		return decode_struct(c, m->val_start, v, f->sub);
	case T_VEC_STR:
	case T_VEC_STRUCT: {
		if (!json_is_array(v)) {
			type_error(c, end, v, "a sequence");
			return NULL;
		}
		json_t *out = json_array();
		size_t i;
		json_t *e;
		size_t pos = m->val_start + 1;
		json_array_foreach(v, i, e) {
			size_t es = ws(c->s, c->n, pos);
			if (c->s[es] == ',')
				es = ws(c->s, c->n, es + 1);
			size_t ee = skip_value(c->s, c->n, es);
			json_t *d = NULL;
			if (f->t == T_VEC_STR) {
				if (json_is_string(e))
					d = json_incref(e);
				else
					type_error(c, ee, e, "a string");
			} else {
				d = decode_struct(c, es, e, f->sub);
			}
			if (!d) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, d);
			pos = ee;
		}
		return out;
	}
	case T_ANY:
		return json_incref(v);
	case T_MAC: {
		const char *p = json_string_value(v);
		bool okmac = p && strlen(p) == 17;
		for (int i = 0; okmac && i < 17; i++)
			okmac = i % 3 == 2 ? p[i] == ':' : strchr("0123456789abcdefABCDEF", p[i]) && p[i];
		if (okmac)
			return json_incref(v);
		if (!p)
			type_error(c, end, v, "a string");
		else
			fail(c, end, "The provided MAC address is invalid.");
		return NULL;
	}
	}
	return NULL;
}

static json_t *decode_struct(struct ctx *c, size_t at, const json_t *obj, const struct schema *s)
{
	size_t nf = 0;
	while (nf < 12 && s->f[nf].name)
		nf++;
	if (!json_is_object(obj)) {
		char *exp = xasprintf("struct %s", s->name);
		type_error(c, skip_value(c->s, c->n, at), obj, exp);
		free(exp);
		return NULL;
	}
	struct member m[64];
	size_t count;
	size_t end = members(c->s, c->n, at, m, 64, &count);
	json_t *out = json_object();
	bool seen[12] = {0};
	/* Walk the members as written: serde sees duplicates, jansson keeps
	 * only the last one. */
	for (size_t k = 0; k < count; k++) {
		struct member *mm = &m[k];
		size_t ks = ws(c->s, c->n, k == 0 ? at + 1 : m[k - 1].val_end);
		if (c->s[ks] == ',')
			ks = ws(c->s, c->n, ks + 1);
		json_t *kj = json_loadb(c->s + ks, mm->key_end - ks, JSON_DECODE_ANY, NULL);
		const char *key = json_string_value(kj);
		json_t *v = json_object_get(obj, key ? key : "");
		size_t i;
		for (i = 0; i < nf && key; i++)
			if (strcmp(s->f[i].name, key) == 0)
				break;
		if (!key || i == nf) {
			if (!s->deny_unknown) {
				json_decref(kj);
				continue;
			}
			const char *names[12];
			for (size_t j = 0; j < nf; j++)
				names[j] = s->f[j].name;
			char *list = nf ? expected_list(names, nf) : NULL;
			char *msg = nf ? xasprintf("unknown field `%s`, expected %s", key, list)
				       : xasprintf("unknown field `%s`, there are no fields", key);
			fail(c, mm->key_end, msg);
			free(list);
			free(msg);
			json_decref(kj);
			json_decref(out);
			return NULL;
		}
		if (seen[i]) {
			char *msg = xasprintf("duplicate field `%s`", key);
			fail(c, mm->key_end, msg);
			free(msg);
			json_decref(kj);
			json_decref(out);
			return NULL;
		}
		struct member vm = *mm;
		/* Errors raised by custom deserialisers (log level, MAC) carry no
		 * position; serde_json stamps them with the end of the struct. */
		if (s->f[i].t == T_LEVEL || s->f[i].t == T_MAC)
			vm.val_end = end;
		json_t *d = decode_value(c, &s->f[i], &vm, v);
		if (!d) {
			json_decref(kj);
			json_decref(out);
			return NULL;
		}
		seen[i] = true;
		json_object_set_new(out, key, d);
		json_decref(kj);
	}
	for (size_t i = 0; i < nf; i++)
		if ((s->f[i].flags & REQ) && !seen[i]) {
			char *msg = xasprintf("missing field `%s`", s->f[i].name);
			fail(c, end, msg);
			free(msg);
			json_decref(out);
			return NULL;
		}
	return out;
}

/* A syntax checker that fails where serde_json fails, with its words.
 * jansson's own messages and positions differ; this runs only when jansson
 * has already refused the text, to say why as Firecracker would. */
struct syn {
	const char *s;
	size_t n, at;
	const char *msg;
};

static bool syn_fail(struct syn *y, const char *msg, size_t at)
{
	y->msg = msg;
	y->at = at;
	return false;
}

static bool syn_value(struct syn *y, size_t *i);

static bool syn_string(struct syn *y, size_t *i)
{
	for ((*i)++; *i < y->n; (*i)++) {
		unsigned char c = (unsigned char)y->s[*i];
		if (c == '"') {
			(*i)++;
			return true;
		}
		if (c < 0x20)
			return syn_fail(y, "control character (\\u0000-\\u001F) found while parsing a string", *i + 1);
		if (c == '\\') {
			if (++(*i) >= y->n)
				break;
			if (!strchr("\"\\/bfnrtu", y->s[*i]))
				return syn_fail(y, "invalid escape", *i + 1);
		}
	}
	return syn_fail(y, "EOF while parsing a string", y->n);
}

static bool syn_container(struct syn *y, size_t *i, bool obj)
{
	const char *eof = obj ? "EOF while parsing an object" : "EOF while parsing a list";
	char close = obj ? '}' : ']';
	(*i)++;
	*i = ws(y->s, y->n, *i);
	if (*i >= y->n)
		return syn_fail(y, eof, y->n);
	if (y->s[*i] == close) {
		(*i)++;
		return true;
	}
	for (;;) {
		if (obj) {
			if (y->s[*i] != '"')
				return syn_fail(y, "key must be a string", *i + 1);
			if (!syn_string(y, i))
				return false;
			*i = ws(y->s, y->n, *i);
			if (*i >= y->n)
				return syn_fail(y, eof, y->n);
			if (y->s[*i] != ':')
				return syn_fail(y, "expected `:`", *i + 1);
			(*i)++;
		}
		if (!syn_value(y, i))
			return false;
		*i = ws(y->s, y->n, *i);
		if (*i >= y->n)
			return syn_fail(y, eof, y->n);
		if (y->s[*i] == close) {
			(*i)++;
			return true;
		}
		if (y->s[*i] != ',')
			return syn_fail(y, obj ? "expected `,` or `}`" : "expected `,` or `]`", *i + 1);
		*i = ws(y->s, y->n, *i + 1);
		if (*i >= y->n)
			return syn_fail(y, eof, y->n);
		if (y->s[*i] == close)
			return syn_fail(y, "trailing comma", *i + 1);
	}
}

static bool syn_value(struct syn *y, size_t *i)
{
	*i = ws(y->s, y->n, *i);
	if (*i >= y->n)
		return syn_fail(y, "EOF while parsing a value", y->n);
	char c = y->s[*i];
	if (c == '{' || c == '[')
		return syn_container(y, i, c == '{');
	if (c == '"')
		return syn_string(y, i);
	if (c == 't' || c == 'f' || c == 'n') {
		const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
		for (size_t k = 0; lit[k]; k++, (*i)++) {
			if (*i >= y->n)
				return syn_fail(y, "EOF while parsing a value", y->n);
			if (y->s[*i] != lit[k])
				return syn_fail(y, "expected ident", *i + 1);
		}
		return true;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		if (c == '-')
			(*i)++;
		if (*i >= y->n)
			return syn_fail(y, "EOF while parsing a value", y->n);
		if (y->s[*i] == '0') {
			(*i)++;
			if (*i < y->n && y->s[*i] >= '0' && y->s[*i] <= '9')
				return syn_fail(y, "invalid number", *i + 1);
		} else if (y->s[*i] >= '1' && y->s[*i] <= '9') {
			while (*i < y->n && y->s[*i] >= '0' && y->s[*i] <= '9')
				(*i)++;
		} else {
			return syn_fail(y, "invalid number", *i + 1);
		}
		if (*i < y->n && y->s[*i] == '.') {
			(*i)++;
			if (*i >= y->n)
				return syn_fail(y, "EOF while parsing a value", y->n);
			if (!(y->s[*i] >= '0' && y->s[*i] <= '9'))
				return syn_fail(y, "invalid number", *i + 1);
			while (*i < y->n && y->s[*i] >= '0' && y->s[*i] <= '9')
				(*i)++;
		}
		if (*i < y->n && (y->s[*i] == 'e' || y->s[*i] == 'E')) {
			(*i)++;
			if (*i < y->n && (y->s[*i] == '+' || y->s[*i] == '-'))
				(*i)++;
			if (*i >= y->n)
				return syn_fail(y, "EOF while parsing a value", y->n);
			if (!(y->s[*i] >= '0' && y->s[*i] <= '9'))
				return syn_fail(y, "invalid number", *i + 1);
			while (*i < y->n && y->s[*i] >= '0' && y->s[*i] <= '9')
				(*i)++;
		}
		return true;
	}
	return syn_fail(y, "expected value", *i + 1);
}

static char *syntax_error(const char *s, size_t n, const json_error_t *e)
{
	struct syn y = {s, n, 0, NULL};
	size_t i = 0;
	char pos[64];
	if (syn_value(&y, &i)) {
		i = ws(s, n, i);
		if (i < n)
			syn_fail(&y, "trailing characters", i + 1);
	}
	if (!y.msg) /* jansson refused what serde takes (e.g. a huge number) */
		return xasprintf("%s at line %d column %d", e->text, e->line, e->column);
	position(s, y.at, pos, sizeof pos);
	return xasprintf("%s %s", y.msg, pos);
}

json_t *serde_value(const char *body, size_t len, char **err)
{
	json_error_t e;
	/* Duplicates are allowed here: serde_json's Value keeps the last one;
	 * struct decoding reports them itself. */
	json_t *v = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!v)
		*err = syntax_error(body, len, &e);
	return v;
}

json_t *serde_decode(const char *body, size_t len, const struct schema *s, char **err)
{
	json_t *v = serde_value(body, len, err);
	if (!v)
		return NULL;
	struct ctx c = {body, len, NULL};
	json_t *out = decode_struct(&c, ws(body, len, 0), v, s);
	json_decref(v);
	if (!out)
		*err = c.err ? c.err : strdup("invalid body");
	return out;
}
