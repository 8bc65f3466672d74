/* error.c - the one error object and the one code -> errno table (DESIGN §3). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smartvm.h"

static const struct {
	const char *name;
	int err;
} codes[SVM_CODE_COUNT] = {
	[SVM_OK] = {"OK", 0},
	[SVM_INVALID_STATE] = {"INVALID_STATE", EBUSY},
	[SVM_INVALID_CONFIG] = {"INVALID_CONFIG", EINVAL},
	[SVM_SOCKET_TIMEOUT] = {"SOCKET_TIMEOUT", ETIMEDOUT},
	[SVM_API_TIMEOUT] = {"API_TIMEOUT", ETIMEDOUT},
	[SVM_SOCKET_REQUEST_FAILED] = {"SOCKET_REQUEST_FAILED", EIO},
	[SVM_API_ERROR] = {"API_ERROR", EIO},
	[SVM_BINARY_NOT_FOUND] = {"BINARY_NOT_FOUND", ENOENT},
	[SVM_DOWNLOAD_FAILED] = {"DOWNLOAD_FAILED", EIO},
	[SVM_VERSION_FETCH_FAILED] = {"VERSION_FETCH_FAILED", EIO},
	[SVM_BASE_IMAGE_RESOLVE_FAILED] = {"BASE_IMAGE_RESOLVE_FAILED", EIO},
	[SVM_BASE_IMAGE_MANIFEST_FAILED] = {"BASE_IMAGE_MANIFEST_FAILED", EIO},
	[SVM_BASE_IMAGE_PREPARE_FAILED] = {"BASE_IMAGE_PREPARE_FAILED", EIO},
	[SVM_INVALID_BASE_IMAGE_MANIFEST] = {"INVALID_BASE_IMAGE_MANIFEST", EINVAL},
	[SVM_INVALID_BASE_IMAGE_CACHE_LIMIT] = {"INVALID_BASE_IMAGE_CACHE_LIMIT", EINVAL},
	[SVM_INVALID_SUBNET] = {"INVALID_SUBNET", EINVAL},
	[SVM_INVALID_INTERFACE_NAME] = {"INVALID_INTERFACE_NAME", EINVAL},
	[SVM_IP_EXHAUSTED] = {"IP_EXHAUSTED", ENOSPC},
	[SVM_BRIDGE_SETUP_FAILED] = {"BRIDGE_SETUP_FAILED", EIO},
	[SVM_TAP_CREATE_FAILED] = {"TAP_CREATE_FAILED", EIO},
	[SVM_ROOTFS_CREATE_FAILED] = {"ROOTFS_CREATE_FAILED", EIO},
	[SVM_ROOTFS_CLONE_FAILED] = {"ROOTFS_CLONE_FAILED", EIO},
	[SVM_START_FAILED] = {"START_FAILED", EIO},
	[SVM_NO_CLIENT] = {"NO_CLIENT", EBUSY},
	[SVM_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", EINVAL},
	[SVM_NOT_FOUND] = {"NOT_FOUND", ENOENT},
	[SVM_NO_SPACE] = {"NO_SPACE", ENOSPC},
	[SVM_PERMISSION] = {"PERMISSION", EACCES},
	[SVM_TOO_LARGE] = {"TOO_LARGE", EFBIG},
	[SVM_NAME_TOO_LONG] = {"NAME_TOO_LONG", ENAMETOOLONG},
	[SVM_EXISTS] = {"EXISTS", EEXIST},
	[SVM_INTERRUPTED] = {"INTERRUPTED", EINTR},
	[SVM_QUOTA] = {"QUOTA", EDQUOT},
};

const char *svm_code_name(svm_code code)
{
	if ((unsigned)code >= SVM_CODE_COUNT)
		return "UNKNOWN";
	return codes[code].name;
}

int svm_code_errno(svm_code code)
{
	if ((unsigned)code >= SVM_CODE_COUNT)
		return EIO;
	return codes[code].err;
}

int svm_error_set(svm_error *err, svm_code code, const char *fmt, ...)
{
	if (!err)
		return -1;
	err->code = code;
	err->http_status = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	/* one line: a message that spans lines would break the error files */
	for (char *p = err->message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return -1;
}

void svm_error_clear(svm_error *err)
{
	if (!err)
		return;
	err->code = SVM_OK;
	err->http_status = 0;
	err->message[0] = '\0';
}
