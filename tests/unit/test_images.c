/*
 * test_images.c - Firecracker binaries and base-image bundles: the seed's
 * BaseImageManager and ImageManager tests in C, then what goes beyond them, all
 * against tests/images/fake_server.py on 127.0.0.1 (started here, killed at the
 * end): a CI bucket listing over several pages, artifacts, release archives with
 * and without published checksums, connections dropped mid-download.
 */
/* Test paths live under a short mkdtemp dir; a cut message or path would fail a
 * check, not pass one. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "images_int.h"
#include "internal.h"

extern char **environ;

static char work[64];
static char base[128];            /* http://127.0.0.1:PORT */
static char releases[160], bucket[160];
static pid_t server_pid;
static int server_stdin = -1; /* the server exits when this closes (even if we crash) */

/* ------------------------------------------------------------ helpers */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void put(const char *path, const char *data, size_t len)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	img_mkdir_p(dirname(dir), 0755);
	FILE *f = fopen(path, "we");
	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
}

static void puts_file(const char *path, const char *text)
{
	put(path, text, strlen(text));
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void sha_hex(const char *data, size_t len, char *hex)
{
	img_hasher *h = img_hasher_new();
	img_hasher_update(h, data, len);
	img_hasher_final(h, hex);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
	char cmd[PATH_MAX];
	int n = 0;
	snprintf(cmd, sizeof cmd, "%s", dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)) && strcmp(e->d_name, ".") &&
		    strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static long server_count(const char *path)
{
	char url[256], msg[256];
	snprintf(url, sizeof url, "%s/__stats", base);
	char *body = img_http_get(url, 1 << 20, NULL, NULL, msg, sizeof msg);
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	long n = (long)json_integer_value(json_object_get(j, path));
	json_decref(j);
	free(body);
	return n;
}

static const char *server_script(void)
{
	const char *env = getenv("SMARTVMFS_IMAGES_SERVER");
	if (env && *env)
		return env;
	static char path[PATH_MAX];
	/* __FILE__ is relative to the build root (…/tests/unit/test_images) or absolute */
	char exe[PATH_MAX] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char src[PATH_MAX];
	snprintf(src, sizeof src, "%s", __FILE__);
	if (src[0] == '/') {
		snprintf(path, sizeof path, "%s/../images/fake_server.py", dirname(src));
	} else {
		char root[PATH_MAX];
		snprintf(root, sizeof root, "%s", exe);
		char *r = dirname(dirname(dirname(root)));
		snprintf(path, sizeof path, "%s/%s", r, src);
		snprintf(src, sizeof src, "%s", path);
		snprintf(path, sizeof path, "%s/../images/fake_server.py", dirname(src));
	}
	return path;
}

static int start_server(void)
{
	int out[2], in[2];
	if (pipe(out) < 0 || pipe2(in, O_CLOEXEC) < 0)
		return -1;
	server_stdin = in[1];
	char root[128];
	snprintf(root, sizeof root, "%s/srv", work);
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char *argv[] = {(char *)py, (char *)server_script(), "--root", root, "--page-size", "4", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	int rc = posix_spawnp(&server_pid, py, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(in[0]);
	if (rc != 0) {
		close(out[0]);
		return -1;
	}
	char line[64] = "";
	FILE *f = fdopen(out[0], "r");
	if (!f || !fgets(line, sizeof line, f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	int port = 0;
	if (sscanf(line, "PORT %d", &port) != 1)
		return -1;
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	snprintf(releases, sizeof releases, "%s/releases", base);
	snprintf(bucket, sizeof bucket, "%s/bucket", base);
	return 0;
}

static void stop_server(void)
{
	if (server_stdin >= 0)
		close(server_stdin);
	server_stdin = -1;
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
		server_pid = 0;
	}
}

typedef struct setup {
	const char *sub, *arch, *manifest, *firecracker;
	unsigned max;
} setup;

static svm *make(setup o)
{
	char data[PATH_MAX], run[PATH_MAX];
	snprintf(data, sizeof data, "%s/%s", work, o.sub);
	snprintf(run, sizeof run, "%s/run-%s", work, o.sub);
	svm_options opt = {
		.data_dir = data,
		.runtime_dir = run,
		.arch = o.arch,
		.manifest = o.manifest,
		.firecracker = o.firecracker,
		.max_images = o.max,
		.releases_url = releases,
		.ci_bucket_url = bucket,
		.kill_timeout_ms = 500,
		.stop_timeout_ms = 500,
	};
	svm_error e;
	svm *s = svm_new(&opt, &e);
	if (!s)
		printf("# svm_new: %s\n", e.message);
	return s;
}

static uint64_t hashes(svm *s)
{
	pthread_mutex_lock(&s->images->mu);
	uint64_t n = s->images->hashes;
	pthread_mutex_unlock(&s->images->mu);
	return n;
}

/* A hosted manifest with path artifacts (the seed's test shape). */
static void hosted_manifest_n(const char *path, const char *id, const char *kpath,
			      const char *kdata, size_t klen, const char *rpath, const char *rdata)
{
	char ks[65], rs[65], text[4096];
	sha_hex(kdata, klen, ks);
	sha_hex(rdata, strlen(rdata), rs);
	put(kpath, kdata, klen);
	puts_file(rpath, rdata);
	snprintf(text, sizeof text,
		 "{\"schemaVersion\": 1, \"bundleId\": \"%s\", \"name\": \"SmartVM minimal test bundle\","
		 " \"arch\": \"x86_64\", \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"ext4\","
		 " \"rootfsIsReadOnly\": false, \"bootArgs\": \"console=ttyS0 reboot=k panic=1 pci=off\","
		 " \"kernel\": {\"path\": \"%s\", \"fileName\": \"vmlinux\", \"sha256\": \"%s\", \"sizeBytes\": %zu},"
		 " \"rootfs\": {\"path\": \"%s\", \"fileName\": \"rootfs.ext4\", \"sha256\": \"%s\", \"sizeBytes\": %zu}}\n",
		 id, kpath, ks, klen, rpath, rs, strlen(rdata));
	puts_file(path, text);
}

static void hosted_manifest(const char *path, const char *id, const char *kpath, const char *kdata,
			    const char *rpath, const char *rdata)
{
	hosted_manifest_n(path, id, kpath, kdata, strlen(kdata), rpath, rdata);
}

/* A hosted manifest with URL artifacts served from ROOT/files (kpre/rpre: files,
 * slow, drop, dropfirst). */
static void url_manifest(const char *path, const char *id, const char *kname, const char *kdata,
			 const char *kpre, const char *rname, const char *rdata, const char *rpre)
{
	char ks[65], rs[65], text[4096], f[PATH_MAX];
	sha_hex(kdata, strlen(kdata), ks);
	sha_hex(rdata, strlen(rdata), rs);
	snprintf(f, sizeof f, "%s/srv/files/%s", work, kname);
	puts_file(f, kdata);
	snprintf(f, sizeof f, "%s/srv/files/%s", work, rname);
	puts_file(f, rdata);
	snprintf(text, sizeof text,
		 "{\"schemaVersion\": 1, \"bundleId\": \"%s\", \"arch\": \"x86_64\","
		 " \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"squashfs\","
		 " \"kernel\": {\"url\": \"%s/%s/%s\", \"sha256\": \"%s\", \"sizeBytes\": %zu},"
		 " \"rootfs\": {\"url\": \"%s/%s/%s\", \"sha256\": \"%s\"}}\n",
		 id, base, kpre, kname, ks, strlen(kdata), base, rpre, rname, rs);
	puts_file(path, text);
}

/* ------------------------------------------------ the seed's BaseImageManager */

static void seed_defaults(void)
{
	svm_options o = {.runtime_dir = "/tmp/.smartvm-test-images-run"};
	svm_error e;
	svm *s = svm_new(&o, &e);
	CHECK(s && s->images, "SmartVM - instantiation with defaults has a base image manager");
	if (s) {
		CHECK_STR(s->images->cache_dir, "/tmp/.smartvm/base-images",
			  "BaseImageManager - instantiation with defaults: cache dir");
		CHECK_INT(s->images->max_images, 2, "BaseImageManager - default retention is 2");
		svm_free(s);
	}
	rmdir("/tmp/.smartvm-test-images-run");
}

static void seed_invalid_limit(void)
{
	unsigned v = 0;
	svm_error e;
	const char *bad[] = {"0", "-1", "abc", "1.5", "", " 2", "99999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[128];
		snprintf(what, sizeof what, "maxStoredBaseImages \"%s\" rejected with INVALID_BASE_IMAGE_CACHE_LIMIT", bad[i]);
		CHECK(images_parse_cache_limit(bad[i], &v, &e) < 0 &&
			      e.code == SVM_INVALID_BASE_IMAGE_CACHE_LIMIT, what);
	}
	CHECK(images_parse_cache_limit("3", &v, &e) == 0 && v == 3, "maxStoredBaseImages 3 accepted");
	svm_options o = {.runtime_dir = "/tmp/.smartvm-test-images-run2", .max_images = 3000000000u};
	svm *s = svm_new(&o, &e);
	CHECK(!s && e.code == SVM_INVALID_BASE_IMAGE_CACHE_LIMIT,
	      "BaseImageManager - rejects invalid maxStoredBaseImages (svm_new)");
	svm_free(s);
	rmdir("/tmp/.smartvm-test-images-run2");
}

static void fake_bundle(const char *cache, const char *id, const char *accessed)
{
	char path[PATH_MAX], text[2048];
	snprintf(path, sizeof path, "%s/%s/manifest.json", cache, id);
	snprintf(text, sizeof text,
		 "{\"preset\": \"lts\", \"arch\": \"x86_64\", \"ciVersion\": \"v1.7\","
		 " \"firecrackerVersion\": \"v1.7.0\", \"bundleId\": \"%s\", \"bundleDir\": \"%s/%s\","
		 " \"kernelImagePath\": \"%s/%s/vmlinux\", \"rootfsPath\": \"%s/%s/rootfs.ext4\","
		 " \"rootfsType\": \"ext4\", \"rootfsIsReadOnly\": false,"
		 " \"bootArgs\": \"console=ttyS0 reboot=k panic=1 pci=off\","
		 " \"source\": {\"bucketUrl\": \"https://s3.amazonaws.com/spec.ccfc.min\","
		 " \"kernelKey\": \"kernel\", \"rootfsKey\": \"rootfs\"},"
		 " \"createdAt\": \"%s\", \"lastAccessedAt\": \"%s\"}\n",
		 id, cache, id, cache, id, cache, id, accessed, accessed);
	puts_file(path, text);
}

static void seed_prune(void)
{
	svm *s = make((setup){.sub = "prune", .max = 2});
	if (!s)
		return;
	const char *cache = s->images->cache_dir;
	fake_bundle(cache, "old", "2024-01-01T00:00:00.000Z");
	fake_bundle(cache, "middle", "2024-01-02T00:00:00.000Z");
	fake_bundle(cache, "new", "2024-01-03T00:00:00.000Z");
	char **ev = NULL;
	img_prune(s->images, "new", &ev, NULL);
	CHECK(ev && ev[0] && !strcmp(ev[0], "old") && !ev[1], "pruneBaseImageCache('new') evicts exactly ['old']");
	svm_strv_free(ev);
	char *log = svm_log_text(s);
	int warnings = 0;
	for (char *p = log; p && (p = strstr(p, "Evicting")); p++)
		warnings++;
	CHECK_INT(warnings, 1, "one warning in the daemon log");
	CHECK(log && strstr(log, "warning") && strstr(log, "Evicting old"), "the warning says 'Evicting old'");
	free(log);
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/old", cache);
	CHECK(!exists(p), "old is gone");
	snprintf(p, sizeof p, "%s/middle", cache);
	CHECK(exists(p), "middle stays");
	snprintf(p, sizeof p, "%s/new", cache);
	CHECK(exists(p), "new stays");
	svm_free(s);
}

static void seed_hosted_copy(void)
{
	svm *s = make((setup){.sub = "hosted"});
	if (!s)
		return;
	char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX];
	snprintf(m, sizeof m, "%s/hosted-assets/manifest.json", work);
	snprintf(k, sizeof k, "%s/hosted-assets/vmlinux-test", work);
	snprintf(r, sizeof r, "%s/hosted-assets/rootfs-test.ext4", work);
	hosted_manifest(m, "smartvm-minimal-test", k, "fake-kernel", r, "fake-rootfs");
	svm_error e;
	char *id = NULL;
	int rc = images_fetch_manifest(s->images, m, false, &id, &e);
	CHECK(rc == 0, "ensureBaseImage({manifestPath}) copies hosted manifest artifacts");
	if (rc < 0)
		printf("# %s\n", e.message);
	json_t *b = id ? img_read_bundle(s->images, id) : NULL;
	char ks[65], rs[65];
	sha_hex("fake-kernel", 11, ks);
	sha_hex("fake-rootfs", 11, rs);
	CHECK_STR(json_string_value(json_object_get(b, "preset")), "hosted", "bundle.preset");
	CHECK_STR(json_string_value(json_object_get(b, "bundleId")), "smartvm-minimal-test", "bundle.bundleId");
	CHECK_STR(json_string_value(json_object_get(b, "firecrackerVersion")), "v1.15.1", "bundle.firecrackerVersion");
	json_t *src = json_object_get(b, "source");
	CHECK_STR(json_string_value(json_object_get(src, "type")), "hosted-manifest", "bundle.source.type");
	CHECK_STR(json_string_value(json_object_get(src, "manifestPath")), m, "bundle.source.manifestPath");
	CHECK(exists(json_string_value(json_object_get(b, "kernelImagePath"))), "kernel file exists");
	CHECK(exists(json_string_value(json_object_get(b, "rootfsPath"))), "rootfs file exists");
	json_t *sums = json_object_get(b, "checksums");
	CHECK_STR(json_string_value(json_object_get(sums, "kernelSha256")), ks, "checksums.kernelSha256");
	CHECK_STR(json_string_value(json_object_get(sums, "rootfsSha256")), rs, "checksums.rootfsSha256");
	json_decref(b);
	free(id);
	svm_free(s);
}

static void seed_corrupted(void)
{
	svm *s = make((setup){.sub = "corrupt"});
	if (!s)
		return;
	char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX];
	snprintf(m, sizeof m, "%s/corrupt-assets/manifest.json", work);
	snprintf(k, sizeof k, "%s/corrupt-assets/vmlinux-test", work);
	snprintf(r, sizeof r, "%s/corrupt-assets/rootfs-test.ext4", work);
	hosted_manifest(m, "smartvm-corruption-test", k, "fresh-kernel", r, "fresh-rootfs");
	svm_error e;
	char *id = NULL;
	images_fetch_manifest(s->images, m, false, &id, &e);
	json_t *b = id ? img_read_bundle(s->images, id) : NULL;
	const char *kp = json_string_value(json_object_get(b, "kernelImagePath"));
	if (kp)
		puts_file(kp, "tampered-kernel");
	free(id);
	id = NULL;
	int rc = images_fetch_manifest(s->images, m, false, &id, &e);
	char *text = kp ? slurp(kp) : NULL;
	CHECK(rc == 0 && text && !strcmp(text, "fresh-kernel"),
	      "ensureBaseImage() redownloads corrupted cached artifacts");
	char ks[65];
	sha_hex("fresh-kernel", 12, ks);
	json_t *b2 = id ? img_read_bundle(s->images, id) : NULL;
	CHECK_STR(json_string_value(json_object_get(json_object_get(b2, "checksums"), "kernelSha256")), ks,
		  "the new bundle's kernel checksum");
	free(text);
	free(id);
	json_decref(b);
	json_decref(b2);
	svm_free(s);
}

static int manifest_code(svm *s, const char *name, const char *text)
{
	char m[PATH_MAX];
	snprintf(m, sizeof m, "%s/bad/%s.json", work, name);
	puts_file(m, text);
	svm_error e = {0};
	char *id = NULL;
	int rc = images_fetch_manifest(s->images, m, false, &id, &e);
	free(id);
	if (rc == 0)
		return SVM_OK;
	return e.code;
}

/* The seed's three rejection tests, then every rule. */
static void bad_manifests(void)
{
	svm *s = make((setup){.sub = "bad", .arch = "x86_64"});
	if (!s)
		return;
	char k[PATH_MAX], r[PATH_MAX];
	snprintf(k, sizeof k, "%s/bad/vmlinux", work);
	snprintf(r, sizeof r, "%s/bad/rootfs.ext4", work);
	puts_file(k, "k");
	puts_file(r, "r");
	static const struct {
		const char *name, *what, *fields, *kernel, *rootfs;
	} cases[] = {
		{"arch", "rejects hosted manifest arch mismatch", "\"arch\": \"aarch64\"", NULL, NULL},
		{"traversal", "rejects hosted manifest fileName traversal", NULL,
		 "{\"path\": \"K\", \"fileName\": \"../vmlinux\"}", NULL},
		{"urlnosha", "rejects hosted URL artifacts without sha256", NULL,
		 "{\"url\": \"https://example.com/vmlinux\"}", NULL},
		{"schema", "schemaVersion 2", "\"schemaVersion\": 2", NULL, NULL},
		{"schemastr", "schemaVersion \"1\"", "\"schemaVersion\": \"1\"", NULL, NULL},
		{"noid", "bundleId missing", "\"bundleId\": null", NULL, NULL},
		{"idslash", "bundleId with a slash", "\"bundleId\": \"a/b\"", NULL, NULL},
		{"iddots", "bundleId ..", "\"bundleId\": \"..\"", NULL, NULL},
		{"iddot", "bundleId starting with a dot", "\"bundleId\": \".hidden\"", NULL, NULL},
		{"idlatest", "bundleId latest (reserved)", "\"bundleId\": \"latest\"", NULL, NULL},
		{"idctl", "bundleId ctl (reserved)", "\"bundleId\": \"ctl\"", NULL, NULL},
		{"iderror", "bundleId error (reserved: /images/error)", "\"bundleId\": \"error\"", NULL, NULL},
		{"idkernels", "bundleId kernels (reserved: /images/kernels)", "\"bundleId\": \"kernels\"", NULL, NULL},
		{"ver", "firecrackerVersion 1.15.1", "\"firecrackerVersion\": \"1.15.1\"", NULL, NULL},
		{"ver2", "firecrackerVersion v1.15", "\"firecrackerVersion\": \"v1.15\"", NULL, NULL},
		{"type", "rootfsType xfs", "\"rootfsType\": \"xfs\"", NULL, NULL},
		{"nokernel", "kernel missing", "\"kernel\": null", NULL, NULL},
		{"noway", "artifact without url or path", NULL, "{\"fileName\": \"vmlinux\"}", NULL},
		{"both", "artifact with url and path", NULL,
		 "{\"url\": \"https://e.com/k\", \"path\": \"K\", \"sha256\": "
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", NULL},
		{"shabad", "sha256 not 64 hex", NULL, "{\"path\": \"K\", \"sha256\": \"abc\"}", NULL},
		{"sizeneg", "sizeBytes -1", NULL, "{\"path\": \"K\", \"sizeBytes\": -1}", NULL},
		{"sizereal", "sizeBytes 1.5", NULL, "{\"path\": \"K\", \"sizeBytes\": 1.5}", NULL},
		{"fnslash", "fileName a/b", NULL, "{\"path\": \"K\", \"fileName\": \"a/b\"}", NULL},
		{"fndot", "fileName ..", NULL, "{\"path\": \"K\", \"fileName\": \"..\"}", NULL},
		{"fnmanifest", "fileName manifest.json", NULL,
		 "{\"path\": \"K\", \"fileName\": \"manifest.json\"}", NULL},
		{"fnsame", "kernel and rootfs with one fileName", NULL,
		 "{\"path\": \"K\", \"fileName\": \"same\"}", "{\"path\": \"R\", \"fileName\": \"same\"}"},
		{"ftp", "url not http(s)", NULL,
		 "{\"url\": \"ftp://e.com/k\", \"sha256\": "
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char kernel[1024], rootfs[1024], text[4096], *p;
		snprintf(kernel, sizeof kernel, "%s", cases[i].kernel ? cases[i].kernel : "{\"path\": \"K\"}");
		snprintf(rootfs, sizeof rootfs, "%s", cases[i].rootfs ? cases[i].rootfs : "{\"path\": \"R\"}");
		/* K and R stand for the real paths */
		char kk[2048], rr[2048];
		kk[0] = rr[0] = '\0';
		for (p = kernel; *p; p++) {
			if (*p == 'K' && p[1] == '"' && p[-1] == '"')
				strcat(kk, k);
			else
				kk[strlen(kk) + 1] = '\0', kk[strlen(kk)] = *p;
		}
		for (p = rootfs; *p; p++) {
			if (*p == 'R' && p[1] == '"' && p[-1] == '"')
				strcat(rr, r);
			else
				rr[strlen(rr) + 1] = '\0', rr[strlen(rr)] = *p;
		}
		/* a later duplicate key would be a syntax error: the override goes first
		 * and the defaults skip what it sets */
		const char *f = cases[i].fields ? cases[i].fields : "";
		snprintf(text, sizeof text, "{%s%s%s%s%s%s%s \"kernel\": %s, \"rootfs\": %s}", f, *f ? "," : "",
			 strstr(f, "schemaVersion") ? "" : " \"schemaVersion\": 1,",
			 strstr(f, "bundleId") ? "" : " \"bundleId\": \"bad-test\",",
			 strstr(f, "\"arch\"") ? "" : " \"arch\": \"x86_64\",",
			 strstr(f, "firecrackerVersion") ? "" : " \"firecrackerVersion\": \"v1.15.1\",",
			 strstr(f, "rootfsType") ? "" : " \"rootfsType\": \"ext4\",", kk, rr);
		if (strstr(f, "\"kernel\""))
			snprintf(text, sizeof text,
				 "{%s, \"schemaVersion\": 1, \"bundleId\": \"bad-test\", \"arch\": \"x86_64\","
				 " \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"ext4\", \"rootfs\": %s}",
				 f, rr);
		int code = manifest_code(s, cases[i].name, text);
		char what[256];
		snprintf(what, sizeof what, "%s: INVALID_BASE_IMAGE_MANIFEST", cases[i].what);
		CHECK_STR(svm_code_name(code), "INVALID_BASE_IMAGE_MANIFEST", what);
	}
	CHECK_INT(count_prefixed(s->images->cache_dir, "bad-test"), 0, "no bundle left by a rejected manifest");
	CHECK_STR(svm_code_name(manifest_code(s, "syntax", "{\"schemaVersion\": 1,")),
		  "BASE_IMAGE_MANIFEST_FAILED", "a manifest that is not JSON: BASE_IMAGE_MANIFEST_FAILED");
	svm_error e;
	char missing[PATH_MAX];
	snprintf(missing, sizeof missing, "%s/bad/nope.json", work);
	CHECK(images_fetch_manifest(s->images, missing, false, NULL, &e) < 0 &&
		      e.code == SVM_BASE_IMAGE_MANIFEST_FAILED,
	      "a missing manifest file: BASE_IMAGE_MANIFEST_FAILED");
	char url[256];
	snprintf(url, sizeof url, "%s/files/nope.json", base);
	CHECK(images_fetch_manifest(s->images, url, false, NULL, &e) < 0 &&
		      e.code == SVM_BASE_IMAGE_MANIFEST_FAILED && strstr(e.message, "404"),
	      "a manifest URL answering 404: BASE_IMAGE_MANIFEST_FAILED naming the status");
	/* a manifest from a URL must not name host paths */
	char remote[PATH_MAX], text[2048];
	snprintf(text, sizeof text,
		 "{\"schemaVersion\": 1, \"bundleId\": \"remote-paths\", \"arch\": \"x86_64\","
		 " \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"ext4\","
		 " \"kernel\": {\"path\": \"/etc/passwd\"}, \"rootfs\": {\"path\": \"/etc/shadow\"}}");
	snprintf(remote, sizeof remote, "%s/srv/files/remote-paths.json", work);
	puts_file(remote, text);
	snprintf(url, sizeof url, "%s/files/remote-paths.json", base);
	CHECK(images_fetch_manifest(s->images, url, false, NULL, &e) < 0 &&
		      e.code == SVM_INVALID_BASE_IMAGE_MANIFEST,
	      "a manifest fetched from a URL naming host paths: INVALID_BASE_IMAGE_MANIFEST");
	CHECK(images_fetch(s->images, "hosted", false, NULL, &e) < 0 &&
		      e.code == SVM_BASE_IMAGE_MANIFEST_FAILED,
	      "hosted preset should require a manifest: BASE_IMAGE_MANIFEST_FAILED");
	svm_free(s);
}

/* ------------------------------------------------ presets against the server */

static int events_status, events_preset, events_added;
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static void on_images_event(void *ud, images_event ev, const char *id)
{
	(void)ud;
	(void)id;
	pthread_mutex_lock(&ev_mu);
	events_status += ev == IMAGES_EV_STATUS;
	events_preset += ev == IMAGES_EV_PRESET;
	events_added += ev == IMAGES_EV_ADDED;
	pthread_mutex_unlock(&ev_mu);
}

static void presets(void)
{
	svm *s = make((setup){.sub = "presets", .max = 5});
	if (!s)
		return;
	svm_images *im = s->images;
	images_set_hook(im, on_images_event, NULL);
	char v[64];
	svm_error e;
	CHECK(img_latest_fc_version(im, v, sizeof v, &e) == 0 && !strcmp(v, "v1.15.1"),
	      "ImageManager.getLatestVersion(): the releases/latest redirect says v1.15.1");
	long pages_before = server_count("/bucket/");
	char *id = NULL;
	int rc = images_fetch(im, "latest", false, &id, &e);
	CHECK(rc == 0, "fetch latest");
	if (rc < 0)
		printf("# %s\n", e.message);
	CHECK_STR(id, "latest-v1.15-x86_64-vmlinux-6.1.141-ubuntu-24.04.squashfs",
		  "latest: newest non-debug kernel, newest squashfs rootfs");
	CHECK(server_count("/bucket/") - pages_before >= 3, "the listing was followed across its pages");
	images_bundle b;
	CHECK(id && images_bundle_info(im, id, &b, &e) == 0, "bundle info of latest");
	CHECK_STR(b.boot_args, "console=ttyS0 reboot=k panic=1 pci=off ro rootfstype=squashfs",
		  "latest: the seed's boot args for squashfs");
	CHECK_STR(b.rootfs_type, "squashfs", "latest: rootfstype squashfs");
	CHECK(b.rootfs_read_only, "latest: squashfs is read-only");
	CHECK_STR(b.fc_version, "v1.15.1", "latest: firecracker v1.15.1");
	CHECK(b.manifest_json && strstr(b.manifest_json, "\"firecracker-ci\"") &&
		      strstr(b.manifest_json, "\"kernelKey\": \"firecracker-ci/v1.15/x86_64/vmlinux-6.1.141\""),
	      "manifest.json records the CI source keys");
	char *st = id ? images_status(im, id, &e) : NULL;
	CHECK_STR(st, "ready\n", "status: ready");
	free(st);
	images_bundle_clear(&b);
	char *t = images_preset_target(im, "latest");
	CHECK_STR(t, id, "latest remembers its bundle");
	free(t);
	pthread_mutex_lock(&ev_mu);
	CHECK(events_status >= 2 && events_preset >= 1 && events_added >= 1,
	      "the hook saw status, added and preset events");
	pthread_mutex_unlock(&ev_mu);
	char **list = images_list(im, NULL);
	CHECK(list && list[0] && id && !strcmp(list[0], id) && !list[1], "images_list: the one bundle");
	svm_strv_free(list);

	free(id);
	id = NULL;
	rc = images_fetch(im, "lts", false, &id, &e);
	CHECK(rc == 0, "fetch lts");
	if (rc < 0)
		printf("# %s\n", e.message);
	CHECK_STR(id, "lts-v1.7-x86_64-vmlinux-5.10.100-ubuntu-22.04.ext4",
		  "lts: v1.7 bucket, ext4 when there is no squashfs");
	if (id && images_bundle_info(im, id, &b, &e) == 0) {
		CHECK_STR(b.boot_args, "console=ttyS0 reboot=k panic=1 pci=off", "lts: ext4 boot args");
		CHECK(!b.rootfs_read_only, "lts: ext4 is writable");
		CHECK_STR(b.fc_version, "v1.7.0", "lts: firecracker v1.7.0");
		images_bundle_clear(&b);
	}
	free(id);
	svm_free(s);

	/* aarch64 */
	s = make((setup){.sub = "arm", .arch = "aarch64"});
	if (!s)
		return;
	id = NULL;
	rc = images_fetch(s->images, "latest", false, &id, &e);
	CHECK(rc == 0 && id && strstr(id, "aarch64"), "fetch latest for aarch64");
	if (rc == 0 && images_bundle_info(s->images, id, &b, &e) == 0) {
		CHECK_STR(b.boot_args, "keep_bootcon console=ttyS0 reboot=k panic=1 pci=off ro rootfstype=squashfs",
			  "aarch64 boot args start with keep_bootcon");
		images_bundle_clear(&b);
	}
	free(id);
	svm_free(s);
}

/* ------------------------------------------------ cache hits, tamper, verify */

static void cache_hits(void)
{
	svm *s = make((setup){.sub = "hits", .max = 5});
	if (!s)
		return;
	svm_images *im = s->images;
	svm_error e;
	/* a 1 GiB sparse rootfs next to a small kernel */
	char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX], text[2048], ks[65], rs[65];
	snprintf(k, sizeof k, "%s/big/vmlinux", work);
	snprintf(r, sizeof r, "%s/big/rootfs.ext4", work);
	snprintf(m, sizeof m, "%s/big/manifest.json", work);
	puts_file(k, "big-kernel");
	int fd = open(r, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	const off_t gib = 1024LL * 1024 * 1024;
	CHECK(fd >= 0 && ftruncate(fd, gib) == 0 && pwrite(fd, "data", 4, gib / 2) == 4, "a 1 GiB sparse artifact");
	if (fd >= 0)
		close(fd);
	img_sha256_file(NULL, k, ks);
	double t0 = now_ms();
	img_sha256_file(NULL, r, rs);
	double hash_ms = now_ms() - t0;
	snprintf(text, sizeof text,
		 "{\"schemaVersion\": 1, \"bundleId\": \"big\", \"arch\": \"x86_64\","
		 " \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"ext4\","
		 " \"kernel\": {\"path\": \"%s\", \"sha256\": \"%s\"},"
		 " \"rootfs\": {\"path\": \"%s\", \"sha256\": \"%s\", \"sizeBytes\": %lld}}",
		 k, ks, r, rs, (long long)gib);
	puts_file(m, text);
	t0 = now_ms();
	int rc = images_fetch_manifest(im, m, false, NULL, &e);
	double fetch_ms = now_ms() - t0;
	CHECK(rc == 0, "fetch a bundle with a 1 GiB sparse rootfs");
	if (rc < 0)
		printf("# %s\n", e.message);
	char cached[PATH_MAX];
	snprintf(cached, sizeof cached, "%s/big/rootfs.ext4", im->cache_dir);
	struct stat st;
	CHECK(stat(cached, &st) == 0 && st.st_size == gib && st.st_blocks * 512 < 16 * 1024 * 1024,
	      "the cached copy stays sparse");
	uint64_t h0 = hashes(s);
	double best = 1e9;
	for (int i = 0; i < 5; i++) {
		t0 = now_ms();
		rc = images_fetch_manifest(im, m, false, NULL, &e);
		double ms = now_ms() - t0;
		if (ms < best)
			best = ms;
	}
	CHECK(rc == 0 && hashes(s) == h0, "cache hits re-hash nothing (stamps unchanged)");
	printf("# figures: SHA-256 of the 1 GiB sparse file %.1f ms; first fetch (sparse copy + hash) %.1f ms; "
	       "cache hit %.3f ms\n", hash_ms, fetch_ms, best);
	CHECK(best < 5.0, "a cache hit of a 1 GiB bundle takes under 5 ms");
	json_t *cfg = json_pack("{s:s}", "image", "big");
	char *ver = NULL;
	t0 = now_ms();
	char *held = NULL;
	rc = images_apply(im, cfg, &ver, &held, &e);
	double apply_ms = now_ms() - t0;
	printf("# figures: images_apply on a cached 1 GiB bundle %.3f ms\n", apply_ms);
	CHECK(rc == 0 && hashes(s) == h0, "images_apply of a cached bundle re-hashes nothing");
	CHECK(held && !strcmp(held, "big"), "images_apply holds the bundle it gave");
	CHECK(images_evict(im, "big", &e) < 0 && e.code == SVM_INVALID_STATE,
	      "a held bundle is not evicted");
	images_release(im, held);
	free(held);
	json_decref(cfg);
	free(ver);

	/* verify: an explicit full re-hash of both */
	rc = images_verify(im, "big", &e);
	CHECK(rc == 0 && hashes(s) == h0 + 2, "verify ID re-hashes both artifacts");

	/* tamper the kernel, same size, mtime put back: the ctime still tells */
	char ck[PATH_MAX];
	snprintf(ck, sizeof ck, "%s/big/vmlinux", im->cache_dir);
	struct stat before;
	stat(ck, &before);
	puts_file(ck, "BIG-KERNEL");
	struct timespec times[2] = {before.st_atim, before.st_mtim};
	utimensat(AT_FDCWD, ck, times, 0);
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	char *kt = slurp(ck);
	CHECK(rc == 0 && kt && !strcmp(kt, "big-kernel"),
	      "a tampered artifact (same size, mtime restored) is detected and fetched again");
	free(kt);
	char *stt = images_status(im, "big", &e);
	CHECK_STR(stt, "ready\n", "status ready after the repair");
	free(stt);
	/* a change that keeps the bytes: re-hashed once, then hits are cheap again */
	chmod(ck, 0600);
	stt = images_status(im, "big", &e);
	CHECK_STR(stt, "changed\n", "status says changed when a stamp moved");
	free(stt);
	uint64_t h1 = hashes(s);
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc == 0 && hashes(s) == h1 + 1, "a moved stamp costs one re-hash of that artifact");
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc == 0 && hashes(s) == h1 + 1, "and the next hit none");
	/* verify of a damaged bundle repairs it */
	snprintf(cached, sizeof cached, "%s/big/rootfs.ext4", im->cache_dir);
	fd = open(cached, O_WRONLY);
	if (fd >= 0) {
		(void)!pwrite(fd, "evil", 4, gib / 2);
		close(fd);
	}
	rc = images_verify(im, "big", &e);
	char buf[5] = "";
	fd = open(cached, O_RDONLY);
	if (fd >= 0) {
		(void)!pread(fd, buf, 4, gib / 2);
		close(fd);
	}
	CHECK(rc == 0 && !strcmp(buf, "data"), "verify repairs a damaged rootfs");
	unlink(r);
	svm_free(s);
}

/* ------------------------------------------------ retention, evict, in use */

static void retention(void)
{
	svm *s = make((setup){.sub = "ret", .max = 2});
	if (!s)
		return;
	svm_images *im = s->images;
	svm_error e;
	const char *ids[3] = {"ret-a", "ret-b", "ret-c"};
	for (int i = 0; i < 3; i++) {
		char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX], kd[32], rd[32];
		snprintf(m, sizeof m, "%s/ret/%s.json", work, ids[i]);
		snprintf(k, sizeof k, "%s/ret/%s-k", work, ids[i]);
		snprintf(r, sizeof r, "%s/ret/%s-r", work, ids[i]);
		snprintf(kd, sizeof kd, "kernel %d", i);
		snprintf(rd, sizeof rd, "rootfs %d", i);
		hosted_manifest(m, ids[i], k, kd, r, rd);
		CHECK(images_fetch_manifest(im, m, false, NULL, &e) == 0, "fetch a bundle for retention");
		usleep(2000); /* distinct access times */
	}
	char **list = images_list(im, NULL);
	CHECK(list && list[0] && list[1] && !list[2] && !strcmp(list[0], "ret-b") && !strcmp(list[1], "ret-c"),
	      "past the limit of 2 the least recently used (ret-a) was evicted");
	svm_strv_free(list);
	char *log = svm_log_text(s);
	CHECK(log && strstr(log, "warning: base image cache stores at most 2 bundle(s). Evicting ret-a"),
	      "the eviction is a warning in the daemon's log");
	free(log);

	/* a bundle in use is neither evicted nor pruned */
	images_hold(im, "ret-b");
	CHECK(images_evict(im, "ret-b", &e) < 0 && e.code == SVM_INVALID_STATE &&
		      svm_code_errno(e.code) == EBUSY,
	      "evict of a bundle in use: INVALID_STATE (EBUSY)");
	char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX];
	snprintf(m, sizeof m, "%s/ret/ret-d.json", work);
	snprintf(k, sizeof k, "%s/ret/ret-d-k", work);
	snprintf(r, sizeof r, "%s/ret/ret-d-r", work);
	hosted_manifest(m, "ret-d", k, "kd", r, "rd");
	usleep(2000);
	CHECK(images_fetch_manifest(im, m, false, NULL, &e) == 0, "fetch ret-d");
	list = images_list(im, NULL);
	bool has_b = false;
	for (size_t i = 0; list && list[i]; i++)
		has_b |= !strcmp(list[i], "ret-b");
	CHECK(has_b, "the held bundle survived the prune");
	svm_strv_free(list);
	images_release(im, "ret-b");
	char **ev = NULL;
	CHECK(images_prune(im, &ev, &e) == 0 && ev && ev[0], "prune once released evicts past the limit");
	svm_strv_free(ev);
	CHECK(images_evict(im, "ret-d", &e) == 0, "evict ret-d");
	CHECK(images_evict(im, "ret-d", &e) < 0 && e.code == SVM_NOT_FOUND, "evict again: NOT_FOUND");
	CHECK(images_evict(im, "../x", &e) < 0 && e.code == SVM_INVALID_ARGUMENT, "evict ../x: INVALID_ARGUMENT");
	svm_free(s);
}

