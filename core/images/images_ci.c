/*
 * images_ci.c - the presets `latest` and `lts`: Firecracker's CI bucket holds a
 * kernel and Ubuntu root filesystems per Firecracker minor version and arch
 * (firecracker-ci/vX.Y/ARCH/...). As the seed: the newest vmlinux-A.B.C that is
 * not a debug build, a squashfs rootfs preferred over ext4, boot args built from
 * the arch and rootfs type. Beyond the seed: the bucket listing is followed
 * across pages (S3 answers at most 1000 keys a page).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcapi.h"
#include "images_int.h"

#define MAX_PAGES 1000
#define MAX_LISTING_BYTES (8 * 1024 * 1024)

char *img_sanitize(const char *s)
{
	char *out = strdup(s);
	for (char *p = out; p && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			*p = '_';
	return out;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* v1.2.3 exactly (the seed's /^v\d+\.\d+\.\d+$/). */
static bool is_version(const char *v, size_t n)
{
	if (n < 6 || v[0] != 'v')
		return false;
	int dots = 0;
	bool digit = false;
	for (size_t i = 1; i < n; i++) {
		if (isdigit((unsigned char)v[i])) {
			digit = true;
		} else if (v[i] == '.' && digit && dots < 2) {
			dots++;
			digit = false;
		} else {
			return false;
		}
	}
	return dots == 2 && digit;
}

int img_latest_fc_version(svm_images *im, char *out, size_t outlen, svm_error *err)
{
	char url[2048], msg[512];
	img_fmt(url, sizeof url, "%s/latest", im->releases_url);
	char *eff = img_http_effective_url(url, msg, sizeof msg);
	if (!eff)
		return svm_error_set(err, SVM_VERSION_FETCH_FAILED,
				     "Failed to resolve latest Firecracker version: %s: %s", url, msg);
	/* .../releases/tag/v1.15.1 */
	const char *tag = strstr(eff, "/releases/tag/");
	const char *v = tag ? tag + strlen("/releases/tag/") : NULL;
	if (!v || !is_version(v, strlen(v)) || strlen(v) >= outlen) {
		svm_error_set(err, SVM_VERSION_FETCH_FAILED,
			      "Failed to resolve latest Firecracker version: Could not parse latest "
			      "Firecracker release URL: %s", eff);
		free(eff);
		return -1;
	}
	img_fmt(out, outlen, "%s", v);
	free(eff);
	return 0;
}

/* ------------------------------------------------------------ the listing */

typedef struct keylist {
	char **v;
	size_t n, cap;
} keylist;

static void keys_free(keylist *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static char *xml_decode(const char *p, size_t n)
{
	static const struct {
		const char *ent, *ch;
	} ents[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k;
		for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
			size_t el = strlen(ents[k].ent);
			if (i + el <= n && !strncmp(p + i, ents[k].ent, el)) {
				*o++ = ents[k].ch[0];
				i += el;
				break;
			}
		}
		if (k == sizeof ents / sizeof ents[0])
			*o++ = p[i++];
	}
	*o = '\0';
	return out;
}

/* The text of the first <tag>...</tag> in body (decoded), or NULL. */
static char *xml_first(const char *body, const char *tag)
{
	char open[64], close[64];
	img_fmt(open, sizeof open, "<%s>", tag);
	img_fmt(close, sizeof close, "</%s>", tag);
	const char *a = strstr(body, open);
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = strstr(a, close);
	return b ? xml_decode(a, (size_t)(b - a)) : NULL;
}

static int collect_keys(const char *body, keylist *k)
{
	for (const char *p = body; (p = strstr(p, "<Key>"));) {
		p += 5;
		const char *e = strstr(p, "</Key>");
		if (!e)
			break;
		if (svm_grow(&k->v, &k->cap, k->n + 1, sizeof *k->v) < 0)
			return -1;
		if (!(k->v[k->n] = xml_decode(p, (size_t)(e - p))))
			return -1;
		k->n++;
		p = e;
	}
	return 0;
}

