/*
 * test_fcapi.c - the Firecracker API client against a libmicrohttpd server on a
 * Unix socket that this test binds itself.
 *
 * The server records what arrived (method, path, Content-Length, Transfer-Encoding,
 * Expect, body), counts connections (MHD_OPTION_NOTIFY_CONNECTION) and requests in
 * flight. It runs a thread per connection, so two requests on two connections
 * really would overlap: that is what makes "never two in flight" a real check of
 * the client's serialisation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "check.h"
#include "fcapi.h"

/* ---------------------------------------------------------- test server */

struct rec {
	char method[16];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char content_length[32]; /* "" when absent */
	char transfer_encoding[32];
	char expect[64];
	char content_type[64];
	char *body;
	size_t body_len;
};

struct server {
	struct MHD_Daemon *d;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t lock;
	int connections; /* connections accepted since the last reset */
	int closed;      /* connections ended since the last reset */
	int requests;
	int in_flight, max_in_flight;
	struct rec last;
};

struct ctx {
	char *body;
	size_t len;
};

static void copy_header(struct MHD_Connection *conn, const char *name, char *dst, size_t n)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
	snprintf(dst, n, "%s", v ? v : "");
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
			       const char *ctype, const void *data, size_t len, bool close)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (ctype)
		MHD_add_response_header(r, "Content-Type", ctype);
	if (close)
		MHD_add_response_header(r, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version,
			       const char *upload_data, size_t *upload_data_size,
			       void **con_cls)
{
	(void)version;
	struct server *s = cls;
	struct ctx *c = *con_cls;
	if (!c) {
		/* First call: headers are in. From here until the response is queued
		 * the request is "in flight". */
		c = calloc(1, sizeof *c);
		*con_cls = c;
		pthread_mutex_lock(&s->lock);
		if (++s->in_flight > s->max_in_flight)
			s->max_in_flight = s->in_flight;
		pthread_mutex_unlock(&s->lock);
		return MHD_YES;
	}
	if (*upload_data_size) {
		c->body = realloc(c->body, c->len + *upload_data_size + 1);
		memcpy(c->body + c->len, upload_data, *upload_data_size);
		c->len += *upload_data_size;
		c->body[c->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}

	pthread_mutex_lock(&s->lock);
	s->requests++;
	struct rec *r = &s->last;
	free(r->body);
	memset(r, 0, sizeof *r);
	snprintf(r->method, sizeof r->method, "%s", method);
	snprintf(r->path, sizeof r->path, "%s", url);
	copy_header(conn, "Content-Length", r->content_length, sizeof r->content_length);
	copy_header(conn, "Transfer-Encoding", r->transfer_encoding, sizeof r->transfer_encoding);
	copy_header(conn, "Expect", r->expect, sizeof r->expect);
	copy_header(conn, "Content-Type", r->content_type, sizeof r->content_type);
	r->body = c->len ? strndup(c->body, c->len) : strdup("");
	r->body_len = c->len;
	pthread_mutex_unlock(&s->lock);

	const char *json = "application/json";
	enum MHD_Result ret;
	if (strcmp(url, "/busy") == 0)
		usleep(300); /* widen the window in which an overlap would show */
	if (strcmp(url, "/slow") == 0)
		usleep(1000 * 1000);

	if (strcmp(url, "/version") == 0) {
		const char *b = "{\"firecracker_version\":\"1.15.1\"}";
		ret = respond(conn, 200, json, b, strlen(b), false);
	} else if (strcmp(url, "/echo") == 0) {
		ret = respond(conn, 200, json, c->body ? c->body : "", c->len, false);
	} else if (strcmp(url, "/empty") == 0 || strcmp(url, "/busy") == 0) {
		ret = respond(conn, 204, NULL, "", 0, false);
	} else if (strcmp(url, "/fault") == 0) {
		const char *b = "{\"fault_message\":\"The requested operation is not supported "
				"after starting the microVM.\"}";
		ret = respond(conn, 400, json, b, strlen(b), false);
	} else if (strcmp(url, "/mmds") == 0) {
		const char *b = "{\"fault_message\":\"The MMDS patch request doesn't fit.\"}";
		ret = respond(conn, 413, json, b, strlen(b), false);
	} else if (strcmp(url, "/drives/rootfs") == 0) {
		/* What Firecracker says for a drive whose host file does not exist. */
		const char *b = "{\"fault_message\":\"Unable to create the block device "
				"BackingFile(Os { code: 2, kind: NotFound, message: \\\"No such "
				"file or directory\\\" }, \\\"/nope.ext4\\\")\"}";
		ret = respond(conn, 400, json, b, strlen(b), false);
	} else if (strcmp(url, "/boot-source") == 0) {
		const char *b = "{\"fault_message\":\"Cannot load kernel due to invalid memory "
				"configuration or invalid kernel image: (os error 2)\"}";
		ret = respond(conn, 400, json, b, strlen(b), false);
	} else if (strcmp(url, "/notdir") == 0) {
		const char *b = "{\"fault_message\":\"Not a directory (os error 20)\"}";
		ret = respond(conn, 400, json, b, strlen(b), false);
	} else if (strcmp(url, "/text") == 0) {
		ret = respond(conn, 200, "text/plain", "plain words", 11, false);
	} else if (strcmp(url, "/text400") == 0) {
		ret = respond(conn, 400, "text/plain", "bad things\n", 11, false);
	} else if (strcmp(url, "/empty400") == 0) {
		ret = respond(conn, 400, NULL, "", 0, false);
	} else if (strcmp(url, "/slow") == 0) {
		ret = respond(conn, 200, json, "{}", 2, false);
	} else if (strcmp(url, "/huge") == 0) {
		size_t n = 5u << 20; /* over the client's 4 MiB bound */
		char *b = malloc(n);
		memset(b, 'x', n);
		ret = respond(conn, 200, "text/plain", b, n, false);
		free(b);
	} else if (strcmp(url, "/close") == 0) {
		ret = respond(conn, 200, json, "{}", 2, true);
	} else {
		const char *b = "{\"fault_message\":\"Invalid request method and/or path.\"}";
		ret = respond(conn, 400, json, b, strlen(b), false);
	}

	pthread_mutex_lock(&s->lock);
	s->in_flight--;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	struct ctx *c = *con_cls;
	if (c) {
		free(c->body);
		free(c);
		*con_cls = NULL;
	}
}

static void notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	(void)conn, (void)socket_context;
	struct server *s = cls;
	pthread_mutex_lock(&s->lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		s->connections++;
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		s->closed++;
	pthread_mutex_unlock(&s->lock);
}

static int server_start(struct server *s)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s->path);
	unlink(s->path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
		perror("test server socket");
		return -1;
	}
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, handler, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_CONNECTION, notify_conn, s,
				MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
	if (!s->d) {
		close(fd);
		return -1;
	}
	return 0;
}

