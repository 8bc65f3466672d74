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

/* The commands of /images/ctl, and their handlers (same order). */
enum { C_FETCH, C_VERIFY, C_PRUNE, C_FIRECRACKER, C_EVICT, C_BLANK, C_CLONE, C_IMPORT };

typedef int ctl_fn(svm_images *im, int argc, const char *const *argv, svm_error *err);

static bool force_word(int argc, const char *const *argv, int at, svm_error *err)
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

static int do_fetch(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	svm_error_clear(err);
	if (!strcmp(argv[0], "manifest")) {
		if (argc < 2)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
					     "usage: fetch manifest PATH-OR-URL [force]");
		bool force = force_word(argc, argv, 2, err);
		if (err && err->code != SVM_OK)
			return -1;
		if (strncmp(argv[1], "http://", 7) && strncmp(argv[1], "https://", 8) &&
		    host_path_ok(im, argv[1], err) < 0)
			return -1;
		return images_fetch_manifest(im, argv[1], force, NULL, err);
	}
	/* latest|lts|hosted [force] [arch ARCH]: another arch's bundle (for another
	 * host sharing the cache) is fetched, never made this host's preset */
	bool force = false;
	const char *arch = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "force") && !force)
			force = true;
		else if (!strcmp(argv[i], "arch") && !arch && i + 1 < argc)
			arch = argv[++i];
		else
			return svm_error_set(err, SVM_INVALID_ARGUMENT, "fetch: unknown option \"%s\" "
					     "(usage: fetch latest|lts|hosted [force] [arch ARCH])", argv[i]);
	}
	return images_fetch_arch(im, argv[0], arch, force, NULL, err);
}

static int do_verify(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	return images_verify(im, argv[0], err);
}

static int do_prune(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	if (argc == 2 && strcmp(argv[0], "keep") == 0)
		return images_prune_keeping(im, argv[1], err);
	if (argc != 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "usage: prune [keep ID]");
	return images_prune_keeping(im, NULL, err);
}

static int do_firecracker(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	char *p = images_fetch_firecracker(im, argv[0], err);
	free(p);
	return p ? 0 : -1;
}

static int do_evict(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	return images_evict(im, argv[0], err);
}

static int do_blank(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	char *end;
	errno = 0;
	unsigned long mib = strtoul(argv[1], &end, 10);
	if (errno || *end || end == argv[1] || argv[1][0] == '-' || mib > 0xffffffffUL)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "blank: \"%s\" is not a size in MiB",
				     argv[1]);
	char *p = images_blank(im, argv[0], (unsigned)mib, err);
	free(p);
	return p ? 0 : -1;
}

static int do_clone(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	/* a source with a '/' is a host path; without, a name of the cache's */
	if (strchr(argv[0], '/') && host_path_ok(im, argv[0], err) < 0)
		return -1;
	char *p = images_clone(im, argv[0], argv[1], err);
	free(p);
	return p ? 0 : -1;
}

static int do_import(svm_images *im, int argc, const char *const *argv, svm_error *err)
{
	(void)argc;
	char *p = images_import_checked(im, argv[0], argv[1], argv[2], argc > 3 ? argv[3] : NULL, err);
	free(p);
	return p ? 0 : -1;
}

static const svm_cmd commands[] = {
	{C_FETCH, "fetch", 1, 4, 0, 0, -1,
	 "fetch latest|lts|hosted [force] [arch ARCH] | fetch manifest PATH-OR-URL [force]"},
	{C_VERIFY, "verify", 1, 1, 0, 0, -1, "verify ID"},
	{C_PRUNE, "prune", 0, 2, 0, 0, -1, "prune [keep ID]"},
	{C_FIRECRACKER, "firecracker", 1, 1, 0, 0, -1, "firecracker VERSION|latest"},
	{C_EVICT, "evict", 1, 1, 0, 0, -1, "evict ID"},
	{C_BLANK, "blank", 2, 2, 0, 0, -1, "blank NAME MIB"},
	{C_CLONE, "clone", 2, 2, 0, 0, -1, "clone SRC NAME"},
	{C_IMPORT, "import", 3, 4, 0, 0, -1, "import kernel|rootfs URL NAME [SHA256]"},
};
static const svm_cmdtab table = {commands, sizeof commands / sizeof commands[0]};
static ctl_fn *const handlers[] = {
	[C_FETCH] = do_fetch, [C_VERIFY] = do_verify, [C_PRUNE] = do_prune,
	[C_FIRECRACKER] = do_firecracker, [C_EVICT] = do_evict, [C_BLANK] = do_blank,
	[C_CLONE] = do_clone, [C_IMPORT] = do_import,
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
	size_t len = strcspn(line ? line : "", "\n");
	char *copy = strndup(line ? line : "", len), *scratch = strndup(line ? line : "", len);
	/* the line as the error file echoes it: one line of printable text (an
	 * escape sequence must not reach the terminal that reads images/error) */
	char *shown = svm_cmd_echo(&table, line ? line : "", len);
	int rc = -1;
	svm_cmdline c;
	if (!copy || !scratch || !shown) {
		rc = svm_error_set(err, SVM_NO_SPACE, "out of memory");
	} else if (!copy[strspn(copy, " \t")]) {
		rc = 0; /* an empty line is no command */
	} else if (svm_cmd_parse(&table, shown, scratch + strspn(scratch, " \t"), &c, err) == 0) {
		rc = handlers[c.cmd->index](im, c.argc, c.argv, err);
	}
	if (rc < 0 && shown)
		remember(im, shown, err);
	free(copy);
	free(scratch);
	free(shown);
	return rc;
}
