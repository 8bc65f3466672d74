/*
 * svmlog.c - the sink every layer of the core reports through: the daemon's log,
 * the root error file and event delivery (the front end's callback, a function
 * pointer). It calls nothing above it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "redact.h"
#include "svmlog.h"

void sink_init(svm_sink *k, size_t log_kept, size_t errors_kept)
{
	ring_init(&k->log, log_kept);
	ring_init(&k->errors, errors_kept);
}

void sink_destroy(svm_sink *k)
{
	ring_destroy(&k->log);
	ring_destroy(&k->errors);
}

void sink_vlog(svm_sink *k, const char *fmt, va_list ap)
{
	char raw[1536];
	vsnprintf(raw, sizeof raw, fmt, ap);
	char *shown = redact_credentials(raw); /* log is world-readable, and the journal */
	const char *line = shown ? shown : raw;
	ring_printf(&k->log, "%s", line);
	if (k->log_stderr)
		fprintf(stderr, "smartvmfs: %s\n", line);
	free(shown);
	sink_emit(k, SVM_EV_DAEMON_LOG, NULL, 0, NULL);
}

void sink_log(svm_sink *k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sink_vlog(k, fmt, ap);
	va_end(ap);
}

void svm_note_line(svm_ring *r, const char *command, const svm_error *e)
{
	char *rc = redact_credentials(command ? command : "");
	char *rm = redact_credentials(e ? e->message : "");
	char *c = svm_escape(rc ? rc : "?");
	char *m = svm_escape(rm ? rm : "?");
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

void sink_note_error(svm_sink *k, const char *command, const svm_error *e)
{
	svm_note_line(&k->errors, command, e);
	sink_emit(k, SVM_EV_ROOT_ERROR, NULL, 0, NULL);
}

void sink_emit(svm_sink *k, svm_event_kind kind, svm_vm *vm, uint64_t seq, const char *text)
{
	if (!k->on_event)
		return;
	svm_event ev = {.kind = kind, .vm = vm, .seq = seq, .text = text};
	k->on_event(k->event_ud, &ev);
}
