/*
 * images_hash.c - SHA-256 through libcrypto's EVP interface, and file stamps.
 *
 * A stamp is what stat() says about an artifact right after it was verified:
 * size, mtime, ctime, inode and device. Any write, truncate, chmod, rename or
 * replacement moves the ctime (which userspace cannot set back), so an equal
 * stamp means the bytes were not touched and a cache hit needs no re-hash: a
 * few stat() calls instead of reading gigabytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images_int.h"

struct img_hasher {
	EVP_MD_CTX *ctx;
};

img_hasher *img_hasher_new(void)
{
	img_hasher *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void img_hasher_update(img_hasher *h, const void *buf, size_t len)
{
	if (h && len)
		EVP_DigestUpdate(h->ctx, buf, len);
}

void img_hasher_final(img_hasher *h, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	hex[0] = '\0';
	if (!h)
		return;
	if (EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32)
		svm_hex(md, 32, hex);
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int img_sha256_file(svm_images *im, const char *path, char *hex)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* a large buffer: this is only for explicit verifies and changed stamps */
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	img_hasher *h = img_hasher_new();
	int rc = buf && h ? 0 : -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (rc == 0) {
		ssize_t n = read(fd, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -1;
		if (n <= 0)
			break;
		img_hasher_update(h, buf, (size_t)n);
	}
	img_hasher_final(h, hex);
	free(buf);
	close(fd);
	if (rc == 0 && im) {
		pthread_mutex_lock(&im->mu);
		im->hashes++;
		pthread_mutex_unlock(&im->mu);
	}
	return rc;
}

static int64_t ns_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

json_t *img_stamp_of(const struct stat *st)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "size", (json_int_t)st->st_size,
			 "mtimeNs", (json_int_t)ns_of(st->st_mtim), "ctimeNs",
			 (json_int_t)ns_of(st->st_ctim), "ino", (json_int_t)st->st_ino, "dev",
			 (json_int_t)st->st_dev);
}

static bool field_is(const json_t *stamp, const char *key, int64_t v)
{
	const json_t *j = json_object_get(stamp, key);
	return json_is_integer(j) && json_integer_value(j) == v;
}

bool img_stamp_matches(const json_t *stamp, const struct stat *st)
{
	return json_is_object(stamp) && field_is(stamp, "size", st->st_size) &&
	       field_is(stamp, "mtimeNs", ns_of(st->st_mtim)) &&
	       field_is(stamp, "ctimeNs", ns_of(st->st_ctim)) &&
	       field_is(stamp, "ino", (int64_t)st->st_ino) &&
	       field_is(stamp, "dev", (int64_t)st->st_dev);
}

bool img_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF", *s))
			return false;
	return true;
}

void img_lower(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}
