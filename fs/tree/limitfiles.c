/*
 * limitfiles.c - vms/NAME/limits/: one file per resource limit of the VM
 * (cpu.max, memory.max, pids.max, fsize, nofile; docs/limits.md), named as the
 * row is. A read is the value in force; a write of one value sets it, at once
 * in a running VMM, and keeps it in config.json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

int fs_vm_limit_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	char *s = svm_vm_limit_text(t->vm, t->row->name, err);
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

/* One value per write, as `echo VALUE > limits/NAME` makes it. */
void fs_vm_limit_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size,
		       off_t off)
{
	(void)off;
	svm_error err;
	svm_error_clear(&err);
	char command[64];
	snprintf(command, sizeof command, "write limits/%s", h->row->name);
	size_t n = size; /* echo's newline ends the value */
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (fs_ctl_check_bytes(buf, n, &err) == 0 &&
	    svm_vm_set_limit(h->t.vm, h->row->name, buf, n, &err) == 0) {
		fuse_reply_write(req, size);
		return;
	}
	svm_vm_note_error(h->t.vm, command, &err);
	fuse_reply_err(req, svm_code_errno(err.code));
}
