/*
 * cmd.c - the one parser of every ctl file (smartvm.h, "the commands of ctl
 * files"): a line split into a command of a table and its arguments, the raw
 * bytes judged before a C string is made of them, and the echo an error file
 * shows. Plan 9's parse.c: the tables are the callers', the rules are here.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "smartvm.h"

static const svm_cmd *lookup(const svm_cmdtab *t, const char *word, size_t len)
{
	for (int i = 0; i < t->n; i++)
		if (strlen(t->rows[i].name) == len && !memcmp(t->rows[i].name, word, len))
			return &t->rows[i];
	return NULL;
}

static int usage(const svm_cmd *c, const char *line, svm_error *err)
{
	return svm_error_set(err, SVM_INVALID_ARGUMENT, "bad arguments \"%s\": usage: %s", line,
			     c->usage);
}

int svm_cmd_parse(const svm_cmdtab *t, const char *line, char *scratch, svm_cmdline *out,
		  svm_error *err)
{
	char *p = scratch;
	char *word = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = '\0';
	const svm_cmd *c = lookup(t, word, strlen(word));
	if (!c)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
	memset(out, 0, sizeof *out);
	out->cmd = c;
	bool rest = c->flags & SVM_CF_REST;
	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (out->argc == c->max_args || out->argc == SVM_MAX_ARGS)
			return usage(c, line, err);
		out->argv[out->argc++] = p;
		if (rest && out->argc == c->max_args) {
			p += strlen(p); /* the last argument takes the rest (already trimmed) */
			break;
		}
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	if (out->argc < c->min_args)
		return usage(c, line, err);
	return 0;
}

const char *svm_cmd_path(const svm_cmdline *l)
{
	const svm_cmd *c = l->cmd;
	if (!c || c->path_arg < 0 || l->argc <= c->path_arg)
		return NULL;
	const char *a = l->argv[c->path_arg];
	if ((c->flags & SVM_CF_PATH_IF_SLASH) && !strchr(a, '/'))
		return NULL; /* a name, kept in a place of the core's own */
	if ((c->flags & SVM_CF_DASH_KEEPS) && !strcmp(a, "-"))
		return NULL;
	return a;
}

int svm_cmd_check_bytes(const char *bytes, size_t len, svm_error *err)
{
	if (len > SVM_CMD_LINE_MAX)
		return svm_error_set(err, SVM_TOO_LARGE,
				     "control message of %zu bytes is longer than the %d allowed", len,
				     SVM_CMD_LINE_MAX);
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
					     "control message has a control byte 0x%02x at offset %zu",
					     c, i);
	}
	return 0;
}

/* A secret command's line (len: trimmed): its name, a blank, its arguments. */
static const svm_cmd *secret_line(const svm_cmdtab *t, const char *bytes, size_t len)
{
	size_t n = 0;
	while (n < len && !isspace((unsigned char)bytes[n]))
		n++;
	const svm_cmd *c = t ? lookup(t, bytes, n) : NULL;
	return c && (c->flags & SVM_CF_SECRET) && n < len ? c : NULL;
}

char *svm_cmd_echo(const svm_cmdtab *t, const char *bytes, size_t len)
{
	while (len > 0 && isspace((unsigned char)*bytes))
		bytes++, len--;
	while (len > 0 && isspace((unsigned char)bytes[len - 1]))
		len--;
	const svm_cmd *secret = secret_line(t, bytes, len);
	if (secret) {
		char *s = NULL;
		if (asprintf(&s, "%s (%zu bytes of JSON not shown)", secret->name,
			     len - strlen(secret->name) - 1) < 0)
			return NULL;
		return s;
	}
	size_t shown = len < SVM_CMD_ECHO_MAX ? len : SVM_CMD_ECHO_MAX;
	char *s = svm_escape_bytes(bytes, shown, 48);
	if (s && shown < len)
		sprintf(s + strlen(s), "... (%zu bytes)", len);
	return s;
}
