/*
 * core-bench.c - benchmarks that call the core directly (internal headers):
 *
 *   core-bench stage SRC DSTDIR RUNS
 *       RUNS times, interleaved: stage_copy(SRC, DSTDIR/staged) and
 *       `cp --sparse=always SRC DSTDIR/cp`; each copy is removed after it is
 *       measured. Prints "stage MS BLOCKS" and "cp MS BLOCKS" per run (BLOCKS:
 *       st_blocks of the copy).
 *   core-bench image WORKDIR RUNS
 *       Makes a bundle with a 1 GiB sparse rootfs (1 MiB of data) and a small
 *       kernel, fetches it once from a local hosted manifest into an image
 *       cache, then RUNS times, interleaved: images_apply() of {"image": ID}
 *       (what a start does on a cache hit), images_fetch_manifest() again (a
 *       hit), and, as the floor, stat() of both cached artifacts. Prints
 *       "apply MS", "fetch MS", "stat MS" per run and "setup_fetch MS" once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "images.h"
#include "internal.h"
#include "stage.h"

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long long blocks_of(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_blocks : -1;
}

static int run_cp(const char *src, const char *dst)
{
	char *argv[] = {"cp", "--sparse=always", (char *)src, (char *)dst, NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "cp", NULL, NULL, argv, environ) != 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int bench_stage(const char *src, const char *dir, int runs)
{
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/staged", dir);
	snprintf(b, sizeof b, "%s/cp", dir);
	for (int r = 0; r < runs; r++) {
		/* alternate which goes first, so neither always finds a warmer cache */
		for (int k = 0; k < 2; k++) {
			bool ours = (k == 0) == (r % 2 == 0);
			unlink(ours ? a : b);
			double t0 = now_ms();
			int rc;
			svm_error e;
			if (ours)
				rc = stage_copy(src, a, &e);
			else
				rc = run_cp(src, b);
			double ms = now_ms() - t0;
			if (rc < 0) {
				fprintf(stderr, "%s failed%s%s\n", ours ? "stage_copy" : "cp",
				        ours ? ": " : "", ours ? e.message : "");
				return 1;
			}
			printf("%s %.4f %lld\n", ours ? "stage" : "cp", ms, blocks_of(ours ? a : b));
			unlink(ours ? a : b);
		}
		fflush(stdout);
	}
	return 0;
}

/* SHA-256 of a file, reading holes as zeros. */
static int sha_file(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	static unsigned char buf[1 << 20];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	unsigned char md[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	close(fd);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return n < 0 ? -1 : 0;
}

static int bench_image(const char *work, int runs)
{
	char kernel[4096], rootfs[4096], manifest[4096], data[4096], run[4096];
	snprintf(kernel, sizeof kernel, "%s/vmlinux", work);
	snprintf(rootfs, sizeof rootfs, "%s/rootfs.ext4", work);
	snprintf(manifest, sizeof manifest, "%s/manifest.json", work);
	snprintf(data, sizeof data, "%s/data", work);
	snprintf(run, sizeof run, "%s/run", work);
	/* the artifacts: 64 KiB kernel, 1 GiB rootfs holding 1 MiB of data */
	FILE *f = fopen(kernel, "w");
	for (int i = 0; f && i < 65536; i++)
		fputc(i * 7 + 3, f);
	if (!f || fclose(f) != 0)
		return 1;
	int fd = open(rootfs, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 1LL << 30) < 0)
		return 1;
	static unsigned char chunk[1 << 20];
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (unsigned char)(i * 31 + 1);
	if (pwrite(fd, chunk, sizeof chunk, 0) != (ssize_t)sizeof chunk)
		return 1;
	close(fd);
	char ks[65], rs[65];
	if (sha_file(kernel, ks) < 0 || sha_file(rootfs, rs) < 0)
		return 1;
	f = fopen(manifest, "w");
	if (!f)
		return 1;
	fprintf(f,
	        "{\"schemaVersion\": 1, \"bundleId\": \"bench-1g\", \"arch\": \"x86_64\","
	        " \"firecrackerVersion\": \"v1.14.2\", \"rootfsType\": \"ext4\","
	        " \"bootArgs\": \"console=ttyS0 reboot=k panic=1 pci=off\","
	        " \"kernel\": {\"path\": \"%s\", \"fileName\": \"vmlinux\", \"sha256\": \"%s\"},"
	        " \"rootfs\": {\"path\": \"%s\", \"fileName\": \"rootfs.ext4\", \"sha256\": \"%s\","
	        " \"sizeBytes\": %lld}}\n",
	        kernel, ks, rootfs, rs, 1LL << 30);
	fclose(f);

	svm_options opt = {.data_dir = data, .runtime_dir = run, .arch = "x86_64",
	                   .firecracker = "/bin/true", .releases_url = "http://127.0.0.1:9/releases",
	                   .ci_bucket_url = "http://127.0.0.1:9/bucket"};
	svm_error e;
	svm *s = svm_new(&opt, &e);
	if (!s) {
		fprintf(stderr, "svm_new: %s\n", e.message);
		return 1;
	}
	char *id = NULL;
	double t0 = now_ms();
	if (images_fetch_manifest(s->images, manifest, false, &id, &e) < 0) {
		fprintf(stderr, "fetch: %s\n", e.message);
		svm_free(s);
		return 1;
	}
	printf("setup_fetch %.4f\n", now_ms() - t0);
	images_bundle info;
	if (images_bundle_info(s->images, id, &info, &e) < 0) {
		fprintf(stderr, "info: %s\n", e.message);
		return 1;
	}
	int rc = 0;
	for (int r = 0; r < runs && rc == 0; r++) {
		json_t *cfg = json_pack("{s:s}", "image", id);
		char *version = NULL, *held = NULL;
		t0 = now_ms();
		int a = images_apply(s->images, cfg, &version, &held, &e);
		double ms = now_ms() - t0;
		images_release(s->images, held);
		free(held);
		if (a < 0 || !json_object_get(json_object_get(cfg, "bootSource"), "kernelImagePath")) {
			fprintf(stderr, "apply: %s\n", a < 0 ? e.message : "no kernel filled in");
			rc = 1;
		}
		printf("apply %.4f\n", ms);
		free(version);
		json_decref(cfg);

		char *id2 = NULL;
		t0 = now_ms();
		if (images_fetch_manifest(s->images, manifest, false, &id2, &e) < 0) {
			fprintf(stderr, "fetch hit: %s\n", e.message);
			rc = 1;
		}
		printf("fetch %.4f\n", now_ms() - t0);
		free(id2);

		struct stat st;
		t0 = now_ms();
		stat(info.kernel, &st);
		stat(info.rootfs, &st);
		printf("stat %.4f\n", now_ms() - t0);
		fflush(stdout);
	}
	images_bundle_clear(&info);
	free(id);
	svm_free(s);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "stage"))
		return bench_stage(argv[2], argv[3], atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "image"))
		return bench_image(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: core-bench stage SRC DSTDIR RUNS | image WORKDIR RUNS\n");
	return 2;
}
