/* The API socket. We bind and listen on the Unix socket ourselves (so the
 * errors are Firecracker's) and hand it to libmicrohttpd, which runs inside
 * our single-threaded epoll loop. Firecracker's micro_http quirks that
 * clients can observe are kept: bodies are taken by Content-Length only (a
 * chunked body arrives empty), a body over --http-api-max-payload-size is
 * refused before it is read, unknown methods get micro_http's own error. */
#include "emu.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct MHD_Daemon *daemon_;
static size_t payload_limit;

struct req {
	char *buf;
	size_t len;
	bool chunked;
	bool answered; /* a response was queued on the first call */
	size_t too_big; /* Content-Length over the limit: the size, else 0 */
};

static void no_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

int http_listen(const char *path, int *fd_out, char **err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) {
		*err = strdup("path must be shorter than SUN_LEN");
		return -EINVAL;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		*err = xasprintf("%s (os error %d)", strerror(e), e);
		return -e;
	}
	*fd_out = fd;
	return 0;
}

/* Rust's Debug rendering of a string: what Firecracker's log lines show. */
static char *debug_str(const char *s, size_t n)
{
	char *out = malloc(n * 6 + 3), *o = out;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c == '\n') {
			o += sprintf(o, "\\n");
		} else if (c == '\r') {
			o += sprintf(o, "\\r");
		} else if (c == '\t') {
			o += sprintf(o, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			o += sprintf(o, "\\u{%x}", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*o = 0;
	return out;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, const char *body, bool deprecated)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Server", "Firecracker API");
	MHD_add_response_header(r, "Connection", "keep-alive");
	if (deprecated)
		MHD_add_response_header(r, "Deprecation", "true");
	if (status != 204)
		MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* micro_http's own errors: 400 with an "error" body, not a fault_message. */
static enum MHD_Result http_error(struct MHD_Connection *c, const char *what)
{
	char *b = xasprintf("{ \"error\": \"%s\nAll previous unanswered requests will be dropped.\" }", what);
	enum MHD_Result r = send_json(c, 400, b, false);
	free(b);
	return r;
}

static const char *method_debug(const char *m)
{
	return strcmp(m, "GET") == 0 ? "Get" : strcmp(m, "PUT") == 0 ? "Put" : "Patch";
}

static enum MHD_Result answer(struct MHD_Connection *c, const char *method, const char *url,
			      struct req *q)
{
	bool has_body = q->len > 0; /* micro_http: no Content-Length, no body */
	char path[512];
	snprintf(path, sizeof path, "%s", url);
	char *pq = debug_str(path, strlen(path));
	if (has_body && strcmp(path, "/mmds") != 0) {
		if (strcmp(path, "/cpu-config") == 0) {
			LOGI("fc_api", "The API server received a %s request on %s. To view the CPU template received by the API, configure log-level to DEBUG.",
			     method_debug(method), pq);
		} else {
			char *b = debug_str(q->buf, q->len);
			LOGI("fc_api", "The API server received a %s request on %s with body %s.",
			     method_debug(method), pq, b);
			free(b);
		}
	} else {
		LOGI("fc_api", "The API server received a %s request on %s.", method_debug(method), pq);
	}
	free(pq);

	struct api_result r = {0};
	api_dispatch(method, url, q->buf ? q->buf : "", q->len, has_body, &r);
	char *body;
	if (r.status == 200) {
		/* The MMDS store is a serde_json Value: a BTreeMap, keys sorted. */
		size_t fl = strncmp(url, "/mmds", 5) == 0 ? JSON_SORT_KEYS : JSON_PRESERVE_ORDER;
		body = json_dumps(r.body, JSON_COMPACT | JSON_ENCODE_ANY | fl);
		LOGI("fc_api", "The request was executed successfully. Status code: 200 OK.");
	} else if (r.status == 204) {
		body = strdup("");
		LOGI("fc_api", "The request was executed successfully. Status code: 204 No Content.");
	} else {
		json_t *f = json_pack("{s:s}", "fault_message", r.fault ? r.fault : "");
		body = json_dumps(f, JSON_COMPACT);
		json_decref(f);
		if (r.parse_error)
			LOGE("fc_api", "%s", r.log ? r.log : r.fault ? r.fault : "");
		else
			LOGE("fc_api", "Received Error. Status code: %s. Message: %s",
			     r.status == 413 ? "413 Payload too large" : "400 Bad Request", r.fault ? r.fault : "");
	}
	enum MHD_Result ret = send_json(c, r.status, body, r.deprecated);
	free(body);
	free(r.fault);
	free(r.log);
	json_decref(r.body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct req *q = *con_cls;
	if (!q) {
		q = calloc(1, sizeof *q);
		*con_cls = q;
		if (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "PATCH")) {
			q->answered = true;
			return http_error(c, "Invalid HTTP Method: Unsupported HTTP method.");
		}
		const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
		q->chunked = te && strcasestr(te, "chunked");
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && !q->chunked) {
			unsigned long long n = strtoull(cl, NULL, 10);
			/* micro_http refuses at the headers and keeps the connection;
			 * MHD would close it under a client still sending. So the
			 * body is read and dropped, and the refusal comes after it. */
			if (n > payload_limit)
				q->too_big = (size_t)n;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		/* A chunked body is dropped: micro_http only knows Content-Length. */
		if (!q->chunked && !q->answered && !q->too_big && q->len + *upload_size <= payload_limit) {
			char *nb = realloc(q->buf, q->len + *upload_size + 1);
			if (nb) {
				q->buf = nb;
				memcpy(q->buf + q->len, upload, *upload_size);
				q->len += *upload_size;
				q->buf[q->len] = 0;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->answered)
		return MHD_YES;
	q->answered = true;
	if (q->too_big) {
		char *m = xasprintf("Request payload with size %zu is larger than the limit of %zu allowed by server.",
				    q->too_big, payload_limit);
		enum MHD_Result r = http_error(c, m);
		free(m);
		return r;
	}
	return answer(c, method, url, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req *q = *con_cls;
	if (q) {
		free(q->buf);
		free(q);
		*con_cls = NULL;
	}
}

int http_start(int listen_fd, size_t limit)
{
	payload_limit = limit;
	daemon_ = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL,
				   on_request, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
				   MHD_OPTION_EXTERNAL_LOGGER, no_log, NULL,
				   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
				   MHD_OPTION_CONNECTION_LIMIT, 64u,
				   MHD_OPTION_CONNECTION_TIMEOUT, 0u, MHD_OPTION_END);
	return daemon_ ? 0 : -1;
}

int http_epoll_fd(void)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}

void http_run(void) { MHD_run(daemon_); }

long long http_timeout_ms(void)
{
	MHD_UNSIGNED_LONG_LONG t;
	if (MHD_get_timeout(daemon_, &t) == MHD_YES)
		return (long long)t;
	return -1;
}
