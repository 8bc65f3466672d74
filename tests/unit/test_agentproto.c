/*
 * test_agentproto.c - the agent protocol's codec (core/base/agentproto.c): what
 * one end encodes the other decodes to the same fields; frames arriving a byte
 * at a time are whole only at their last byte; and every kind of malformed
 * frame a hostile guest could send is refused, a bad header before its payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentproto.h"
#include "check.h"

static uint8_t buf[SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD + 64];

/* A frame by hand: type, reserved, length, then the payload bytes. */
static size_t raw(uint16_t type, uint16_t zero, uint32_t len, const void *p, size_t plen)
{
	buf[0] = (uint8_t)(type >> 8), buf[1] = (uint8_t)type;
	buf[2] = (uint8_t)(zero >> 8), buf[3] = (uint8_t)zero;
	buf[4] = (uint8_t)(len >> 24), buf[5] = (uint8_t)(len >> 16);
	buf[6] = (uint8_t)(len >> 8), buf[7] = (uint8_t)len;
	if (plen)
		memcpy(buf + 8, p, plen);
	return 8 + plen;
}

static int parse(size_t n, bool from_agent, const char **why)
{
	struct svm_agent_frame f;
	size_t used = 0;
	*why = NULL;
	return svm_agent_parse(buf, n, from_agent, &f, &used, why);
}

static void check_refused(size_t n, bool from_agent, const char *what)
{
	const char *why;
	int r = parse(n, from_agent, &why);
	CHECK(r == -1 && why && *why, what);
}

static void spawn_round_trip(void)
{
	struct svm_agent_spawn sp = {.flags = SVM_AG_SPAWN_UID, .uid = 1000, .cwd = "/tmp",
	                             .argc = 3, .envc = 1};
	sp.argv[0] = "sh", sp.argv[1] = "-c", sp.argv[2] = "echo $X";
	sp.env[0] = "X=1";
	size_t n = svm_agent_spawn_encode(buf, sizeof buf, &sp);
	CHECK(n > SVM_AGENT_HDR, "a spawn encodes");
	struct svm_agent_frame f;
	size_t used;
	const char *why = NULL;
	CHECK_INT(svm_agent_parse(buf, n, true, &f, &used, &why), -1,
	          "a host's SPAWN is refused from an agent");
	CHECK_INT(svm_agent_parse(buf, n, false, &f, &used, &why), 1, "an agent takes the SPAWN");
	CHECK_INT(used, n, "the frame is all the bytes");
	static struct svm_agent_spawn got;
	CHECK_INT(svm_agent_spawn_decode(&f, &got, &why), 0, "the SPAWN decodes");
	CHECK_INT(got.argc, 3, "argc");
	CHECK_STR(got.argv[2], "echo $X", "argv[2]");
	CHECK_STR(got.env[0], "X=1", "env[0]");
	CHECK_STR(got.cwd, "/tmp", "cwd");
	CHECK(got.flags == SVM_AG_SPAWN_UID && got.uid == 1000, "uid");
	/* every cut of it needs more bytes, never decodes and never fails */
	int cut_ok = 1;
	for (size_t k = 0; k < n; k++)
		cut_ok &= svm_agent_parse(buf, k, false, &f, &used, &why) == 0;
	CHECK(cut_ok, "every prefix of a frame asks for more bytes");

	sp.cwd = "relative";
	CHECK_INT(svm_agent_spawn_encode(buf, sizeof buf, &sp), 0, "a relative cwd is never sent");
	sp.cwd = "";
	sp.env[0] = "NOEQUALS";
	CHECK_INT(svm_agent_spawn_encode(buf, sizeof buf, &sp), 0, "an env entry without = is never sent");
	sp.env[0] = "X=1";
	sp.argv[0] = "";
	CHECK_INT(svm_agent_spawn_encode(buf, sizeof buf, &sp), 0, "an empty program is never sent");
	sp.argc = 0;
	CHECK_INT(svm_agent_spawn_encode(buf, sizeof buf, &sp), 0, "no argv is never sent");
	/* a SPAWN bigger than a frame is refused at the encoder */
	static char big[70000];
	memset(big, 'a', sizeof big - 1);
	sp.argc = 1, sp.argv[0] = big;
	CHECK_INT(svm_agent_spawn_encode(buf, sizeof buf, &sp), 0, "an argv over the frame limit is refused");
}

