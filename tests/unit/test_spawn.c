/*
 * test_spawn.c - the core's one child-process runner (svm_run) and the small
 * base utilities beside it: captured output with and without a cap, a bounded
 * run that outlives its wait, stdout copied with a cap, the tail of stderr,
 * stderr merged into stdout, a binary that is not there; escaping, growing
 * arrays, listing a directory.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "check.h"
#include "fileio.h"
#include "svmspawn.h"

static const char *tool(const char *name)
{
	static char p[64];
	snprintf(p, sizeof p, "/usr/bin/%s", name);
	if (access(p, X_OK) != 0)
		snprintf(p, sizeof p, "/bin/%s", name);
	return p;
}

static void test_capture(void)
{
	char *argv[] = {(char *)tool("echo"), "hello", NULL};
	svm_run_io io = {.out_fd = -1, .capture = true, .timeout_ms = -1};
	svm_error e;
	CHECK_INT(svm_run(argv, &io, &e), 0, "echo runs");
	CHECK_STR(io.out, "hello\n", "its stdout is captured");
	CHECK(WIFEXITED(io.wstatus) && WEXITSTATUS(io.wstatus) == 0, "it exits 0");
	free(io.out);

	/* a cap: reading stops there, and the child is ended */
	char *yes[] = {(char *)tool("yes"), NULL};
	svm_run_io capped = {.out_fd = -1, .capture = true, .out_cap = 4096, .timeout_ms = 2000};
	uint64_t t0 = svm_now_ns();
	CHECK_INT(svm_run(yes, &capped, &e), 0, "yes runs");
	CHECK_INT(capped.out_len, 4096, "capture stops at its cap");
	CHECK_INT(strlen(capped.out), 4096, "the capture is a string");
	CHECK(svm_now_ns() - t0 < 2000000000ULL, "an endless writer does not hold the run");
	free(capped.out);
}

static void test_bounded(void)
{
	char *argv[] = {(char *)tool("sleep"), "10", NULL};
	svm_run_io io = {.out_fd = -1, .capture = true, .timeout_ms = 200};
	svm_error e;
	uint64_t t0 = svm_now_ns();
	CHECK_INT(svm_run(argv, &io, &e), 0, "sleep runs");
	CHECK(svm_now_ns() - t0 < 3000000000ULL, "a bounded run ends after its wait");
	CHECK(WIFSIGNALED(io.wstatus) && WTERMSIG(io.wstatus) == SIGKILL, "the child was killed");
	CHECK_STR(io.out, "", "nothing captured is an empty string");
	free(io.out);
}

static void test_copy(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char *yes[] = {(char *)tool("yes"), NULL};
	svm_run_io io = {.out_fd = fd, .out_cap = 100000, .timeout_ms = -1};
	svm_error e;
	CHECK_INT(svm_run(yes, &io, &e), -1, "copying more than the cap fails");
	CHECK_INT(io.failed, SVM_RUN_OUTPUT, "as a failed output");
	CHECK(strstr(e.message, "output over its size limit") != NULL, "and says so");
	CHECK(WIFSIGNALED(io.wstatus), "the child was killed");

	char *echo[] = {(char *)tool("echo"), "small", NULL};
	svm_run_io ok = {.out_fd = fd, .out_cap = 100, .timeout_ms = -1};
	CHECK_INT(svm_run(echo, &ok, &e), 0, "output under the cap is copied");
	close(fd);
}

static void test_stderr(void)
{
	char *argv[] = {(char *)tool("ls"), "/nonexistent-spawn-test", NULL};
	svm_run_io io = {.out_fd = -1, .keep_err = true, .timeout_ms = -1};
	svm_error e;
	CHECK_INT(svm_run(argv, &io, &e), 0, "ls runs");
	CHECK(WIFEXITED(io.wstatus) && WEXITSTATUS(io.wstatus) != 0, "and fails");
	CHECK(strstr(io.err_tail, "nonexistent-spawn-test") != NULL, "its stderr's tail is kept");
	CHECK(!strchr(svm_last_line(io.err_tail), '\n'), "the last line is one line");

	svm_run_io merged = {.out_fd = -1, .capture = true, .merge_err = true, .timeout_ms = -1};
	CHECK_INT(svm_run(argv, &merged, &e), 0, "ls runs merged");
	CHECK(merged.out && strstr(merged.out, "nonexistent-spawn-test"), "stderr lands in stdout");
	free(merged.out);
}

static void test_missing(void)
{
	char *argv[] = {"/nonexistent-spawn-test/bin", NULL};
	svm_run_io io = {.out_fd = -1, .capture = true, .timeout_ms = -1};
	svm_error e;
	CHECK_INT(svm_run(argv, &io, &e), -1, "a missing binary does not run");
	CHECK_INT(io.failed, SVM_RUN_SPAWN, "it fails at the spawn");
	CHECK_INT(e.code, SVM_BINARY_NOT_FOUND, "as BINARY_NOT_FOUND");
	CHECK_INT(errno, ENOENT, "errno says why");
	CHECK(io.out == NULL, "no capture is left behind");
}

static void test_base(void)
{
	char *s = svm_escape("a\nb\x1b" "c\x7f");
	CHECK_STR(s, "a\\x0ab\\x1bc\\x7f", "control bytes are escaped");
	free(s);

	int *v = NULL;
	size_t cap = 0;
	int ok = 1;
	for (int i = 0; i < 1000 && ok; i++) {
		ok = svm_grow(&v, &cap, (size_t)i + 1, sizeof *v) == 0 && cap > (size_t)i;
		if (ok)
			v[i] = i;
	}
	CHECK(ok && v[999] == 999, "an array grows as it fills");
	CHECK(cap < 2048, "by doubling");
	free(v);

	char dir[] = "/tmp/svm-spawn-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "a directory to list");
	const char *names[] = {"b", "a", ".hidden"};
	for (int i = 0; i < 3; i++) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		CHECK(fd >= 0 && svm_write_all(fd, "x", 1) == 0, "a file written");
		close(fd);
	}
	size_t n = 0;
	char **l = svm_dir_names(dir, NULL, NULL, &n);
	CHECK_INT(n, 2, "hidden names are not listed");
	CHECK(l && l[2] == NULL, "the list ends in NULL");
	for (int i = 0; i < 3; i++) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
	svm_strv_free(l);
	l = svm_dir_names(dir, NULL, NULL, &n);
	CHECK(l && !l[0] && n == 0, "a missing directory lists empty");
	svm_strv_free(l);
}

int main(void)
{
	test_capture();
	test_bounded();
	test_copy();
	test_stderr();
	test_missing();
	test_base();
	return check_done();
}
