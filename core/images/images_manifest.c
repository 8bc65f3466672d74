/*
 * images_manifest.c - hosted base-image manifests (schemaVersion 1), from a path
 * or a URL, validated as the seed validates them (same rules, same order, same
 * codes), plus what the seed misses:
 *  - a bundleId that is "." or "..", starts with a dot (our own hidden files live
 *    in the cache dir), or is a word of the /images/ tree (ctl, latest, lts,
 *    hosted), or is too long for a directory name with our suffixes;
 *  - two artifacts with the same fileName, or one called manifest.json;
 *  - a manifest fetched from a URL that names host paths (a remote document must
 *    not make the daemon copy local files into a world-readable cache).
 * Relative artifact paths are taken relative to the manifest's directory (the
 * seed used its process's working directory, which means nothing for a daemon).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images_int.h"

#define BAD(...) svm_error_set(err, SVM_INVALID_BASE_IMAGE_MANIFEST, __VA_ARGS__)

static bool is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

/* [a-zA-Z0-9._-]+ */
static bool plain_chars(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-", *s)))
			return false;
	return true;
}

/* v1.2.3 (the seed's /^v\d+\.\d+\.\d+$/) */
bool img_version_ok(const char *v)
{
	unsigned a, b, c;
	int end = -1;
	return v && v[0] == 'v' && strspn(v + 1, "0123456789.") == strlen(v + 1) &&
	       sscanf(v, "v%u.%u.%u%n", &a, &b, &c, &end) == 3 && (size_t)end == strlen(v) &&
	       strstr(v, "..") == NULL && v[1] != '.';
}

/* The seed's truthiness of an artifact's url/path: a non-empty string is set;
 * absent, null, false and "" are not; anything else is an error. */
