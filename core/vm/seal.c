/*
 * seal.c - the daemon's seal on its snapshots (seal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "seal.h"

#define KEY_FILE "seal.key"

static int read_key(int fd, unsigned char *key)
{
	size_t got = 0;
	while (got < 32) {
		ssize_t n = read(fd, key + got, 32 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* The key: read, or made (O_EXCL: two mounts sharing the data dir agree on one). */
static int load_key(svm *s, svm_error *err)
{
	if (s->seal_ready)
		return 0;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/" KEY_FILE, s->data_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		unsigned char key[32];
		bool ok = RAND_bytes(key, sizeof key) == 1 && write(fd, key, sizeof key) == sizeof key &&
			  fsync(fd) == 0;
		close(fd);
		if (!ok) {
			unlink(path);
			return svm_error_set(err, SVM_NO_SPACE, "%s: cannot make the snapshot key", path);
		}
	} else if (errno != EEXIST) {
		return svm_error_set(err, SVM_PERMISSION, "%s: %s", path, strerror(errno));
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || read_key(fd, s->seal_key) < 0) {
		if (fd >= 0)
			close(fd);
		return svm_error_set(err, SVM_PERMISSION, "%s: cannot read the snapshot key", path);
	}
	close(fd);
	s->seal_ready = true;
	return 0;
}

static int compute(svm *s, uid_t owner, const char *rundir, const char *vmstate_sha,
		   const char *config_sha, char out[SEAL_HEX], svm_error *err)
{
	pthread_mutex_lock(&s->seal_mu);
	int rc = load_key(s, err);
	pthread_mutex_unlock(&s->seal_mu);
	if (rc < 0)
		return -1;
	char msg[PATH_MAX + 256];
	int n = snprintf(msg, sizeof msg, "smartvmfs snapshot 1\nowner %u\nruntimeDir %s\nvmstate %s\n"
			 "config %s\n", (unsigned)owner, rundir, vmstate_sha, config_sha);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (n < 0 || (size_t)n >= sizeof msg ||
	    !HMAC(EVP_sha256(), s->seal_key, sizeof s->seal_key, (unsigned char *)msg, (size_t)n, md, &len))
		return svm_error_set(err, SVM_NO_SPACE, "cannot compute a snapshot seal");
	svm_hex(md, len < 32 ? len : 32, out);
	return 0;
}

int seal_make(svm *s, uid_t owner, const char *rundir, const char *vmstate_sha,
	      const char *config_sha, char out[SEAL_HEX], svm_error *err)
{
	return compute(s, owner, rundir, vmstate_sha, config_sha, out, err);
}

bool seal_check(svm *s, uid_t owner, const char *rundir, const char *vmstate_sha,
		const char *config_sha, const char *seal)
{
	char want[SEAL_HEX];
	svm_error e;
	if (!seal || strlen(seal) != SEAL_HEX - 1 ||
	    compute(s, owner, rundir, vmstate_sha, config_sha, want, &e) < 0)
		return false;
	return CRYPTO_memcmp(want, seal, SEAL_HEX - 1) == 0;
}