/* A VM started with "image" holds its bundle while it runs (emulator). */
static void vm_holds_bundle(void)
{
	const char *emu = getenv("SMARTVMFS_EMULATOR");
	if (!emu || access(emu, X_OK) < 0) {
		check_skip("a running VM holds its bundle", "SMARTVMFS_EMULATOR is not set");
		return;
	}
	svm *s = make((setup){.sub = "vm", .firecracker = emu, .max = 2});
	if (!s)
		return;
	svm_error e;
	char m[PATH_MAX], k[PATH_MAX], r[PATH_MAX];
	snprintf(m, sizeof m, "%s/vmb/m.json", work);
	snprintf(k, sizeof k, "%s/vmb/k", work);
	snprintf(r, sizeof r, "%s/vmb/r", work);
	/* the emulator, as Firecracker, wants an ELF kernel */
	static const char elf[64] = "\x7f" "ELF\x02\x01\x01";
	hosted_manifest_n(m, "vm-bundle", k, elf, sizeof elf, r, "rootfs");
	CHECK(images_fetch_manifest(s->images, m, false, NULL, &e) == 0, "fetch vm-bundle");
	svm_vm *vm = svm_create_vm(s, "img", &e);
	const char *cfg = "{\"image\": \"vm-bundle\", \"machineConfig\": {\"vcpuCount\": 1, \"memSizeMib\": 128}}";
	CHECK(vm && svm_vm_set_config_json(vm, cfg, strlen(cfg), &e) == 0, "config with \"image\"");
	svm_request start = {.verb = SVM_V_START};
	int rc = vm ? svm_vm_do(vm, &start, &e) : -1;
	CHECK(rc == 0, "a VM starts from a bundle (kernel, rootfs and boot args from it)");
	if (rc < 0)
		printf("# %s\n", e.message);
	CHECK(images_evict(s->images, "vm-bundle", &e) < 0 && e.code == SVM_INVALID_STATE,
	      "evict of the running VM's bundle: INVALID_STATE");
	svm_request kill = {.verb = SVM_V_KILL};
	if (vm && rc == 0)
		svm_vm_do(vm, &kill, &e);
	CHECK(images_evict(s->images, "vm-bundle", &e) == 0, "evict once the VM stopped");
	if (vm)
		svm_vm_unref(vm);
	svm_free(s);
}

