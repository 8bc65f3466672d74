/*
 * limitspec.c - the per-VM resource limits as values (limitspec.h): parsed
 * from a limit file's line or config.json, checked against the kernel's own
 * bounds (so a bad value is refused when written, not at the next start), and
 * shown in one canonical text.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limitspec.h"

static const char *const names[SVM_LIMIT_COUNT] = {"cpu.max", "memory.max", "pids.max", "fsize",
						   "nofile"};

/* The kernel's bounds: CFS periods of 1 ms to 1 s and quotas of at least 1 ms
 * (below its max bandwidth, 2^44-1 µs); pid_max's ceiling; nr_open's default
 * ceiling. memory.max below 1 MiB would not hold a VMM at all. */
#define CPU_PERIOD_MIN 1000u
#define CPU_PERIOD_MAX 1000000u
#define CPU_QUOTA_MIN 1000u
#define CPU_QUOTA_MAX ((1ull << 44) - 1)
#define MEMORY_MIN (1ull << 20)
#define BYTES_MAX ((1ull << 62) - 1)
#define PIDS_MAX 4194304u
#define NOFILE_MIN 16u
#define NOFILE_MAX 1048576u

const char *svm_limit_name(svm_limit k)
{
	return (unsigned)k < SVM_LIMIT_COUNT ? names[k] : "?";
}

int svm_limit_kind(const char *name)
{
	for (int k = 0; k < SVM_LIMIT_COUNT; k++)
		if (name && !strcmp(name, names[k]))
			return k;
	return -1;
}

/* A decimal number, with a binary suffix (K, M, G, T: cgroup v2's memparse)
 * when bytes; false when not one, or too big. */
