/* jsonfile.c - a small JSON file read whole, then parsed (see jsonfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "jsonfile.h"

json_t *svm_json_load_fd(int fd, size_t max, size_t flags, json_error_t *je)
{
	size_t len = 0;
	char *text = svm_read_fd(fd, max, &len);
	if (!text) {
		if (je)
			snprintf(je->text, sizeof je->text, "%s",
				 errno == EFBIG ? "larger than allowed" : strerror(errno));
		return NULL;
	}
	json_t *doc = json_loadb(text, len, flags, je);
	free(text);
	return doc;
}

json_t *svm_json_load_path(const char *path, size_t max, size_t flags, json_error_t *je)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (je)
			snprintf(je->text, sizeof je->text, "%s", strerror(errno));
		return NULL;
	}
	json_t *doc = svm_json_load_fd(fd, max, flags, je);
	close(fd);
	return doc;
}