static void server_stop(struct server *s)
{
	if (s->d)
		MHD_stop_daemon(s->d); /* also closes the listening socket */
	s->d = NULL;
	unlink(s->path);
}

static void server_reset(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	s->connections = 0;
	s->closed = 0;
	s->requests = 0;
	s->max_in_flight = 0;
	pthread_mutex_unlock(&s->lock);
}

static int server_connections(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->connections;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int server_closed(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->closed;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- tests */

/* An error message against what is wanted. (CHECK_STR on the 1 KiB message array
 * trips -Wformat-truncation inside check.h.) */
#define CHECK_MSG(e, want, what)                                           \
	do {                                                               \
		int same_ = strcmp((e).message, (want)) == 0;              \
		CHECK(same_, what);                                        \
		if (!same_)                                                \
			printf("#   got \"%s\"\n#  want \"%s\"\n", (e).message, (want)); \
	} while (0)

static struct server srv = {.lock = PTHREAD_MUTEX_INITIALIZER};
static char tmpdir[64];

static void test_url_and_client(void)
{
	/* The seed's "SocketClient - URL construction": a client for a socket path
	 * builds URLs on that socket. */
	char buf[128];
	CHECK_INT(svm_api_url(buf, sizeof buf, "/machine-config"), 31, "url length");
	CHECK_STR(buf, "http://localhost/machine-config", "url for /machine-config");
	svm_api_url(buf, sizeof buf, "/");
	CHECK_STR(buf, "http://localhost/", "url for /");
	CHECK_INT(svm_api_url(buf, sizeof buf, "machine-config"), -1, "path must start with /");
	CHECK_INT(svm_api_url(buf, 10, "/machine-config"), -1, "too small a buffer");
	CHECK_INT(svm_curl_global_init(), 0, "curl global init");
	CHECK_INT(svm_curl_global_init(), 0, "curl global init again");

	svm_api *api = svm_api_new("/tmp/firecracker.sock", 0);
	CHECK(api != NULL, "client created without a server");
	CHECK_STR(svm_api_socket_path(api), "/tmp/firecracker.sock", "socket path kept");
	svm_api_free(api);
	svm_api_free(NULL);
}

static void test_requests(void)
{
	svm_api *api = svm_api_new(srv.path, 2000);
	svm_api_reply r;
	svm_error e;

	/* GET with no body */
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, &r, &e), 0, "GET /version ok");
	CHECK_INT(r.status, 200, "GET status 200");
	CHECK_STR(json_string_value(json_object_get(r.json, "firecracker_version")), "1.15.1",
		  "GET body parsed as JSON");
	CHECK_STR(srv.last.method, "GET", "server saw GET");
	CHECK_STR(srv.last.path, "/version", "server saw the path");
	CHECK(srv.last.content_length[0] == '\0' || strcmp(srv.last.content_length, "0") == 0,
	      "GET carries no body length");
	CHECK_STR(srv.last.transfer_encoding, "", "GET not chunked");
	CHECK_INT(srv.last.body_len, 0, "GET had no body");
	svm_api_reply_clear(&r);

	/* PUT with a JSON body: Content-Length, no chunking, no Expect */
	json_t *mc = json_pack("{s:i, s:i}", "vcpu_count", 2, "mem_size_mib", 256);
	char *want = json_dumps(mc, JSON_COMPACT);
	CHECK_INT(svm_api_call(api, "PUT", "/echo", mc, &r, &e), 0, "PUT /echo ok");
	CHECK_STR(srv.last.method, "PUT", "server saw PUT");
	CHECK_STR(srv.last.body, want, "server got the JSON body");
	char len[32];
	snprintf(len, sizeof len, "%zu", strlen(want));
	CHECK_STR(srv.last.content_length, len, "PUT has Content-Length");
	CHECK_STR(srv.last.transfer_encoding, "", "PUT not chunked");
	CHECK_STR(srv.last.expect, "", "PUT without Expect");
	CHECK_STR(srv.last.content_type, "application/json", "PUT Content-Type json");
	CHECK(json_equal(r.json, mc), "echoed body parsed back");
	svm_api_reply_clear(&r);
	free(want);
	json_decref(mc);

	/* A body over 1 KiB is where curl would add "Expect: 100-continue". */
	char *big = malloc(64 * 1024 + 1);
	memset(big, 'a', 64 * 1024);
	big[64 * 1024] = '\0';
	json_t *mmds = json_pack("{s:s}", "blob", big);
	want = json_dumps(mmds, JSON_COMPACT);
	CHECK_INT(svm_api_call(api, "PUT", "/echo", mmds, NULL, &e), 0, "PUT 64 KiB ok");
	snprintf(len, sizeof len, "%zu", strlen(want));
	CHECK_STR(srv.last.content_length, len, "64 KiB PUT has Content-Length");
	CHECK_STR(srv.last.transfer_encoding, "", "64 KiB PUT not chunked");
	CHECK_STR(srv.last.expect, "", "64 KiB PUT without Expect");
	CHECK_INT(srv.last.body_len, strlen(want), "64 KiB body arrived whole");
	free(want);
	free(big);
	json_decref(mmds);

	/* PATCH without a body still says Content-Length: 0. */
	CHECK_INT(svm_api_call(api, "PATCH", "/echo", NULL, &r, &e), 0, "bodiless PATCH ok");
	CHECK_STR(srv.last.method, "PATCH", "server saw PATCH");
	CHECK_STR(srv.last.content_length, "0", "bodiless PATCH has Content-Length 0");
	CHECK_STR(srv.last.content_type, "", "bodiless PATCH has no Content-Type");
	CHECK_STR(r.text, "", "empty echo is empty text");
	svm_api_reply_clear(&r);

	/* After a PATCH the handle must go back to a plain GET. */
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "GET after PATCH");
	CHECK_STR(srv.last.method, "GET", "GET after PATCH is a GET");
	CHECK_INT(srv.last.body_len, 0, "GET after PATCH has no body");

	/* 204 with an empty body */
	json_t *act = json_pack("{s:s}", "action_type", "InstanceStart");
	CHECK_INT(svm_api_call(api, "PUT", "/empty", act, &r, &e), 0, "204 is ok");
	CHECK_INT(r.status, 204, "status 204");
	CHECK_STR(r.text, "", "204 text is empty");
	CHECK(r.json == NULL, "204 has no JSON");
	svm_api_reply_clear(&r);

	/* 400 with fault_message */
	CHECK_INT(svm_api_call(api, "PUT", "/fault", act, &r, &e), -1, "400 fails");
	CHECK_INT(e.code, SVM_API_ERROR, "400 -> API_ERROR");
	CHECK_INT(e.http_status, 400, "http_status 400");
	CHECK_MSG(e,
		  "PUT /fault: The requested operation is not supported after starting the "
		  "microVM.",
		  "message is METHOD path: fault_message");
	CHECK_INT(r.status, 400, "reply filled on error");
	CHECK(json_object_get(r.json, "fault_message") != NULL, "reply JSON on error");
	svm_api_reply_clear(&r);

	/* 413 */
	CHECK_INT(svm_api_call(api, "PATCH", "/mmds", act, NULL, &e), -1, "413 fails");
	CHECK_INT(e.code, SVM_TOO_LARGE, "413 -> TOO_LARGE");
	CHECK_INT(e.http_status, 413, "http_status 413");
	CHECK(strstr(e.message, "doesn't fit") != NULL, "413 message has the fault");

	/* missing host files */
	CHECK_INT(svm_api_call(api, "PUT", "/drives/rootfs", act, NULL, &e), -1, "drive fails");
	CHECK_INT(e.code, SVM_NOT_FOUND, "No such file or directory -> NOT_FOUND");
	CHECK_INT(e.http_status, 400, "NOT_FOUND keeps http_status");
	CHECK(strncmp(e.message, "PUT /drives/rootfs: Unable to create", 36) == 0,
	      "NOT_FOUND message has the fault");
	CHECK_INT(svm_api_call(api, "PUT", "/boot-source", act, NULL, &e), -1, "kernel fails");
	CHECK_INT(e.code, SVM_NOT_FOUND, "(os error 2) -> NOT_FOUND");
	CHECK_INT(svm_api_call(api, "PUT", "/notdir", act, NULL, &e), -1, "os error 20 fails");
	CHECK_INT(e.code, SVM_API_ERROR, "(os error 20) is not NOT_FOUND");
	json_decref(act);

	/* non-JSON bodies */
	CHECK_INT(svm_api_call(api, "GET", "/text", NULL, &r, &e), 0, "text answer ok");
	CHECK_STR(r.text, "plain words", "text returned as text");
	CHECK(r.json == NULL, "text is not JSON");
	svm_api_reply_clear(&r);
	CHECK_INT(svm_api_call(api, "GET", "/text400", NULL, NULL, &e), -1, "text 400 fails");
	CHECK_INT(e.code, SVM_API_ERROR, "text 400 -> API_ERROR");
	CHECK_MSG(e, "GET /text400: bad things", "text 400 message is the body");
	CHECK_INT(svm_api_call(api, "GET", "/empty400", NULL, NULL, &e), -1, "empty 400 fails");
	CHECK_MSG(e, "GET /empty400: HTTP 400", "empty 400 message");
	CHECK_INT(svm_api_call(api, "GET", "/nowhere", NULL, NULL, NULL), -1,
		  "err may be NULL");

	/* bad arguments never reach the wire */
	CHECK_INT(svm_api_call(api, "PUT", "/drives/a b", NULL, NULL, &e), -1, "space in path");
	CHECK_INT(e.code, SVM_INVALID_ARGUMENT, "space in path -> INVALID_ARGUMENT");
	CHECK_INT(svm_api_call(api, "GET", "version", NULL, NULL, &e), -1, "relative path");
	CHECK_INT(e.code, SVM_INVALID_ARGUMENT, "relative path -> INVALID_ARGUMENT");
	svm_api_free(api);
}

