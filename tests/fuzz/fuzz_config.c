/*
 * fuzz_config.c - config.json as a user writes it: svm_config_parse (syntax,
 * field table, validation), svm_config_text_incomplete (the write buffering of
 * fs/serve/doc.c), then what a stored config feeds: the dump read back by the user,
 * the bootability check and every Firecracker payload.
 *
 * Checks beyond "no crash": a parsed config survives dump -> parse unchanged;
 * a text that parses is never "incomplete" and an "incomplete" one never parses;
 * every proper prefix of a JSON object (a write cut anywhere) is "incomplete",
 * so a document written in pieces is never refused halfway.
 */
#include <jansson.h>

#include "config.h"
#include "fuzz.h"

static void payloads(const json_t *cfg)
{
	json_t *(*const sections[])(const json_t *) = {
		svm_payload_boot_source, svm_payload_machine_config, svm_payload_vsock,
		svm_payload_balloon,     svm_payload_mmds_config,    svm_payload_logger,
		svm_payload_metrics,     svm_payload_entropy,
	};
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		json_t *p = sections[i](cfg);
		char *s = p ? json_dumps(p, JSON_COMPACT) : NULL;
		FUZZ_CHECK(!p || s, "payload %zu cannot be encoded", i);
		free(s);
		json_decref(p);
	}
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(cfg, "drives"), i, d) {
		json_decref(svm_payload_drive(d));
		json_decref(svm_payload_rate_limiter(json_object_get(d, "rateLimiter")));
	}
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, d) {
		json_decref(svm_payload_network_interface(d));
		svm_error e;
		const char *id = json_string_value(json_object_get(d, "ifaceId"));
		json_t *upd = json_pack("{s:O?, s:O?}", "rxRateLimiter",
					json_object_get(d, "rxRateLimiter"), "txRateLimiter",
					json_object_get(d, "txRateLimiter"));
		json_t *body = svm_payload_netif_update(id, upd, &e);
		if (!body)
			fuzz_check_error(&e);
		json_decref(body);
		json_decref(upd);
	}
}

/* A write cut at any point inside an object must wait for more bytes. */
static void check_prefixes(const char *text, size_t len)
{
	if (len > SVM_CONFIG_MAX_BYTES || memchr(text, '\0', len))
		return; /* refused whole (jansson would skip a NUL byte) */
	/* the flags of the parser: with duplicates rejected, a prefix that repeats a
	 * key can never be completed */
	json_t *doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	bool object = json_is_object(doc);
	json_decref(doc);
	if (!object)
		return;
	size_t end = len; /* after the closing brace */
	while (end > 0 && text[end - 1] != '}')
		end--;
	size_t step = end <= 512 ? 1 : end / 256;
	for (size_t k = 0; k < end; k += step) {
		if (!svm_config_text_incomplete(text, k)) {
			json_error_t je;
			json_t *j = json_loadb(text, k, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
			json_decref(j);
			FUZZ_FAIL("prefix of %zu bytes (of %zu) refused as complete: %s [%.*s]", k,
				  len, je.text, (int)k, text);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	svm_error e;
	svm_error_clear(&e);
	bool incomplete = svm_config_text_incomplete(text, size);
	json_t *cfg = svm_config_parse(text, size, &e);
	if (!cfg) {
		fuzz_check_error(&e);
		FUZZ_CHECK(e.code == SVM_INVALID_CONFIG || e.code == SVM_TOO_LARGE, "code %s",
			   svm_code_name(e.code));
	} else {
		FUZZ_CHECK(!incomplete, "a config that parses is said to be incomplete");
		char *dump = svm_config_dump(cfg);
		FUZZ_CHECK(dump && dump[0] && dump[strlen(dump) - 1] == '\n', "dump");
		svm_error e2;
		json_t *again = svm_config_parse(dump, strlen(dump), &e2);
		FUZZ_CHECK(again, "the dump of a valid config does not parse: %s\n%s", e2.message, dump);
		FUZZ_CHECK(json_equal(cfg, again), "dump -> parse changed the config:\n%s", dump);
		json_decref(again);
		free(dump);
		json_t *problems = NULL;
		FUZZ_CHECK(svm_config_problems(cfg, &problems) == 0, "a parsed config has problems");
		json_decref(problems);
		if (svm_config_check_bootable(cfg, &e) < 0) {
			fuzz_check_error(&e);
			FUZZ_CHECK(e.code == SVM_INVALID_CONFIG, "bootable: code %s", svm_code_name(e.code));
		}
		payloads(cfg);
		json_decref(cfg);
	}
	check_prefixes(text, size);
	return 0;
}
