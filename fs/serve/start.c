/*
 * start.c - starting and ending the engine, and what it knows of the tree it
 * was handed: the tables (Plan 9's devwalk is handed its Dirtab the same way),
 * and which root row is the directory of the VMs.
 */
#include "ops.h"

int fs_serve_start(const struct fs_tree *tree)
{
	if (tree->root->nrows > FS_ROOT_ROWS_MAX || tree->vm->nrows > FS_VM_ROWS_MAX)
		return -1; /* the engine's rowstate arrays and inode strides hold no more */
	fsd.tree = tree;
	fsd.vms_row = -1;
	for (int i = 0; i < tree->root->nrows; i++)
		if (tree->root->rows[i].flags & FS_VMS)
			fsd.vms_row = i;
	if (fs_pump_start() != 0)
		return -1;
	return fs_inval_start();
}

void fs_serve_stop(void (*abort_conn)(bool in_fuse))
{
	fs_pump_stop();
	fs_inval_stop(abort_conn);
}

void fs_serve_free(void)
{
	/* handles and listings hold references to nodes and VMs: they go first */
	fs_dirlists_free();
	fs_handles_free();
	fs_nodes_free();
}
