/*
 * limitspec.h - the per-VM resource limits as values (docs/limits.md): their
 * names, the text a limit file takes and shows, the form config.json's
 * "limits" object keeps, and their bounds. Pure: no cgroup or process is
 * touched here (core/vm/vmlimits*.c apply them).
 */
#ifndef SVM_LIMITSPEC_H
#define SVM_LIMITSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum svm_limit {
	SVM_LIMIT_CPU,    /* cpu.max: "QUOTA PERIOD" (µs), or "max PERIOD" */
	SVM_LIMIT_MEMORY, /* memory.max: bytes, or "max" */
	SVM_LIMIT_PIDS,   /* pids.max: tasks, or "max" */
	SVM_LIMIT_FSIZE,  /* fsize: RLIMIT_FSIZE in bytes, or "max" */
	SVM_LIMIT_NOFILE, /* nofile: RLIMIT_NOFILE */
	SVM_LIMIT_COUNT,
} svm_limit;

#define SVM_CPU_PERIOD_DEFAULT 100000u /* the kernel's CFS period, µs */

/* One limit's value: max (no limit), or value (cpu: the quota, with period). */
typedef struct svm_limit_val {
	bool max;
	uint64_t value;
	uint64_t period;
} svm_limit_val;

/* "cpu.max" ...; the kind of a name, or -1. */
const char *svm_limit_name(svm_limit k);
int svm_limit_kind(const char *name);
/* Is k a cgroup limit (else an rlimit of the VMM's process)? */
static inline bool svm_limit_is_cgroup(svm_limit k)
{
	return k == SVM_LIMIT_CPU || k == SVM_LIMIT_MEMORY || k == SVM_LIMIT_PIDS;
}

/* A file's text (one line; trailing newline and blanks ignored) as a value.
 * cpu.max: a quota alone keeps `period` (the one in force). 0, or -1 with
 * why (completes "NAME: ...": what the value must be). */
int svm_limit_parse(svm_limit k, const char *text, size_t len, uint64_t period, svm_limit_val *out,
		    char *why, size_t whylen);
/* config.json's form: a string in the file's syntax, or (but for cpu.max) a
 * number. */
int svm_limit_from_json(svm_limit k, const json_t *v, svm_limit_val *out, char *why,
			size_t whylen);
/* What config.json keeps (a new reference): cpu.max a string, the others a
 * number or "max". */
json_t *svm_limit_to_json(svm_limit k, const svm_limit_val *v);
/* The file's text, without newline: "max 100000", "268435456", "max". */
void svm_limit_format(svm_limit k, const svm_limit_val *v, char *buf, size_t len);

/* The problems of a config's "limits" member, appended to list (strings). */
void svm_limits_problems(const json_t *limits, json_t *list);

#endif
