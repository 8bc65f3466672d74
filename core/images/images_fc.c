/*
 * images_fc.c - Firecracker release binaries: DATADIR/bin/VERSION/firecracker
 * and jailer (mode 0755), downloaded once from
 *   RELEASES/download/VERSION/firecracker-VERSION-ARCH.tgz
 * and checked against the SHA-256 the release publishes beside it
 * (…tgz.sha256.txt) when there is one. The archive is never unpacked as a tree:
 * each of the two members is streamed out of it (`tar -xzOf ARCHIVE MEMBER`, from
 * an argv) into a file we create, so no path, link, owner or mode in the archive
 * can reach the disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "images_int.h"
#include "vmm.h"

#define MAX_BINARY_BYTES (512ULL * 1024 * 1024)

static bool executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	       access(path, X_OK) == 0;
}

char *img_which(const char *prog)
{
	const char *env = getenv("PATH");
	char *path = strdup(env && *env ? env : "/usr/bin:/bin");
	char full[PATH_MAX];
	char *save = NULL;
	for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		img_fmt(full, sizeof full, "%s/%s", d, prog);
		if (executable_file(full)) {
			free(path);
			return strdup(full);
		}
	}
	free(path);
	/* a daemon's PATH may lack the sbin directories (mkfs.ext4 lives there) */
	static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
	for (size_t i = 0; i < 4; i++) {
		img_fmt(full, sizeof full, "%s/%s", dirs[i], prog);
		if (executable_file(full))
			return strdup(full);
	}
	return NULL;
}

/* "HASH  NAME" or just "HASH": the published checksum, or NULL if the release
 * has none (404). -1 on any other failure: a checksum we cannot read is not
 * a checksum we may skip. */
static int published_sha(const char *archive_url, char *hex, bool *have, char *msg, size_t msglen)
{
	char url[4096], m[512];
	long status = 0;
	img_fmt(url, sizeof url, "%s.sha256.txt", archive_url);
	*have = false;
	char *body = img_http_get(url, 4096, NULL, &status, m, sizeof m);
	if (!body) {
		if (status == 404)
			return 0;
		img_fmt(msg, msglen, "checksum %s: %s", url, m);
		return -1;
	}
	char tok[80] = "";
	sscanf(body, "%79s", tok);
	free(body);
	if (!img_hex64(tok)) {
		img_fmt(msg, msglen, "checksum %s: no SHA-256 in it", url);
		return -1;
	}
	img_fmt(hex, 65, "%s", tok);
	img_lower(hex);
	*have = true;
	return 0;
}

static int extract_member(const char *tar, const char *archive, const char *member,
			  const char *out_path, char *msg, size_t msglen)
{
	int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (fd < 0) {
		img_fmt(msg, msglen, "%s: %s", out_path, strerror(errno));
		return -1;
	}
	char *argv[] = {(char *)tar, "-x", "-z", "-O", "-f", (char *)archive, "--",
			(char *)member, NULL};
	int rc = img_run(argv, fd, MAX_BINARY_BYTES, msg, msglen);
	struct stat st;
	if (rc == 0 && (fstat(fd, &st) < 0 || st.st_size == 0)) {
		/* a link or a directory in the archive streams nothing */
		img_fmt(msg, msglen, "%s in the archive is not a regular file", member);
		rc = -1;
	}
	if (rc == 0 && (fchmod(fd, 0755) < 0 || fsync(fd) < 0)) {
		img_fmt(msg, msglen, "%s: %s", out_path, strerror(errno));
		rc = -1;
	}
	close(fd);
	if (rc < 0)
		unlink(out_path);
	return rc;
}

/* Downloads and unpacks one release into DATADIR/bin/VERSION (lock held). */
/* A release's download progress, for the images/ctl read-out (as a bundle's
 * status shows its artifacts'). */
struct fc_progress {
	svm_images *im;
	const char *version;
};

static void set_progress(svm_images *im, char *text)
{
	pthread_mutex_lock(&im->mu);
	free(im->fc_progress);
	im->fc_progress = text;
	pthread_mutex_unlock(&im->mu);
}

