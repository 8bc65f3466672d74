/*
 * fcapi.c - the Firecracker API client: HTTP/1.1 over the VMM's Unix socket.
 *
 * Why it looks the way it does (DESIGN §6):
 *  - Firecracker's HTTP server serves at most 10 connections, so each client keeps
 *    ONE persistent connection: one libcurl easy handle per client, kept for the
 *    client's life (the easy handle owns the connection cache), MAXCONNECTS 1.
 *  - Its server reads bodies by Content-Length only (a chunked body arrives empty)
 *    and does not speak "Expect: 100-continue": bodies go as POSTFIELDS with an
 *    explicit size, and the Expect header is switched off.
 *  - Requests on one easy handle must not overlap; the client's mutex serialises
 *    them so any thread (FUSE workers, the event loop) may call.
 *  - Nearly every error is HTTP 400 + {"fault_message": ...}: the message is kept
 *    verbatim and mapped to a code by what it says (missing host file -> NOT_FOUND).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <curl/curl.h>

#include "base.h"
#include "cleanup.h"
#include "fcapi.h"

/* A misbehaving server must not make us buffer without bound; Firecracker's own
 * answers are a few KiB at most (GET /vm/config, GET /mmds with a 50 KiB store). */
#define RESP_MAX (4u << 20)
#define DEFAULT_TIMEOUT_MS 5000

struct svm_api {
	pthread_mutex_t lock; /* serialises requests: one easy handle, one connection */
	CURL *curl;           /* NULL until the first call, or after disconnect */
	char *socket_path;
	int timeout_ms;
	char errbuf[CURL_ERROR_SIZE];
	atomic_bool idle_close; /* svm_api_close_when_idle */
	atomic_int holds;     /* svm_api_hold - svm_api_release */
	/* svm_api_release_lingering: in the closer's list until close_at (closer.mu) */
	bool lingering;
	uint64_t close_at_ns;
	struct svm_api *linger_next;
};

/* ------------------------------------------------------------ global init */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_once_rc = CURLE_FAILED_INIT;
/* The headers of every request, one list for all clients (libcurl only reads
 * a list during a transfer; 10,000 VMs each made and freed two): with a JSON
 * body, and without one. "Expect:" with no value removes curl's automatic
 * 100-continue (sent for bodies over 1 KiB), which Firecracker does not
 * answer; "Content-Type:" with no value removes curl's form-urlencoded default
 * on bodiless PUTs. */
static struct curl_slist *hdr_json, *hdr_nobody;

/* A list of the three headers, the last one given; NULL (nothing kept) when
 * out of memory. */
static struct curl_slist *headers(const char *content_type)
{
	const char *h[] = {"Accept: application/json", "Expect:", content_type};
	struct curl_slist *list = NULL;
	for (size_t i = 0; i < 3; i++) {
		struct curl_slist *l = curl_slist_append(list, h[i]);
		if (!l) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = l;
	}
	return list;
}

static void curl_init_once(void)
{
	/* DEFAULT (= ALL) so that other users of libcurl in the process (the https
	 * downloads) find TLS initialised too; the init runs exactly once. */
	curl_once_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	hdr_json = headers("Content-Type: application/json");
	hdr_nobody = headers("Content-Type:");
}

int svm_curl_global_init(void)
{
	pthread_once(&curl_once, curl_init_once);
	return curl_once_rc == CURLE_OK && hdr_json && hdr_nobody ? 0 : -1;
}

/* ------------------------------------------------------------------ utils */

int svm_api_url(char *buf, size_t size, const char *path)
{
	if (!buf || !path || path[0] != '/')
		return -1;
	int n = snprintf(buf, size, "http://localhost%s", path);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

/* The path becomes part of a URL as it is; refuse what would change its meaning
 * (space, '?', '#', '%', control bytes) rather than silently escape it. Firecracker
 * ids are [A-Za-z0-9_-] anyway. */
static bool path_ok(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		unsigned char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' ||
			  c == '.' || c == '~';
		if (!ok)
			return false;
	}
	return true;
}

const char *svm_api_socket_path(const svm_api *api)
{
	return api ? api->socket_path : NULL;
}

