/*
 * svmlog.h - where every layer of the core reports: the daemon's log, the root
 * error file and the event callback, as one object (a sink) handed down. A lower
 * layer holds the sink, never the orchestrator, so reporting a line is a call
 * down, not up.
 */
#ifndef SVM_SVMLOG_H
#define SVM_SVMLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "smartvm.h"

typedef struct svm_sink {
	svm_ring log;         /* the daemon's own log */
	svm_ring errors;      /* the root error file */
	bool log_stderr;      /* also copy log lines to stderr */
	svm_event_fn on_event; /* the front end's callback (may be NULL) */
	void *event_ud;
} svm_sink;

void sink_init(svm_sink *k, size_t log_kept, size_t errors_kept);
void sink_destroy(svm_sink *k);
/* One log line, credentials redacted (the log is world-readable). */
void sink_log(svm_sink *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sink_vlog(svm_sink *k, const char *fmt, va_list ap);
/* A root-level failure: one line of the root error file. */
void sink_note_error(svm_sink *k, const char *command, const svm_error *e);
void sink_emit(svm_sink *k, svm_event_kind kind, svm_vm *vm, uint64_t seq, const char *text);
/* One failure as one line of an error file: "command: message (CODE)", control
 * bytes as \xHH. */
void svm_note_line(svm_ring *r, const char *command, const svm_error *e);

#endif
