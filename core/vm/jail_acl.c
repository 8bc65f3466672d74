/*
 * jail_acl.c - a user's file the jailed uid must use in place (a writable drive
 * or pmem file, one it may not read by its mode): an entry of the file's POSIX
 * access ACL for that uid, for the VMM's life. The file's owner and mode stay
 * the user's; the entry goes when the jail goes, and the ACL with it when the
 * file had none before (its mode then exactly as it was).
 *
 * The ACL is the kernel's xattr "system.posix_acl_access": a version, then
 * entries {tag, perm, id}, sorted by tag and id (linux/posix_acl_xattr.h).
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "jail_acl.h"

#define ACL_XATTR "system.posix_acl_access"
#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20
#define NO_ID 0xffffffffu
#define MAX_ENTRIES 64

struct entry {
	uint16_t tag, perm;
	uint32_t id;
};

/* The file's ACL (or the one its mode amounts to: *had false), n entries. */
static int acl_read(int fd, struct entry *e, size_t *n, bool *had)
{
	unsigned char buf[4 + 8 * MAX_ENTRIES];
	ssize_t len = fgetxattr(fd, ACL_XATTR, buf, sizeof buf);
	if (len < 0 && errno != ENODATA)
		return -1;
	*had = len >= 0;
	if (!*had) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return -1;
		e[0] = (struct entry){TAG_USER_OBJ, (st.st_mode >> 6) & 7, NO_ID};
		e[1] = (struct entry){TAG_GROUP_OBJ, (st.st_mode >> 3) & 7, NO_ID};
		e[2] = (struct entry){TAG_OTHER, st.st_mode & 7, NO_ID};
		*n = 3;
		return 0;
	}
	uint32_t v;
	memcpy(&v, buf, 4);
	if (len < 4 || (len - 4) % 8 || le32toh(v) != ACL_VERSION) {
		errno = EINVAL;
		return -1;
	}
	*n = (size_t)(len - 4) / 8;
	for (size_t i = 0; i < *n; i++) {
		uint16_t t, p;
		uint32_t id;
		memcpy(&t, buf + 4 + 8 * i, 2);
		memcpy(&p, buf + 6 + 8 * i, 2);
		memcpy(&id, buf + 8 + 8 * i, 4);
		e[i] = (struct entry){le16toh(t), le16toh(p), le32toh(id)};
	}
	return 0;
}

static int by_tag_id(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int acl_write(int fd, struct entry *e, size_t n)
{
	unsigned char buf[4 + 8 * MAX_ENTRIES];
	qsort(e, n, sizeof *e, by_tag_id);
	uint32_t v = htole32(ACL_VERSION);
	memcpy(buf, &v, 4);
	for (size_t i = 0; i < n; i++) {
		uint16_t t = htole16(e[i].tag), p = htole16(e[i].perm);
		uint32_t id = htole32(e[i].id);
		memcpy(buf + 4 + 8 * i, &t, 2);
		memcpy(buf + 6 + 8 * i, &p, 2);
		memcpy(buf + 8 + 8 * i, &id, 4);
	}
	return fsetxattr(fd, ACL_XATTR, buf, 4 + 8 * n, 0);
}

/* Drops uid's entry and the mask, returning the mask's perm (-1: none). */
static int drop(struct entry *e, size_t *n, unsigned uid)
{
	int mask = -1;
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		if (e[i].tag == TAG_MASK)
			mask = e[i].perm;
		else if (!(e[i].tag == TAG_USER && e[i].id == uid))
			e[k++] = e[i];
	}
	*n = k;
	return mask;
}

int jail_acl_grant(int fd, unsigned uid, bool write, jail_grant *g)
{
	struct entry e[MAX_ENTRIES + 2];
	size_t n;
	bool had;
	if (acl_read(fd, e, &n, &had) < 0)
		return -1;
	int mask = drop(e, &n, uid);
	g->had_acl = had;
	g->mask = mask;
	g->uid = uid;
	if (n + 2 > MAX_ENTRIES) {
		errno = E2BIG;
		return -1;
	}
	e[n++] = (struct entry){TAG_USER, (uint16_t)(write ? 6 : 4), uid};
	/* the mask bounds the named entries and the group: the union of them */
	uint16_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].tag == TAG_USER || e[i].tag == TAG_GROUP || e[i].tag == TAG_GROUP_OBJ)
			m |= e[i].perm;
	e[n++] = (struct entry){TAG_MASK, m, NO_ID};
	return acl_write(fd, e, n);
}

int jail_acl_revoke(int fd, const jail_grant *g)
{
	struct entry e[MAX_ENTRIES + 2];
	size_t n;
	bool had;
	if (acl_read(fd, e, &n, &had) < 0 || !had)
		return had ? -1 : 0;
	drop(e, &n, g->uid);
	bool named = false;
	uint16_t group = 0;
	for (size_t i = 0; i < n; i++) {
		named |= e[i].tag == TAG_USER || e[i].tag == TAG_GROUP;
		if (e[i].tag == TAG_GROUP_OBJ)
			group = e[i].perm;
	}
	if (!g->had_acl && !named) {
		/* it had none: none again, and the group bits its own */
		struct stat st;
		if (fremovexattr(fd, ACL_XATTR) < 0 || fstat(fd, &st) < 0)
			return -1;
		return fchmod(fd, (st.st_mode & 07707) | (mode_t)(group << 3));
	}
	if (g->mask >= 0 || named)
		e[n++] = (struct entry){TAG_MASK, (uint16_t)(g->mask >= 0 ? g->mask : group), NO_ID};
	return acl_write(fd, e, n);
}
