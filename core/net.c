/* net.c - placeholder until host networking lands: VMs without network
 * interfaces need nothing; a VM with interfaces gets a clear error. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "net.h"

struct svm_net {
	svm *s;
};

svm_net *net_new(svm *s, svm_error *err)
{
	(void)err;
	svm_net *n = calloc(1, sizeof *n);
	if (n)
		n->s = s;
	return n;
}

void net_free(svm_net *n) { free(n); }

int net_prepare_vm(svm_net *n, svm_vm *vm, json_t *cfg, svm_error *err)
{
	(void)n;
	(void)vm;
	size_t i;
	json_t *iface;
	json_array_foreach(json_object_get(cfg, "networkInterfaces"), i, iface) {
		if (!json_object_get(iface, "hostDevName"))
			return svm_error_set(err, SVM_TAP_CREATE_FAILED,
					     "networkInterfaces[%zu]: automatic TAP creation is not "
					     "available yet: give hostDevName",
					     i);
	}
	return 0;
}

void net_rollback_vm(svm_net *n, svm_vm *vm) { (void)n; (void)vm; }
void net_release_vm(svm_net *n, svm_vm *vm) { (void)n; (void)vm; }
char *net_vm_text(svm_net *n, svm_vm *vm) { (void)n; (void)vm; return strdup(""); }
char *net_leases_text(svm_net *n) { (void)n; return strdup(""); }
const char *net_bridge(svm_net *n) { return n->s->bridge; }
const char *net_subnet(svm_net *n) { return n->s->subnet; }
const char *net_gateway(svm_net *n) { (void)n; return ""; }

int net_ctl(svm_net *n, const char *line, svm_error *err)
{
	(void)n;
	return svm_error_set(err, SVM_INVALID_ARGUMENT, "unknown control message \"%s\"", line);
}