/* ------------------------------------------------ failures, single flight */

static void dropped(void)
{
	svm *s = make((setup){.sub = "drop", .max = 5});
	if (!s)
		return;
	svm_images *im = s->images;
	svm_error e;
	static char big[200000];
	memset(big, 'x', sizeof big - 1);
	char m[PATH_MAX];
	snprintf(m, sizeof m, "%s/drop/m.json", work);
	url_manifest(m, "dropped", "dk", "kernel", "files", "dr", big, "drop");
	int rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc < 0 && e.code == SVM_BASE_IMAGE_PREPARE_FAILED && strstr(e.message, "download of") &&
		      strstr(e.message, "failed after"),
	      "the server hanging up mid-download: BASE_IMAGE_PREPARE_FAILED saying the download failed");
	printf("# %s\n", e.message);
	CHECK_INT(count_prefixed(im->cache_dir, "dropped"), 0, "no bundle left behind");
	CHECK_INT(count_prefixed(im->cache_dir, ".dropped"), 0, "no staging dir left behind");
	char *st = images_status(im, "dropped", &e);
	CHECK(!st && e.code == SVM_NOT_FOUND, "no status for a failed bundle");
	free(st);
	url_manifest(m, "dropped", "dk", "kernel", "files", "dr2", big, "dropfirst");
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc < 0, "dropfirst: the first attempt fails");
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc == 0, "the retry succeeds");

	/* import with a dropped connection */
	char url[256], path[PATH_MAX];
	snprintf(url, sizeof url, "%s/drop/dr", base);
	char *p = images_import(im, "kernel", url, "k-dropped", &e);
	CHECK(!p && e.code == SVM_DOWNLOAD_FAILED, "import: a dropped download is DOWNLOAD_FAILED");
	free(p);
	snprintf(path, sizeof path, "%s/drop/kernels", work);
	CHECK_INT(count_prefixed(path, ""), 0, "import left nothing in kernels/");
	snprintf(url, sizeof url, "%s/files/missing", base);
	p = images_import(im, "rootfs", url, "r404", &e);
	CHECK(!p && e.code == SVM_DOWNLOAD_FAILED && strstr(e.message, "HTTP 404"),
	      "import of a 404: DOWNLOAD_FAILED naming the status");
	free(p);

	/* a wrong sha256 in the manifest */
	char text[2048], f[PATH_MAX];
	snprintf(f, sizeof f, "%s/srv/files/shak", work);
	puts_file(f, "abc");
	snprintf(text, sizeof text,
		 "{\"schemaVersion\": 1, \"bundleId\": \"badsha\", \"arch\": \"x86_64\","
		 " \"firecrackerVersion\": \"v1.15.1\", \"rootfsType\": \"ext4\","
		 " \"kernel\": {\"url\": \"%s/files/shak\", \"sha256\": \"%064d\"},"
		 " \"rootfs\": {\"url\": \"%s/files/shak\", \"fileName\": \"r\", \"sha256\": \"%064d\"}}",
		 base, 0, base, 0);
	puts_file(m, text);
	rc = images_fetch_manifest(im, m, false, NULL, &e);
	CHECK(rc < 0 && e.code == SVM_BASE_IMAGE_PREPARE_FAILED && strstr(e.message, "SHA256 mismatch"),
	      "a SHA-256 mismatch: BASE_IMAGE_PREPARE_FAILED");
	CHECK_INT(count_prefixed(im->cache_dir, "badsha") + count_prefixed(im->cache_dir, ".badsha.p"), 0,
		  "nothing left of it");
	svm_free(s);
}

