/* stage.c - placeholder until staging lands: drives are used in place. */
#include "internal.h"
#include "stage.h"

int stage_drives(svm_vm *vm, json_t *cfg, svm_error *err)
{
	(void)vm;
	(void)cfg;
	(void)err;
	return 0;
}

void stage_cleanup(svm_vm *vm) { (void)vm; }
