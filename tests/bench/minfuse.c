/*
 * minfuse.c - the reference of the `cat state` benchmark: a minimal libfuse3
 * low-level server with one constant 8-byte file, /state ("running\n"), served
 * as fast as libfuse allows: entry and attributes cached for a day, keep_cache
 * (after the first read the page cache answers), noflush (no FLUSH at close).
 * What is left per `cat` is the FUSE round trip of OPEN (and the RELEASE sent
 * after close, which nobody waits for).
 *
 * With -o api=SOCK it is also the floor of figure 11, a verb through any FUSE
 * file: /ctl, whose write of "pause", "resume" or "snapshot PATH" is the bare
 * request to the Firecracker API at SOCK (PATCH /vm, PUT /snapshot/create of
 * PATH.vmstate and PATH.mem), over one kept libcurl connection, answered when
 * the API has answered. Nothing else: no state kept, no attribute that changes,
 * no log read.
 *
 *   minfuse [-o mt] [-o api=SOCK] MOUNTPOINT   (foreground; fusermount3 -u ends it)
 *
 * -o mt serves with the multi-threaded loop (as smartvmfs does); the default is
 * the single-threaded loop.
 */
#define FUSE_USE_VERSION 312
#include <curl/curl.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char VALUE[] = "running\n";
#define FILE_INO 2
#define CTL_INO 3
#define FOREVER 86400.0

/* -o api: the one connection, used by one verb at a time */
static struct {
	CURL *c;
	pthread_mutex_t mu;
	struct curl_slist *headers;
} api = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino == CTL_INO) {
		st->st_mode = S_IFREG | 0200;
		st->st_nlink = 1;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = sizeof VALUE - 1;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino = parent != FUSE_ROOT_ID     ? 0
	                 : !strcmp(name, "state")    ? FILE_INO
	                 : !strcmp(name, "ctl") && api.c ? CTL_INO
	                                             : 0;
	if (!ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fuse_entry_param e = {.ino = ino, .attr_timeout = FOREVER, .entry_timeout = FOREVER};
	fill(ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	fill(ino, &st);
	fuse_reply_attr(req, &st, FOREVER);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO && ino != CTL_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->keep_cache = ino == FILE_INO;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	size_t len = sizeof VALUE - 1;
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, VALUE + off, len - (size_t)off < size ? len - (size_t)off : size);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p, (void)ud;
	return size * n;
}

/* The bare request of one verb; its HTTP status, or -1. */
static long verb_request(const char *verb)
{
	char body[1400];
	const char *method = "PATCH", *path = "/vm";
	size_t n = strcspn(verb, "\n");
	if (n == 5 && !strncmp(verb, "pause", 5)) {
		snprintf(body, sizeof body, "{\"state\":\"Paused\"}");
	} else if (n == 6 && !strncmp(verb, "resume", 6)) {
		snprintf(body, sizeof body, "{\"state\":\"Resumed\"}");
	} else if (n > 9 && n < 600 && !strncmp(verb, "snapshot ", 9)) {
		int plen = (int)(n - 9);
		snprintf(body, sizeof body,
		         "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"%.*s.vmstate\","
		         "\"mem_file_path\":\"%.*s.mem\"}",
		         plen, verb + 9, plen, verb + 9);
		method = "PUT";
		path = "/snapshot/create";
	} else {
		return -1;
	}
	char url[64];
	snprintf(url, sizeof url, "http://localhost%s", path);
	pthread_mutex_lock(&api.mu);
	curl_easy_setopt(api.c, CURLOPT_URL, url);
	curl_easy_setopt(api.c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(api.c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(api.c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	long status = -1;
	if (curl_easy_perform(api.c) == CURLE_OK)
		curl_easy_getinfo(api.c, CURLINFO_RESPONSE_CODE, &status);
	pthread_mutex_unlock(&api.mu);
	return status;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	(void)off, (void)fi;
	char verb[700];
	if (ino != CTL_INO || size >= sizeof verb) {
		fuse_reply_err(req, ino != CTL_INO ? EBADF : EINVAL);
		return;
	}
	memcpy(verb, buf, size);
	verb[size] = '\0';
	long st = verb_request(verb);
	if (st == 204)
		fuse_reply_write(req, size);
	else
		fuse_reply_err(req, st < 0 ? EINVAL : EIO);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char buf[512];
	size_t used = 0;
	const char *names[] = {".", "..", "state", "ctl"};
	fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, FILE_INO, CTL_INO};
	for (off_t i = off; i < (api.c ? 4 : 3); i++) {
		struct stat st;
		fill(inos[i], &st);
		size_t need = fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, i + 1);
		if (need > sizeof buf - used || used + need > size)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.readdir = op_readdir,
};

int main(int argc, char **argv)
{
	int mt = 0;
	char *mnt = NULL;
	const char *sock = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	fuse_opt_add_arg(&args, argv[0]);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "mt")) {
			mt = 1;
			i++;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strncmp(argv[i + 1], "api=", 4)) {
			sock = argv[++i] + 4;
		} else {
			mnt = argv[i];
		}
	}
	if (!mnt) {
		fprintf(stderr, "usage: minfuse [-o mt] [-o api=SOCK] MOUNTPOINT\n");
		return 2;
	}
	if (sock) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		api.c = curl_easy_init();
		api.headers = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"),
		                                "Expect:");
		if (!api.c || !api.headers)
			return 1;
		curl_easy_setopt(api.c, CURLOPT_UNIX_SOCKET_PATH, sock);
		curl_easy_setopt(api.c, CURLOPT_HTTPHEADER, api.headers);
		curl_easy_setopt(api.c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(api.c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(api.c, CURLOPT_TIMEOUT_MS, 5000L);
	}
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se)
		return 1;
	int rc = 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, mnt) == 0) {
			if (mt) {
				struct fuse_loop_config *cfg = fuse_loop_cfg_create();
				rc = fuse_session_loop_mt(se, cfg);
				fuse_loop_cfg_destroy(cfg);
			} else {
				rc = fuse_session_loop(se);
			}
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	if (api.c) {
		curl_easy_cleanup(api.c);
		curl_slist_free_all(api.headers);
	}
	fuse_opt_free_args(&args);
	return rc ? 1 : 0;
}
