/*
 * images_http.c - the HTTP transfers of images: small documents into memory,
 * redirect resolution, and artifact downloads into a file with SHA-256 and size
 * checked as the bytes arrive (so nothing is read twice).
 *
 * Only http and https, also across redirects; HTTP errors (>= 400) fail the
 * transfer; a stalled transfer (under 1 KiB/s for 60 s) is abandoned.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcapi.h"
#include "images_int.h"

static CURL *easy_for(const char *url, char *errbuf)
{
	if (svm_curl_global_init() < 0)
		return NULL;
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "smartvmfs/" SMARTVMFS_VERSION);
	return c;
}

/* "HTTP 404" or curl's own words, for the error message. */
static void describe(CURL *c, CURLcode rc, const char *errbuf, long *status, char *msg,
		     size_t msglen)
{
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (status)
		*status = code;
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		img_fmt(msg, msglen, "HTTP %ld", code);
	else
		img_fmt(msg, msglen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* ------------------------------------------------------------ into memory */

struct membuf {
	char *data;
	size_t len, max;
	bool too_big;
};

static size_t mem_write(char *p, size_t size, size_t n, void *ud)
{
	struct membuf *m = ud;
	size_t add = size * n;
	if (m->len + add > m->max) {
		m->too_big = true;
		return 0;
	}
	char *d = realloc(m->data, m->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + m->len, p, add);
	m->data = d;
	m->len += add;
	m->data[m->len] = '\0';
	return add;
}

char *img_http_get(const char *url, size_t max, size_t *len, long *status, char *msg,
		   size_t msglen)
{
	char errbuf[CURL_ERROR_SIZE];
	if (status)
		*status = 0;
	CURL *c = easy_for(url, errbuf);
	if (!c) {
		img_fmt(msg, msglen, "cannot initialise libcurl");
		return NULL;
	}
	struct membuf m = {.max = max};
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (m.too_big)
			img_fmt(msg, msglen, "document larger than %zu bytes", max);
		else
			describe(c, rc, errbuf, status, msg, msglen);
		curl_easy_cleanup(c);
		free(m.data);
		return NULL;
	}
	if (status)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	if (!m.data)
		m.data = calloc(1, 1);
	if (len)
		*len = m.len;
	return m.data;
}

char *img_http_effective_url(const char *url, char *msg, size_t msglen)
{
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = easy_for(url, errbuf);
	if (!c) {
		img_fmt(msg, msglen, "cannot initialise libcurl");
		return NULL;
	}
	/* the seed's curl -fsSLI -w %{url_effective}: HEAD, follow, the final URL */
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	CURLcode rc = curl_easy_perform(c);
	char *out = NULL;
	if (rc == CURLE_OK) {
		const char *eff = NULL;
		curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
		out = strdup(eff ? eff : "");
	} else {
		describe(c, rc, errbuf, NULL, msg, msglen);
	}
	curl_easy_cleanup(c);
	return out;
}

/* ------------------------------------------------------------- into a file */

struct dl {
	int fd;
	int64_t expected;
	uint64_t bytes;
	img_hasher *h;
	img_progress_fn fn;
	void *ud;
	char why[256]; /* set when we abort the transfer ourselves */
};

static size_t file_write(char *p, size_t size, size_t n, void *ud)
{
	struct dl *d = ud;
	size_t add = size * n;
	if (d->expected >= 0 && d->bytes + add > (uint64_t)d->expected) {
		img_fmt(d->why, sizeof d->why, "more than the expected %lld bytes",
			 (long long)d->expected);
		return 0;
	}
	for (size_t off = 0; off < add;) {
		ssize_t w = write(d->fd, p + off, add - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			img_fmt(d->why, sizeof d->why, "write: %s", strerror(errno));
			return 0;
		}
		off += (size_t)w;
	}
	img_hasher_update(d->h, p, add);
	d->bytes += add;
	return add;
}

static int xfer_info(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		     curl_off_t ulnow)
{
	(void)ultotal;
	(void)ulnow;
	struct dl *d = ud;
	uint64_t total = dltotal > 0 ? (uint64_t)dltotal : (d->expected >= 0 ? (uint64_t)d->expected : 0);
	if (d->expected >= 0 && dltotal > 0 && dltotal != d->expected) {
		img_fmt(d->why, sizeof d->why, "server announces %lld bytes, expected %lld",
			 (long long)dltotal, (long long)d->expected);
		return 1;
	}
	if (d->fn && d->fn(d->ud, (uint64_t)dlnow, total) != 0) {
		img_fmt(d->why, sizeof d->why, "cancelled");
		return 1;
	}
	return 0;
}

int img_http_download(const char *url, int fd, int64_t expected, char *sha_hex,
		      uint64_t *bytes, img_progress_fn fn, void *ud, long *status, char *msg,
		      size_t msglen)
{
	char errbuf[CURL_ERROR_SIZE];
	if (status)
		*status = 0;
	CURL *c = easy_for(url, errbuf);
	struct dl d = {.fd = fd, .expected = expected, .h = img_hasher_new(), .fn = fn, .ud = ud};
	if (!c || !d.h) {
		img_fmt(msg, msglen, "cannot initialise libcurl or libcrypto");
		if (c)
			curl_easy_cleanup(c);
		img_hasher_final(d.h, sha_hex);
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, file_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_info);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	CURLcode rc = curl_easy_perform(c);
	int ret = 0;
	if (rc != CURLE_OK) {
		char what[512];
		if (d.why[0])
			img_fmt(what, sizeof what, "%s", d.why);
		else
			describe(c, rc, errbuf, status, what, sizeof what);
		img_fmt(msg, msglen, "download of %s failed after %llu bytes: %s", url,
			 (unsigned long long)d.bytes, what);
		ret = -1;
	} else if (expected >= 0 && d.bytes != (uint64_t)expected) {
		img_fmt(msg, msglen, "download of %s: size mismatch: expected %lld, got %llu", url,
			 (long long)expected, (unsigned long long)d.bytes);
		ret = -1;
	}
	if (status && ret == 0)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	img_hasher_final(d.h, sha_hex);
	if (bytes)
		*bytes = d.bytes;
	return ret;
}
