/*
 * fuzz_agentproto.c - the bytes a guest's agent sends the host, as the host
 * decodes them (core/base/agentproto.c, svm_agent_parse from the agent's side):
 * the input is one connection's stream, cut into frames. A hostile guest
 * controls every byte of it.
 *
 * Checks: a frame taken stays inside the input and inside the protocol's
 * bounds; its type is one an agent may send; its fields are in range (what the
 * host reads of them: a pid, an exit status, an ERROR's text); "more bytes
 * needed" only while a header or an announced payload is cut; a refusal says
 * why. The same stream fed a byte at a time gives the same frames.
 */
#include "agentproto.h"
#include "fuzz.h"

/* Frames of data[0..size) one after another; returns how many were taken, and
 * whether the stream ended in a refusal (-1), a cut (0) or exactly (1). */
static int walk(const uint8_t *data, size_t size, size_t *frames, size_t *end)
{
	size_t at = 0;
	*frames = 0;
	for (;;) {
		struct svm_agent_frame f;
		size_t used = 0;
		const char *why = NULL;
		int r = svm_agent_parse(data + at, size - at, true, &f, &used, &why);
		if (r < 0) {
			FUZZ_CHECK(why && *why, "a refusal without a reason");
			*end = at;
			return -1;
		}
		if (r == 0) {
			*end = at;
			return at == size ? 1 : 0;
		}
		FUZZ_CHECK(used == SVM_AGENT_HDR + f.len && used <= size - at, "frame size %zu", used);
		FUZZ_CHECK(f.len <= SVM_AGENT_MAX_PAYLOAD, "payload %u", f.len);
		FUZZ_CHECK(f.payload == data + at + SVM_AGENT_HDR, "payload outside its frame");
		switch (f.type) {
		case SVM_AG_STARTED:
			FUZZ_CHECK(f.len == 4 && svm_agent_u32(f.payload) > 0, "STARTED");
			break;
		case SVM_AG_EXIT: {
			uint32_t how = svm_agent_u32(f.payload), code = svm_agent_u32(f.payload + 4);
			FUZZ_CHECK(f.len == 8 && how <= 1 && code <= 255 && (how == 0 || code >= 1),
			           "EXIT %u %u", how, code);
			break;
		}
		case SVM_AG_ERROR: {
			int errnum;
			char msg[SVM_AGENT_MAX_MESSAGE + 1];
			svm_agent_error_decode(&f, &errnum, msg, sizeof msg);
			FUZZ_CHECK(errnum >= 1 && errnum <= 4095, "errno %d", errnum);
			for (char *p = msg; *p; p++)
				FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e, "ERROR byte %d", *p);
			break;
		}
		case SVM_AG_STDOUT:
		case SVM_AG_STDERR:
			FUZZ_CHECK(f.len > 0, "empty output");
			break;
		case SVM_AG_DATA:
			break;
		case SVM_AG_DONE:
			FUZZ_CHECK(f.len == 0, "DONE with bytes");
			break;
		default:
			FUZZ_FAIL("type %u from an agent", f.type);
		}
		at += used;
		(*frames)++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t frames, end;
	int how = walk(data, size, &frames, &end);
	/* the same stream as it would arrive in pieces: a growing buffer from
	 * which whole frames are taken, as the host's reader keeps it */
	size_t at = 0, got = 0;
	int how2 = 1;
	for (size_t have = 0; have <= size; have++) {
		for (;;) {
			struct svm_agent_frame f;
			size_t used;
			const char *why;
			int r = svm_agent_parse(data + at, have - at, true, &f, &used, &why);
			if (r < 0) {
				how2 = -1;
				goto done;
			}
			if (r == 0)
				break;
			at += used;
			got++;
		}
	}
	how2 = at == size ? 1 : 0;
done:
	FUZZ_CHECK(got == frames && how2 == how && (how2 == -1 || at == end),
	           "a byte at a time: %zu frames (%d), at once: %zu (%d)", got, how2, frames, how);
	return 0;
}