static void test_reuse(void)
{
	svm_api *api = svm_api_new(srv.path, 2000);
	svm_error e;
	server_reset(&srv);
	json_t *b = json_pack("{s:s}", "state", "Paused");
	int ok = 0;
	for (int i = 0; i < 10; i++) {
		/* a mix, errors included: a 4xx must not cost the connection */
		const char *m = i % 3 == 0 ? "GET" : i % 3 == 1 ? "PUT" : "PATCH";
		const char *p = i % 3 == 0 ? "/version" : i % 3 == 1 ? "/echo" : "/fault";
		int rc = svm_api_call(api, m, p, i % 3 ? b : NULL, NULL, &e);
		ok += (i % 3 == 2) ? rc == -1 : rc == 0;
	}
	CHECK_INT(ok, 10, "10 sequential requests answered as expected");
	CHECK_INT(server_connections(&srv), 1, "10 sequential requests use 1 connection");

	/* Connection: close from the server -> the next call reconnects by itself. */
	CHECK_INT(svm_api_call(api, "GET", "/close", NULL, NULL, &e), 0, "Connection: close ok");
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "call after close ok");
	CHECK_INT(server_connections(&srv), 2, "reconnected after Connection: close");

	/* explicit disconnect */
	svm_api_disconnect(api);
	CHECK_INT(svm_api_call(api, "PUT", "/echo", b, NULL, &e), 0, "call after disconnect");
	CHECK_INT(server_connections(&srv), 3, "reconnected after disconnect");
	json_decref(b);
	svm_api_free(api);
}