static void spawn_refused(void)
{
	uint8_t p[64] = {0};
	/* flags 0, uid, gid, argc 1, envc 0, then "" "ls" */
	p[15] = 1;
	memcpy(p + 20, "\0ls\0", 4);
	const char *why;
	CHECK_INT(parse(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, &why), 1, "a minimal SPAWN");
	check_refused(raw(SVM_AG_SPAWN, 0, 23, p, 23), false, "a string cut by the frame's end");
	check_refused(raw(SVM_AG_SPAWN, 0, 25, p, 25), false, "a byte after the last string");
	p[15] = 2;
	check_refused(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, "argc larger than its strings");
	p[15] = 0;
	check_refused(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, "argc 0");
	p[15] = 1, p[12] = 0xff;
	check_refused(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, "argc over the limit");
	p[12] = 0, p[3] = 4;
	CHECK_INT(parse(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, &why), 1, "a SPAWN for the shell");
	p[15] = 2;
	memcpy(p + 20, "\0ls\0-l\0", 7);
	check_refused(raw(SVM_AG_SPAWN, 0, 27, p, 27), false, "a SPAWN for the shell of two words");
	p[15] = 1;
	memcpy(p + 20, "\0ls\0", 4);
	p[3] = 8;
	check_refused(raw(SVM_AG_SPAWN, 0, 24, p, 24), false, "unknown flags");
	p[3] = 0;
	check_refused(raw(SVM_AG_SPAWN, 0, 19, p, 19), false, "shorter than its fixed fields");
}

static void agent_frames(void)
{
	const char *why;
	uint8_t p[8] = {0, 0, 0, 0, 0, 0, 0, 3};
	CHECK_INT(parse(raw(SVM_AG_EXIT, 0, 8, p, 8), true, &why), 1, "EXIT 3");
	p[7] = 0;
	p[3] = 1;
	check_refused(raw(SVM_AG_EXIT, 0, 8, p, 8), true, "killed by signal 0");
	p[7] = 65;
	check_refused(raw(SVM_AG_EXIT, 0, 8, p, 8), true, "killed by signal 65");
	p[3] = 2, p[7] = 1;
	check_refused(raw(SVM_AG_EXIT, 0, 8, p, 8), true, "an unknown way to end");
	p[3] = 0, p[6] = 1;
	check_refused(raw(SVM_AG_EXIT, 0, 8, p, 8), true, "exit status over 255");
	check_refused(raw(SVM_AG_EXIT, 0, 4, p, 4), true, "EXIT of one number");
	uint8_t pid[4] = {0, 0, 0, 0};
	check_refused(raw(SVM_AG_STARTED, 0, 4, pid, 4), true, "pid 0");
	pid[0] = 1;
	check_refused(raw(SVM_AG_STARTED, 0, 4, pid, 4), true, "pid over PID_MAX_LIMIT");
	pid[0] = 0, pid[3] = 42;
	CHECK_INT(parse(raw(SVM_AG_STARTED, 0, 4, pid, 4), true, &why), 1, "STARTED 42");
	check_refused(raw(SVM_AG_STDOUT, 0, 0, NULL, 0), true, "an empty STDOUT");
	CHECK_INT(parse(raw(SVM_AG_STDOUT, 0, 3, "hi\n", 3), true, &why), 1, "STDOUT hi");
	check_refused(raw(SVM_AG_STDOUT, 0, 3, "hi\n", 3), false, "STDOUT from a host");
	check_refused(raw(SVM_AG_DONE, 0, 1, "x", 1), true, "DONE with bytes");
	check_refused(raw(99, 0, 0, NULL, 0), true, "an unknown type");
	check_refused(raw(SVM_AG_STDOUT, 1, 3, "hi\n", 3), true, "reserved bytes set");

	uint8_t e[16] = {0, 0, 0, 2};
	memcpy(e + 4, "no such", 7);
	CHECK_INT(parse(raw(SVM_AG_ERROR, 0, 11, e, 11), true, &why), 1, "ERROR ENOENT");
	struct svm_agent_frame f;
	size_t used;
	svm_agent_parse(buf, 19, true, &f, &used, &why);
	int errnum;
	char msg[4];
	svm_agent_error_decode(&f, &errnum, msg, sizeof msg);
	CHECK(errnum == 2 && !strcmp(msg, "no "), "ERROR decodes, cut to the caller's buffer");
	e[6] = '\n';
	check_refused(raw(SVM_AG_ERROR, 0, 11, e, 11), true, "ERROR text with a control byte");
	e[3] = 0;
	e[6] = 's';
	check_refused(raw(SVM_AG_ERROR, 0, 11, e, 11), true, "ERROR errno 0");
	size_t n = svm_agent_error_encode(buf, sizeof buf, 22, "bad\tline\n");
	CHECK_INT(parse(n, true, &why), 1, "an encoded ERROR with control bytes is valid");
}

