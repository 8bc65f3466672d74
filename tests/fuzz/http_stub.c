/*
 * http_stub.c - the HTTP layer of core/images/images_http.c, replaced at link time for
 * the fuzz targets: img_http_get answers with the bytes the target sets, so a
 * hosted manifest or a CI bucket listing reaches its parser exactly as a remote
 * server would send it, without a network.
 *
 * The static library's images_http.o defines exactly these three functions;
 * defining all three here keeps it out of the link (a fourth function added
 * there would make the link fail loudly, never silently mix the two).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_stub.h"
#include "images_int.h"

http_stub_fn http_stub_get;
const char *http_stub_redirect;

char *img_http_get(const char *url, size_t max, size_t *len, long *status, char *msg,
		   size_t msglen)
{
	size_t n = 0;
	const char *body = http_stub_get ? http_stub_get(url, &n) : NULL;
	if (status)
		*status = body ? 200 : 404;
	if (!body) {
		img_fmt(msg, msglen, "HTTP 404");
		return NULL;
	}
	if (n > max) {
		img_fmt(msg, msglen, "document larger than %zu bytes", max);
		return NULL;
	}
	char *out = malloc(n + 1);
	if (!out)
		abort();
	memcpy(out, body, n);
	out[n] = '\0';
	if (len)
		*len = n;
	return out;
}

char *img_http_effective_url(const char *url, char *msg, size_t msglen)
{
	(void)url;
	if (!http_stub_redirect) {
		img_fmt(msg, msglen, "HTTP 404");
		return NULL;
	}
	return strdup(http_stub_redirect);
}

int img_http_download(const char *url, int fd, int64_t expected, char *sha_hex,
		      uint64_t *bytes, img_progress_fn fn, void *ud, long *status, char *msg,
		      size_t msglen)
{
	(void)fd;
	(void)expected;
	(void)fn;
	(void)ud;
	if (sha_hex)
		sha_hex[0] = '\0';
	if (bytes)
		*bytes = 0;
	if (status)
		*status = 0;
	img_fmt(msg, msglen, "download of %s: no network in a fuzz target", url);
	return -1;
}
