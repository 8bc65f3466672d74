/* vmindex.c - VMs by name (see vmindex.h). The caller holds the lock that guards
 * the orchestrator's VM list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "vmindex.h"

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static int grow(vm_index *x)
{
	size_t n = x->nbuckets ? x->nbuckets * 2 : 64;
	svm_vm **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (size_t i = 0; i < x->nbuckets; i++) {
		for (svm_vm *vm = x->buckets[i], *next; vm; vm = next) {
			next = vm->hnext;
			size_t at = hash(vm->name) & (n - 1);
			vm->hnext = b[at];
			b[at] = vm;
		}
	}
	free(x->buckets);
	x->buckets = b;
	x->nbuckets = n;
	return 0;
}

int vmindex_add(vm_index *x, svm_vm *vm)
{
	if (x->count + 1 > x->nbuckets && grow(x) < 0) /* load factor at most 1 */
		return -1;
	size_t at = hash(vm->name) & (x->nbuckets - 1);
	vm->hnext = x->buckets[at];
	x->buckets[at] = vm;
	x->count++;
	return 0;
}

void vmindex_del(vm_index *x, svm_vm *vm)
{
	if (!x->nbuckets)
		return;
	for (svm_vm **pp = &x->buckets[hash(vm->name) & (x->nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
		if (*pp == vm) {
			*pp = vm->hnext;
			vm->hnext = NULL;
			x->count--;
			return;
		}
}

svm_vm *vmindex_find(const vm_index *x, const char *name)
{
	if (!x->nbuckets)
		return NULL;
	for (svm_vm *vm = x->buckets[hash(name) & (x->nbuckets - 1)]; vm; vm = vm->hnext)
		if (strcmp(vm->name, name) == 0)
			return vm;
	return NULL;
}

void vmindex_free(vm_index *x)
{
	free(x->buckets);
	memset(x, 0, sizeof *x);
}
