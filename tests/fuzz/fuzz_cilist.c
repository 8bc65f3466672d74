/*
 * fuzz_cilist.c - the Firecracker CI bucket listing behind the presets latest
 * and lts: img_resolve_preset asks for the latest release (a redirect), lists
 * the bucket page after page (S3 ListObjectsV2 XML, or V1 markers), picks the
 * newest kernel and a rootfs, and makes the bundle's source.
 *
 * Input: one byte of mode (bit 0: preset latest, else lts; bit 1: arch
 * aarch64), then the URL the releases/latest redirect ends at, up to a newline,
 * then the listing pages separated by NUL bytes. The n-th request of the
 * listing gets the n-th page (the last one again when they run out).
 *
 * What a resolved preset becomes is a bundle directory and two files in the
 * cache: the bundle id and file names must be plain names the cache accepts.
 */
#include "fuzz.h"
#include "http_stub.h"
#include "images_int.h"

#define BUCKET "https://bucket.example"

static const char *pages[64];
static size_t page_len[64];
static size_t npages, served;
static char redirect[512];

static const char *serve(const char *url, size_t *len)
{
	FUZZ_CHECK(!strncmp(url, BUCKET "/?prefix=firecracker-ci%2Fv", strlen(BUCKET) + 27),
		   "listing url %s", url);
	FUZZ_CHECK(!strpbrk(url, " \t\r\n\"<>\\^`{|}"), "listing url not escaped: %s", url);
	if (npages == 0)
		return NULL;
	size_t i = served < npages ? served : npages - 1;
	served++;
	*len = page_len[i];
	return pages[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	http_stub_get = serve;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool latest = data[0] & 1;
	struct svm_images im = {.arch = (data[0] & 2) ? "aarch64" : "x86_64",
				.ci_bucket_url = BUCKET,
				.releases_url = "https://releases.example/releases"};
	char *text = fuzz_strndup(data + 1, size - 1);
	size_t n = size - 1;
	char *nl = memchr(text, '\n', n);
	size_t rl = nl ? (size_t)(nl - text) : n;
	snprintf(redirect, sizeof redirect, "%.*s", (int)rl, text);
	http_stub_redirect = redirect;
	npages = served = 0;
	for (size_t at = nl ? rl + 1 : n; at < n && npages < 64;) {
		const char *p = text + at;
		size_t l = strnlen(p, n - at);
		pages[npages] = p;
		page_len[npages++] = l;
		at += l + 1;
	}
	img_source src = {0};
	svm_error e;
	svm_error_clear(&e);
	if (img_resolve_preset(&im, latest ? "latest" : "lts", im.arch, &src, &e) < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(e.code == SVM_BASE_IMAGE_RESOLVE_FAILED ||
				   e.code == SVM_VERSION_FETCH_FAILED,
			   "code %s", svm_code_name(e.code));
	} else {
		FUZZ_CHECK(img_valid_name(src.bundle_id) && src.bundle_id[0] != '.',
			   "bundle id \"%s\" is not a name the cache accepts", src.bundle_id);
		FUZZ_CHECK(img_version_ok(src.fc_version), "firecracker version %s", src.fc_version);
		for (int i = 0; i < 2; i++) {
			const img_artifact *a = &src.art[i];
			FUZZ_CHECK(img_valid_name(a->file_name) && strcmp(a->file_name, "manifest.json"),
				   "artifact file name \"%s\"", a->file_name);
			FUZZ_CHECK(a->url && !strncmp(a->url, BUCKET "/", strlen(BUCKET) + 1),
				   "artifact url %s", a->url);
		}
		FUZZ_CHECK(strcmp(src.art[0].file_name, src.art[1].file_name) != 0,
			   "kernel and rootfs share the file name %s", src.art[0].file_name);
	}
	img_source_free(&src);
	free(text);
	return 0;
}
