/*
 * fuzz_manifest.c - hosted base-image manifests: img_resolve_manifest reads the
 * document from a URL (through http_stub.c) or from a file, validates it and
 * turns it into the source of a bundle.
 *
 * Input: one byte of mode (bit 0: fetched from a URL, else read from a file;
 * bit 1: arch aarch64, else x86_64), then the manifest.
 *
 * What a resolved bundle becomes is a directory and two files in the cache, so
 * beyond "no crash" every accepted manifest must give a bundle id and file names
 * that cannot leave the cache directory, and a remote one no host paths.
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "http_stub.h"
#include "images_int.h"

static const char *body;
static size_t body_len;
static char file[96];

static const char *serve(const char *url, size_t *len)
{
	(void)url;
	*len = body_len;
	return body;
}

static void remove_file(void)
{
	unlink(file);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	http_stub_get = serve;
	snprintf(file, sizeof file, "/dev/shm/svm-fuzz-manifest.%d.json", (int)getpid());
	atexit(remove_file);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool remote = data[0] & 1;
	struct svm_images im = {.arch = (data[0] & 2) ? "aarch64" : "x86_64"};
	body = (const char *)data + 1;
	body_len = size - 1;
	const char *where = "https://images.example/dir/manifest.json";
	if (!remote) {
		int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		FUZZ_CHECK(fd >= 0, "open %s: %m", file);
		FUZZ_CHECK(write(fd, body, body_len) == (ssize_t)body_len, "write: %m");
		close(fd);
		where = file;
	}
	img_source src = {0};
	svm_error e;
	svm_error_clear(&e);
	if (img_resolve_manifest(&im, where, &src, &e) < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(e.code == SVM_BASE_IMAGE_MANIFEST_FAILED ||
				   e.code == SVM_INVALID_BASE_IMAGE_MANIFEST,
			   "code %s", svm_code_name(e.code));
	} else {
		FUZZ_CHECK(img_valid_name(src.bundle_id) && src.bundle_id[0] != '.',
			   "bundle id \"%s\" is not a name the cache accepts", src.bundle_id);
		FUZZ_CHECK(img_version_ok(src.fc_version), "firecracker version %s", src.fc_version);
		FUZZ_CHECK(!strcmp(src.rootfs_type, "ext4") || !strcmp(src.rootfs_type, "squashfs"),
			   "rootfs type %s", src.rootfs_type);
		FUZZ_CHECK(src.boot_args && src.source, "boot args, source");
		for (int i = 0; i < 2; i++) {
			const img_artifact *a = &src.art[i];
			FUZZ_CHECK(img_valid_name(a->file_name) && strcmp(a->file_name, "manifest.json"),
				   "artifact file name \"%s\"", a->file_name);
			FUZZ_CHECK(!a->url != !a->path, "artifact %d: url xor path", i);
			FUZZ_CHECK(!remote || !a->path, "a remote manifest names the host path %s",
				   a->path);
			FUZZ_CHECK(!a->url || !strncmp(a->url, "http://", 7) ||
					   !strncmp(a->url, "https://", 8),
				   "artifact url %s", a->url);
			FUZZ_CHECK(!a->url || img_hex64(a->sha256), "a url without a sha256");
			for (const char *p = a->sha256; p && *p; p++)
				FUZZ_CHECK(!(*p >= 'A' && *p <= 'F'), "sha256 not lowercase");
			FUZZ_CHECK(a->size >= -1, "size %lld", (long long)a->size);
		}
		FUZZ_CHECK(strcmp(src.art[0].file_name, src.art[1].file_name) != 0,
			   "kernel and rootfs share the file name %s", src.art[0].file_name);
	}
	img_source_free(&src);
	return 0;
}
