/*
 * svmlog.c - the orchestrator's log, error files and event delivery: what any
 * file of the core reports through (svm_log, svm_note_*, svm_emit). It needs the
 * orchestrator's rings and its event callback (an upcall to the front end, a
 * function pointer), and calls nothing above it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "redact.h"

void svm_log(svm *s, const char *fmt, ...)
{
	char raw[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	char *shown = redact_credentials(raw); /* log is world-readable, and the journal */
	const char *line = shown ? shown : raw;
	ring_printf(&s->log, "%s", line);
	if (s->opt.log_stderr)
		fprintf(stderr, "smartvmfs: %s\n", line);
	free(shown);
	svm_emit(s, SVM_EV_DAEMON_LOG, NULL, 0, NULL);
}

char *svm_log_text(svm *s) { return ring_text(&s->log); }

/* Copies text with every control byte as \xHH: an error file holds one line per
 * failure, and a name or command with a newline or an escape sequence must not
 * split it or reach a terminal through `cat error`. */
static char *printable(const char *text)
{
	size_t n = strlen(text), o = 0;
	char *out = malloc(n * 4 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

void svm_note_line(svm_ring *r, const char *command, const svm_error *e)
{
	char *rc = redact_credentials(command ? command : "");
	char *rm = redact_credentials(e ? e->message : "");
	char *c = printable(rc ? rc : "?");
	char *m = printable(rm ? rm : "?");
	free(rc);
	free(rm);
	/* the code's name, and Firecracker's HTTP status when it answered: what a
	 * script matches on, the message being for people */
	char detail[64] = "";
	if (e && e->code != SVM_OK && e->http_status)
		snprintf(detail, sizeof detail, " (%s, HTTP %d)", svm_code_name(e->code), e->http_status);
	else if (e && e->code != SVM_OK)
		snprintf(detail, sizeof detail, " (%s)", svm_code_name(e->code));
	ring_printf(r, "%s: %s%s", c ? c : "?", m ? m : "?", detail);
	free(c);
	free(m);
}

void svm_note_error(svm *s, const char *command, const svm_error *e)
{
	svm_note_line(&s->errors, command, e);
	svm_emit(s, SVM_EV_ROOT_ERROR, NULL, 0, NULL);
}

char *svm_error_text(svm *s) { return ring_text(&s->errors); }

void svm_emit(svm *s, svm_event_kind kind, svm_vm *vm, uint64_t seq, const char *text)
{
	if (!s->opt.on_event)
		return;
	svm_event ev = {.kind = kind, .vm = vm, .seq = seq, .text = text};
	s->opt.on_event(s->opt.event_ud, &ev);
}