/* Waits up to 2 s for server s to have seen n connections end; returns the ms
 * it waited. */
static double wait_closed(struct server *s, int n)
{
	double t0 = now_ms();
	while (server_closed(s) < n && now_ms() - t0 < 2000)
		usleep(1000);
	return now_ms() - t0;
}

/* A client that keeps no connection while idle keeps it a while after a
 * lingering release: the series of calls that follows at once reuses it, then
 * it is closed; a server that went away meanwhile (a VMM killed and started
 * again at the same socket) costs the next series a new connection, nothing
 * more; a client freed while its connection lingers closes it at once. On a
 * server of its own, so no other test's connection is counted. */
static void test_linger(void)
{
	static struct server ls = {.lock = PTHREAD_MUTEX_INITIALIZER};
	snprintf(ls.path, sizeof ls.path, "%s/linger.sock", tmpdir);
	if (server_start(&ls) < 0) {
		CHECK(0, "a second test server");
		return;
	}
	svm_api *api = svm_api_new(ls.path, 2000);
	svm_error e;
	svm_api_close_when_idle(api);
	svm_api_hold(api);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "a held call");
	svm_api_release_lingering(api, 5000);
	svm_api_hold(api);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "held again at once: a call");
	svm_api_release_lingering(api, 100);
	CHECK_INT(server_connections(&ls), 1, "a series right after a lingering release reuses its connection");
	double waited = wait_closed(&ls, 1);
	CHECK_INT(server_closed(&ls), 1, "a lingering connection is closed when its time is up");
	CHECK(waited >= 50, "... and not before");
	if (waited < 50)
		printf("#   closed after %.1f ms\n", waited);

	/* the server ends and another takes its socket while the connection lingers */
	svm_api_hold(api);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "a held call");
	svm_api_release_lingering(api, 5000);
	server_stop(&ls);
	CHECK_INT(server_start(&ls), 0, "another server at the same socket");
	server_reset(&ls);
	svm_api_hold(api);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0,
		  "a call after the server changed, on a lingering connection");
	CHECK_INT(server_connections(&ls), 1, "... made on a new connection");
	svm_api_release_lingering(api, 5000);

	/* freed while it lingers: closed at once, and the closer never touches it */
	svm_api_free(api);
	CHECK(wait_closed(&ls, 1) < 1000 && server_closed(&ls) == 1,
	      "a client freed while its connection lingers closes it");

	/* at most 8 linger: a ninth closes the oldest; a start's call closes all */
	server_reset(&ls);
	svm_api *many[9];
	for (int i = 0; i < 9; i++) {
		many[i] = svm_api_new(ls.path, 2000);
		svm_api_close_when_idle(many[i]);
		svm_api_hold(many[i]);
		svm_api_call(many[i], "GET", "/version", NULL, NULL, &e);
		svm_api_release_lingering(many[i], 5000);
	}
	CHECK(wait_closed(&ls, 1) < 1000 && server_closed(&ls) == 1,
	      "a ninth lingering client closes the oldest");
	CHECK_INT(svm_api_close_lingering(), 8, "svm_api_close_lingering: the 8 others");
	CHECK(wait_closed(&ls, 9) < 1000 && server_closed(&ls) == 9, "... closed at once");
	for (int i = 0; i < 9; i++)
		svm_api_free(many[i]);
	server_stop(&ls);
}