static int truthy_str(const json_t *a, const char *key, const char **out)
{
	const json_t *v = json_object_get(a, key);
	*out = NULL;
	if (!v || json_is_null(v) || json_is_false(v) ||
	    (json_is_string(v) && !*json_string_value(v)))
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

static int validate_artifact(const json_t *a, const char *label, bool remote, svm_error *err)
{
	const char *url, *path;
	if (!json_is_object(a))
		return BAD("Hosted base image manifest %s artifact requires url or path", label);
	if (truthy_str(a, "url", &url) < 0 || truthy_str(a, "path", &path) < 0)
		return BAD("Hosted base image manifest %s artifact url and path must be strings", label);
	if (!url && !path)
		return BAD("Hosted base image manifest %s artifact requires url or path", label);
	if (url && path)
		return BAD("Hosted base image manifest %s artifact must not set both url and path", label);
	if (url && !is_url(url))
		return BAD("Hosted base image manifest %s artifact url must be http:// or https://", label);
	if (path && remote)
		return BAD("Hosted base image manifest %s artifact: a manifest fetched from a URL "
			   "may not name a host path", label);
	const json_t *fn = json_object_get(a, "fileName");
	if (fn) {
		const char *f = json_string_value(fn);
		/* no leading dot: the cache keeps its own hidden files beside the
		 * artifacts (.lock, .NAME.partial-XXXXXX) */
		if (!f || f[0] == '.' || strchr(f, '/') || !plain_chars(f) || strlen(f) > 200)
			return BAD("Hosted base image manifest %s artifact fileName must be a plain file "
				   "name using letters, numbers, dot, underscore, and dash, not starting "
				   "with a dot", label);
		if (!strcmp(f, "manifest.json"))
			return BAD("Hosted base image manifest %s artifact fileName must not be "
				   "manifest.json", label);
	}
	const json_t *sha = json_object_get(a, "sha256");
	bool sha_set = sha && !json_is_null(sha) && !json_is_false(sha) &&
		       !(json_is_string(sha) && !*json_string_value(sha));
	if (url && !sha_set)
		return BAD("Hosted base image manifest %s artifact with url requires sha256", label);
	if (sha && !img_hex64(json_string_value(sha)))
		return BAD("Hosted base image manifest %s artifact sha256 must be a 64 character hex "
			   "string", label);
	const json_t *size = json_object_get(a, "sizeBytes");
	if (size && !(json_is_integer(size) && json_integer_value(size) >= 0))
		return BAD("Hosted base image manifest %s artifact sizeBytes must be a non-negative "
			   "integer", label);
	return 0;
}

int img_validate_manifest(const json_t *m, const char *arch, bool remote, svm_error *err)
{
	const json_t *sv = json_object_get(m, "schemaVersion");
	if (!json_is_number(sv) || json_number_value(sv) != 1)
		return BAD("Hosted base image manifest schemaVersion must be 1");
	const char *id = json_string_value(json_object_get(m, "bundleId"));
	if (!plain_chars(id))
		return BAD("Hosted base image manifest bundleId must use only letters, numbers, dot, "
			   "underscore, and dash");
	if (id[0] == '.' || strlen(id) > 200)
		return BAD("Hosted base image manifest bundleId must not start with a dot nor be "
			   "longer than 200 characters");
	/* the names of /images/'s own files: a bundle of that name would hide behind them */
	static const char *const reserved[] = {"ctl", "latest", "lts", "hosted", "error", "kernels",
					       "rootfs"};
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (!strcmp(id, reserved[i]))
			return BAD("Hosted base image manifest bundleId \"%s\" is a reserved name", id);
	const char *march = json_string_value(json_object_get(m, "arch"));
	if (!march || strcmp(march, arch) != 0)
		return BAD("Hosted base image arch '%s' does not match requested arch '%s'",
			   march ? march : "undefined", arch);
	if (!img_version_ok(json_string_value(json_object_get(m, "firecrackerVersion"))))
		return BAD("Hosted base image manifest firecrackerVersion must look like v1.15.1");
	const char *type = json_string_value(json_object_get(m, "rootfsType"));
	if (!type || (strcmp(type, "ext4") != 0 && strcmp(type, "squashfs") != 0))
		return BAD("Hosted base image manifest rootfsType must be ext4 or squashfs");
	const json_t *k = json_object_get(m, "kernel"), *r = json_object_get(m, "rootfs");
	if (validate_artifact(k, "kernel", remote, err) < 0 ||
	    validate_artifact(r, "rootfs", remote, err) < 0)
		return -1;
	const char *kf = json_string_value(json_object_get(k, "fileName"));
	const char *rf = json_string_value(json_object_get(r, "fileName"));
	if (kf && rf && !strcmp(kf, rf))
		return BAD("Hosted base image manifest kernel and rootfs artifacts must not share the "
			   "fileName %s", kf);
	const json_t *ro = json_object_get(m, "rootfsIsReadOnly");
	if (ro && !json_is_boolean(ro) && !json_is_null(ro))
		return BAD("Hosted base image manifest rootfsIsReadOnly must be a boolean");
	const json_t *ba = json_object_get(m, "bootArgs");
	if (ba && !json_is_string(ba) && !json_is_null(ba))
		return BAD("Hosted base image manifest bootArgs must be a string");
	return 0;
}

/* ------------------------------------------------------------ loading */

static char *read_small_file(const char *path, char *msg, size_t msglen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		img_fmt(msg, msglen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(IMG_MAX_MANIFEST_BYTES + 1);
	size_t used = 0;
	while (buf && used <= IMG_MAX_MANIFEST_BYTES) {
		ssize_t n = read(fd, buf + used, IMG_MAX_MANIFEST_BYTES + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				img_fmt(msg, msglen, "%s: %s", path, strerror(errno));
			break;
		}
		used += (size_t)n;
	}
	close(fd);
	if (buf && used > IMG_MAX_MANIFEST_BYTES) {
		img_fmt(msg, msglen, "%s: larger than %d bytes", path, IMG_MAX_MANIFEST_BYTES);
		free(buf);
		return NULL;
	}
	if (buf)
		buf[used] = '\0';
	return buf;
}

static char *artifact_file_name(const json_t *a, const char *fallback)
{
	const char *fn = json_string_value(json_object_get(a, "fileName"));
	if (fn)
		return strdup(fn);
	/* the seed: basename of the URL's path (or of the path), sanitized */
	const char *from = json_string_value(json_object_get(a, "url"));
	if (!from || !*from)
		from = json_string_value(json_object_get(a, "path"));
	char buf[1024];
	img_fmt(buf, sizeof buf, "%s", from ? from : "");
	if (is_url(buf)) {
		buf[strcspn(buf, "?#")] = '\0';
		char *host_end = strchr(buf + (buf[4] == 's' ? 8 : 7), '/'); /* "http://" may be all */
		if (!host_end)
			buf[0] = '\0';
	}
	char *slash = strrchr(buf, '/');
	const char *base = slash ? slash + 1 : buf;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		base = fallback;
	while (*base == '.')
		base++; /* a name in the cache never starts with a dot (img_valid_name) */
	if (!*base)
		base = fallback;
	char *out = img_sanitize(base);
	if (out && (out[0] == '.' || !strcmp(out, "manifest.json"))) {
		free(out);
		out = strdup("artifact");
	}
	/* a name in the cache is at most 200 characters, as a fileName given */
	if (out && strlen(out) > 200) {
		free(out);
		out = strdup(fallback);
	}
	return out;
}

static char *resolve_path(const char *p, const char *manifest_path)
{
	if (p[0] == '/' || !manifest_path)
		return strdup(p);
	char *copy = strdup(manifest_path);
	char buf[4096];
	img_fmt(buf, sizeof buf, "%s/%s", copy ? dirname(copy) : ".", p);
	free(copy);
	return strdup(buf);
}

int img_resolve_manifest(svm_images *im, const char *where, img_source *src, svm_error *err)
{
	char msg[512] = "";
	bool remote = is_url(where);
	char *text = remote ? img_http_get(where, IMG_MAX_MANIFEST_BYTES, NULL, NULL, msg, sizeof msg)
			    : read_small_file(where, msg, sizeof msg);
	if (!text)
		return svm_error_set(err, SVM_BASE_IMAGE_MANIFEST_FAILED,
				     "Failed to load hosted base image manifest: %s%s%s",
				     remote ? where : "", remote ? ": " : "", msg);
	json_error_t jerr;
	json_t *m = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	free(text);
	if (!m)
		return svm_error_set(err, SVM_BASE_IMAGE_MANIFEST_FAILED,
				     "Failed to load hosted base image manifest: %s: line %d: %s", where,
				     jerr.line, jerr.text);
	if (img_validate_manifest(m, im->arch, remote, err) < 0) {
		json_decref(m);
		return -1;
	}
	const char *type = json_string_value(json_object_get(m, "rootfsType"));
	const json_t *ro = json_object_get(m, "rootfsIsReadOnly");
	const char *ba = json_string_value(json_object_get(m, "bootArgs"));
	src->preset = strdup("hosted");
	src->arch = strdup(im->arch);
	src->ci_version = strdup("hosted");
	src->fc_version = strdup(json_string_value(json_object_get(m, "firecrackerVersion")));
	src->bundle_id = img_sanitize(json_string_value(json_object_get(m, "bundleId")));
	src->rootfs_type = strdup(type);
	src->rootfs_ro = json_is_boolean(ro) ? json_is_true(ro) : !strcmp(type, "squashfs");
	src->boot_args = ba && *ba ? strdup(ba) : img_boot_args(im->arch, type);
	src->source = json_pack("{s:s}", "type", "hosted-manifest");
	json_object_set_new(src->source, remote ? "manifestUrl" : "manifestPath", json_string(where));
	static const char *const labels[2] = {"kernel", "rootfs"};
	for (int i = 0; i < 2; i++) {
		const json_t *a = json_object_get(m, labels[i]);
		const char *url, *path;
		truthy_str(a, "url", &url);
		truthy_str(a, "path", &path);
		img_artifact *art = &src->art[i];
		char fallback[32];
		img_fmt(fallback, sizeof fallback, i == IMG_KERNEL ? "vmlinux" : "rootfs.%s", type);
		art->file_name = artifact_file_name(a, fallback);
		art->url = url ? strdup(url) : NULL;
		art->path = path ? resolve_path(path, remote ? NULL : where) : NULL;
		const char *sha = json_string_value(json_object_get(a, "sha256"));
		art->sha256 = sha ? strdup(sha) : NULL;
		img_lower(art->sha256);
		const json_t *sz = json_object_get(a, "sizeBytes");
		art->size = sz ? (int64_t)json_integer_value(sz) : -1;
		char key[32];
		img_fmt(key, sizeof key, "%sUrl", labels[i]);
		if (url)
			json_object_set_new(src->source, key, json_string(url));
		img_fmt(key, sizeof key, "%sSourcePath", labels[i]);
		if (art->path)
			json_object_set_new(src->source, key, json_string(art->path));
	}
	json_decref(m);
	if (!strcmp(src->art[0].file_name, src->art[1].file_name))
		return BAD("Hosted base image manifest kernel and rootfs artifacts resolve to the same "
			   "file name %s", src->art[0].file_name);
	return 0;
}
