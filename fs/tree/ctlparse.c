/*
 * ctlparse.c - the ctl line parser (see ctlparse.h). No FUSE, no daemon state:
 * shared by fs/ctl.c and the fuzz target tests/fuzz/fuzz_ctl.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
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

int fs_ctl_check_bytes(const char *bytes, size_t len, svm_error *err)
{
	if (len > FS_CTL_LINE_MAX)
		return svm_error_set(err, SVM_TOO_LARGE,
		                     "control message of %zu bytes is longer than the %d allowed", len,
		                     FS_CTL_LINE_MAX);
	const char *nul = memchr(bytes, '\0', len);
	if (nul)
		return svm_error_set(err, SVM_INVALID_ARGUMENT,
		                     "control message has a NUL byte at offset %zu",
		                     (size_t)(nul - bytes));
	/* no other control byte either: none belongs in a verb, a name, a path or
	 * JSON text, and echoed into an error file an escape sequence would reach
	 * the terminal of whoever reads it. Tabs are blanks; CRLF lines are fine. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)bytes[i];
		if ((c < 0x20 && c != '\t' && !(c == '\r' && i == len - 1)) || c == 0x7f)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
			                     "control message has a control byte 0x%02x at offset %zu", c,
			                     i);
	}
	return 0;
}

/* "metadata" followed by a blank (len: trimmed): its argument is the MMDS document */
static bool is_metadata_line(const char *bytes, size_t len)
{
	static const char verb[] = "metadata";
	size_t n = sizeof verb - 1;
	return len > n && !memcmp(bytes, verb, n) && isspace((unsigned char)bytes[n]);
}

char *fs_ctl_echo(const char *bytes, size_t len)
{
	while (len > 0 && isspace((unsigned char)*bytes))
		bytes++, len--;
	while (len > 0 && isspace((unsigned char)bytes[len - 1]))
		len--;
	if (is_metadata_line(bytes, len)) {
		char *s = NULL;
		if (asprintf(&s, "metadata (%zu bytes of JSON not shown)", len - 9) < 0)
			return NULL;
		return s;
	}
	size_t shown = len < FS_CTL_ECHO_MAX ? len : FS_CTL_ECHO_MAX;
	char *s = malloc(shown * 4 + 48);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)bytes[i];
		if (c < 0x20 || c == 0x7f)
			o += (size_t)sprintf(s + o, "\\x%02x", c);
		else
			s[o++] = (char)c;
	}
	if (shown < len)
		o += (size_t)sprintf(s + o, "... (%zu bytes)", len);
	s[o] = '\0';
	return s;
}