static void test_failures(void)
{
	svm_error e;
	svm_api_reply r;

	/* a handler slower than the timeout */
	svm_api *api = svm_api_new(srv.path, 200);
	server_reset(&srv);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "fast call ok");
	double t0 = now_ms();
	CHECK_INT(svm_api_call(api, "GET", "/slow", NULL, &r, &e), -1, "slow call fails");
	double took = now_ms() - t0;
	CHECK_INT(e.code, SVM_API_TIMEOUT, "slow -> API_TIMEOUT");
	CHECK(took >= 150 && took < 900, "timeout honoured (~200 ms)");
	CHECK_INT(r.status, 0, "no status when no answer");
	svm_api_reply_clear(&r);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0,
		  "call after a timeout ok");
	CHECK_INT(server_connections(&srv), 2, "a timeout costs the connection, next reconnects");
	svm_api_free(api);

	/* per-call timeout */
	api = svm_api_new(srv.path, 5000);
	t0 = now_ms();
	CHECK_INT(svm_api_call_timeout(api, "GET", "/slow", NULL, 200, NULL, &e), -1,
		  "per-call timeout fails");
	CHECK_INT(e.code, SVM_API_TIMEOUT, "per-call timeout -> API_TIMEOUT");
	CHECK(now_ms() - t0 < 900, "per-call timeout honoured");

	/* an answer past the client's bound */
	CHECK_INT(svm_api_call(api, "GET", "/huge", NULL, &r, &e), -1, "huge answer fails");
	CHECK_INT(e.code, SVM_SOCKET_REQUEST_FAILED, "huge -> SOCKET_REQUEST_FAILED");
	CHECK(strstr(e.message, "larger than") != NULL, "huge message says why");
	CHECK(r.text == NULL, "no text for an aborted answer");
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "call after huge ok");
	svm_api_free(api);

	/* no socket at all */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(path, sizeof path, "%s/absent.sock", tmpdir);
	api = svm_api_new(path, 1000);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, &r, &e), -1, "no socket fails");
	CHECK_INT(e.code, SVM_SOCKET_REQUEST_FAILED, "no socket -> SOCKET_REQUEST_FAILED");
	CHECK(strstr(e.message, path) != NULL, "message names the socket path");
	CHECK(strncmp(e.message, "GET /version failed: ", 21) == 0, "message names the call");
	printf("# no socket: %s\n", e.message);
	CHECK_INT(r.status, 0, "no status without a server");
	svm_api_free(api);

	/* a socket file nobody listens on (a dead VMM's leftover) */
	snprintf(path, sizeof path, "%s/stale.sock", tmpdir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	bind(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	api = svm_api_new(path, 1000);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), -1, "stale socket fails");
	CHECK_INT(e.code, SVM_SOCKET_REQUEST_FAILED, "stale socket -> SOCKET_REQUEST_FAILED");
	CHECK(strstr(e.message, "refused") != NULL, "stale socket: connection refused");
	svm_api_free(api);
	unlink(path);

	/* too long a socket path */
	char longp[200];
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	api = svm_api_new(longp, 1000);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), -1, "long path fails");
	CHECK_INT(e.code, SVM_NAME_TOO_LONG, "long socket path -> NAME_TOO_LONG");
	svm_api_free(api);

	/* the server goes away and comes back at the same path (a VMM replaced):
	 * a transport failure, then the next call reconnects */
	api = svm_api_new(srv.path, 1000);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "before restart ok");
	server_stop(&srv);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), -1, "server gone fails");
	CHECK_INT(e.code, SVM_SOCKET_REQUEST_FAILED, "server gone -> SOCKET_REQUEST_FAILED");
	CHECK_INT(server_start(&srv), 0, "server restarted");
	server_reset(&srv);
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0, "after restart ok");
	CHECK_INT(server_connections(&srv), 1, "reconnected after restart");
	/* restart again without a failed call in between: the cached connection is
	 * dead, curl must notice before sending */
	server_stop(&srv);
	CHECK_INT(server_start(&srv), 0, "server restarted again");
	CHECK_INT(svm_api_call(api, "GET", "/version", NULL, NULL, &e), 0,
		  "stale cached connection replaced silently");
	svm_api_free(api);
}