static int list_ci_keys(svm_images *im, const char *ci_version, const char *arch, keylist *k,
			svm_error *err)
{
	char prefix[256], msg[512];
	img_fmt(prefix, sizeof prefix, "firecracker-ci/%s/%s/", ci_version, arch);
	if (svm_curl_global_init() < 0)
		return svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED, "cannot initialise libcurl");
	char *eprefix = curl_easy_escape(NULL, prefix, 0);
	char *token = NULL; /* ListObjectsV2 continuation token, or a V1 marker */
	bool v1_marker = false;
	int rc = -1;
	for (int page = 0; page < MAX_PAGES; page++) {
		char url[4096];
		char *etok = token ? curl_easy_escape(NULL, token, 0) : NULL;
		img_fmt(url, sizeof url, "%s/?prefix=%s&list-type=2%s%s", im->ci_bucket_url,
			 eprefix ? eprefix : "",
			 etok ? (v1_marker ? "&start-after=" : "&continuation-token=") : "",
			 etok ? etok : "");
		curl_free(etok);
		char *body = img_http_get(url, MAX_LISTING_BYTES, NULL, NULL, msg, sizeof msg);
		if (!body) {
			svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
				      "Failed to list Firecracker CI artifacts for %s/%s: %s: %s",
				      ci_version, arch, url, msg);
			goto out;
		}
		size_t before = k->n;
		collect_keys(body, k);
		char *truncated = xml_first(body, "IsTruncated");
		char *next = xml_first(body, "NextContinuationToken");
		bool more = truncated && !strcmp(truncated, "true");
		free(truncated);
		free(body);
		if (!more) {
			free(next);
			rc = 0;
			break;
		}
		/* a V1-style answer has no token: continue after the last key */
		v1_marker = !next;
		if (!next && k->n > before)
			next = strdup(k->v[k->n - 1]);
		if (!next || (token && !strcmp(next, token))) {
			free(next);
			svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
				      "Failed to list Firecracker CI artifacts for %s/%s: a truncated "
				      "page without a way to continue", ci_version, arch);
			goto out;
		}
		free(token);
		token = next;
	}
	if (rc == 0 && k->n == 0)
		rc = svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
				   "Failed to list Firecracker CI artifacts for %s/%s: No Firecracker CI "
				   "artifacts found for %s/%s", ci_version, arch, ci_version, arch);
	else if (rc < 0) /* the loop ran out of pages */
		svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
			      "Failed to list Firecracker CI artifacts for %s/%s: over %d pages",
			      ci_version, arch, MAX_PAGES);
out:
	curl_free(eprefix);
	free(token);
	return rc;
}

/* ------------------------------------------------------------ selection */

/* .../vmlinux-A.B.C at the end: 0 and the three numbers, else -1 */
static int kernel_version(const char *key, long v[3])
{
	const char *b = base_name(key);
	if (strncmp(b, "vmlinux-", 8) != 0)
		return -1;
	const char *p = b + 8;
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		char *end;
		v[i] = strtol(p, &end, 10);
		p = end;
		if (i < 2 && *p++ != '.')
			return -1;
	}
	return *p == '\0' ? 0 : -1;
}

static const char *select_kernel(const keylist *k)
{
	const char *best = NULL;
	long bv[3] = {0, 0, 0};
	for (size_t i = 0; i < k->n; i++) {
		long v[3];
		if (strstr(k->v[i], "/debug/") || kernel_version(k->v[i], v) < 0)
			continue;
		int c = 0;
		for (int j = 0; j < 3 && !c && best; j++)
			c = v[j] < bv[j] ? -1 : v[j] > bv[j];
		if (!best || c > 0 || (c == 0 && strcmp(k->v[i], best) > 0)) {
			best = k->v[i];
			memcpy(bv, v, sizeof bv);
		}
	}
	return best;
}

/* /ubuntu-NAME.EXT at the end (NAME without a slash); the newest by a numeric
 * aware comparison (strverscmp, as the seed's localeCompare numeric). */
