/*
 * images_proc.c - the helper programs of images (tar, mkfs.ext4), run with
 * svm_run (svmspawn.h: from an argv, no shell, no inherited fds, stdout copied by
 * us with a cap). What a failure says is one line for the images' error file:
 * the program, how it ended and the last line of its stderr.
 */
#include <stdio.h>
#include <sys/wait.h>

#include "images_int.h"
#include "svmspawn.h"

int img_run(char *const argv[], int out_fd, uint64_t out_cap, char *msg, size_t msglen)
{
	svm_run_io io = {.out_fd = out_fd, .out_cap = out_cap, .keep_err = true, .timeout_ms = -1};
	svm_error e;
	msg[0] = '\0';
	if (svm_run(argv, &io, &e) < 0) {
		img_fmt(msg, msglen, "%s", e.message);
		return -1;
	}
	if (WIFEXITED(io.wstatus) && WEXITSTATUS(io.wstatus) == 0)
		return 0;
	char st[32];
	svm_status_text(io.wstatus, st, sizeof st);
	const char *last = svm_last_line(io.err_tail);
	img_fmt(msg, msglen, "%s ended with %s%s%s", argv[0], st, last[0] ? ": " : "", last);
	return -1;
}