struct fetch_arg {
	svm_images *im;
	const char *manifest;
	int rc;
	char *id;
};

static void *fetch_thread(void *p)
{
	struct fetch_arg *a = p;
	svm_error e;
	a->rc = images_fetch_manifest(a->im, a->manifest, false, &a->id, &e);
	return NULL;
}

static void single_flight(void)
{
	svm *s = make((setup){.sub = "flight", .max = 5});
	if (!s)
		return;
	static char data[400000];
	memset(data, 'y', sizeof data - 1);
	char m[PATH_MAX];
	snprintf(m, sizeof m, "%s/flight/m.json", work);
	url_manifest(m, "flight", "fk", data, "slow", "fr", "rootfs", "files");
	struct fetch_arg a = {s->images, m, -1, NULL}, b = {s->images, m, -1, NULL};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, fetch_thread, &a);
	/* the second one starts while the first is downloading */
	char *st = NULL;
	for (int i = 0; i < 200; i++) {
		st = images_status(s->images, "flight", NULL);
		if (st && strncmp(st, "kernel ", 7) == 0)
			break;
		free(st);
		st = NULL;
		usleep(5000);
	}
	CHECK(st != NULL, "status shows progress while downloading");
	if (st)
		printf("# status while downloading: %.*s\n", (int)strcspn(st, "\n"), st);
	free(st);
	pthread_create(&tb, NULL, fetch_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.rc == 0 && b.rc == 0 && a.id && b.id && !strcmp(a.id, b.id), "two concurrent fetches both succeed");
	CHECK_INT(server_count("/slow/fk"), 1, "and the artifact was downloaded once");
	free(a.id);
	free(b.id);
	svm_free(s);
}

