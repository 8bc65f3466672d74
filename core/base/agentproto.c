/*
 * agentproto.c - the agent protocol's codec (agentproto.h). Strict on purpose:
 * a frame is refused unless every byte of it has its one meaning, so a hostile
 * guest can make the host end a connection, never read past a buffer, allocate
 * without bound or take a field of one frame for another.
 */
#include "agentproto.h"

#include <string.h>

uint32_t svm_agent_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

const char *svm_agent_type_name(uint16_t type)
{
	switch (type) {
	case SVM_AG_SPAWN: return "SPAWN";
	case SVM_AG_STDIN: return "STDIN";
	case SVM_AG_SIGNAL: return "SIGNAL";
	case SVM_AG_PUT: return "PUT";
	case SVM_AG_GET: return "GET";
	case SVM_AG_KILL: return "KILL";
	case SVM_AG_DATA: return "DATA";
	case SVM_AG_STARTED: return "STARTED";
	case SVM_AG_STDOUT: return "STDOUT";
	case SVM_AG_STDERR: return "STDERR";
	case SVM_AG_EXIT: return "EXIT";
	case SVM_AG_ERROR: return "ERROR";
	case SVM_AG_DONE: return "DONE";
	}
	return "unknown";
}

static bool allowed(uint16_t type, bool from_agent)
{
	switch (type) {
	case SVM_AG_SPAWN: case SVM_AG_STDIN: case SVM_AG_SIGNAL: case SVM_AG_PUT: case SVM_AG_GET:
	case SVM_AG_KILL:
		return !from_agent;
	case SVM_AG_STARTED: case SVM_AG_STDOUT: case SVM_AG_STDERR: case SVM_AG_EXIT:
	case SVM_AG_ERROR: case SVM_AG_DONE:
		return from_agent;
	case SVM_AG_DATA:
		return true;
	}
	return false;
}

/* n NUL-ended strings filling p[0..len) exactly; their starts into out (may be NULL). */
static int strings(const uint8_t *p, size_t len, uint32_t n, const char **out, const char **why)
{
	size_t at = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *nul = at < len ? memchr(p + at, 0, len - at) : NULL;
		if (!nul)
			return *why = "a string runs past the frame", -1;
		if (out)
			out[i] = (const char *)p + at;
		at = (size_t)(nul - p) + 1;
	}
	if (at != len)
		return *why = "bytes after the last string", -1;
	return 0;
}

static int check_spawn(const uint8_t *p, size_t len, const char **why)
{
	if (len < 20)
		return *why = "SPAWN shorter than its fixed fields", -1;
	uint32_t flags = svm_agent_u32(p), argc = svm_agent_u32(p + 12), envc = svm_agent_u32(p + 16);
	if (flags & ~(uint32_t)(SVM_AG_SPAWN_UID | SVM_AG_SPAWN_GID | SVM_AG_SPAWN_SHELL))
		return *why = "SPAWN has unknown flags", -1;
	if ((flags & SVM_AG_SPAWN_SHELL) && argc != 1)
		return *why = "a SPAWN for the shell has one command line", -1;
	if (argc < 1 || argc > SVM_AGENT_MAX_ARGS || envc > SVM_AGENT_MAX_ARGS)
		return *why = "SPAWN argument or environment count out of range", -1;
	const char *s[1 + 2 * SVM_AGENT_MAX_ARGS];
	if (strings(p + 20, len - 20, 1 + argc + envc, s, why) != 0)
		return -1;
	if (s[0][0] && s[0][0] != '/')
		return *why = "SPAWN working directory is not absolute", -1;
	if (!s[1][0])
		return *why = "SPAWN program name is empty", -1;
	for (uint32_t i = 0; i < envc; i++)
		if (!strchr(s[1 + argc + i], '=') || s[1 + argc + i][0] == '=')
			return *why = "SPAWN environment entry is not NAME=VALUE", -1;
	return 0;
}

static int check_path(const uint8_t *p, size_t len, const char **why)
{
	if (len < 2 || p[0] != '/')
		return *why = "path is not absolute", -1;
	return strings(p, len, 1, NULL, why);
}

