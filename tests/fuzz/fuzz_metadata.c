/*
 * fuzz_metadata.c - a VM's metadata file as a user writes it: the document goes
 * through svm_vm_set_metadata_json (parse_metadata: size limit, JSON, object)
 * on a VM in state created, which stores it for the next start; the read side
 * (svm_vm_metadata_json) must then give back the same document.
 */
#include <jansson.h>

#include "fuzz.h"

static svm_vm *vm;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	svm *s = fuzz_svm_new(NULL);
	svm_error e;
	vm = svm_create_vm(s, "fuzz", &e);
	if (!vm)
		FUZZ_FAIL("svm_create_vm: %s", e.message);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	svm_error e;
	svm_error_clear(&e);
	char *before = svm_vm_metadata_json(vm, &e);
	FUZZ_CHECK(before, "metadata read: %s", e.message);
	if (svm_vm_set_metadata_json(vm, (const char *)data, size, &e) < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(e.code == SVM_INVALID_CONFIG || e.code == SVM_TOO_LARGE, "code %s",
			   svm_code_name(e.code));
		char *after = svm_vm_metadata_json(vm, &e);
		FUZZ_CHECK(after && !strcmp(before, after), "a refused document changed the metadata");
		free(after);
	} else {
		json_t *want = json_loadb((const char *)data, size, 0, NULL);
		FUZZ_CHECK(json_is_object(want), "accepted metadata that is not a JSON object");
		char *after = svm_vm_metadata_json(vm, &e);
		FUZZ_CHECK(after, "metadata read: %s", e.message);
		json_t *got = json_loads(after, 0, NULL);
		FUZZ_CHECK(got && json_equal(got, want), "metadata read back differs:\n%s", after);
		json_decref(got);
		json_decref(want);
		free(after);
	}
	free(before);
	FUZZ_CHECK(svm_vm_state(vm) == SVM_CREATED, "state changed");
	return 0;
}
