/*
 * images_proc.c - the helper programs of images (tar, mkfs.ext4), always from an
 * argv (vmm_spawn: posix_spawn, no shell, no inherited fds). Their stdout is
 * copied by us, with a cap, so a hostile archive cannot fill the disk through
 * `tar -O`; the tail of their stderr becomes the error message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "images_int.h"
#include "vmm.h"

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Keeps the last bytes of stderr (the reason is usually at the end). */
static void keep_tail(char *tail, size_t cap, size_t *used, const char *p, size_t n)
{
	if (n >= cap - 1) {
		p += n - (cap - 1);
		n = cap - 1;
	}
	if (*used + n > cap - 1) {
		size_t drop = *used + n - (cap - 1);
		memmove(tail, tail + drop, *used - drop);
		*used -= drop;
	}
	memcpy(tail + *used, p, n);
	*used += n;
	tail[*used] = '\0';
}

int img_run(char *const argv[], int out_fd, uint64_t out_cap, char *msg, size_t msglen)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	msg[0] = '\0';
	if (devnull < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (out_fd >= 0 && pipe2(outp, O_CLOEXEC) < 0)) {
		img_fmt(msg, msglen, "%s: cannot make pipes: %s", argv[0], strerror(errno));
		goto fail_early;
	}
	int fds[3] = {devnull, out_fd >= 0 ? outp[1] : devnull, errp[1]};
	pid_t pid;
	int pidfd;
	svm_error e;
	if (vmm_spawn(argv, fds, &pid, &pidfd, &e) < 0) {
		img_fmt(msg, msglen, "%s", e.message);
		goto fail_early;
	}
	close(errp[1]);
	errp[1] = -1;
	if (outp[1] >= 0) {
		close(outp[1]);
		outp[1] = -1;
	}
	char tail[512] = "", buf[65536];
	size_t tail_used = 0;
	uint64_t copied = 0;
	bool failed_copy = false;
	struct pollfd p[2] = {{.fd = errp[0], .events = POLLIN}, {.fd = outp[0], .events = POLLIN}};
	int open_pipes = out_fd >= 0 ? 2 : 1;
	while (open_pipes > 0) {
		if (poll(p, out_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
				open_pipes--;
				continue;
			}
			if (i == 0) {
				keep_tail(tail, sizeof tail, &tail_used, buf, (size_t)n);
				continue;
			}
			copied += (uint64_t)n;
			if (failed_copy)
				continue;
			if ((out_cap && copied > out_cap) || write_all(out_fd, buf, (size_t)n) < 0) {
				failed_copy = true;
				img_fmt(msg, msglen, "%s: output %s", argv[0],
					 out_cap && copied > out_cap ? "over its size limit" : strerror(errno));
				kill(pid, SIGKILL);
			}
		}
	}
	struct pollfd pp = {.fd = pidfd, .events = POLLIN};
	while (poll(&pp, 1, -1) < 0 && errno == EINTR)
		;
	int ws = 0;
	if (vmm_reap(pidfd, &ws) < 0)
		waitpid(pid, &ws, 0);
	close(pidfd);
	close(errp[0]);
	if (outp[0] >= 0)
		close(outp[0]);
	close(devnull);
	if (failed_copy)
		return -1;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	char st[32];
	vmm_status_text(ws, st, sizeof st);
	/* one line: the last line of stderr */
	while (tail_used && (tail[tail_used - 1] == '\n' || tail[tail_used - 1] == '\r'))
		tail[--tail_used] = '\0';
	char *last = strrchr(tail, '\n');
	img_fmt(msg, msglen, "%s ended with %s%s%s", argv[0], st, tail[0] ? ": " : "",
		 last ? last + 1 : tail);
	return -1;
fail_early:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return -1;
}