static int check_payload(uint16_t type, const uint8_t *p, size_t len, const char **why)
{
	uint32_t a, b;
	switch (type) {
	case SVM_AG_SPAWN:
		return check_spawn(p, len, why);
	case SVM_AG_STDIN:
	case SVM_AG_DATA:
		return 0;
	case SVM_AG_STDOUT:
	case SVM_AG_STDERR:
		return len ? 0 : (*why = "empty output frame", -1);
	case SVM_AG_SIGNAL:
		if (len != 4 || (a = svm_agent_u32(p)) < 1 || a > 64)
			return *why = "SIGNAL is not one signal number 1..64", -1;
		return 0;
	case SVM_AG_KILL:
		if (len != 8 || (a = svm_agent_u32(p)) < 1 || a > (1u << 22) ||
		    (b = svm_agent_u32(p + 4)) < 1 || b > 64)
			return *why = "KILL is not a process id and a signal number 1..64", -1;
		return 0;
	case SVM_AG_PUT:
		if (len < 4 || svm_agent_u32(p) > 07777)
			return *why = "PUT mode out of range", -1;
		return check_path(p + 4, len - 4, why);
	case SVM_AG_GET:
		return check_path(p, len, why);
	case SVM_AG_STARTED:
		/* Linux's PID_MAX_LIMIT is 2^22 */
		if (len != 4 || (a = svm_agent_u32(p)) < 1 || a > (1u << 22))
			return *why = "STARTED is not one process id", -1;
		return 0;
	case SVM_AG_EXIT:
		if (len != 8)
			return *why = "EXIT is not two numbers", -1;
		a = svm_agent_u32(p);
		b = svm_agent_u32(p + 4);
		if (!((a == SVM_AG_EXITED && b <= 255) || (a == SVM_AG_SIGNALED && b >= 1 && b <= 64)))
			return *why = "EXIT status out of range", -1;
		return 0;
	case SVM_AG_ERROR:
		if (len < 4 || len > 4 + SVM_AGENT_MAX_MESSAGE)
			return *why = "ERROR length out of range", -1;
		if ((a = svm_agent_u32(p)) < 1 || a > 4095)
			return *why = "ERROR errno out of range", -1;
		for (size_t i = 4; i < len; i++)
			if (p[i] < 0x20 || p[i] > 0x7e)
				return *why = "ERROR text is not printable ASCII", -1;
		return 0;
	case SVM_AG_DONE:
		return len ? (*why = "DONE carries bytes", -1) : 0;
	}
	return *why = "unknown frame type", -1;
}

int svm_agent_parse(const uint8_t *buf, size_t len, bool from_agent, struct svm_agent_frame *f,
                    size_t *used, const char **why)
{
	/* the header is judged as soon as it is whole: a bad length is refused
	 * before anyone waits for, or keeps, the bytes it announces */
	if (len < SVM_AGENT_HDR)
		return 0;
	uint16_t type = (uint16_t)(buf[0] << 8 | buf[1]);
	uint32_t plen = svm_agent_u32(buf + 4);
	if (buf[2] || buf[3])
		return *why = "reserved header bytes are not zero", -1;
	if (!allowed(type, from_agent))
		return *why = from_agent ? "frame type not sent by an agent" : "frame type not sent by a host", -1;
	if (plen > SVM_AGENT_MAX_PAYLOAD)
		return *why = "frame longer than the protocol allows", -1;
	if (len - SVM_AGENT_HDR < plen)
		return 0;
	if (check_payload(type, buf + SVM_AGENT_HDR, plen, why) != 0)
		return -1;
	f->type = type;
	f->len = plen;
	f->payload = buf + SVM_AGENT_HDR;
	*used = SVM_AGENT_HDR + plen;
	return 1;
}

int svm_agent_spawn_decode(const struct svm_agent_frame *f, struct svm_agent_spawn *sp,
                           const char **why)
{
	if (f->type != SVM_AG_SPAWN || check_spawn(f->payload, f->len, why) != 0)
		return f->type != SVM_AG_SPAWN ? (*why = "not a SPAWN", -1) : -1;
	const uint8_t *p = f->payload;
	sp->flags = svm_agent_u32(p);
	sp->uid = svm_agent_u32(p + 4);
	sp->gid = svm_agent_u32(p + 8);
	sp->argc = svm_agent_u32(p + 12);
	sp->envc = svm_agent_u32(p + 16);
	const char *s[1 + 2 * SVM_AGENT_MAX_ARGS];
	strings(p + 20, f->len - 20, 1 + sp->argc + sp->envc, s, why);
	sp->cwd = s[0];
	for (uint32_t i = 0; i < sp->argc; i++)
		sp->argv[i] = s[1 + i];
	for (uint32_t i = 0; i < sp->envc; i++)
		sp->env[i] = s[1 + sp->argc + i];
	return 0;
}

void svm_agent_error_decode(const struct svm_agent_frame *f, int *errnum, char *msg, size_t size)
{
	*errnum = (int)svm_agent_u32(f->payload);
	size_t n = f->len - 4 < size - 1 ? f->len - 4 : size - 1;
	memcpy(msg, f->payload + 4, n);
	msg[n] = '\0';
}

