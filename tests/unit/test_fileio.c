/*
 * test_fileio.c - the small-file helpers of core/base: a file read whole
 * (svm_read_fd: any size up to its bound, through short reads of a pipe, refused
 * past it), a JSON document read whole and parsed (svm_json_load_fd, in a few
 * read calls where jansson's own reader makes one per byte), and a digest's hex
 * text (svm_hex).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base.h"
#include "check.h"
#include "fileio.h"
#include "jsonfile.h"

/* A file of n bytes (a pattern) in a memfd at offset 0. */
static int file_of(const char *bytes, size_t n)
{
	int fd = memfd_create("fileio", MFD_CLOEXEC);
	if (fd >= 0 && (svm_write_all(fd, bytes, n) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_read_fd(void)
{
	static const size_t sizes[] = {0, 1, 4094, 4095, 4096, 4097, 100000};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		size_t n = sizes[i], len = 12345;
		char *want = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			want[k] = (char)('a' + k % 23);
		int fd = file_of(want, n);
		char *got = fd >= 0 ? svm_read_fd(fd, n, &len) : NULL;
		char what[96];
		snprintf(what, sizeof what, "a file of %zu bytes is read whole, NUL-terminated", n);
		CHECK(got && len == n && memcmp(got, want, n) == 0 && got[n] == '\0', what);
		free(got);
		if (fd >= 0 && n > 0 && lseek(fd, 0, SEEK_SET) == 0) {
			errno = 0;
			got = svm_read_fd(fd, n - 1, &len);
			snprintf(what, sizeof what, "a file of %zu bytes, one over the bound: EFBIG", n);
			CHECK(!got && errno == EFBIG, what);
			free(got);
		}
		if (fd >= 0)
			close(fd);
		free(want);
	}
	/* a pipe gives what is written in pieces: all of them, up to the end */
	int p[2];
	CHECK(pipe(p) == 0, "a pipe");
	CHECK(write(p[1], "abc", 3) == 3 && write(p[1], "defg", 4) == 4, "two writes");
	close(p[1]);
	size_t len = 0;
	char *got = svm_read_fd(p[0], 64, &len);
	CHECK(got && len == 7 && !strcmp(got, "abcdefg"), "a pipe is read to its end");
	free(got);
	close(p[0]);
	errno = 0;
	CHECK(svm_read_fd(-1, 10, &len) == NULL && errno == EBADF, "a bad descriptor: NULL, EBADF");
}

static void test_json_load_fd(void)
{
	const char *doc = "{\"name\": \"web\", \"n\": 3, \"list\": [1, 2]}";
	int fd = file_of(doc, strlen(doc));
	json_error_t je;
	json_t *o = fd >= 0 ? svm_json_load_fd(fd, 1024, JSON_REJECT_DUPLICATES, &je) : NULL;
	CHECK(json_is_object(o) && !strcmp(json_string_value(json_object_get(o, "name")), "web") &&
		      json_integer_value(json_object_get(o, "n")) == 3 &&
		      json_array_size(json_object_get(o, "list")) == 2,
	      "a document read whole and parsed");
	json_decref(o);
	if (fd >= 0)
		close(fd);

	const char *dup = "{\"a\": 1, \"a\": 2}";
	fd = file_of(dup, strlen(dup));
	o = fd >= 0 ? svm_json_load_fd(fd, 1024, JSON_REJECT_DUPLICATES, &je) : NULL;
	CHECK(o == NULL && strstr(je.text, "duplicate"), "the flags reach the parser: a duplicate key");
	json_decref(o);
	if (fd >= 0)
		close(fd);

	fd = file_of(doc, strlen(doc));
	o = fd >= 0 ? svm_json_load_fd(fd, 8, 0, &je) : NULL;
	CHECK(o == NULL && strstr(je.text, "larger"), "a document over the bound: NULL, and why");
	if (fd >= 0)
		close(fd);

	/* the point of it: a few read calls, not one per byte */
	char big[8192];
	size_t n = (size_t)snprintf(big, sizeof big, "{\"pad\": \"%0*d\"}", 6000, 0);
	fd = file_of(big, n);
	long before = 0, after = 0;
	FILE *f = fopen("/proc/self/io", "re");
	char line[128];
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "syscr: %ld", &before);
	if (f)
		fclose(f);
	o = fd >= 0 ? svm_json_load_fd(fd, sizeof big, 0, NULL) : NULL;
	f = fopen("/proc/self/io", "re");
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "syscr: %ld", &after);
	if (f)
		fclose(f);
	CHECK(json_is_object(o), "a 6 KiB document parsed");
	/* fopen/fgets of /proc/self/io read too: a handful, never thousands */
	CHECK(after - before < 20, "a 6 KiB document takes a few reads, not one per byte");
	json_decref(o);
	if (fd >= 0)
		close(fd);
}

static void test_hex(void)
{
	const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof in + 1];
	memset(out, 'x', sizeof out);
	svm_hex(in, sizeof in, out);
	CHECK_STR(out, "00017f80abff", "bytes as lowercase hex, NUL-terminated");
	svm_hex(in, 0, out);
	CHECK_STR(out, "", "no bytes: an empty string");
}

int main(void)
{
	test_read_fd();
	test_json_load_fd();
	test_hex();
	return check_done();
}
