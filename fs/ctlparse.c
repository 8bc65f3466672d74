/*
 * ctlparse.c - the ctl line parser (see ctlparse.h). No FUSE, no daemon state:
 * shared by fs/ctl.c and the fuzz target tests/fuzz/fuzz_ctl.c.
 */
#include <ctype.h>
#include <string.h>

#include "ctlparse.h"

static const svm_verb_info *verb_named(const char *word)
{
	const svm_verb_info *t = svm_verb_table();
	for (int v = 0; v < SVM_VERB_COUNT; v++)
		if (!strcmp(t[v].name, word))
			return &t[v];
	return NULL;
}

int fs_ctl_parse_line(const char *line, char *scratch, svm_request *r, svm_error *err)
{
	char *p = scratch;
	char *word = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = '\0';
	const svm_verb_info *vi = verb_named(word);
	if (!vi)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
	memset(r, 0, sizeof *r);
	r->verb = vi->verb;
	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (r->argc == vi->max_args || r->argc == SVM_MAX_ARGS)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
			                     "bad arguments \"%s\": usage: %s", line, vi->usage);
		r->argv[r->argc++] = p;
		if (r->argc == vi->max_args) {
			p += strlen(p); /* the last argument takes the rest (already trimmed) */
			break;
		}
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	if (r->argc < vi->min_args)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "bad arguments \"%s\": usage: %s", line,
		                     vi->usage);
	return 0;
}

const char *fs_ctl_path_arg(const svm_request *r)
{
	if ((r->verb == SVM_V_SNAPSHOT || r->verb == SVM_V_RESTORE) && r->argc > 0 &&
	    strchr(r->argv[0], '/'))
		return r->argv[0];
	/* "drive ID - JSON" keeps the backing file: no path to check */
	if (r->verb == SVM_V_DRIVE && r->argc > 1 && strcmp(r->argv[1], "-") != 0)
		return r->argv[1];
	return NULL;
}