static bool dead(void *ud)
{
	(void)ud;
	return false;
}

static void test_wait_ready(void)
{
	svm_error e;
	svm_api *api = svm_api_new(srv.path, 1000);
	CHECK_INT(svm_api_wait_ready(api, 1000, NULL, NULL, &e), 0, "ready against the server");
	svm_api_free(api);

	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(path, sizeof path, "%s/never.sock", tmpdir);
	api = svm_api_new(path, 1000);
	double t0 = now_ms();
	CHECK_INT(svm_api_wait_ready(api, 200, NULL, NULL, &e), -1, "never ready");
	double took = now_ms() - t0;
	CHECK_INT(e.code, SVM_SOCKET_TIMEOUT, "never ready -> SOCKET_TIMEOUT");
	CHECK(took >= 190 && took < 700, "wait_ready honours its timeout");
	t0 = now_ms();
	CHECK_INT(svm_api_wait_ready(api, 5000, dead, NULL, &e), -1, "dead VMM");
	CHECK_INT(e.code, SVM_START_FAILED, "dead VMM -> START_FAILED");
	CHECK(now_ms() - t0 < 500, "dead VMM ends the wait at once");
	svm_api_free(api);
}

#define NTHREADS 8
#define PER_THREAD 50

struct worker {
	svm_api *api;
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	json_t *b = json_pack("{s:s}", "action_type", "FlushMetrics");
	for (int i = 0; i < PER_THREAD; i++) {
		svm_error e;
		if (svm_api_call(w->api, i % 2 ? "PUT" : "GET", "/busy", i % 2 ? b : NULL, NULL,
				 &e) == 0)
			w->ok++;
	}
	json_decref(b);
	return NULL;
}

