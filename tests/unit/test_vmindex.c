/*
 * test_vmindex.c - the VMs-by-name index: every name found after many adds (and the
 * growth they cause), none after its removal, the others still found, and a
 * lookup that costs the same at 20,000 VMs as at 200 (counted in comparisons of
 * one bucket, not timed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "vmindex.h"

#define N 20000

static size_t longest_chain(const vm_index *x)
{
	size_t worst = 0;
	for (size_t i = 0; i < x->nbuckets; i++) {
		size_t n = 0;
		for (svm_vm *vm = x->buckets[i]; vm; vm = vm->hnext)
			n++;
		if (n > worst)
			worst = n;
	}
	return worst;
}

int main(void)
{
	vm_index x = {0};
	CHECK(vmindex_find(&x, "web") == NULL, "an empty index finds nothing");
	svm_vm *vms = calloc(N, sizeof *vms);
	int added = 0;
	for (int i = 0; i < N; i++) {
		snprintf(vms[i].name, sizeof vms[i].name, "vm-%d", i);
		added += vmindex_add(&x, &vms[i]) == 0;
	}
	CHECK_INT(added, N, "20,000 VMs added");
	CHECK_INT(x.count, N, "counted");
	int found = 0;
	for (int i = 0; i < N; i++)
		found += vmindex_find(&x, vms[i].name) == &vms[i];
	CHECK_INT(found, N, "each found by its name");
	CHECK(longest_chain(&x) <= 12, "no bucket holds more than a dozen (a lookup stays short)");
	for (int i = 0; i < N; i += 2)
		vmindex_del(&x, &vms[i]);
	int gone = 0, kept = 0;
	for (int i = 0; i < N; i++) {
		if (i % 2 == 0)
			gone += vmindex_find(&x, vms[i].name) == NULL;
		else
			kept += vmindex_find(&x, vms[i].name) == &vms[i];
	}
	CHECK_INT(gone, N / 2, "the removed are not found");
	CHECK_INT(kept, N / 2, "the others still are");
	CHECK_INT(x.count, N / 2, "counted down");
	CHECK(vmindex_find(&x, "vm-") == NULL && vmindex_find(&x, "vm-200000") == NULL,
	      "a prefix or another name finds nothing");
	vmindex_free(&x);
	free(vms);
	return check_done();
}
