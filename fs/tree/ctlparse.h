/*
 * ctlparse.h - the parser of lines written to a VM's ctl file. FUSE-free (only
 * core/smartvm.h), so the fuzz target tests/fuzz/fuzz_ctl.c links the very code
 * the daemon runs.
 */
#ifndef SMARTVMFS_CTLPARSE_H
#define SMARTVMFS_CTLPARSE_H

#include "smartvm.h"

/* Plan 9's parsecmd + lookupcmd on one trimmed line: the first word names the
 * verb, then up to max_args arguments separated by blanks; the last one takes
 * the rest of the line, so a JSON argument (netif, metadata) may contain blanks.
 * scratch is a modifiable copy of line (as long); r->argv points into it.
 * Returns 0 with r filled, or -1 with err set (an unknown verb or bad arguments:
 * SVM_INVALID_ARGUMENT, echoing line). Host paths are not checked: the caller
 * does that (fs_ctl_path_arg names the argument that is one). */
int fs_ctl_parse_line(const char *line, char *scratch, svm_request *r, svm_error *err);

/* The host path argument of a parsed request, or NULL: snapshot/restore PATH
 * (a NAME without '/' stays in the VM's own snapshot directory), drive ID PATH. */
const char *fs_ctl_path_arg(const svm_request *r);

#define FS_CTL_LINE_MAX SVM_CMD_LINE_MAX

/* Judges the raw bytes of one line (its newline left out) before any C string
 * is made of them: a NUL byte (a C string would end there and the part before
 * it would run) or another control byte (but a tab, or a CR ending the line) is
 * INVALID_ARGUMENT, a line over FS_CTL_LINE_MAX is TOO_LARGE. Returns 0, or -1
 * with err set. */
int fs_ctl_check_bytes(const char *bytes, size_t len, svm_error *err);

/* The command as an error file echoes it (malloc'd, NULL on ENOMEM): control
 * bytes (NUL, newline, ...) shown as \xHH so the echo stays one line, at most
 * FS_CTL_ECHO_MAX bytes of it then "... (N bytes)"; the argument of `metadata`
 * is left out (MMDS contents may carry secrets, and error files are 0444). */
#define FS_CTL_ECHO_MAX SVM_CMD_ECHO_MAX
char *fs_ctl_echo(const char *bytes, size_t len);

#endif
