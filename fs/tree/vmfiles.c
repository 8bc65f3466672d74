/*
 * vmfiles.c - the handlers behind the VM table: one small function per file,
 * each turning one core fact into newline-terminated text.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlparse.h"
#include "tree.h"

int fs_vm_ctl_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	svm_state st = svm_vm_state(t->vm);
	unsigned valid = svm_verbs_valid_in(st);
	const svm_verb_info *verbs = svm_verb_table();
	char list[512] = "";
	size_t used = 0;
	for (int v = 0; v < SVM_VERB_COUNT && used < sizeof list; v++)
		if (valid & (1u << v))
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
			                         used ? " " : "", verbs[v].name);
	*text = fs_strdupf(len, "state %s\nverbs %s\n", svm_state_name(st), list);
	return *text ? 0 : ENOMEM;
}

int fs_vm_state_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	*text = fs_strdup_line(svm_state_name(svm_vm_state(t->vm)), len);
	return *text ? 0 : ENOMEM;
}

int fs_vm_config_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return fs_text_take_line(svm_vm_config_json(t->vm), text, len);
}

int fs_vm_metadata_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	char *s = svm_vm_metadata_json(t->vm, err);
	/* A VMM started without metadata and without an "mmds" section has no
	 * MMDS data store at all: there is no metadata, which reads as {}. */
	if (!s && err->code == SVM_API_ERROR && strstr(err->message, "not initialized"))
		s = strdup("{}");
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

int fs_vm_info_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	char *s = svm_vm_info_json(t->vm, err);
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

int fs_vm_pid_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	pid_t pid = svm_vm_pid(t->vm);
	*text = pid > 0 ? fs_strdupf(len, "%d\n", (int)pid) : fs_strdupf(len, "%s", "");
	return *text ? 0 : ENOMEM;
}

/* TAP, MAC, address per interface, and the boot argument the last start gave */
int fs_vm_net_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return fs_text_take_line(svm_vm_net_text(t->vm), text, len);
}

int fs_vm_runtime_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	const char *dir = svm_vm_runtime_dir(t->vm);
	*text = dir && *dir ? fs_strdupf(len, "%s\n", dir) : fs_strdupf(len, "%s", "");
	return *text ? 0 : ENOMEM;
}

/* key value lines, like /proc: one fact per line, zeros when no VMM runs */
int fs_vm_stat_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	svm_vm_stat st;
	memset(&st, 0, sizeof st);
	if (svm_vm_get_stat(t->vm, &st, err) != 0)
		memset(&st, 0, sizeof st);
	*text = fs_strdupf(len,
	                   "pid %d\ncpu_user_ns %llu\ncpu_system_ns %llu\nrss_bytes %llu\n"
	                   "uptime_ns %llu\nboot_ns %llu\n",
	                   (int)st.pid, (unsigned long long)st.cpu_user_ns,
	                   (unsigned long long)st.cpu_system_ns, (unsigned long long)st.rss_bytes,
	                   (unsigned long long)st.uptime_ns, (unsigned long long)st.boot_ns);
	return *text ? 0 : ENOMEM;
}

int fs_vm_metrics_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	svm_state st = svm_vm_state(t->vm);
	bool running = st == SVM_RUNNING || st == SVM_PAUSED;
	char *s = svm_vm_metrics(t->vm, running, err);
	if (!s && running) /* a VMM too busy to flush still has its last line */
		s = svm_vm_metrics(t->vm, false, err);
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

/* An editor that opened `console`, then saves it, writes back what the guest
 * printed: as serial input, every old line would run as a command in a guest
 * shell. Such a write starts with the oldest bytes the console keeps. */
static bool replays_console(struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	if (h->console_replay)
		return true; /* the rest of the same save */
	if (off != 0 || size < 8)
		return false;
	char head[256];
	size_t want = size < sizeof head ? size : sizeof head;
	uint64_t from = 0;
	ssize_t n = svm_stream_read(h->t.s, h->t.vm, SVM_STREAM_VM_CONSOLE, 0, head, want, &from);
	return n >= 8 && memcmp(head, buf, (size_t)n) == 0;
}

/* Firecracker's GET /version of this VM's VMM while one runs; empty otherwise (a
 * stopped VM has no VMM to ask, and grep -r over VMs should not fail for it). */
int fs_vm_version_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	if (!svm_vm_pid(t->vm)) {
		*text = fs_strdupf(len, "%s", "");
		return *text ? 0 : ENOMEM;
	}
	char *s = svm_vm_version_json(t->vm, err);
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

int fs_vm_autostart_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	*text = fs_strdupf(len, "%s\n", svm_vm_autostart(t->vm) ? "on" : "off");
	return *text ? 0 : ENOMEM;
}

