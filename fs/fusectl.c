/*
 * fusectl.c - the end of a FUSE connection that a stuck request would keep
 * alive: the kernel's abort file (/sys/fs/fuse/connections/N/abort) for this
 * mount's connection, written only while that number is still this mount's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemonlog.h"
#include "fusectl.h"
#include "tree/tree.h"

/* The FUSE connection's number (its directory under /sys/fs/fuse/connections):
 * the device number of the mounted filesystem. */
static unsigned conn_id;
static char conn_mountpoint[PATH_MAX];
#define FUSECTL "/sys/fs/fuse/connections"

/* From /proc/self/mountinfo, not stat(): our own mount answers nothing yet. The
 * last fuse mount at mountpoint is ours (0 when not found). */
static unsigned mounted_conn_id(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[4096];
	unsigned id = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char at[PATH_MAX];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, at) == 3 && maj == 0 &&
		    !strcmp(at, mountpoint) && strstr(line, " - fuse"))
			id = min;
	}
	fclose(f);
	return id;
}

/* Writes to the connection's abort file; mounts fusectl there first if this
 * host has not (systemd does at boot). Returns 0 when the kernel took it. */
static int fusectl_abort(void)
{
	char path[128];
	snprintf(path, sizeof path, FUSECTL "/%u/abort", conn_id);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	return write(fd, "1", 1) == 1 ? 0 : -1;
}

/* Ends the FUSE connection at once. A request stuck in the kernel holds a
 * reference to our /dev/fuse descriptor (an entry invalidation waiting for a
 * directory lock that a request no worker will answer holds), so closing it is
 * not enough: the kernel's abort file fails every waiting request. Without it,
 * /dev/null takes the place of the descriptor (libfuse closes that number later,
 * harmlessly), which ends the connection once the last reference goes. */
void fs_fusectl_end(bool in_fuse)
{
	/* only while the connection is still this mount's: once its superblock is
	 * gone, its number may already be another mount's (numbers are reused). A
	 * notifier waiting in the kernel's notification code holds the superblock;
	 * else the mount must still be in mountinfo. */
	if (conn_id && (in_fuse || mounted_conn_id(conn_mountpoint) == conn_id) && fusectl_abort() == 0) {
		fs_logf("the notifier was stuck in the kernel at the end: the FUSE connection was "
		        "aborted (" FUSECTL "/%u/abort)", conn_id);
		return;
	}
	int fd = fsd.se ? fuse_session_fd(fsd.se) : -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0 && null >= 0)
		dup2(null, fd);
	if (null >= 0)
		close(null);
	fs_logf("the notifier was stuck in the kernel at the end: the FUSE connection was ended");
}

void fs_fusectl_remember(const char *mountpoint)
{
	conn_id = mounted_conn_id(mountpoint);
	snprintf(conn_mountpoint, sizeof conn_mountpoint, "%s", mountpoint);
}
