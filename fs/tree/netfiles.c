/*
 * netfiles.c - /net: the bridge, subnet, gateway and leases of automatic
 * networking (docs/networking.md), and /net/ctl for manual TAPs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

/* bridge, subnet, gateway, leases: the row's name is the core's name */
int fs_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	char *s = svm_net_text(t->s, t->row->name);
	if (!s)
		s = strdup("");
	if (!s)
		return ENOMEM;
	*text = s;
	*len = strlen(s);
	return 0;
}

/* "tap VM IFACE": a TAP and its lease ahead of a start (manual mode). */
int fs_net_command(const struct fs_target *t, const char *line, svm_error *err)
{
	if (svm_net_ctl(t->s, line, err) != 0) {
		char *echo = fs_ctl_echo(line, strlen(line)); /* one line, bounded */
		char cmd[FS_CTL_ECHO_MAX * 4 + 80];
		snprintf(cmd, sizeof cmd, "net/ctl %s", echo ? echo : "");
		free(echo);
		svm_note_error(t->s, cmd, err);
		return -1;
	}
	fs_root_file_changed("net", "leases");
	return 0;
}