static void header_first(void)
{
	const char *why;
	/* the length is judged from the header alone: no waiting for 4 GiB */
	check_refused(raw(SVM_AG_STDOUT, 0, SVM_AGENT_MAX_PAYLOAD + 1, NULL, 0), true,
	              "a length over the limit, with only the header arrived");
	CHECK_INT(parse(raw(SVM_AG_STDOUT, 0, SVM_AGENT_MAX_PAYLOAD, NULL, 0), true, &why), 0,
	          "the largest frame waits for its payload");
	memset(buf + 8, 'x', SVM_AGENT_MAX_PAYLOAD);
	CHECK_INT(parse(8 + SVM_AGENT_MAX_PAYLOAD, true, &why), 1, "the largest frame is whole");
	/* two frames in one buffer: the first is taken, used says where the next begins */
	size_t a = svm_agent_frame(buf, sizeof buf, SVM_AG_STDOUT, "ab", 2);
	size_t b = svm_agent_frame(buf + a, sizeof buf - a, SVM_AG_STDERR, "c", 1);
	struct svm_agent_frame f;
	size_t used;
	CHECK(svm_agent_parse(buf, a + b, true, &f, &used, &why) == 1 && used == a &&
	          f.type == SVM_AG_STDOUT && f.len == 2,
	      "the first of two frames");
	CHECK(svm_agent_parse(buf + a, b, true, &f, &used, &why) == 1 && f.type == SVM_AG_STDERR,
	      "then the second");
	CHECK_INT(svm_agent_frame(buf, 10, SVM_AG_STDOUT, "abc", 3), 0, "an encoder never overruns");
}

static void paths(void)
{
	const char *why;
	size_t n = svm_agent_path_encode(buf, sizeof buf, SVM_AG_PUT, true, 0644, "/etc/x");
	CHECK_INT(parse(n, false, &why), 1, "PUT /etc/x");
	CHECK_INT(svm_agent_path_encode(buf, sizeof buf, SVM_AG_GET, false, 0, "rel"), 0,
	          "a relative path is never sent");
	check_refused(raw(SVM_AG_GET, 0, 4, "/a\0b", 4), false, "a path with a NUL inside");
	check_refused(raw(SVM_AG_GET, 0, 2, "/a", 2), false, "a path without its NUL");
	uint8_t p[8] = {0, 0, 0x10, 0, '/', 'a', 0};
	check_refused(raw(SVM_AG_PUT, 0, 7, p, 7), false, "a PUT mode over 07777");
	uint8_t sig[4] = {0, 0, 0, 65};
	check_refused(raw(SVM_AG_SIGNAL, 0, 4, sig, 4), false, "signal 65");
	sig[3] = 15;
	CHECK_INT(parse(raw(SVM_AG_SIGNAL, 0, 4, sig, 4), false, &why), 1, "signal 15");
	uint8_t k[8] = {0, 0, 0, 42, 0, 0, 0, 9};
	CHECK_INT(parse(raw(SVM_AG_KILL, 0, 8, k, 8), false, &why), 1, "KILL 42 9");
	check_refused(raw(SVM_AG_KILL, 0, 8, k, 8), true, "KILL from an agent");
	k[3] = 0;
	check_refused(raw(SVM_AG_KILL, 0, 8, k, 8), false, "KILL of pid 0");
	k[3] = 42, k[7] = 0;
	check_refused(raw(SVM_AG_KILL, 0, 8, k, 8), false, "KILL with signal 0");
	check_refused(raw(SVM_AG_KILL, 0, 4, k, 4), false, "KILL of one number");
}

int main(void)
{
	spawn_round_trip();
	spawn_refused();
	agent_frames();
	header_first();
	paths();
	return check_done();
}
