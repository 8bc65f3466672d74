/*
 * redact.h - URL credentials out of text that others read. A URL a user gave
 * (https://user:secret@host/...) may reach the daemon log, an error file or the
 * images summary, all of which other users of an allow_other mount can read.
 */
#ifndef SVM_REDACT_H
#define SVM_REDACT_H

/* A copy of text with the password of every scheme://user:password@host written
 * as "***" (malloc'd; NULL when out of memory). */
char *redact_credentials(const char *text);

#endif
