/*
 * daemonlog.h - where the daemon's log lines go, and the lines fs/ adds.
 *
 * The core writes each log line to its ring (/log) and, with
 * svm_options.log_stderr, to stderr. In the foreground stderr is the user's
 * terminal. Detached (or in the foreground under systemd, whose journal reads
 * stderr) fd 2 becomes a pipe that a thread reads: each line goes to syslog(3)
 * (or to the journal with a "<N>" priority prefix) with a level judged from the
 * line: warning, err, notice (mount, unmount) or info.
 */
#ifndef SMARTVMFS_DAEMONLOG_H
#define SMARTVMFS_DAEMONLOG_H

#include <stdbool.h>

#include "smartvm.h"

/* Routes fd 2: call in the foreground before the core starts, detached right
 * after fuse_daemonize(). Returns what svm_options.log_stderr should be. */
bool fs_log_route(bool foreground);
/* Puts fd 2 back and lets the reader thread write what is left. */
void fs_log_unroute(void);
/* A line of fs/'s own: to the core's log when there is a core, else to stderr. */
void fs_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The syslog priority of a log line (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO). */
int fs_log_level(const char *line);
/* svm_options.on_event: logs VM stops with their timings, then passes the event
 * on to fs_on_core_event. */
void fs_log_on_event(void *ud, const svm_event *ev);
/* sd_notify(3)'s protocol, for a Type=notify unit: "READY=1", "STOPPING=1"...
 * Nothing happens outside systemd. Call fs_systemd_init() first, once, before
 * any thread starts (it takes NOTIFY_SOCKET out of the environment the VMMs get). */
void fs_systemd_init(void);
void fs_systemd_notify(const char *msg);

#endif
