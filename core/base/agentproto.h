/*
 * agentproto.h - the framed protocol between the host and the guest agent
 * (assets/agent), spoken over one vsock connection per piece of work: one
 * command (its stdin, stdout, stderr, signals, exit status) or one file put or
 * get. Plain C and libc only: the agent, a static program, compiles this very
 * codec, so both ends check frames by the same rules.
 *
 * A frame: an 8-byte header, big-endian, then the payload:
 *   u16 type | u16 zero | u32 length (<= SVM_AGENT_MAX_PAYLOAD)
 * The host treats every byte from the agent as untrusted (a guest may be
 * hostile): svm_agent_parse checks the header, the type for the direction and
 * the payload's shape before anything reads a field of it.
 */
#ifndef SVM_AGENTPROTO_H
#define SVM_AGENTPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SVM_AGENT_PORT 5252         /* the vsock port the agent listens on */
#define SVM_AGENT_HDR 8
#define SVM_AGENT_MAX_PAYLOAD 65536
#define SVM_AGENT_MAX_ARGS 1024     /* argv and env entries, each */
#define SVM_AGENT_MAX_MESSAGE 512   /* an ERROR frame's text */

enum svm_agent_type {
	/* host -> agent: the first frame of a connection says what it is for */
	SVM_AG_SPAWN = 1,   /* u32 flags, u32 uid, u32 gid, u32 argc, u32 envc, then
	                       cwd, argv[argc], env[envc]: strings each ended by NUL */
	SVM_AG_STDIN = 2,   /* bytes for the command's stdin; empty: close it */
	SVM_AG_SIGNAL = 3,  /* u32 signal number (1..64) for the command's group */
	SVM_AG_PUT = 4,     /* u32 mode, path NUL: then DATA frames, an empty one ends */
	SVM_AG_GET = 5,     /* path NUL: the agent answers DATA frames, an empty one ends */
	SVM_AG_DATA = 6,    /* file bytes, either way */
	SVM_AG_KILL = 7,    /* u32 pid, u32 signal (1..64): the first frame of a connection
	                       of its own, for the process group of a command another
	                       connection started (so it never waits behind that one's
	                       stdin); the agent answers DONE */
	/* agent -> host */
	SVM_AG_STARTED = 16, /* u32 pid */
	SVM_AG_STDOUT = 17,  /* bytes the command wrote */
	SVM_AG_STDERR = 18,
	SVM_AG_EXIT = 19,    /* u32 how (0 exited, 1 killed by a signal), u32 code */
	SVM_AG_ERROR = 20,   /* u32 errno, then text (printable ASCII, no NUL) */
	SVM_AG_DONE = 21,    /* a put was written whole */
};

/* spawn flags; SHELL: argv is one command line for the guest's own shell
 * (/bin/sh -c), which the guest knows and the host never names */
enum { SVM_AG_SPAWN_UID = 1u << 0, SVM_AG_SPAWN_GID = 1u << 1, SVM_AG_SPAWN_SHELL = 1u << 2 };
enum { SVM_AG_EXITED = 0, SVM_AG_SIGNALED = 1 };

/* A frame checked by svm_agent_parse: payload points into the caller's buffer. */
struct svm_agent_frame {
	uint16_t type;
	uint32_t len;
	const uint8_t *payload;
};

/* The first whole frame of buf[0..len). Returns 1 (f filled, *used bytes make
 * it), 0 (more bytes needed: a header or payload is cut), or -1 (invalid, *why
 * says how; nothing after it can be trusted, so the connection ends).
 * from_agent: the direction whose types are allowed. */
int svm_agent_parse(const uint8_t *buf, size_t len, bool from_agent, struct svm_agent_frame *f,
                    size_t *used, const char **why);

/* A spawn request. The strings point into the frame's payload (decode). */
struct svm_agent_spawn {
	uint32_t flags, uid, gid;
	const char *cwd;            /* "" : the agent's own */
	uint32_t argc, envc;
	const char *argv[SVM_AGENT_MAX_ARGS];
	const char *env[SVM_AGENT_MAX_ARGS];
};

/* Decoders of checked frames (svm_agent_parse already held them to their shape;
 * these fill the fields). 0, or -1 with *why. */
int svm_agent_spawn_decode(const struct svm_agent_frame *f, struct svm_agent_spawn *sp,
                           const char **why);
uint32_t svm_agent_u32(const uint8_t *p);
/* ERROR: the errno and the text, copied NUL-terminated into msg. */
void svm_agent_error_decode(const struct svm_agent_frame *f, int *errnum, char *msg, size_t size);

/* Encoders: the whole frame into out (header included), returning its length,
 * or 0 when it would not fit cap or the protocol's bounds. */
size_t svm_agent_frame(uint8_t *out, size_t cap, uint16_t type, const void *payload, size_t len);
size_t svm_agent_frame_u32(uint8_t *out, size_t cap, uint16_t type, uint32_t a);
size_t svm_agent_frame_u32x2(uint8_t *out, size_t cap, uint16_t type, uint32_t a, uint32_t b);
size_t svm_agent_spawn_encode(uint8_t *out, size_t cap, const struct svm_agent_spawn *sp);
/* ERROR with errnum and the text (cut to SVM_AGENT_MAX_MESSAGE, bytes outside
 * printable ASCII replaced by '?'). */
size_t svm_agent_error_encode(uint8_t *out, size_t cap, int errnum, const char *msg);
size_t svm_agent_path_encode(uint8_t *out, size_t cap, uint16_t type, bool with_mode,
                             uint32_t mode, const char *path);
/* PUT or GET: the mode (PUT) and the path, pointing into the payload. */
int svm_agent_path_decode(const struct svm_agent_frame *f, uint32_t *mode, const char **path,
                          const char **why);

const char *svm_agent_type_name(uint16_t type);

#endif