static int on_fc_progress(void *ud, uint64_t done, uint64_t total)
{
	struct fc_progress *p = ud;
	char *text = NULL;
	if (asprintf(&text, "%s %llu/%llu", p->version, (unsigned long long)done,
		     (unsigned long long)total) < 0)
		text = NULL;
	set_progress(p->im, text);
	return atomic_load(&p->im->cancelled) ? -1 : 0; /* the mount is ending */
}

static int fetch_release(svm_images *im, const char *version, char *msg, size_t msglen)
{
	char staging[PATH_MAX], archive[PATH_MAX], url[4096], name[256], hex[65], want[65];
	img_fmt(name, sizeof name, "firecracker-%s-%s.tgz", version, im->arch);
	img_fmt(url, sizeof url, "%s/download/%s/%s", im->releases_url, version, name);
	img_fmt(staging, sizeof staging, "%s/bin/.%s.partial-XXXXXX", im->data_dir, version);
	char *tar = img_which("tar");
	if (!tar) {
		img_fmt(msg, msglen, "tar not found (install the tar package)");
		return -1;
	}
	if (!mkdtemp(staging)) {
		img_fmt(msg, msglen, "%s: %s", staging, strerror(errno));
		free(tar);
		return -1;
	}
	chmod(staging, 0755);
	img_fmt(archive, sizeof archive, "%s/%s", staging, name);
	int rc = -1;
	int fd = open(archive, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool have = false;
	if (fd < 0) {
		img_fmt(msg, msglen, "%s: %s", archive, strerror(errno));
		goto out;
	}
	sink_log(im->sink, "images: downloading Firecracker %s from %s", version, url);
	struct fc_progress pr = {im, version};
	int dl = img_http_download(url, fd, -1, hex, NULL, on_fc_progress, &pr, NULL, msg, msglen);
	set_progress(im, NULL);
	if (dl < 0) {
		close(fd);
		goto out;
	}
	close(fd);
	if (published_sha(url, want, &have, msg, msglen) < 0)
		goto out;
	if (have && strcmp(want, hex) != 0) {
		img_fmt(msg, msglen, "%s SHA256 mismatch: expected %s, got %s", name, want, hex);
		goto out;
	}
	if (!have)
		sink_log(im->sink, "warning: Firecracker %s: the release publishes no SHA-256 for %s",
			version, name);
	static const char *const bins[2] = {"firecracker", "jailer"};
	for (int i = 0; i < 2; i++) {
		char member[512], out[PATH_MAX], m[512];
		img_fmt(member, sizeof member, "release-%s-%s/%s-%s-%s", version, im->arch, bins[i],
			 version, im->arch);
		img_fmt(out, sizeof out, "%s/%s", staging, bins[i]);
		if (extract_member(tar, archive, member, out, m, sizeof m) < 0) {
			if (i == 0) {
				img_fmt(msg, msglen, "%s: %s", name, m);
				goto out;
			}
			sink_log(im->sink, "images: Firecracker %s: no jailer (%s)", version, m);
		}
	}
	unlink(archive);
	char final[PATH_MAX];
	img_fmt(final, sizeof final, "%s/bin/%s", im->data_dir, version);
	if (rename(staging, final) < 0) {
		/* a leftover without a binary (we hold the lock: nobody else is here) */
		img_rm_rf(final);
		if (rename(staging, final) < 0) {
			img_fmt(msg, msglen, "rename to %s: %s", final, strerror(errno));
			goto out;
		}
	}
	staging[0] = '\0';
	rc = 0;
	sink_log(im->sink, "images: Firecracker %s%s ready in %s", version,
		have ? " (SHA-256 verified)" : "", final);
out:
	if (staging[0])
		img_rm_rf(staging);
	free(tar);
	return rc;
}

static char *ensure_version(svm_images *im, const char *version, svm_error *err)
{
	char path[PATH_MAX], dir[PATH_MAX], lock[PATH_MAX], msg[1024] = "";
	img_fmt(path, sizeof path, "%s/bin/%s/firecracker", im->data_dir, version);
	if (executable_file(path))
		return strdup(path);
	img_fmt(dir, sizeof dir, "%s/bin", im->data_dir);
	img_fmt(lock, sizeof lock, "%s/.%s.lock", dir, version);
	int lk = -1;
	if (img_mkdir_p(dir, 0755) < 0 || (lk = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
	    flock(lk, LOCK_EX) < 0) {
		svm_error_set(err, SVM_DOWNLOAD_FAILED, "Failed to download Firecracker %s: %s: %s",
			      version, lk < 0 ? dir : lock, strerror(errno));
		if (lk >= 0)
			close(lk);
		return NULL;
	}
	/* single flight: whoever held the lock may have fetched it */
	int rc = executable_file(path) ? 0 : fetch_release(im, version, msg, sizeof msg);
	close(lk);
	if (rc < 0) {
		svm_error_set(err, SVM_DOWNLOAD_FAILED, "Failed to download Firecracker %s: %s", version,
			      msg);
		sink_log(im->sink, "images: %s", err ? err->message : msg);
		return NULL;
	}
	return strdup(path);
}

char *images_fetch_firecracker(svm_images *im, const char *version, svm_error *err)
{
	char latest[64];
	if (!strcmp(version, "latest")) {
		if (img_latest_fc_version(im, latest, sizeof latest, err) < 0)
			return NULL;
		version = latest;
	}
	if (!img_version_ok(version)) {
		svm_error_set(err, SVM_INVALID_ARGUMENT, "firecracker: \"%s\" is not a version "
			      "(vMAJOR.MINOR.PATCH, or latest)", version);
		return NULL;
	}
	char *p = ensure_version(im, version, err);
	if (p)
		sink_log(im->sink, "images: Firecracker %s at %s", version, p);
	return p;
}

/* Every version under DATADIR/bin, space-separated, oldest first ("" if none). */
char *images_fc_versions(svm_images *im)
{
	char dir[PATH_MAX], path[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/bin", im->data_dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, versionsort);
	size_t cap = 1, len = 0;
	for (int i = 0; i < n; i++)
		cap += strlen(names[i]->d_name) + 1;
	char *out = calloc(1, cap);
	for (int i = 0; i < n; i++) {
		img_fmt(path, sizeof path, "%s/%s/firecracker", dir, names[i]->d_name);
		if (out && img_version_ok(names[i]->d_name) && executable_file(path))
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "",
						names[i]->d_name);
		free(names[i]);
	}
	free(names);
	return out;
}

char *images_cached_fc_version(svm_images *im)
{
	char dir[PATH_MAX], path[PATH_MAX];
	img_fmt(dir, sizeof dir, "%s/bin", im->data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *best = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!img_version_ok(e->d_name))
			continue;
		img_fmt(path, sizeof path, "%s/%s/firecracker", dir, e->d_name);
		if (!executable_file(path) || (best && strverscmp(e->d_name, best) <= 0))
			continue;
		free(best);
		best = strdup(e->d_name);
	}
	closedir(d);
	return best;
}

char *images_firecracker(svm_images *im, const char *version, svm_error *err)
{
	if (im->firecracker) {
		if (vmm_check_binary(im->firecracker, err) < 0)
			return NULL;
		return strdup(im->firecracker);
	}
	/* the configured version wins over the image's (as the seed's integration
	 * test: SMARTVM_FIRECRACKER_VERSION || baseImage.firecrackerVersion) */
	const char *want = im->fc_version_opt ? im->fc_version_opt : version;
	char latest[64];
	char *cached = NULL;
	if (!want) {
		/* nothing asked: what is here, and only when nothing is, the network */
		cached = images_cached_fc_version(im);
		if (!cached && img_latest_fc_version(im, latest, sizeof latest, err) < 0)
			return NULL;
		want = cached ? cached : latest;
	}
	if (!img_version_ok(want)) {
		svm_error_set(err, SVM_INVALID_ARGUMENT,
			      "Firecracker version \"%s\" does not look like v1.15.1", want);
		free(cached);
		return NULL;
	}
	char *path = ensure_version(im, want, err);
	free(cached);
	return path;
}