static bool number(const char *s, bool bytes, uint64_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return false;
	unsigned shift = 0;
	if (bytes && *end) {
		const char *sfx = "KMGT", *at = strchr(sfx, toupper((unsigned char)*end));
		if (!at || end[1])
			return false;
		shift = 10u * (unsigned)(at - sfx + 1);
		end++;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static int bad(char *why, size_t len, const char *what)
{
	snprintf(why, len, "%s", what);
	return -1;
}

/* One word's value for kind k (not cpu.max). */
static int parse_word(svm_limit k, const char *w, svm_limit_val *out, char *why, size_t len)
{
	memset(out, 0, sizeof *out);
	if (!strcmp(w, "max") && k != SVM_LIMIT_NOFILE) {
		out->max = true;
		return 0;
	}
	uint64_t v;
	bool bytes = k == SVM_LIMIT_MEMORY || k == SVM_LIMIT_FSIZE;
	bool ok = number(w, bytes, &v);
	switch (k) {
	case SVM_LIMIT_MEMORY:
		if (!ok || v < MEMORY_MIN || v > BYTES_MAX)
			return bad(why, len, "a number of bytes from 1048576 (1M) up, with an optional "
				   "K, M, G or T, or max");
		break;
	case SVM_LIMIT_PIDS:
		if (!ok || v < 1 || v > PIDS_MAX)
			return bad(why, len, "a number of tasks from 1 to 4194304, or max");
		break;
	case SVM_LIMIT_FSIZE:
		if (!ok || v > BYTES_MAX)
			return bad(why, len, "a number of bytes (the largest file the VMM may write), "
				   "with an optional K, M, G or T, or max");
		break;
	case SVM_LIMIT_NOFILE:
		if (!ok || v < NOFILE_MIN || v > NOFILE_MAX)
			return bad(why, len, "a number of descriptors from 16 to 1048576");
		break;
	default:
		return bad(why, len, "not a limit");
	}
	out->value = v;
	return 0;
}

static int parse_cpu(const char *a, const char *b, uint64_t period, svm_limit_val *out, char *why,
		     size_t len)
{
	static const char want[] = "\"QUOTA PERIOD\" in microseconds (a quota of 1000 or more, a "
				   "period from 1000 to 1000000), or \"max PERIOD\"; the period may "
				   "be left out";
	memset(out, 0, sizeof *out);
	uint64_t q = 0, p = period ? period : SVM_CPU_PERIOD_DEFAULT;
	if (strcmp(a, "max") && (!number(a, false, &q) || q < CPU_QUOTA_MIN || q > CPU_QUOTA_MAX))
		return bad(why, len, want);
	if (b && (!number(b, false, &p) || p < CPU_PERIOD_MIN || p > CPU_PERIOD_MAX))
		return bad(why, len, want);
	out->max = !strcmp(a, "max");
	out->value = q;
	out->period = p;
	return 0;
}

int svm_limit_parse(svm_limit k, const char *text, size_t len, uint64_t period, svm_limit_val *out,
		    char *why, size_t whylen)
{
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	char line[96], *w[3] = {NULL, NULL, NULL};
	int n = 0;
	if (len >= sizeof line || memchr(text, '\0', len) || memchr(text, '\n', len))
		return bad(why, whylen, k == SVM_LIMIT_CPU ? "one line: \"QUOTA PERIOD\" or \"max PERIOD\""
							   : "one value on one line");
	memcpy(line, text, len);
	line[len] = '\0';
	for (char *save = NULL, *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		if (n < 3)
			w[n++] = t;
		else
			n = 4;
	if (k == SVM_LIMIT_CPU && (n == 1 || n == 2))
		return parse_cpu(w[0], w[1], period, out, why, whylen);
	if (k != SVM_LIMIT_CPU && n == 1)
		return parse_word(k, w[0], out, why, whylen);
	if (k == SVM_LIMIT_CPU)
		return parse_cpu("", NULL, 0, out, why, whylen); /* says what it takes */
	return parse_word(k, "", out, why, whylen);
}

int svm_limit_from_json(svm_limit k, const json_t *v, svm_limit_val *out, char *why,
			size_t whylen)
{
	if (json_is_string(v))
		return svm_limit_parse(k, json_string_value(v), json_string_length(v), 0, out, why,
				       whylen);
	if (json_is_integer(v) && k != SVM_LIMIT_CPU && json_integer_value(v) >= 0) {
		char text[32];
		snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return svm_limit_parse(k, text, strlen(text), 0, out, why, whylen);
	}
	if (k == SVM_LIMIT_CPU)
		return svm_limit_parse(k, "", 0, 0, out, why, whylen);
	return svm_limit_parse(k, "-", 1, 0, out, why, whylen);
}

json_t *svm_limit_to_json(svm_limit k, const svm_limit_val *v)
{
	if (k == SVM_LIMIT_CPU) {
		char text[64];
		svm_limit_format(k, v, text, sizeof text);
		return json_string(text);
	}
	return v->max ? json_string("max") : json_integer((json_int_t)v->value);
}

void svm_limit_format(svm_limit k, const svm_limit_val *v, char *buf, size_t len)
{
	if (k == SVM_LIMIT_CPU && v->max)
		snprintf(buf, len, "max %" PRIu64, v->period);
	else if (k == SVM_LIMIT_CPU)
		snprintf(buf, len, "%" PRIu64 " %" PRIu64, v->value, v->period);
	else if (v->max)
		snprintf(buf, len, "max");
	else
		snprintf(buf, len, "%" PRIu64, v->value);
}

void svm_limits_problems(const json_t *limits, json_t *list)
{
	if (!json_is_object(limits)) {
		json_array_append_new(list, json_string("limits must be an object (cpu.max, memory.max, "
							"pids.max, fsize, nofile)"));
		return;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)limits, key, v) {
		int k = svm_limit_kind(key);
		char why[256], msg[400];
		svm_limit_val val;
		if (k < 0)
			snprintf(msg, sizeof msg, "unknown field \"limits.%.64s\" (the limits are cpu.max, "
				 "memory.max, pids.max, fsize, nofile)", key);
		else if (svm_limit_from_json((svm_limit)k, v, &val, why, sizeof why) < 0)
			snprintf(msg, sizeof msg, "limits.%s must be %s", key, why);
		else
			continue;
		json_array_append_new(list, json_string(msg));
	}
}
