/* http_stub.h - see http_stub.c. */
#ifndef SVM_HTTP_STUB_H
#define SVM_HTTP_STUB_H

#include <stddef.h>

/* The body served for url (*len its size), or NULL for a 404. */
typedef const char *(*http_stub_fn)(const char *url, size_t *len);
extern http_stub_fn http_stub_get;
/* What a HEAD with redirects followed ends at (img_http_effective_url), or NULL. */
extern const char *http_stub_redirect;

#endif
