/*
 * tree.h - what smartvmfs's tree is: its tables (table.c) and the handlers
 * behind their rows. A handler author reads this, table.h (the row type) and
 * the few engine calls a handler makes (serve.h: the fresh replies, fsd).
 * The arrow points one way: tree/ includes serve/, never the reverse.
 */
#ifndef SMARTVMFS_TREE_H
#define SMARTVMFS_TREE_H

#include "serve/serve.h"

/* ---- table.c: the root, VM and bundle tables, and the tree they make */
extern const struct fs_table fs_root_table;
extern const struct fs_table fs_vm_table;
extern const struct fs_tree fs_smartvm_tree;

/* ---- rootfiles.c, vmfiles.c: the handlers behind the rows */
int fs_root_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_room_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_paths_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_root_command(const struct fs_target *t, const char *line, svm_error *err);
/* cmd.c: command files, lines run in order on a thread of their own (row->cmd). */
void fs_cmd_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);

int fs_vm_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_state_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_config_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_metadata_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_info_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_pid_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_runtime_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_stat_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_autostart_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_autostart_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_vm_metrics_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_balloon_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_hinting_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_hotplug_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_vm_vsock_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
char **fs_vm_snapshot_list(const struct fs_target *t, size_t *count);
char *fs_vm_snapshot_link(const struct fs_target *t);

/* ---- limitfiles.c: vms/NAME/limits/ */
int fs_vm_limit_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_vm_limit_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);

/* ---- netfiles.c: /net */
int fs_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_net_command(const struct fs_target *t, const char *line, svm_error *err);

/* ---- imagefiles.c: /images */
int fs_images_summary_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
int fs_images_command(const struct fs_target *t, const char *line, svm_error *err);
char *fs_images_preset_link(const struct fs_target *t);
char **fs_images_list(const struct fs_target *t, size_t *count);
char **fs_images_user_list(const struct fs_target *t, size_t *count);
char *fs_images_user_link(const struct fs_target *t);
int fs_bundle_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
char *fs_bundle_link(const struct fs_target *t);
void fs_console_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
int fs_config_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);
int fs_metadata_apply(svm_vm *vm, const char *text, size_t len, svm_error *err);

/* ---- execfiles.c: vms/NAME/exec, commands in the guest (docs/exec.md) */
extern const struct fs_table fs_exec_table;
char **fs_exec_list(const struct fs_target *t, size_t *count);
int fs_exec_open(fuse_req_t req, struct fs_handle *h);
void fs_exec_release(struct fs_handle *h);
void fs_exec_poll(fuse_req_t req, struct fs_handle *h, struct fuse_pollhandle *ph);
int fs_exec_text(const struct fs_target *t, char **text, size_t *len, svm_error *err);
void fs_exec_clone_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_exec_output_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_exec_error_read(fuse_req_t req, struct fs_handle *h, size_t size, off_t off);
void fs_exec_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_exec_stdin_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_exec_output_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);
void fs_exec_run_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);

/* ---- ctl.c: VM verbs, one per line, replied from the core's completion */
void fs_vm_ctl_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off);

#endif
