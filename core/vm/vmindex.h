/*
 * vmindex.h - the orchestrator's VMs by name, in a hash table: a lookup costs the
 * same with 10 VMs as with 10,000 (`ls -l vms` looks every name up).
 */
#ifndef SVM_VMINDEX_H
#define SVM_VMINDEX_H

#include <stddef.h>

struct svm_vm;

typedef struct vm_index {
	struct svm_vm **buckets; /* chains through svm_vm.hnext */
	size_t nbuckets;         /* a power of two, or 0 */
	size_t count;
} vm_index;

/* Adds vm (its name must not be in the index); 0, or -1 when out of memory. */
int vmindex_add(vm_index *x, struct svm_vm *vm);
void vmindex_del(vm_index *x, struct svm_vm *vm);
struct svm_vm *vmindex_find(const vm_index *x, const char *name);
void vmindex_free(vm_index *x);

#endif