/* ------------------------------------------------ Firecracker binaries */

static void binaries(void)
{
	svm *s = make((setup){.sub = "fc"});
	if (!s)
		return;
	svm_images *im = s->images;
	svm_error e;
	char *v = images_cached_fc_version(im);
	CHECK(v == NULL, "no cached version yet (answered without the network)");
	free(v);
	char *p = images_firecracker(im, NULL, &e);
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/fc/bin/v1.15.1/firecracker", work);
	CHECK_STR(p, want, "no version asked: the latest release, at bin/VERSION/firecracker");
	if (!p)
		printf("# %s\n", e.message);
	struct stat st;
	CHECK(p && stat(p, &st) == 0 && (st.st_mode & 07777) == 0755 && st.st_uid == getuid(),
	      "firecracker mode 0755, owned by us (not the archive's owner)");
	char *txt = p ? slurp(p) : NULL;
	CHECK(txt && strstr(txt, "echo Firecracker v1.15.1"), "firecracker is the archive's member");
	free(txt);
	snprintf(want, sizeof want, "%s/fc/bin/v1.15.1/jailer", work);
	CHECK(stat(want, &st) == 0 && (st.st_mode & 07777) == 0755, "jailer beside it, mode 0755");
	snprintf(want, sizeof want, "%s/fc/bin/v1.15.1", work);
	CHECK_INT(count_prefixed(want, ""), 2, "only the two binaries were unpacked");
	snprintf(want, sizeof want, "%s/fc/escaped-from-archive", work);
	CHECK(!exists(want), "a member climbing out of the archive never reached the disk");
	snprintf(want, sizeof want, "%s/fc/bin/escaped-from-archive", work);
	CHECK(!exists(want), "(not one level up either)");
	free(p);
	long n = server_count("/releases/download/v1.15.1/firecracker-v1.15.1-x86_64.tgz");
	p = images_firecracker(im, "v1.15.1", &e);
	CHECK(p && server_count("/releases/download/v1.15.1/firecracker-v1.15.1-x86_64.tgz") == n,
	      "cached: the second ask downloads nothing");
	free(p);
	v = images_cached_fc_version(im);
	CHECK_STR(v, "v1.15.1", "images_cached_fc_version");
	free(v);
	p = images_firecracker(im, "v1.7.0", &e);
	CHECK(p != NULL, "a release without a published SHA-256 is taken (and logged)");
	free(p);
	char *log = svm_log_text(s);
	CHECK(log && strstr(log, "publishes no SHA-256"), "the log says the checksum was missing");
	free(log);
	p = images_firecracker(im, "v1.9.9", &e);
	CHECK(!p && e.code == SVM_DOWNLOAD_FAILED && strstr(e.message, "SHA256 mismatch"),
	      "an archive that does not match its published SHA-256: DOWNLOAD_FAILED");
	free(p);
	snprintf(want, sizeof want, "%s/fc/bin/v1.9.9", work);
	CHECK(!exists(want), "and nothing of it is kept");
	p = images_firecracker(im, "v1.8.8", &e);
	CHECK(!p && e.code == SVM_DOWNLOAD_FAILED, "a firecracker member that is a symlink: DOWNLOAD_FAILED");
	free(p);
	p = images_firecracker(im, "v2.0.0", &e);
	CHECK(!p && e.code == SVM_DOWNLOAD_FAILED && strstr(e.message, "HTTP 404"),
	      "a release that does not exist: DOWNLOAD_FAILED (HTTP 404)");
	free(p);
	p = images_firecracker(im, "v1.0; rm -rf /", &e);
	CHECK(!p && e.code == SVM_INVALID_ARGUMENT, "a version that is not vX.Y.Z is refused");
	free(p);
	snprintf(want, sizeof want, "%s/fc/bin", work);
	CHECK_INT(count_prefixed(want, ".v") - count_prefixed(want, ".v1.15.1.lock") -
			  count_prefixed(want, ".v1.7.0.lock") - count_prefixed(want, ".v1.9.9.lock") -
			  count_prefixed(want, ".v1.8.8.lock") - count_prefixed(want, ".v2.0.0.lock"),
		  0, "no staging dir left in bin/");
	svm_free(s);
}