struct buf {
	char *data;
	size_t len, cap;
	bool overflow;
	bool oom;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	if (n == 0)
		return 0;
	if (b->len + n > RESP_MAX) {
		b->overflow = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (svm_grow(&b->data, &b->cap, b->len + n + 1, 1) < 0) {
		b->oom = true;
		return 0;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Options that never change for the life of the easy handle. */
static int setup_handle(svm_api *api)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                  \
	do {                                           \
		if (rc == CURLE_OK)                    \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_UNIX_SOCKET_PATH, api->socket_path);
	/* No signals: timeouts must not use SIGALRM in a multi-threaded daemon. */
	SET(CURLOPT_NOSIGNAL, 1L);
	/* An http_proxy in the environment must not reroute a Unix-socket request. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* "/drives/.." must reach the server as written (it answers 400), not be
	 * squashed by curl into another endpoint. */
	SET(CURLOPT_PATH_AS_IS, 1L);
	/* One connection per client; Firecracker serves at most 10. */
	SET(CURLOPT_MAXCONNECTS, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_ERRORBUFFER, api->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_write);
#undef SET
	if (rc != CURLE_OK) {
		curl_easy_cleanup(c);
		return -1;
	}
	api->curl = c;
	return 0;
}

/* ------------------------------------------------------------- lifecycle */

svm_api *svm_api_new(const char *socket_path, int timeout_ms)
{
	if (!socket_path || svm_curl_global_init() < 0)
		return NULL;
	svm_api *api = calloc(1, sizeof *api);
	if (!api)
		return NULL;
	api->socket_path = strdup(socket_path);
	api->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	if (!api->socket_path || pthread_mutex_init(&api->lock, NULL) != 0) {
		free(api->socket_path);
		free(api);
		return NULL;
	}
	/* The handle is made on first use: creating a client never fails for want of
	 * a VMM, and disconnect can simply drop it. */
	return api;
}

static void linger_forget(svm_api *api);

void svm_api_free(svm_api *api)
{
	if (!api)
		return;
	linger_forget(api);
	if (api->curl)
		curl_easy_cleanup(api->curl);
	pthread_mutex_destroy(&api->lock);
	free(api->socket_path);
	free(api);
}

void svm_api_disconnect(svm_api *api)
{
	if (!api)
		return;
	pthread_mutex_lock(&api->lock);
	if (api->curl) {
		curl_easy_cleanup(api->curl); /* closes the cached connection */
		api->curl = NULL;
	}
	pthread_mutex_unlock(&api->lock);
}

void svm_api_close_when_idle(svm_api *api)
{
	if (!api)
		return;
	atomic_store(&api->idle_close, true);
}

/* Closes the connection if nobody holds the client and no call is in flight
 * (then that call closes it at its end). Never waits for a call: a hold or a
 * release (a kill) must not queue behind a slow request (InstanceStart). */
static void close_if_idle(svm_api *api)
{
	if (!atomic_load(&api->idle_close) || atomic_load(&api->holds) > 0 ||
	    pthread_mutex_trylock(&api->lock) != 0)
		return;
	if (atomic_load(&api->holds) == 0 && api->curl) {
		curl_easy_cleanup(api->curl); /* closes the connection */
		api->curl = NULL;
	}
	pthread_mutex_unlock(&api->lock);
}

void svm_api_hold(svm_api *api)
{
	if (api)
		atomic_fetch_add(&api->holds, 1);
}

void svm_api_release(svm_api *api)
{
	if (api && atomic_fetch_sub(&api->holds, 1) == 1)
		close_if_idle(api);
}

/* ------------------------------------------------------------ lingering */

/* The connections kept a while after their last release
 * (svm_api_release_lingering), and the one thread that closes them when their
 * time is up. It touches a client only under closer.mu, which svm_api_free takes
 * to take the client off the list, and never waits for a client's call
 * (close_if_idle only tries its lock). */
#define LINGER_MAX 8 /* connections lingering at once, 3 descriptors each */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	svm_api *head; /* the newest first */
	int n;
	int state; /* 0: no thread yet, 1: running, -1: none could be made */
	uint64_t wakes_at; /* when the waiting thread looks again; 0: at a signal only */
} closer = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *closer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&closer.mu);
	for (;;) {
		uint64_t now = mono_ns(), next = 0;
		for (svm_api **pp = &closer.head; *pp;) {
			svm_api *a = *pp;
			if (a->close_at_ns <= now) {
				*pp = a->linger_next;
				a->lingering = false;
				closer.n--;
				close_if_idle(a); /* held again meanwhile: its release decides */
				continue;
			}
			if (!next || a->close_at_ns < next)
				next = a->close_at_ns;
			pp = &a->linger_next;
		}
		closer.wakes_at = next;
		if (!next) {
			pthread_cond_wait(&closer.cv, &closer.mu);
			continue;
		}
		struct timespec until = {(time_t)(next / 1000000000ULL), (long)(next % 1000000000ULL)};
		pthread_cond_timedwait(&closer.cv, &closer.mu, &until);
	}
	return NULL;
}

