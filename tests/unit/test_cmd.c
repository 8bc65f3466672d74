/*
 * test_cmd.c - the one parser of every ctl file (core/base/cmd.c) and the VM
 * verb table it reads: arity, the rest-of-line rule, host-path arguments, the
 * raw-byte checks and the echo an error file shows.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "smartvm.h"

static int parse(const svm_cmdtab *t, const char *line, svm_cmdline *c, svm_error *e)
{
	static char scratch[512];
	snprintf(scratch, sizeof scratch, "%s", line);
	return svm_cmd_parse(t, line, scratch, c, e);
}

static void test_vm_table(void)
{
	const svm_cmdtab *t = svm_vm_commands();
	CHECK_INT(t->n, SVM_VERB_COUNT, "one row per verb");
	int misplaced = 0;
	for (int v = 0; v < t->n; v++)
		misplaced += t->rows[v].index != v || t->rows[v].max_args > SVM_MAX_ARGS;
	CHECK_INT(misplaced, 0, "rows in the order of enum svm_verb, arity within SVM_MAX_ARGS");
	CHECK(t->rows[SVM_V_START].flags & SVM_CF_BOOTS && t->rows[SVM_V_RESTORE].flags & SVM_CF_BOOTS &&
		      !(t->rows[SVM_V_PAUSE].flags & SVM_CF_BOOTS),
	      "start and restore boot a VMM, pause does not");
}

static void test_parse(void)
{
	const svm_cmdtab *t = svm_vm_commands();
	svm_cmdline c;
	svm_error e;
	CHECK(parse(t, "start", &c, &e) == 0 && c.cmd->index == SVM_V_START && c.argc == 0, "start");
	CHECK(parse(t, "frob 3", &c, &e) < 0 && e.code == SVM_INVALID_ARGUMENT &&
		      strstr(e.message, "unknown control message \"frob 3\""),
	      "an unknown command names the line");
	CHECK(parse(t, "start now", &c, &e) < 0 && strstr(e.message, "bad arguments \"start now\": usage: start"),
	      "too many arguments: the usage");
	CHECK(parse(t, "balloon", &c, &e) < 0 && strstr(e.message, "usage: balloon MIB"),
	      "too few arguments: the usage");
	CHECK(parse(t, "netif eth0 {\"rxRateLimiter\": {}}", &c, &e) == 0 && c.argc == 2 &&
		      !strcmp(c.argv[1], "{\"rxRateLimiter\": {}}"),
	      "the last argument takes the rest of the line, blanks and all");
	CHECK(parse(t, "snapshot  a\tb   full", &c, &e) == 0 && c.argc == 3 && !strcmp(c.argv[0], "a") &&
		      !strcmp(c.argv[1], "b") && !strcmp(c.argv[2], "full"),
	      "blanks and tabs separate arguments");

	static const svm_cmd words[] = {{0, "fetch", 1, 2, 0, 0, -1, "fetch WHAT [force]"}};
	static const svm_cmdtab wt = {words, 1};
	CHECK(parse(&wt, "fetch a b c", &c, &e) < 0 && strstr(e.message, "usage: fetch WHAT [force]"),
	      "without the rest-of-line rule, a word too many is refused");
}

static void test_paths(void)
{
	const svm_cmdtab *t = svm_vm_commands();
	svm_cmdline c;
	svm_error e;
	CHECK(parse(t, "snapshot mine", &c, &e) == 0 && svm_cmd_path(&c) == NULL,
	      "snapshot NAME: no host path (the VM's own store)");
	CHECK(parse(t, "snapshot /srv/s", &c, &e) == 0 && svm_cmd_path(&c) && !strcmp(svm_cmd_path(&c), "/srv/s"),
	      "snapshot DIR: the host path");
	CHECK(parse(t, "drive rootfs - {}", &c, &e) == 0 && svm_cmd_path(&c) == NULL,
	      "drive ID -: keeps the file, no path");
	CHECK(parse(t, "drive rootfs /d.img", &c, &e) == 0 && svm_cmd_path(&c) &&
		      !strcmp(svm_cmd_path(&c), "/d.img"),
	      "drive ID PATH: the host path");
	CHECK(parse(t, "balloon 64", &c, &e) == 0 && svm_cmd_path(&c) == NULL, "balloon: none");
}

static void test_bytes_and_echo(void)
{
	svm_error e;
	CHECK(svm_cmd_check_bytes("start\r", 6, &e) == 0, "a CR ending the line is fine");
	CHECK(svm_cmd_check_bytes("st\0art", 6, &e) < 0 && strstr(e.message, "NUL byte at offset 2"),
	      "a NUL byte is refused with its offset");
	CHECK(svm_cmd_check_bytes("st\033art", 6, &e) < 0 && strstr(e.message, "0x1b"),
	      "an escape byte is refused");
	static char big[SVM_CMD_LINE_MAX + 2];
	memset(big, 'a', sizeof big);
	CHECK(svm_cmd_check_bytes(big, sizeof big, &e) < 0 && e.code == SVM_TOO_LARGE,
	      "an overlong line is TOO_LARGE");

	const svm_cmdtab *t = svm_vm_commands();
	char *s = svm_cmd_echo(t, "  metadata {\"token\": \"s3cret\"}\n", 32);
	CHECK(s && !strstr(s, "s3cret") && strstr(s, "metadata (") && strstr(s, "bytes of JSON not shown"),
	      "a secret command's arguments are not echoed");
	free(s);
	s = svm_cmd_echo(t, "start\033[2J", 9);
	CHECK_STR(s, "start\\x1b[2J", "control bytes are echoed as \\xHH");
	free(s);
	s = svm_cmd_echo(t, big, 1000);
	CHECK(s && strlen(s) < SVM_CMD_ECHO_MAX + 40 && strstr(s, "... (1000 bytes)"),
	      "a long line is echoed cut, with its length");
	free(s);
}

int main(void)
{
	test_vm_table();
	test_parse();
	test_paths();
	test_bytes_and_echo();
	return check_done();
}