/* ------------------------------------------------ apply, ctl, file helpers */

static void apply_and_ctl(void)
{
	svm *s = make((setup){.sub = "apply", .max = 5});
	if (!s)
		return;
	svm_images *im = s->images;
	svm_error e;
	json_t *cfg = json_loads("{\"image\": \"latest\", \"bootSource\": {\"bootArgs\": "
				 "\"console=ttyS0 reboot=k panic=1 pci=off\"}}", 0, NULL);
	char *ver = NULL, *held = NULL;
	int rc = images_apply(im, cfg, &ver, &held, &e);
	CHECK(rc == 0, "images_apply with \"image\": \"latest\"");
	images_release(im, held);
	free(held);
	if (rc < 0)
		printf("# %s\n", e.message);
	json_t *bs = json_object_get(cfg, "bootSource");
	const char *kp = json_string_value(json_object_get(bs, "kernelImagePath"));
	CHECK(kp && strstr(kp, "/latest-v1.15-x86_64-vmlinux-6.1.141-ubuntu-24.04.squashfs/vmlinux-6.1.141"),
	      "kernel from the bundle");
	CHECK_STR(json_string_value(json_object_get(bs, "bootArgs")),
		  "console=ttyS0 reboot=k panic=1 pci=off ro rootfstype=squashfs",
		  "the default boot args give way to the bundle's");
	json_t *d0 = json_array_get(json_object_get(cfg, "drives"), 0);
	CHECK(json_is_true(json_object_get(d0, "isRootDevice")) && json_is_true(json_object_get(d0, "isReadOnly")) &&
		      strstr(json_string_value(json_object_get(d0, "pathOnHost")) ?: "", "ubuntu-24.04.squashfs"),
	      "a read-only root drive from the bundle");
	CHECK_STR(ver, "v1.15.1", "the bundle's Firecracker version");
	free(ver);
	json_decref(cfg);
	cfg = json_loads("{\"image\": \"latest\", \"bootSource\": {\"kernelImagePath\": \"/k\", \"bootArgs\": \"mine\"},"
			 " \"drives\": [{\"driveId\": \"rootfs\", \"pathOnHost\": \"/r\", \"isRootDevice\": true}]}",
			 0, NULL);
	long pages = server_count("/bucket/");
	rc = images_apply(im, cfg, &ver, &held, &e);
	images_release(im, held);
	free(held);
	bs = json_object_get(cfg, "bootSource");
	CHECK(rc == 0 && !strcmp(json_string_value(json_object_get(bs, "kernelImagePath")), "/k") &&
		      !strcmp(json_string_value(json_object_get(bs, "bootArgs")), "mine") &&
		      json_array_size(json_object_get(cfg, "drives")) == 1,
	      "explicit kernel, boot args and root drive win");
	CHECK(server_count("/bucket/") == pages, "a remembered preset asks no network");
	free(ver);
	json_decref(cfg);
	cfg = json_loads("{\"image\": \"no-such-bundle\"}", 0, NULL);
	CHECK(images_apply(im, cfg, &ver, &held, &e) < 0 && e.code == SVM_BASE_IMAGE_RESOLVE_FAILED && !held,
	      "an unknown bundle id: BASE_IMAGE_RESOLVE_FAILED");
	json_decref(cfg);

	/* /images/ctl */
	CHECK(images_ctl(im, "frob 3", &e) < 0 && e.code == SVM_INVALID_ARGUMENT &&
		      !strcmp(e.message, "unknown control message \"frob 3\""),
	      "ctl: unknown control message \"frob 3\"");
	CHECK(images_ctl(im, "evict", &e) < 0 && e.code == SVM_INVALID_ARGUMENT && strstr(e.message, "usage"),
	      "ctl: evict without an id: usage");
	CHECK(images_ctl(im, "fetch latest now", &e) < 0 && e.code == SVM_INVALID_ARGUMENT,
	      "ctl: fetch latest now: bad option");
	CHECK(images_ctl(im, "fetch lts\n", &e) == 0, "ctl: fetch lts");
	char *sum = images_summary(im);
	CHECK(sum && strstr(sum, "latest latest-v1.15") && strstr(sum, "lts lts-v1.7") &&
		      strstr(sum, "last failure: ") && strstr(sum, "fetch latest now"),
	      "ctl read: bundles, presets and the last failure");
	free(sum);
	char path[PATH_MAX];
	struct stat st;
	char *mkfs = img_which("mkfs.ext4");
	if (mkfs) {
		CHECK(images_ctl(im, "blank disk 16", &e) == 0, "ctl: blank disk 16");
		snprintf(path, sizeof path, "%s/apply/rootfs/disk", work);
		unsigned char magic[2] = {0, 0};
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			(void)!pread(fd, magic, 2, 1080);
			close(fd);
		}
		CHECK(stat(path, &st) == 0 && st.st_size == 16 * 1024 * 1024 && magic[0] == 0x53 && magic[1] == 0xEF,
		      "an empty 16 MiB ext4 image (superblock magic)");
		CHECK(images_ctl(im, "blank disk 16", &e) < 0 && e.code == SVM_EXISTS, "blank over an existing name: EXISTS");
		CHECK(images_ctl(im, "clone disk disk2", &e) == 0, "ctl: clone disk disk2");
		snprintf(path, sizeof path, "%s/apply/rootfs/disk2", work);
		CHECK(stat(path, &st) == 0 && st.st_size == 16 * 1024 * 1024 && st.st_blocks * 512 < 16 * 1024 * 1024,
		      "the clone has the size and stays sparse");
	} else {
		check_skip("blank and clone", "mkfs.ext4 not installed (e2fsprogs)");
	}
	free(mkfs);
	CHECK(images_ctl(im, "clone latest myroot", &e) == 0, "ctl: clone latest (its rootfs)");
	CHECK(images_ctl(im, "clone nope x", &e) < 0 && e.code == SVM_NOT_FOUND, "clone of nothing: NOT_FOUND");
	CHECK(images_ctl(im, "blank ../x 1", &e) < 0 && e.code == SVM_INVALID_ARGUMENT, "blank ../x: INVALID_ARGUMENT");
	char line[512];
	snprintf(line, sizeof line, "import kernel %s/bucket/firecracker-ci/v1.7/x86_64/vmlinux-5.10.100 vmlinux-5.10", base);
	CHECK(images_ctl(im, line, &e) == 0, "ctl: import kernel URL NAME");
	snprintf(path, sizeof path, "%s/apply/kernels/vmlinux-5.10", work);
	char *txt = slurp(path);
	CHECK(txt && strstr(txt, "artifact firecracker-ci/v1.7/x86_64/vmlinux-5.10.100"), "imported into kernels/");
	free(txt);
	snprintf(line, sizeof line, "import rootfs %s/files/dk r1", base);
	CHECK(images_ctl(im, line, &e) == 0, "ctl: import rootfs URL NAME");
	CHECK(images_ctl(im, "import initrd http://x/y z", &e) < 0 && e.code == SVM_INVALID_ARGUMENT,
	      "import initrd: INVALID_ARGUMENT");
	svm_free(s);
}