/* The closer's thread, made at the first lingering release (closer.mu held);
 * its wait counts on CLOCK_MONOTONIC. false: there is none. */
static bool closer_ready_locked(void)
{
	if (closer.state == 0) {
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_destroy(&closer.cv);
		pthread_cond_init(&closer.cv, &ca);
		pthread_condattr_destroy(&ca);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		pthread_t t;
		closer.state = pthread_create(&t, &attr, closer_main, NULL) == 0 ? 1 : -1;
		pthread_attr_destroy(&attr);
	}
	return closer.state == 1;
}

/* Takes a lingering client off the list (closer.mu held). */
static void linger_unlink_locked(svm_api *api)
{
	for (svm_api **pp = &closer.head; api->lingering && *pp; pp = &(*pp)->linger_next)
		if (*pp == api) {
			*pp = api->linger_next;
			api->lingering = false;
			closer.n--;
			break;
		}
}

static void linger_forget(svm_api *api)
{
	pthread_mutex_lock(&closer.mu);
	linger_unlink_locked(api);
	pthread_mutex_unlock(&closer.mu);
}

int svm_api_close_lingering(void)
{
	int n = 0;
	pthread_mutex_lock(&closer.mu);
	while (closer.head) {
		svm_api *a = closer.head;
		closer.head = a->linger_next;
		a->lingering = false;
		closer.n--;
		close_if_idle(a);
		n++;
	}
	pthread_mutex_unlock(&closer.mu);
	return n;
}

void svm_api_release_lingering(svm_api *api, int linger_ms)
{
	if (!api || atomic_fetch_sub(&api->holds, 1) != 1)
		return;
	if (!atomic_load(&api->idle_close))
		return; /* it keeps its connection anyway */
	pthread_mutex_lock(&closer.mu);
	bool kept = linger_ms > 0 && closer_ready_locked();
	if (kept) {
		api->close_at_ns = mono_ns() + (uint64_t)linger_ms * 1000000ULL;
		if (api->lingering)
			linger_unlink_locked(api); /* to the front again */
		if (closer.n == LINGER_MAX) {
			/* the oldest goes now: descriptors are bounded, not per VM */
			svm_api **pp = &closer.head;
			while ((*pp)->linger_next)
				pp = &(*pp)->linger_next;
			svm_api *old = *pp;
			linger_unlink_locked(old);
			close_if_idle(old);
		}
		api->lingering = true;
		api->linger_next = closer.head;
		closer.head = api;
		closer.n++;
		/* Only a thread that would look later than this is woken: in a
		 * series of verbs on one VM it already waits for an earlier time,
		 * and then finds this one's later (a wake per verb was a context
		 * switch beside each reply). */
		if (!closer.wakes_at || api->close_at_ns < closer.wakes_at) {
			closer.wakes_at = api->close_at_ns;
			pthread_cond_signal(&closer.cv);
		}
	} else {
		linger_unlink_locked(api); /* it lingered after a verb before */
	}
	pthread_mutex_unlock(&closer.mu);
	if (!kept)
		close_if_idle(api);
}

void svm_api_reply_clear(svm_api_reply *reply)
{
	if (!reply)
		return;
	json_decref(reply->json);
	free(reply->text);
	reply->json = NULL;
	reply->text = NULL;
	reply->status = 0;
}

/* ------------------------------------------------------------ the errors */

/* Rust's io::Error prints ENOENT as "No such file or directory (os error 2)";
 * match "os error 2" only when no digit follows (os error 20 is ENOTDIR). */
static bool says_missing_file(const char *msg)
{
	if (strstr(msg, "No such file or directory"))
		return true;
	for (const char *p = msg; (p = strstr(p, "os error 2")); p++) {
		char next = p[strlen("os error 2")];
		if (next < '0' || next > '9')
			return true;
	}
	return false;
}