int svm_agent_path_decode(const struct svm_agent_frame *f, uint32_t *mode, const char **path,
                          const char **why)
{
	size_t skip = f->type == SVM_AG_PUT ? 4 : 0;
	if ((f->type != SVM_AG_PUT && f->type != SVM_AG_GET) || f->len < skip + 2)
		return *why = "not a PUT or GET", -1;
	*mode = skip ? svm_agent_u32(f->payload) : 0;
	*path = (const char *)f->payload + skip;
	return 0;
}

size_t svm_agent_frame(uint8_t *out, size_t cap, uint16_t type, const void *payload, size_t len)
{
	if (len > SVM_AGENT_MAX_PAYLOAD || cap < SVM_AGENT_HDR || cap - SVM_AGENT_HDR < len)
		return 0;
	out[0] = (uint8_t)(type >> 8);
	out[1] = (uint8_t)type;
	out[2] = out[3] = 0;
	put_u32(out + 4, (uint32_t)len);
	if (len)
		memmove(out + SVM_AGENT_HDR, payload, len);
	return SVM_AGENT_HDR + len;
}

size_t svm_agent_frame_u32(uint8_t *out, size_t cap, uint16_t type, uint32_t a)
{
	uint8_t p[4];
	put_u32(p, a);
	return svm_agent_frame(out, cap, type, p, sizeof p);
}

size_t svm_agent_frame_u32x2(uint8_t *out, size_t cap, uint16_t type, uint32_t a, uint32_t b)
{
	uint8_t p[8];
	put_u32(p, a);
	put_u32(p + 4, b);
	return svm_agent_frame(out, cap, type, p, sizeof p);
}

/* Appends s and its NUL at *at, if it fits. */
static bool add_string(uint8_t *out, size_t cap, size_t *at, const char *s)
{
	size_t n = strlen(s) + 1;
	if (cap - *at < n)
		return false;
	memcpy(out + *at, s, n);
	*at += n;
	return true;
}

size_t svm_agent_spawn_encode(uint8_t *out, size_t cap, const struct svm_agent_spawn *sp)
{
	if (sp->argc < 1 || sp->argc > SVM_AGENT_MAX_ARGS || sp->envc > SVM_AGENT_MAX_ARGS)
		return 0;
	size_t lim = cap < SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD ? cap : SVM_AGENT_HDR + SVM_AGENT_MAX_PAYLOAD;
	if (lim < SVM_AGENT_HDR + 20)
		return 0;
	size_t at = SVM_AGENT_HDR;
	put_u32(out + at, sp->flags);
	put_u32(out + at + 4, sp->uid);
	put_u32(out + at + 8, sp->gid);
	put_u32(out + at + 12, sp->argc);
	put_u32(out + at + 16, sp->envc);
	at += 20;
	bool ok = add_string(out, lim, &at, sp->cwd ? sp->cwd : "");
	for (uint32_t i = 0; ok && i < sp->argc; i++)
		ok = add_string(out, lim, &at, sp->argv[i]);
	for (uint32_t i = 0; ok && i < sp->envc; i++)
		ok = add_string(out, lim, &at, sp->env[i]);
	if (!ok)
		return 0;
	const char *why;
	struct svm_agent_frame f = {SVM_AG_SPAWN, (uint32_t)(at - SVM_AGENT_HDR), out + SVM_AGENT_HDR};
	if (check_spawn(f.payload, f.len, &why) != 0)
		return 0; /* what the agent would refuse is never sent */
	return svm_agent_frame(out, cap, SVM_AG_SPAWN, out + SVM_AGENT_HDR, f.len);
}

size_t svm_agent_error_encode(uint8_t *out, size_t cap, int errnum, const char *msg)
{
	uint8_t p[4 + SVM_AGENT_MAX_MESSAGE];
	put_u32(p, errnum >= 1 && errnum <= 4095 ? (uint32_t)errnum : 5 /* EIO */);
	size_t n = 0;
	for (; msg[n] && n < SVM_AGENT_MAX_MESSAGE; n++)
		p[4 + n] = (uint8_t)msg[n] >= 0x20 && (uint8_t)msg[n] <= 0x7e ? (uint8_t)msg[n] : '?';
	return svm_agent_frame(out, cap, SVM_AG_ERROR, p, 4 + n);
}

size_t svm_agent_path_encode(uint8_t *out, size_t cap, uint16_t type, bool with_mode,
                             uint32_t mode, const char *path)
{
	size_t n = strlen(path) + 1, skip = with_mode ? 4 : 0;
	if (path[0] != '/' || cap < SVM_AGENT_HDR + skip + n || skip + n > SVM_AGENT_MAX_PAYLOAD)
		return 0;
	if (with_mode)
		put_u32(out + SVM_AGENT_HDR, mode);
	memcpy(out + SVM_AGENT_HDR + skip, path, n);
	return svm_agent_frame(out, cap, type, out + SVM_AGENT_HDR, skip + n);
}
