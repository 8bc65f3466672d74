/*
 * fcapi.h - the Firecracker API client (internal to core).
 *
 * HTTP/1.1 over the VMM's Unix socket with libcurl (CURLOPT_UNIX_SOCKET_PATH).
 * One persistent connection per client; requests are serialised by the client's
 * own lock, so any thread may call. Bodies go with Content-Length, never chunked,
 * never with "Expect: 100-continue" (Firecracker's server reads Content-Length
 * bodies only). CURLOPT_NOSIGNAL is set.
 */
#ifndef SVM_FCAPI_H
#define SVM_FCAPI_H

#include <jansson.h>
#include "smartvm.h"

typedef struct svm_api svm_api;

typedef struct svm_api_reply {
	long status;   /* HTTP status, 0 if no answer */
	json_t *json;  /* the body parsed as JSON, or NULL (empty or not JSON) */
	char *text;    /* the raw body, NUL-terminated ("" when empty) */
} svm_api_reply;

/* timeout_ms bounds one request (connect + transfer). */
svm_api *svm_api_new(const char *socket_path, int timeout_ms);
void svm_api_free(svm_api *api);

/* method: "GET" "PUT" "PATCH"; body may be NULL (no body).
 * Returns 0 for a 2xx answer. Otherwise -1 with err:
 *   no connection / transport failure -> SOCKET_REQUEST_FAILED
 *   timeout                           -> API_TIMEOUT
 *   4xx/5xx                           -> API_ERROR (or TOO_LARGE for 413, or
 *        NOT_FOUND when the fault_message says a host file is missing, e.g.
 *        "No such file or directory"), http_status set, message
 *        "PUT /drives/rootfs: <fault_message>" (the body text if not JSON).
 * reply (may be NULL) is filled in both cases when an answer came; release with
 * svm_api_reply_clear. When no answer came it is all zero (status 0, text NULL).
 * A bad path (not starting with '/', or with bytes other than [A-Za-z0-9/_.~-])
 * -> INVALID_ARGUMENT; a socket path over sun_path -> NAME_TOO_LONG; an answer
 * over 4 MiB is dropped -> SOCKET_REQUEST_FAILED. */
int svm_api_call(svm_api *api, const char *method, const char *path,
		 const json_t *body, svm_api_reply *reply, svm_error *err);
void svm_api_reply_clear(svm_api_reply *reply);

/* What svm_api_call makes of an answer: body (len bytes, NUL-terminated at len)
 * parsed as JSON into *json (a new reference or NULL; json may be NULL), and 0
 * for a 2xx status, else -1 with err as svm_api_call describes. */
int svm_api_classify(const char *method, const char *path, long status, const char *body,
		     size_t len, json_t **json, svm_error *err);

/* As svm_api_call, with this one request bounded by timeout_ms instead of the
 * client's (snapshot create/load of a large guest can take longer than the usual
 * API timeout). timeout_ms <= 0 means the client's. */
int svm_api_call_timeout(svm_api *api, const char *method, const char *path,
			 const json_t *body, int timeout_ms, svm_api_reply *reply,
			 svm_error *err);

/* The seed's SocketClient.isReady: poll GET /version until it answers 2xx or
 * timeout_ms passes (-> SOCKET_TIMEOUT, with the last failure in the message).
 * alive (may be NULL) is asked between polls; when it returns false the wait ends
 * at once with START_FAILED (the VMM died: no point waiting for its socket). */
int svm_api_wait_ready(svm_api *api, int timeout_ms, bool (*alive)(void *ud),
		       void *ud, svm_error *err);

/* The socket path the client was made with (owned by the client). */
const char *svm_api_socket_path(const svm_api *api);

/* The URL libcurl is given for an API path: "http://localhost" + path (the host
 * part is ignored on a Unix socket but HTTP/1.1 needs a Host header). Returns the
 * length written, or -1 if buf is too small or path does not start with '/'. */
int svm_api_url(char *buf, size_t size, const char *path);

/* Close the client's connection, if any; the next call connects afresh. For a
 * VMM replaced at the same socket path (curl also notices a dead connection by
 * itself; this just makes it explicit). */
void svm_api_disconnect(svm_api *api);

/* A client that keeps no connection while idle: each call made while nobody
 * holds it closes its connection and frees its libcurl handle (three
 * descriptors: the connection and the socket pair of curl's internal multi
 * handle) when it is done. svm_api_hold/svm_api_release bracket a series of
 * calls (a verb) that keeps one connection, which the last release closes.
 * For clients that are mostly idle, one per VM. */
void svm_api_close_when_idle(svm_api *api);
void svm_api_hold(svm_api *api);
void svm_api_release(svm_api *api);
/* As svm_api_release, but the last release keeps the connection linger_ms
 * more (closed then by a thread of the client module, unless it is held again
 * meanwhile, or a call made without a hold closes it at its end): the next
 * series of calls that follows at once (a pause, then a snapshot, then a resume)
 * finds it open. At most 8 clients linger at once (the oldest is closed for a
 * ninth); linger_ms 0 is svm_api_release. svm_api_free drops a lingering client
 * at once. */
void svm_api_release_lingering(svm_api *api, int linger_ms);
/* Closes every lingering connection now (for a start that needs descriptors);
 * returns how many clients lingered. */
int svm_api_close_lingering(void);

/* libcurl's global init, once per process and thread-safe (curl_global_init
 * itself is not). Anything in the core that uses libcurl calls this first.
 * Returns 0, or -1 if libcurl could not initialise. */
int svm_curl_global_init(void);

#endif
