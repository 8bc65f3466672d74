/*
 * ctlparse.c - a VM's ctl lines through the core's command parser (the VM verb
 * table): a line becomes an svm_request. No FUSE, no daemon state: shared by
 * fs/ctl.c and the fuzz target tests/fuzz/fuzz_ctl.c.
 */
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"

int fs_ctl_parse_line(const char *line, char *scratch, svm_request *r, svm_error *err)
{
	svm_cmdline c;
	if (svm_cmd_parse(svm_vm_commands(), line, scratch, &c, err) != 0)
		return -1;
	memset(r, 0, sizeof *r);
	r->verb = (svm_verb)c.cmd->index;
	r->argc = c.argc;
	memcpy(r->argv, c.argv, sizeof r->argv);
	return 0;
}

const char *fs_ctl_path_arg(const svm_request *r)
{
	svm_cmdline c = {.cmd = &svm_verb_table()[r->verb], .argc = r->argc};
	memcpy(c.argv, r->argv, sizeof c.argv);
	return svm_cmd_path(&c);
}

int fs_ctl_check_bytes(const char *bytes, size_t len, svm_error *err)
{
	return svm_cmd_check_bytes(bytes, len, err);
}

char *fs_ctl_echo(const char *bytes, size_t len)
{
	return svm_cmd_echo(svm_vm_commands(), bytes, len);
}