/* Drop trailing whitespace so "HTTP 400 text\n" does not end in a space. */
static int trimmed_len(const char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
		     s[n - 1] == '\t'))
		n--;
	return n > 4096 ? 4096 : (int)n;
}

static void api_error(svm_error *err, const char *method, const char *path, long status,
		      const json_t *json, const char *text)
{
	if (!err)
		return;
	const char *fault = NULL;
	if (json_is_object(json))
		fault = json_string_value(json_object_get(json, "fault_message"));
	svm_code code = SVM_API_ERROR;
	if (status == 413)
		code = SVM_TOO_LARGE;
	else if (fault && says_missing_file(fault))
		code = SVM_NOT_FOUND;
	if (fault)
		svm_error_set(err, code, "%s %s: %s", method, path, fault);
	else if (text && trimmed_len(text) > 0)
		svm_error_set(err, code, "%s %s: %.*s", method, path, trimmed_len(text), text);
	else
		svm_error_set(err, code, "%s %s: HTTP %ld", method, path, status);
	err->http_status = (int)status;
}

int svm_api_classify(const char *method, const char *path, long status, const char *body,
		     size_t len, json_t **json, svm_error *err)
{
	json_t *j = len > 0 ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	int ret = 0;
	if (status < 200 || status >= 300) {
		api_error(err, method, path, status, j, body);
		ret = -1;
	}
	if (json)
		*json = j;
	else
		json_decref(j);
	return ret;
}

/* -------------------------------------------------------------- the call */

/* What one request gave: curl's result, the answer and what the system said. */
struct exchange {
	struct buf resp;
	long status;
	long os_errno;
	CURLcode rc;
	char errbuf[CURL_ERROR_SIZE];
};

/* The request's own faults, found before any I/O; url gets the request URL. */
static int check_call(const svm_api *api, const char *method, const char *path, char *url,
		      size_t url_size, svm_error *err)
{
	if (!api || !method || !*method)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "API call without a client or method");
	if (!path_ok(path))
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "%s %s: not a valid API path",
				     method, path ? path : "(null)");
	/* curl would fail later with a vague "couldn't connect"; say what it is. */
	if (strlen(api->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return svm_error_set(err, SVM_NAME_TOO_LONG,
				     "%s %s: socket path too long (%zu bytes, max %zu): %s",
				     method, path, strlen(api->socket_path),
				     sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
				     api->socket_path);
	if (svm_api_url(url, url_size, path) < 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "%s: API path too long", method);
	return 0;
}

/* The method, body and headers of this request on the reused handle. */
static void set_method(CURL *c, const char *method, const char *payload)
{
	if (payload) {
		/* POSTFIELDS + POSTFIELDSIZE: curl sends Content-Length, never chunked;
		 * CUSTOMREQUEST only changes the method word on the request line. */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr_json);
	} else if (strcmp(method, "GET") == 0) {
		/* HTTPGET resets whatever POST state the previous request left. */
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr_nobody);
	} else {
		/* A bodiless PUT/PATCH still says "Content-Length: 0", so the server
		 * never waits for a body that is not coming. */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr_nobody);
	}
}

/* One request on the client's connection, under its lock. -1: no libcurl handle. */
static int exchange(svm_api *api, const char *method, const char *url, const char *payload,
		    int timeout_ms, struct exchange *x)
{
	pthread_mutex_lock(&api->lock);
	if (!api->curl && setup_handle(api) < 0) {
		pthread_mutex_unlock(&api->lock);
		return -1;
	}
	CURL *c = api->curl;
	api->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x->resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	/* Connecting to a Unix socket is immediate or refused, except when the
	 * server's listen backlog is full; do not let that eat the whole budget
	 * silently, but never exceed it either. */
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	set_method(c, method, payload);

	x->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &x->os_errno);
	/* Do not leave a pointer to our (soon freed) payload and the caller's buffer
	 * in the handle between calls. */
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	snprintf(x->errbuf, sizeof x->errbuf, "%s",
		 api->errbuf[0] ? api->errbuf : curl_easy_strerror(x->rc));
	pthread_mutex_unlock(&api->lock);
	close_if_idle(api); /* after the unlock: a release that came meanwhile may have missed it */
	return 0;
}

