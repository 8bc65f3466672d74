/* net_subnet.c - subnet parsing, address allocation, names, MACs, boot args.
 * Pure functions: no host access, so the seed's rules are testable anywhere. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "net_subnet.h"

/* One decimal field [s, e): digits only (the seed's /^[0-9]+$/), value <= max. */
static int decimal(const char *s, const char *e, unsigned max, unsigned *out)
{
	if (s == e)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; p < e; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > max)
			return -1; /* also stops overflow on long digit runs */
	}
	*out = (unsigned)v;
	return 0;
}

static int ipv4_range(const char *s, const char *end, uint32_t *out)
{
	uint32_t a = 0;
	for (int i = 0; i < 4; i++) {
		const char *dot = i < 3 ? memchr(s, '.', (size_t)(end - s)) : end;
		unsigned octet;
		if (!dot || decimal(s, dot, 255, &octet) < 0)
			return -1;
		a = a << 8 | octet;
		s = dot + 1;
	}
	*out = a;
	return 0;
}

int net_ipv4_parse(const char *text, uint32_t *out)
{
	return ipv4_range(text, text + strlen(text), out);
}

char *net_ipv4_str(uint32_t a, char *buf)
{
	snprintf(buf, NET_ADDRSTRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
		 a & 0xff);
	return buf;
}

int net_subnet_parse(const char *text, net_cidr *out, svm_error *err)
{
	const char *slash = strchr(text, '/');
	uint32_t ip;
	unsigned prefix;
	if (!slash || strchr(slash + 1, '/') ||
	    decimal(slash + 1, slash + strlen(slash), 99, &prefix) < 0 || prefix < 1 || prefix > 30)
		return svm_error_set(err, SVM_INVALID_SUBNET,
				     "invalid subnet \"%s\": expected IPv4 CIDR with prefix length 1-30",
				     text);
	if (ipv4_range(text, slash, &ip) < 0)
		return svm_error_set(err, SVM_INVALID_SUBNET, "invalid subnet \"%s\": invalid IPv4 address \"%.*s\"",
				     text, (int)(slash - text), text);
	out->prefix = (int)prefix;
	out->mask = (uint32_t)(0xffffffffu << (32 - prefix));
	out->network = ip & out->mask;
	out->broadcast = out->network | ~out->mask;
	return 0;
}

int net_alloc_addr(const net_cidr *sn, const uint32_t *used, size_t nused, uint32_t *out,
		   svm_error *err)
{
	uint32_t cand = net_first_guest(sn);
	for (size_t i = 0; i < nused && cand <= net_last_guest(sn); i++) {
		if (used[i] < cand)
			continue;
		if (used[i] > cand)
			break; /* a gap: cand is free */
		cand++;
	}
	if (cand > net_last_guest(sn)) {
		char a[NET_ADDRSTRLEN];
		return svm_error_set(err, SVM_IP_EXHAUSTED,
				     "subnet %s/%d has no available guest IP addresses",
				     net_ipv4_str(sn->network, a), sn->prefix);
	}
	*out = cand;
	return 0;
}

bool net_ifname_valid(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > 15 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

int net_check_ifname(const char *name, const char *field, svm_error *err)
{
	if (net_ifname_valid(name))
		return 0;
	return svm_error_set(err, SVM_INVALID_INTERFACE_NAME,
			     "%s \"%s\" is not a valid Linux interface name (1-15 of A-Z a-z 0-9 _ . -, "
			     "starting with a letter or digit)",
			     field, name);
}

static size_t append_alnum(char *out, size_t len, size_t cap, const char *s)
{
	for (; *s && len < cap; s++)
		if (isalnum((unsigned char)*s))
			out[len++] = *s;
	out[len] = '\0';
	return len;
}

void net_tap_name(const char *vm_key, const char *iface_id, char out[NET_IFNAMSIZ])
{
	memcpy(out, "sv", 3);
	size_t len = append_alnum(out, 2, NET_IFNAMSIZ - 1, vm_key);
	append_alnum(out, len, NET_IFNAMSIZ - 1, iface_id);
}

void net_tap_name_variant(const char *base, unsigned n, char out[NET_IFNAMSIZ])
{
	char suffix[12];
	int sl = snprintf(suffix, sizeof suffix, "%u", n);
	size_t keep = strlen(base);
	if (keep + (size_t)sl > NET_IFNAMSIZ - 1)
		keep = NET_IFNAMSIZ - 1 - (size_t)sl;
	memcpy(out, base, keep);
	memcpy(out + keep, suffix, (size_t)sl + 1);
}

uint32_t net_hash32(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

void net_mac(const char *vm_key, const char *iface_id, char out[NET_MACSTRLEN])
{
	/* FNV-1a 64 of "vm:iface": 40 bits after the fixed 02 (locally
	 * administered, unicast) */
	uint64_t h = 14695981039346656037ull;
	for (const char *parts[] = {vm_key, ":", iface_id}, **p = parts; p < parts + 3; p++)
		for (const char *c = *p; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
	snprintf(out, NET_MACSTRLEN, "02:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 32) & 0xff,
		 (unsigned)(h >> 24) & 0xff, (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 8) & 0xff,
		 (unsigned)h & 0xff);
}

int net_boot_arg(char *buf, size_t size, uint32_t guest, uint32_t gateway, uint32_t mask,
		 const char *dev, const char *dns)
{
	char g[NET_ADDRSTRLEN], gw[NET_ADDRSTRLEN], m[NET_ADDRSTRLEN];
	return snprintf(buf, size, "ip=%s::%s:%s::%s:off%s%s", net_ipv4_str(guest, g),
			net_ipv4_str(gateway, gw), net_ipv4_str(mask, m), dev, dns ? ":" : "",
			dns ? dns : "");
}

bool net_has_ip_arg(const char *cmdline)
{
	for (const char *p = cmdline; p && *p;) {
		p += strspn(p, " \t\n");
		if (!strncmp(p, "ip=", 3))
			return true;
		p += strcspn(p, " \t\n");
	}
	return false;
}
