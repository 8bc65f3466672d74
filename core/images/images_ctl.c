/*
 * images_ctl.c - one line written to /images/ctl: a table of verbs with their
 * arity (Plan 9's Cmdtab), the line split on blanks, the verb looked up, the
 * arguments checked, the operation run. A failure is remembered as the "last
 * failure" the read side of ctl shows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "images_int.h"
#include "redact.h"

#define MAX_WORDS 6

typedef int (*ctl_fn)(svm_images *im, int argc, char **argv, svm_error *err);

static bool force_word(int argc, char **argv, int at, svm_error *err)
{
	if (argc <= at)
		return false;
	if (strcmp(argv[at], "force") != 0) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "fetch: unknown option \"%s\" (force)", argv[at]);
		return true; /* caller checks err */
	}
	return true;
}

/* A host path in a line (a local manifest, a clone's source): beneath the host
 * roots, as every host path a user names (svm_set_host_roots), checked on the
 * very words this parser runs. */
static int host_path_ok(svm_images *im, const char *path, svm_error *err)
{
	if (!im->path_allowed || im->path_allowed(im->path_ud, path))
		return 0;
	return svm_error_set(err, SVM_PERMISSION, "host path %s is not under -o paths", path);
}

static int do_fetch(svm_images *im, int argc, char **argv, svm_error *err)
{
	svm_error_clear(err);
	if (!strcmp(argv[1], "manifest")) {
		if (argc < 3)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
					     "usage: fetch manifest PATH-OR-URL [force]");
		bool force = force_word(argc, argv, 3, err);
		if (err && err->code != SVM_OK)
			return -1;
		if (strncmp(argv[2], "http://", 7) && strncmp(argv[2], "https://", 8) &&
		    host_path_ok(im, argv[2], err) < 0)
			return -1;
		return images_fetch_manifest(im, argv[2], force, NULL, err);
	}
	/* latest|lts|hosted [force] [arch ARCH]: another arch's bundle (for another
	 * host sharing the cache) is fetched, never made this host's preset */
	bool force = false;
	const char *arch = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "force") && !force)
			force = true;
		else if (!strcmp(argv[i], "arch") && !arch && i + 1 < argc)
			arch = argv[++i];
		else
			return svm_error_set(err, SVM_INVALID_ARGUMENT, "fetch: unknown option \"%s\" "
					     "(usage: fetch latest|lts|hosted [force] [arch ARCH])", argv[i]);
	}
	return images_fetch_arch(im, argv[1], arch, force, NULL, err);
}

static int do_verify(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	return images_verify(im, argv[1], err);
}

static int do_prune(svm_images *im, int argc, char **argv, svm_error *err)
{
	if (argc == 3 && strcmp(argv[1], "keep") == 0)
		return images_prune_keeping(im, argv[2], err);
	if (argc != 1)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: prune [keep ID]");
	return images_prune_keeping(im, NULL, err);
}

static int do_firecracker(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	char *p = images_fetch_firecracker(im, argv[1], err);
	free(p);
	return p ? 0 : -1;
}

static int do_evict(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	return images_evict(im, argv[1], err);
}

static int do_blank(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	char *end;
	errno = 0;
	unsigned long mib = strtoul(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || argv[2][0] == '-' || mib > 0xffffffffUL)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "blank: \"%s\" is not a size in MiB",
				     argv[2]);
	char *p = images_blank(im, argv[1], (unsigned)mib, err);
	free(p);
	return p ? 0 : -1;
}

static int do_clone(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	/* a source with a '/' is a host path; without, a name of the cache's */
	if (strchr(argv[1], '/') && host_path_ok(im, argv[1], err) < 0)
		return -1;
	char *p = images_clone(im, argv[1], argv[2], err);
	free(p);
	return p ? 0 : -1;
}

static int do_import(svm_images *im, int argc, char **argv, svm_error *err)
{
	(void)argc;
	char *p = images_import_checked(im, argv[1], argv[2], argv[3], argc > 4 ? argv[4] : NULL, err);
	free(p);
	return p ? 0 : -1;
}

static const struct {
	const char *verb;
	int min, max; /* words after the verb */
	ctl_fn fn;
	const char *usage;
} cmds[] = {
	{"fetch", 1, 4, do_fetch,
	 "fetch latest|lts|hosted [force] [arch ARCH] | fetch manifest PATH-OR-URL [force]"},
	{"verify", 1, 1, do_verify, "verify ID"},
	{"prune", 0, 2, do_prune, "prune [keep ID]"},
	{"firecracker", 1, 1, do_firecracker, "firecracker VERSION|latest"},
	{"evict", 1, 1, do_evict, "evict ID"},
	{"blank", 2, 2, do_blank, "blank NAME MIB"},
	{"clone", 2, 2, do_clone, "clone SRC NAME"},
	{"import", 3, 4, do_import, "import kernel|rootfs URL NAME [SHA256]"},
};

static void remember(svm_images *im, const char *line, const svm_error *e)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	char *text = NULL, *raw = NULL;
	if (asprintf(&raw, "%s %s: %s: %s", when, line, svm_code_name(e->code), e->message) < 0)
		raw = NULL;
	if (raw)
		text = redact_credentials(raw); /* ctl's read side is everyone's */
	free(raw);
	pthread_mutex_lock(&im->mu);
	free(im->last_failure);
	im->last_failure = text;
	pthread_mutex_unlock(&im->mu);
	img_emit(im, IMAGES_EV_CTL, NULL);
}

int images_ctl(svm_images *im, const char *line, svm_error *err)
{
	svm_error local;
	if (!err)
		err = &local;
	svm_error_clear(err);
	char *copy = strdup(line ? line : "");
	if (!copy)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	copy[strcspn(copy, "\n")] = '\0';
	char *argv[MAX_WORDS + 1] = {0}, *save = NULL;
	int argc = 0;
	bool too_many = false;
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_WORDS) {
			too_many = true;
			break;
		}
		argv[argc++] = w;
	}
	/* the line as the error file echoes it: one line of printable text (an
	 * escape sequence must not reach the terminal that reads images/error) */
	char shown[512];
	size_t o = 0;
	for (const char *p = line ? line : ""; *p && *p != '\n' && o + 5 < sizeof shown; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
		else
			shown[o++] = (char)c;
	}
	shown[o] = '\0';
	int rc = -1;
	size_t i = 0;
	if (argc == 0) {
		free(copy);
		return 0; /* an empty line is no command */
	}
	for (; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(cmds[i].verb, argv[0]))
			break;
	if (i == sizeof cmds / sizeof cmds[0])
		svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", shown);
	else if (too_many || argc - 1 < cmds[i].min || argc - 1 > cmds[i].max)
		svm_error_set(err, SVM_INVALID_ARGUMENT, "\"%s\": usage: %s", shown, cmds[i].usage);
	else
		rc = cmds[i].fn(im, argc, argv, err);
	if (rc < 0)
		remember(im, shown, err);
	free(copy);
	return rc;
}