/* A request that got no HTTP answer: why, in words that fit a Unix socket. */
static void transport_error(svm_error *err, const svm_api *api, const char *method,
			    const char *path, int timeout_ms, const struct exchange *x)
{
	if (x->rc == CURLE_OPERATION_TIMEDOUT)
		svm_error_set(err, SVM_API_TIMEOUT, "%s %s: no answer within %d ms (socket %s)",
			      method, path, timeout_ms, api->socket_path);
	else if (x->resp.overflow)
		svm_error_set(err, SVM_SOCKET_REQUEST_FAILED,
			      "%s %s failed: answer larger than %u bytes (socket %s)", method, path,
			      RESP_MAX, api->socket_path);
	else if (x->resp.oom)
		svm_error_set(err, SVM_SOCKET_REQUEST_FAILED,
			      "%s %s failed: out of memory reading the answer", method, path);
	else if (x->os_errno)
		/* curl's own text would say "localhost port 80", which is misleading on
		 * a Unix socket: name the failure and the errno. */
		svm_error_set(err, SVM_SOCKET_REQUEST_FAILED, "%s %s failed: %s: %s (socket %s)",
			      method, path, curl_easy_strerror(x->rc), strerror((int)x->os_errno),
			      api->socket_path);
	else
		svm_error_set(err, SVM_SOCKET_REQUEST_FAILED, "%s %s failed: %s (socket %s)", method,
			      path, x->errbuf, api->socket_path);
}

/* An HTTP answer: classified, and handed to the caller (reply) or dropped. */
static int take_answer(const char *method, const char *path, struct exchange *x,
		       svm_api_reply *reply, svm_error *err)
{
	cleanup_free char *text = steal_pointer(&x->resp.data);
	if (!text && !(text = strdup("")))
		return svm_error_set(err, SVM_SOCKET_REQUEST_FAILED, "%s %s failed: out of memory",
				     method, path);
	json_t *json = NULL;
	int ret = svm_api_classify(method, path, x->status, text, x->resp.len, &json, err);
	if (reply) {
		reply->status = x->status;
		reply->json = json;
		reply->text = steal_pointer(&text);
	} else {
		json_decref(json);
	}
	return ret;
}

int svm_api_call_timeout(svm_api *api, const char *method, const char *path,
			 const json_t *body, int timeout_ms, svm_api_reply *reply,
			 svm_error *err)
{
	if (reply)
		*reply = (svm_api_reply){0};
	char url[2048];
	if (check_call(api, method, path, url, sizeof url, err) < 0)
		return -1;
	cleanup_free char *payload = NULL;
	if (body) {
		payload = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!payload)
			return svm_error_set(err, SVM_INVALID_ARGUMENT,
					     "%s %s: body cannot be encoded as JSON", method, path);
	}
	if (timeout_ms <= 0)
		timeout_ms = api->timeout_ms;

	struct exchange x = {0};
	if (exchange(api, method, url, payload, timeout_ms, &x) < 0)
		return svm_error_set(err, SVM_SOCKET_REQUEST_FAILED,
				     "%s %s failed: cannot create a libcurl handle", method, path);
	if (x.rc != CURLE_OK) {
		transport_error(err, api, method, path, timeout_ms, &x);
		free(x.resp.data);
		return -1;
	}
	return take_answer(method, path, &x, reply, err);
}

int svm_api_call(svm_api *api, const char *method, const char *path, const json_t *body,
		 svm_api_reply *reply, svm_error *err)
{
	return svm_api_call_timeout(api, method, path, body, 0, reply, err);
}

/* ----------------------------------------------------------- readiness */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int svm_api_wait_ready(svm_api *api, int timeout_ms, bool (*alive)(void *ud), void *ud,
		       svm_error *err)
{
	if (!api)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "wait_ready without a client");
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
	svm_error last;
	svm_error_clear(&last);
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			break;
		/* Each poll gets only what is left, so the wait never overruns. */
		if (svm_api_call_timeout(api, "GET", "/version", NULL,
					 (int)(left < api->timeout_ms ? left : api->timeout_ms),
					 NULL, &last) == 0)
			return 0;
		if (alive && !alive(ud))
			return svm_error_set(err, SVM_START_FAILED,
					     "the VMM exited before its API socket %s answered (%s)",
					     api->socket_path, last.message);
		/* The socket appears a few ms after spawn: poll at 10 ms, not a busy loop. */
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return svm_error_set(err, SVM_SOCKET_TIMEOUT, "API socket %s not ready after %d ms%s%s",
			     api->socket_path, timeout_ms, last.message[0] ? ": " : "",
			     last.message);
}