/* With the server gone: what is cached answers without it. */
static void offline(void)
{
	svm *s = make((setup){.sub = "apply", .max = 5});
	if (!s)
		return;
	svm_error e;
	json_t *cfg = json_loads("{\"image\": \"lts\"}", 0, NULL);
	char *ver = NULL, *held = NULL;
	CHECK(images_apply(s->images, cfg, &ver, &held, &e) == 0, "offline: a remembered preset still starts");
	images_release(s->images, held);
	free(held);
	free(ver);
	json_decref(cfg);
	char *t = images_preset_target(s->images, "latest");
	CHECK(t != NULL, "offline: presets, list and status answer");
	free(t);
	svm_error e2;
	CHECK(images_fetch(s->images, "latest", false, NULL, &e2) < 0 && e2.code == SVM_VERSION_FETCH_FAILED,
	      "offline: fetch latest is VERSION_FETCH_FAILED");
	svm_free(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(work, sizeof work, "/tmp/test-images-XXXXXX");
	if (!mkdtemp(work)) {
		CHECK(0, "mkdtemp");
		return check_done();
	}
	if (start_server() < 0) {
		CHECK(0, "the fake server starts");
		stop_server();
		img_rm_rf(work);
		return check_done();
	}
	seed_defaults();
	seed_invalid_limit();
	seed_prune();
	seed_hosted_copy();
	seed_corrupted();
	bad_manifests();
	presets();
	cache_hits();
	retention();
	vm_holds_bundle();
	dropped();
	single_flight();
	binaries();
	apply_and_ctl();
	stop_server();
	offline();
	img_rm_rf(work);
	return check_done();
}