/* autostart: one word, on or off; applied at once (the definition is rewritten). */
void fs_autostart_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	(void)off;
	svm_error err;
	svm_error_clear(&err);
	char word[8] = "";
	size_t n = size;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (n < sizeof word && fs_ctl_check_bytes(buf, n, &err) == 0)
		memcpy(word, buf, n);
	bool on = !strcmp(word, "on") || !strcmp(word, "1");
	if (!on && strcmp(word, "off") && strcmp(word, "0")) {
		char *echo = fs_ctl_echo(buf, n);
		svm_error_set(&err, SVM_INVALID_ARGUMENT, "autostart takes on or off, not \"%s\"",
		              echo ? echo : "");
		free(echo);
	} else if (svm_vm_set_autostart(h->t.vm, on, &err) == 0) {
		fuse_reply_write(req, size);
		return;
	}
	svm_vm_note_error(h->t.vm, "write autostart", &err);
	fuse_reply_err(req, svm_code_errno(err.code));
}

void fs_console_write(fuse_req_t req, struct fs_handle *h, const char *buf, size_t size, off_t off)
{
	svm_error err;
	svm_error_clear(&err);
	/* a stream to the guest: offsets mean nothing, but for telling a save */
	if (replays_console(h, buf, size, off)) {
		h->console_replay = true;
		svm_error_set(&err, SVM_INVALID_CONFIG, "what was written starts with the console's "
		              "own output (an editor saving it?): not sent to the guest; write only "
		              "the input, e.g. echo CMD > console");
		svm_vm_note_error(h->t.vm, "write console", &err);
		fuse_reply_err(req, EINVAL);
		return;
	}
	ssize_t n = svm_vm_console_write(h->t.vm, buf, size, &err);
	if (n < 0) {
		svm_vm_note_error(h->t.vm, "write console", &err);
		fuse_reply_err(req, fs_errno(err.code));
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

int fs_config_apply(svm_vm *vm, const char *text, size_t len, svm_error *err)
{
	/* the writer is the VM's owner (FS_OWNED) */
	if (fs_config_paths_allowed(text, len, svm_vm_owner_uid(vm), err) != 0)
		return -1;
	return svm_vm_set_config_json(vm, text, len, err);
}

int fs_metadata_apply(svm_vm *vm, const char *text, size_t len, svm_error *err)
{
	return svm_vm_set_metadata_json(vm, text, len, err);
}

/* Balloon statistics while a VMM runs with a balloon device; empty otherwise
 * (a VM that is not running has no statistics, and `cat vms/NAME/balloon` in a loop or
 * grep -r should not fail for it). Firecracker's failures are errors. */
/* Whether the VM runs with this section in its config (and, with flag, that
 * member of it true). */
static bool running_with(svm_vm *vm, const char *section, const char *flag)
{
	svm_state st = svm_vm_state(vm);
	if (st != SVM_RUNNING && st != SVM_PAUSED)
		return false;
	char *cfg = svm_vm_config_json(vm);
	json_t *doc = cfg ? json_loads(cfg, 0, NULL) : NULL;
	json_t *b = json_object_get(doc, section);
	bool yes = json_is_object(b) && (!flag || json_is_true(json_object_get(b, flag)));
	json_decref(doc);
	free(cfg);
	return yes;
}

/* A live JSON read-out of the VMM's: empty when the VM does not run with it. */
static int live_json(const struct fs_target *t, const char *section, const char *flag,
		     char *(*get)(svm_vm *, svm_error *), char **text, size_t *len, svm_error *err)
{
	if (!running_with(t->vm, section, flag))
		return fs_text_take_line(NULL, text, len);
	char *s = get(t->vm, err);
	if (!s && err->code == SVM_INVALID_STATE) /* it stopped meanwhile */
		return fs_text_take_line(NULL, text, len);
	if (!s)
		return fs_errno(err->code);
	return fs_text_take_line(s, text, len);
}

int fs_vm_balloon_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	return live_json(t, "balloon", NULL, svm_vm_balloon_stats_json, text, len, err);
}

int fs_vm_hinting_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	return live_json(t, "balloon", "freePageHinting", svm_vm_balloon_hinting_json, text, len, err);
}

int fs_vm_hotplug_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	return live_json(t, "memoryHotplug", NULL, svm_vm_hotplug_json, text, len, err);
}

int fs_vm_vsock_text(const struct fs_target *t, char **text, size_t *len, svm_error *err)
{
	(void)err;
	return fs_text_take_line(svm_vm_vsock_path(t->vm), text, len);
}

/* snapshots/: one symlink per directory under svm_vm_snapshot_dir() */
char **fs_vm_snapshot_list(const struct fs_target *t, size_t *count)
{
	return svm_vm_snapshot_list(t->vm, count);
}

char *fs_vm_snapshot_link(const struct fs_target *t)
{
	char *dir = svm_vm_snapshot_dir(t->vm);
	char *p = dir ? fs_strdupf(NULL, "%s/%s", dir, t->id) : NULL;
	free(dir);
	return p;
}