static void test_threads(void)
{
	svm_api *api = svm_api_new(srv.path, 5000);
	server_reset(&srv);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.api = api};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	int ok = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
	}
	CHECK_INT(ok, NTHREADS * PER_THREAD, "8 threads: every call succeeded");
	CHECK_INT(srv.requests, NTHREADS * PER_THREAD, "8 threads: server saw every request");
	CHECK_INT(srv.max_in_flight, 1, "8 threads: never two requests in flight");
	CHECK_INT(server_connections(&srv), 1, "8 threads: one connection");
	svm_api_free(api);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench_put(void)
{
	enum { N = 1000 };
	static double t[N];
	svm_api *api = svm_api_new(srv.path, 5000);
	json_t *b = json_pack("{s:i, s:i}", "vcpu_count", 2, "mem_size_mib", 256);
	svm_error e;
	svm_api_call(api, "PUT", "/empty", b, NULL, &e); /* connect first */
	server_reset(&srv);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		double t0 = now_ms();
		ok += svm_api_call(api, "PUT", "/empty", b, NULL, &e) == 0;
		t[i] = now_ms() - t0;
	}
	qsort(t, N, sizeof t[0], cmp_double);
	CHECK_INT(ok, N, "benchmark: every PUT ok");
	CHECK_INT(server_connections(&srv), 0, "benchmark: no new connection");
	printf("# PUT round trip over one persistent connection, %d calls: median %.1f us, "
	       "p90 %.1f us, p99 %.1f us\n",
	       N, t[N / 2] * 1e3, t[N * 9 / 10] * 1e3, t[N * 99 / 100] * 1e3);
	CHECK(t[N / 2] < 50.0, "benchmark: median under 50 ms (sanity)");
	json_decref(b);
	svm_api_free(api);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fcapi-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(srv.path, sizeof srv.path, "%s/api.sock", tmpdir);

	test_url_and_client();
	CHECK_INT(server_start(&srv), 0, "test server up");
	if (srv.d) {
		test_requests();
		test_reuse();
		test_linger();
		test_failures();
		test_wait_ready();
		test_threads();
		bench_put();
	}
	server_stop(&srv);
	free(srv.last.body);
	rmdir(tmpdir);
	return check_done();
}
