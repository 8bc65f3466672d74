/*
 * fuzz_fcreply.c - what Firecracker answers: svm_api_classify turns a (status,
 * body) pair into success or an svm_error (fault_message, 413, missing host
 * file), and the same pair is also served over a Unix socket to the real client
 * (svm_api_call: libcurl, the body buffer, the reply) every fourth input.
 *
 * Input: two bytes of status (big-endian, taken modulo 1000), then the body.
 */
#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcapi.h"
#include "fuzz.h"

static svm_api *api;
static char sock_path[108];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *answer; /* the whole HTTP answer to the next request */
static size_t answer_len;

static void *server(void *arg)
{
	int ls = (int)(intptr_t)arg;
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		char req[8192];
		size_t have = 0;
		for (;;) {
			ssize_t n = read(c, req + have, sizeof req - 1 - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			req[have] = '\0';
			char *end;
			while ((end = strstr(req, "\r\n\r\n"))) { /* GETs: no body */
				pthread_mutex_lock(&mu);
				for (size_t off = 0; off < answer_len;) {
					ssize_t w = write(c, answer + off, answer_len - off);
					if (w <= 0)
						break;
					off += (size_t)w;
				}
				pthread_mutex_unlock(&mu);
				size_t used = (size_t)(end + 4 - req);
				memmove(req, end + 4, have - used + 1);
				have -= used;
			}
			if (have >= sizeof req - 1)
				break;
		}
		close(c);
	}
	return NULL;
}

static void remove_socket(void)
{
	unlink(sock_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(sock_path, sizeof sock_path, "/tmp/svm-fuzz-fc.%d.sock", (int)getpid());
	unlink(sock_path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 8) < 0)
		FUZZ_FAIL("listen on %s: %m", sock_path);
	atexit(remove_socket);
	pthread_t t;
	pthread_create(&t, NULL, server, (void *)(intptr_t)ls);
	pthread_detach(t);
	api = svm_api_new(sock_path, 2000);
	FUZZ_CHECK(api, "svm_api_new");
	return 0;
}

static void check_error(const svm_error *e, long status, const char *prefix)
{
	fuzz_check_error(e);
	FUZZ_CHECK(e->http_status == status, "http_status %d for %ld", e->http_status, status);
	FUZZ_CHECK(e->code == SVM_API_ERROR || e->code == SVM_TOO_LARGE || e->code == SVM_NOT_FOUND,
		   "code %s", svm_code_name(e->code));
	FUZZ_CHECK(status != 413 || e->code == SVM_TOO_LARGE, "413 is not TOO_LARGE");
	FUZZ_CHECK(!strncmp(e->message, prefix, strlen(prefix)), "message %s", e->message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	long status = ((data[0] << 8) | data[1]) % 1000;
	char *body = fuzz_strndup(data + 2, size - 2);
	size_t len = size - 2;
	bool ok = status >= 200 && status < 300;

	svm_error e;
	svm_error_clear(&e);
	json_t *json = NULL;
	int rc = svm_api_classify("PUT", "/drives/rootfs", status, body, len, &json, &e);
	FUZZ_CHECK((rc == 0) == ok, "status %ld classified %d", status, rc);
	if (!ok)
		check_error(&e, status, "PUT /drives/rootfs: ");
	json_t *want = len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	FUZZ_CHECK(!want == !json && (!want || json_equal(want, json)), "the body's JSON");
	json_decref(want);
	json_decref(json);
	/* the same without asking for the JSON */
	FUZZ_CHECK(svm_api_classify("GET", "/", status, body, len, NULL, &e) == rc, "rc");

	/* over the socket: statuses curl takes as a final answer */
	if ((data[1] & 3) == 0 && status >= 200 && status <= 599 && status != 204 &&
	    status != 304) {
		pthread_mutex_lock(&mu);
		free(answer);
		answer = malloc(len + 128);
		int h = snprintf(answer, 128, "HTTP/1.1 %ld Fuzz\r\nContent-Length: %zu\r\n\r\n",
				 status, len);
		memcpy(answer + h, body, len);
		answer_len = (size_t)h + len;
		pthread_mutex_unlock(&mu);
		svm_api_reply r;
		svm_error_clear(&e);
		int crc = svm_api_call(api, "GET", "/machine-config", NULL, &r, &e);
		FUZZ_CHECK(crc == rc, "over the socket %d, classified %d (%s)", crc, rc, e.message);
		FUZZ_CHECK(r.status == status, "reply status %ld for %ld", r.status, status);
		FUZZ_CHECK(r.text && !memcmp(r.text, body, strlen(r.text)), "reply text");
		if (crc < 0)
			check_error(&e, status, "GET /machine-config: ");
		svm_api_reply_clear(&r);
	}
	free(body);
	return 0;
}