static const char *select_rootfs(const keylist *k, const char *ext)
{
	const char *best = NULL;
	size_t el = strlen(ext);
	for (size_t i = 0; i < k->n; i++) {
		const char *b = base_name(k->v[i]);
		size_t bl = strlen(b);
		if (b == k->v[i] || strncmp(b, "ubuntu-", 7) != 0 || bl <= 7 + el ||
		    strcmp(b + bl - el, ext) != 0)
			continue;
		if (!best || strverscmp(k->v[i], best) > 0)
			best = k->v[i];
	}
	return best;
}

char *img_boot_args(const char *arch, const char *rootfs_type)
{
	char buf[256];
	img_fmt(buf, sizeof buf, "%sconsole=ttyS0 reboot=k panic=1 pci=off%s",
		 !strcmp(arch, "aarch64") ? "keep_bootcon " : "",
		 !strcmp(rootfs_type, "squashfs") ? " ro rootfstype=squashfs" : "");
	return strdup(buf);
}

int img_resolve_preset(svm_images *im, const char *preset, const char *arch, img_source *src,
		       svm_error *err)
{
	char fcv[64], civ[64];
	bool latest = !strcmp(preset, "latest");
	if (latest) {
		if (img_latest_fc_version(im, fcv, sizeof fcv, err) < 0)
			return -1;
		/* v1.15.1 -> v1.15 */
		img_fmt(civ, sizeof civ, "%s", fcv);
		*strrchr(civ, '.') = '\0';
	} else {
		img_fmt(fcv, sizeof fcv, "%s", IMG_LTS_FC_VERSION);
		img_fmt(civ, sizeof civ, "%s", IMG_LTS_CI_VERSION);
	}
	keylist k = {0};
	if (list_ci_keys(im, civ, arch, &k, err) < 0) {
		keys_free(&k);
		return -1;
	}
	const char *kernel = select_kernel(&k);
	const char *rootfs = select_rootfs(&k, ".squashfs");
	if (!rootfs)
		rootfs = select_rootfs(&k, ".ext4");
	if (!kernel || !rootfs) {
		svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED, "No suitable Firecracker CI %s image found",
			      kernel ? "rootfs" : "kernel");
		keys_free(&k);
		return -1;
	}
	const char *type = strlen(rootfs) > 5 && !strcmp(rootfs + strlen(rootfs) - 5, ".ext4") ? "ext4" : "squashfs";
	char raw[1024], url[4096];
	int n = img_fmt(raw, sizeof raw, "%s-%s-%s-%s-%s", preset, civ, arch, base_name(kernel),
			base_name(rootfs));
	/* the id and the file names become a directory and files in the cache: as a
	 * manifest's bundleId, at most 200 characters (a listing may say anything) */
	if (n < 0 || n > 200) {
		svm_error_set(err, SVM_BASE_IMAGE_RESOLVE_FAILED,
			      "Firecracker CI image names too long for a bundle id (%d characters, "
			      "at most 200): %.64s..., %.64s...", n, base_name(kernel), base_name(rootfs));
		keys_free(&k);
		return -1;
	}
	src->preset = strdup(preset);
	src->arch = strdup(arch);
	src->ci_version = strdup(civ);
	src->fc_version = strdup(fcv);
	src->bundle_id = img_sanitize(raw);
	src->rootfs_type = strdup(type);
	src->rootfs_ro = !strcmp(type, "squashfs");
	src->boot_args = img_boot_args(arch, type);
	const char *keys[2] = {kernel, rootfs};
	for (int i = 0; i < 2; i++) {
		img_fmt(url, sizeof url, "%s/%s", im->ci_bucket_url, keys[i]);
		src->art[i].url = strdup(url);
		src->art[i].file_name = img_sanitize(base_name(keys[i]));
		src->art[i].size = -1; /* the bucket publishes neither: seed */
	}
	src->source = json_pack("{s:s, s:s, s:s, s:s}", "type", "firecracker-ci", "bucketUrl",
				im->ci_bucket_url, "kernelKey", kernel, "rootfsKey", rootfs);
	keys_free(&k);
	return 0;
}
