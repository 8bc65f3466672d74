/*
 * test_ring.c - the byte rings behind console, log and the error files: every
 * read is checked against a plain copy of every byte appended, while the
 * buffer grows with the contents (a VM that wrote 2 KiB holds a few KiB, not
 * the whole cap) and after it wraps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ring.h"

/* Reads [off, off+len) and compares with what a ring of `cap` must hold of
 * `all` (total bytes appended): the bytes from max(off, oldest kept). */
static int read_matches(svm_ring *r, const char *all, uint64_t total, size_t cap, uint64_t off,
			size_t len)
{
	char *got = malloc(len + 1);
	ssize_t n = ring_read(r, off, got, len);
	uint64_t oldest = total > cap ? total - cap : 0;
	if (off < oldest)
		off = oldest;
	size_t want = off >= total ? 0 : (total - off < len ? (size_t)(total - off) : len);
	int ok = n == (ssize_t)want && memcmp(got, all + off, want) == 0;
	free(got);
	return ok;
}

static void fill(char *p, size_t n, unsigned *seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + rand_r(seed) % 26);
}

int main(void)
{
	svm_ring r;
	ring_init(&r, 64 * 1024);
	CHECK(r.buf == NULL, "a new ring holds no buffer");
	char buf[16];
	CHECK_INT(ring_read(&r, 0, buf, sizeof buf), 0, "an empty ring reads nothing");
	char *t = ring_text(&r);
	CHECK_STR(t, "", "an empty ring's text is empty");
	free(t);

	/* 2 KiB into a 64 KiB ring: a 4 KiB buffer */
	static char all[1 << 20];
	unsigned seed = 1;
	fill(all, sizeof all, &seed);
	for (int i = 0; i < 16; i++)
		ring_append(&r, all + i * 128, 128);
	CHECK_INT(ring_total(&r), 2048, "every byte counted");
	CHECK(r.alloc <= 4096, "2 KiB of output holds at most 4 KiB");
	CHECK(read_matches(&r, all, 2048, r.cap, 0, 4096), "the 2 KiB read back");
	CHECK(read_matches(&r, all, 2048, r.cap, 1000, 10), "from an offset inside");

	/* growing by doubling keeps every byte in place */
	ring_append(&r, all + 2048, 30000);
	CHECK(r.alloc >= 32048 && r.alloc <= r.cap, "grown to hold 32 KiB, never past the cap");
	CHECK(read_matches(&r, all, 32048, r.cap, 0, 40000), "all of it after growing");

	/* past the cap: the last cap bytes, offsets before them start at the oldest */
	ring_append(&r, all + 32048, 100000);
	CHECK_INT(r.alloc, r.cap, "a ring that wrapped holds exactly its cap");
	CHECK_INT(ring_total(&r), 132048, "offsets count every byte");
	CHECK(read_matches(&r, all, 132048, r.cap, 0, 70000), "a read from 0 starts at the oldest kept");
	CHECK(read_matches(&r, all, 132048, r.cap, 132000, 100), "the newest bytes");
	/* a reader that follows the offsets read_from gives reads the kept bytes once */
	{
		static char got[70000];
		uint64_t at = 0, from = 0, pos = 0;
		size_t have = 0;
		ssize_t n;
		while ((n = ring_read_from(&r, pos, got + have, 4096 < sizeof got - have ? 4096 : sizeof got - have,
					   &from)) > 0) {
			if (have == 0)
				at = from;
			pos = from + (uint64_t)n;
			have += (size_t)n;
		}
		CHECK_INT(at, 132048 - r.cap, "read_from says the bytes start at the oldest kept");
		CHECK(have == r.cap && memcmp(got, all + at, have) == 0,
		      "following from: the kept bytes once, in order");
	}
	t = ring_text(&r);
	CHECK(t && strlen(t) == r.cap && memcmp(t, all + 132048 - r.cap, r.cap) == 0,
	      "the text is the last cap bytes");
	free(t);

	/* one append larger than the cap into a fresh ring */
	ring_reset(&r);
	CHECK(r.buf == NULL && ring_total(&r) == 0, "reset gives the buffer back and starts at 0");
	ring_append(&r, all, 200000);
	CHECK(read_matches(&r, all, 200000, r.cap, 0, 200000), "a large append keeps its last cap bytes");
	ring_destroy(&r);

	/* random appends, resets and reads against the plain copy, several caps */
	int bad = 0;
	seed = 7;
	for (int trial = 0; trial < 60 && !bad; trial++) {
		size_t cap = 1 + (size_t)rand_r(&seed) % (trial % 3 ? 9000 : 50000);
		ring_init(&r, cap);
		uint64_t total = 0;
		while (total < 150000 && !bad) {
			size_t len = (size_t)rand_r(&seed) % (rand_r(&seed) % 10 ? 300 : 20000);
			ring_append(&r, all + total, len);
			total += len;
			if (rand_r(&seed) % 40 == 0) {
				ring_reset(&r); /* offsets begin at 0 again */
				total = 0;
			}
			uint64_t off = total ? (uint64_t)rand_r(&seed) % (total + 1) : 0;
			if (!read_matches(&r, all, total, cap, off, 30000) || r.alloc > cap ||
			    ring_total(&r) != total)
				bad = trial + 1;
		}
		ring_destroy(&r);
	}
	CHECK_INT(bad, 0, "random appends, resets and reads match a plain copy (0: no failing trial)");
	return check_done();
}
