/*
 * vm.c - a VM: creation, accessors, the config and metadata documents, the
 * error file, and the synchronous/asynchronous verb dispatch. The verbs
 * themselves are in vm_verbs.c, the process side in vm_proc.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist.h"
#include "config.h"
#include "internal.h"
#include "stage.h"
#include "vm_verbs.h"
#include "vmm.h"
#include "vmstate.h"

/* ------------------------------------------------------------ lifetime */

static void make_id(char id[SVM_ID_LEN + 1])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[SVM_ID_LEN];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		for (int i = 0; i < SVM_ID_LEN; i++)
			rnd[i] = (unsigned char)(rand() & 0xff);
	for (int i = 0; i < SVM_ID_LEN; i++)
		id[i] = alphabet[rnd[i] % 36];
	id[0] = alphabet[rnd[0] % 26]; /* a letter first: valid everywhere */
	id[SVM_ID_LEN] = '\0';
}

/* The object around runtime dir vm->rundir (named already). */
static svm_vm *vm_init(svm_vm *vm, svm *s)
{
	memcpy(vm->sock, vm->rundir, strlen(vm->rundir));
	memcpy(vm->sock + strlen(vm->rundir), "/fc.sock", sizeof "/fc.sock");
	vm->api = svm_api_new(vm->sock, s->opt.api_timeout_ms);
	/* a VM is mostly idle: its connection is held for a verb only (vm_verbs.c) */
	if (vm->api)
		svm_api_close_when_idle(vm->api);
	pthread_mutex_init(&vm->mu, NULL);
	pthread_mutex_init(&vm->md_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&vm->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&vm->state, SVM_CREATED);
	atomic_init(&vm->uid, (unsigned)getuid());
	vm->pidfd = vm->out_fd = vm->log_fd = vm->metrics_fd = -1;
	vm->logcopy_fd = vm->metcopy_fd = vm->sercopy_fd = -1;
	ring_init(&vm->console, s->opt.console_size);
	ring_init(&vm->fclog, SVM_FCLOG_KEPT);
	ring_init(&vm->errtail, SVM_STDERR_KEPT);
	ring_init(&vm->errors, SVM_ERRORS_KEPT);
	ring_init(&vm->evlog, SVM_EVLOG_KEPT);
	if (s->default_config) {
		vm->config = svm_config_parse(s->default_config, strlen(s->default_config), NULL);
	}
	if (!vm->config)
		vm->config = svm_config_default();
	vm_event_locked(vm, "state created");
	vm_touch(vm);
	return vm;
}

/* A VM named name with the id id (its runtime dir RUNDIR/ID, not made here). */
static svm_vm *vm_alloc(svm *s, const char *name, const char *id, svm_error *err)
{
	svm_vm *vm = calloc(1, sizeof *vm);
	if (!vm) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	atomic_init(&vm->refs, 1);
	vm->s = s;
	snprintf(vm->name, sizeof vm->name, "%.64s", name);
	snprintf(vm->id, sizeof vm->id, "%s", id);
	int len = snprintf(vm->rundir, sizeof vm->rundir, "%s/%s", s->runtime_dir, vm->id);
	if (len < 0 || (size_t)len + sizeof "/vsock.sock" > sizeof vm->sock) {
		/* svm_new checked this already; keep the compiler and us honest */
		svm_error_set(err, SVM_NAME_TOO_LONG, "runtime dir too long");
		free(vm);
		return NULL;
	}
	return vm;
}

svm_vm *vm_new(svm *s, const char *name, svm_error *err)
{
	/* the runtime dir claims the id: mkdir is atomic across mounts sharing the dir */
	for (int tries = 0;; tries++) {
		char id[SVM_ID_LEN + 1];
		make_id(id);
		svm_vm *vm = vm_alloc(s, name, id, err);
		if (!vm)
			return NULL;
		if (mkdir(vm->rundir, 0700) == 0)
			return vm_init(vm, s);
		int e = errno;
		if (e != EEXIST || tries > 100) {
			svm_error_set(err, e == ENOSPC ? SVM_NO_SPACE : SVM_START_FAILED,
				      "cannot create runtime directory %s: %s", vm->rundir, strerror(e));
			free(vm);
			return NULL;
		}
		free(vm);
	}
}

svm_vm *vm_new_at(svm *s, const char *name, const char *id, svm_error *err)
{
	svm_vm *vm = vm_alloc(s, name, id, err);
	return vm ? vm_init(vm, s) : NULL;
}

/* Removes the runtime directory and what the core put in it. */
void vm_destroy_files(svm_vm *vm)
{
	static const char *const files[] = {"fc.sock", "log.fifo", "metrics.fifo",
					    "vsock.sock", "stdin.fifo", "console.fifo",
					    "stderr.log", "stderr.fifo", VMSTATE_FILE, VMSTATE_FILE ".tmp"};
	char p[PATH_MAX];
	/* a VM that never ran has an empty directory (most of 10,000 at an
	 * unmount): one rmdir, where the names below were ten failed unlinks */
	if (rmdir(vm->rundir) == 0 || errno == ENOENT) {
		stage_forget(vm); /* nothing of it was left there to scan for */
		return;
	}
	stage_cleanup(vm);
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "%s/%s", vm->rundir, files[i]);
		unlink(p);
	}
	if (rmdir(vm->rundir) < 0 && errno != ENOENT)
		sink_log(&vm->s->sink, "vm %s: cannot remove %s: %s", vm->name, vm->rundir, strerror(errno));
}

void svm_vm_ref(svm_vm *vm)
{
	atomic_fetch_add(&vm->refs, 1);
}

void svm_vm_unref(svm_vm *vm)
{
	if (!vm || atomic_fetch_sub(&vm->refs, 1) != 1)
		return;
	svm_api_free(vm->api);
	json_decref(vm->config);
	json_decref(vm->metadata);
	lines_clear(&vm->events);
	ring_destroy(&vm->console);
	ring_destroy(&vm->fclog);
	ring_destroy(&vm->errtail);
	ring_destroy(&vm->errors);
	ring_destroy(&vm->evlog);
	free(vm->metrics_line);
	free(vm->image_held);
	free(vm->mpart);
	pthread_mutex_destroy(&vm->mu);
	pthread_mutex_destroy(&vm->md_mu);
	pthread_cond_destroy(&vm->cv);
	free(vm);
}

/* ------------------------------------------------------------ accessors */

const char *svm_vm_name(const svm_vm *vm) { return vm->name; }
const char *svm_vm_id(const svm_vm *vm) { return vm->id; }
svm *svm_vm_owner(const svm_vm *vm) { return vm->s; }
uint64_t svm_vm_generation(const svm_vm *vm) { return vm->gen; }
bool svm_vm_removed(const svm_vm *vm) { return atomic_load(&vm->removed); }
svm_state svm_vm_state(const svm_vm *vm) { return (svm_state)atomic_load(&vm->state); }
pid_t svm_vm_pid(const svm_vm *vm) { return (pid_t)atomic_load(&vm->pid); }
const char *svm_vm_runtime_dir(const svm_vm *vm) { return vm->rundir; }
uid_t svm_vm_owner_uid(const svm_vm *vm) { return (uid_t)atomic_load(&vm->uid); }
void vm_persist_locked(svm_vm *vm)
{
	svm_error e;
	if (persist_save_locked(vm, &e) < 0)
		sink_log(&vm->s->sink, "vm %s: its definition is not kept: %s", vm->name, e.message);
}

void svm_vm_set_front_data(svm_vm *vm, void *data) { atomic_store(&vm->front, data); }
void *svm_vm_front_data(const svm_vm *vm) { return atomic_load(&((svm_vm *)vm)->front); }
void svm_vm_set_owner_uid(svm_vm *vm, uid_t uid)
{
	pthread_mutex_lock(&vm->mu);
	atomic_store(&vm->uid, (unsigned)uid);
	vmstate_save_locked(vm); /* a re-adopted VM keeps its owner */
	vm_persist_locked(vm);
	pthread_mutex_unlock(&vm->mu);
}
int64_t svm_vm_mtime_ns(const svm_vm *vm) { return (int64_t)atomic_load(&vm->mtime_ns); }

void vm_touch(svm_vm *vm)
{
	atomic_store(&vm->mtime_ns, (long long)svm_wall_ns());
}

uint64_t vm_state_locked(svm_vm *vm, svm_state st)
{
	char line[32];
	/* the state file before the state is seen: its write does not widen the
	 * window between the new state and what follows it under vm->mu */
	vmstate_save_as_locked(vm, st);
	atomic_store(&vm->state, (int)st);
	vm_touch(vm);
	snprintf(line, sizeof line, "state %s", svm_state_name(st));
	return vm_event_locked(vm, line);
}

/* An event is a numbered line (for the readers that wait for the next one) and
 * the same line in a byte stream (for the ones that read the history). */
uint64_t vm_event_locked(svm_vm *vm, const char *line)
{
	char buf[160];
	int n = snprintf(buf, sizeof buf, "%s\n", line);
	ring_append(&vm->evlog, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
	return lines_add(&vm->events, line);
}

/* ------------------------------------------------------------ documents */

char *svm_vm_config_json(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	char *s = svm_config_dump(vm->config);
	pthread_mutex_unlock(&vm->mu);
	return s;
}

static bool config_writable(svm_state st)
{
	return st == SVM_CREATED || st == SVM_STOPPED || st == SVM_ERROR;
}

static int config_busy(svm_vm *vm, svm_state st, svm_error *err)
{
	return svm_error_set(err, SVM_INVALID_STATE,
			     "config of %s cannot change while it is %s (stop it first)", vm->name,
			     svm_state_name(st));
}

int svm_vm_set_config_json(svm_vm *vm, const char *text, size_t len, svm_error *err)
{
	/* the state first: a document for a running VM is refused whatever it says */
	if (!config_writable(svm_vm_state(vm)))
		return config_busy(vm, svm_vm_state(vm), err);
	json_t *cfg = svm_config_parse(text, len, err);
	if (!cfg)
		return -1;
	pthread_mutex_lock(&vm->mu);
	svm_state st = vm->state;
	if (!config_writable(st) || vm->busy || atomic_load(&vm->removed)) {
		pthread_mutex_unlock(&vm->mu);
		json_decref(cfg);
		return config_busy(vm, st, err);
	}
	json_decref(vm->config);
	vm->config = cfg;
	vm_touch(vm);
	vmstate_save_locked(vm);
	vm_persist_locked(vm);
	pthread_mutex_unlock(&vm->mu);
	sink_emit(&vm->s->sink, SVM_EV_CONFIG, vm, 0, NULL);
	return 0;
}

static json_t *parse_metadata(const char *text, size_t len, svm_error *err)
{
	if (len > SVM_MMDS_MAX) {
		svm_error_set(err, SVM_TOO_LARGE, "metadata is %zu bytes, over the MMDS limit of %d",
			      len, SVM_MMDS_MAX);
		return NULL;
	}
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		/* jansson quotes the text where it stopped ("near '...'"): metadata may
		 * carry secrets, and the message goes to the error file */
		char *near = strstr(je.text, " near ");
		if (near)
			*near = '\0';
		svm_error_set(err, SVM_INVALID_CONFIG, "metadata: %s at line %d column %d", je.text,
			      je.line, je.column);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		svm_error_set(err, SVM_INVALID_CONFIG, "metadata must be a JSON object");
		return NULL;
	}
	return doc;
}

char *svm_vm_metadata_json(svm_vm *vm, svm_error *err)
{
	if (svm_vm_pid(vm) && (svm_vm_state(vm) == SVM_RUNNING || svm_vm_state(vm) == SVM_PAUSED)) {
		svm_api_reply r = {0};
		svm_error e;
		int rc = svm_api_call(vm->api, "GET", "/mmds", NULL, &r, &e);
		if (rc == 0) {
			char *s = r.json ? json_dumps(r.json, JSON_INDENT(2) | JSON_SORT_KEYS)
					 : strdup("{}");
			svm_api_reply_clear(&r);
			return s;
		}
		svm_api_reply_clear(&r);
		/* a VMM that was never given metadata has no data store ("not
		 * initialized"): what we stored is the truth then, "{}" if nothing */
		if (e.code != SVM_API_ERROR) {
			if (err)
				*err = e;
			return NULL;
		}
	}
	pthread_mutex_lock(&vm->mu);
	char *s = vm->metadata ? json_dumps(vm->metadata, JSON_INDENT(2) | JSON_SORT_KEYS)
			       : strdup("{}");
	pthread_mutex_unlock(&vm->mu);
	return s;
}

int svm_vm_set_metadata_json(svm_vm *vm, const char *text, size_t len, svm_error *err)
{
	json_t *doc = parse_metadata(text, len, err);
	if (!doc)
		return -1;
	pthread_mutex_lock(&vm->md_mu);
	svm_state st = svm_vm_state(vm);
	if (svm_vm_pid(vm) && (st == SVM_RUNNING || st == SVM_PAUSED)) {
		if (svm_api_call(vm->api, "PUT", "/mmds", doc, NULL, err) < 0) {
			pthread_mutex_unlock(&vm->md_mu);
			json_decref(doc);
			return -1;
		}
	} else if (st == SVM_STARTING || st == SVM_STOPPING) {
		pthread_mutex_unlock(&vm->md_mu);
		json_decref(doc);
		return svm_error_set(err, SVM_INVALID_STATE, "metadata of %s cannot change while it is %s",
				     vm->name, svm_state_name(st));
	}
	pthread_mutex_lock(&vm->mu);
	json_decref(vm->metadata);
	vm->metadata = doc;
	vm_touch(vm);
	vm_persist_locked(vm);
	pthread_mutex_unlock(&vm->mu);
	pthread_mutex_unlock(&vm->md_mu);
	sink_emit(&vm->s->sink, SVM_EV_CONFIG, vm, 0, NULL);
	return 0;
}

/* the metadata verb: a merge (PATCH /mmds), kept in the stored document too */
int vm_merge_metadata(svm_vm *vm, const char *text, svm_error *err)
{
	json_t *patch = parse_metadata(text, strlen(text), err);
	if (!patch)
		return -1;
	pthread_mutex_lock(&vm->md_mu);
	int rc = svm_api_call(vm->api, "PATCH", "/mmds", patch, NULL, err);
	if (rc == 0) {
		pthread_mutex_lock(&vm->mu);
		if (!vm->metadata)
			vm->metadata = json_object();
		json_object_update_recursive(vm->metadata, patch);
		vm_touch(vm);
		vm_persist_locked(vm);
		pthread_mutex_unlock(&vm->mu);
	}
	pthread_mutex_unlock(&vm->md_mu);
	if (rc == 0)
		sink_emit(&vm->s->sink, SVM_EV_CONFIG, vm, 0, NULL);
	json_decref(patch);
	return rc;
}

char *svm_vm_info_json(svm_vm *vm, svm_error *err)
{
	/* starting: the API socket may not answer yet; stopping: the VMM is ending.
	 * Then what is known is the answer, not an error (as for metadata). */
	svm_state st = svm_vm_state(vm);
	if (svm_vm_pid(vm) && (st == SVM_RUNNING || st == SVM_PAUSED)) {
		svm_api_reply r = {0};
		if (svm_api_call(vm->api, "GET", "/", NULL, &r, err) == 0 && r.json) {
			char *s = json_dumps(r.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			svm_api_reply_clear(&r);
			return s;
		}
		svm_api_reply_clear(&r);
		if (svm_vm_pid(vm))
			return NULL;
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", vm->id, "name", vm->name, "state",
			      svm_state_name(svm_vm_state(vm)), "app_name", "smartvmfs");
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

char *svm_vm_version_json(svm_vm *vm, svm_error *err)
{
	svm_api_reply r = {0};
	if (!svm_vm_pid(vm)) {
		svm_error_set(err, SVM_NO_CLIENT, "%s has no running VMM", vm->name);
		return NULL;
	}
	char *s = NULL;
	if (svm_api_call(vm->api, "GET", "/version", NULL, &r, err) == 0)
		s = strdup(r.text ? r.text : "");
	svm_api_reply_clear(&r);
	return s;
}

/* ------------------------------------------------------------ streams */

uint64_t svm_vm_console_size(svm_vm *vm) { return ring_total(&vm->console); }

ssize_t svm_vm_console_read(svm_vm *vm, uint64_t off, char *buf, size_t len)
{
	return ring_read(&vm->console, off, buf, len);
}

ssize_t svm_vm_console_write(svm_vm *vm, const char *buf, size_t len, svm_error *err)
{
	/* the VMM's stdin FIFO, opened for this write only: the VMM holds it
	 * read-write, so it has a reader while the VMM lives, and the daemon keeps
	 * no descriptor per VM for input that is rare. Under vm->mu: the FIFO of
	 * the VMM that runs now (its exit removes it under the same lock). */
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/stdin.fifo", vm->rundir);
	pthread_mutex_lock(&vm->mu);
	bool live = vm->pid != 0;
	int fd = live ? open(p, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) : -1;
	int e = errno;
	ssize_t n = -1;
	if (fd >= 0) {
		n = write(fd, buf, len);
		e = errno;
		close(fd);
	}
	pthread_mutex_unlock(&vm->mu);
	if (!live || (fd < 0 && (e == ENXIO || e == ENOENT))) {
		/* no VMM, or one that has just ended (no reader: ENXIO) */
		svm_error_set(err, SVM_INVALID_STATE, "%s is %s: the console takes input only while it runs",
			      vm->name, svm_state_name(svm_vm_state(vm)));
		return -1;
	}
	if (n < 0) {
		svm_error_set(err, e == EAGAIN || e == EMFILE || e == ENFILE || e == ENOMEM
					   ? SVM_NO_SPACE : SVM_SOCKET_REQUEST_FAILED,
			      "console input: %s", strerror(e));
		return -1;
	}
	return n;
}

uint64_t svm_vm_log_size(svm_vm *vm) { return ring_total(&vm->fclog); }

ssize_t svm_vm_log_read(svm_vm *vm, uint64_t off, char *buf, size_t len)
{
	return ring_read(&vm->fclog, off, buf, len);
}

char *svm_vm_metrics(svm_vm *vm, bool flush, svm_error *err)
{
	if (flush && svm_vm_pid(vm) &&
	    (svm_vm_state(vm) == SVM_RUNNING || svm_vm_state(vm) == SVM_PAUSED)) {
		pthread_mutex_lock(&vm->mu);
		uint64_t before = vm->metrics_seq;
		pthread_mutex_unlock(&vm->mu);
		json_t *body = json_pack("{s:s}", "action_type", "FlushMetrics");
		int rc = svm_api_call(vm->api, "PUT", "/actions", body, NULL, err);
		json_decref(body);
		if (rc < 0)
			return NULL;
		/* the line travels through the FIFO and the loop: wait for it, briefly */
		struct timespec ts = svm_time_after(CLOCK_REALTIME, 200 * 1000000ULL);
		pthread_mutex_lock(&vm->mu);
		while (vm->metrics_seq == before)
			if (pthread_cond_timedwait(&vm->cv, &vm->mu, &ts) != 0)
				break;
		pthread_mutex_unlock(&vm->mu);
	}
	pthread_mutex_lock(&vm->mu);
	char *s = strdup(vm->metrics_line ? vm->metrics_line : "");
	pthread_mutex_unlock(&vm->mu);
	return s;
}

uint64_t svm_vm_event_seq(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	uint64_t s = vm->events.seq;
	pthread_mutex_unlock(&vm->mu);
	return s;
}

char *svm_vm_event_line(svm_vm *vm, uint64_t seq, uint64_t *got)
{
	pthread_mutex_lock(&vm->mu);
	char *s = lines_get(&vm->events, seq, got);
	pthread_mutex_unlock(&vm->mu);
	return s;
}

void svm_vm_note_error(svm_vm *vm, const char *command, const svm_error *e)
{
	svm_note_line(&vm->errors, command, e);
	sink_emit(&vm->s->sink, SVM_EV_ERROR, vm, 0, NULL);
}

char *svm_vm_error_text(svm_vm *vm) { return ring_text(&vm->errors); }

char *svm_vm_last_exit(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	char *s = strdup(vm->last_exit);
	pthread_mutex_unlock(&vm->mu);
	return s;
}

int svm_vm_get_stat(svm_vm *vm, svm_vm_stat *st, svm_error *err)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&vm->mu);
	st->pid = vm->pid;
	uint64_t running = vm->running_ns, spawn = vm->spawn_ns;
	pthread_mutex_unlock(&vm->mu);
	if (!st->pid)
		return 0;
	if (vmm_proc_stat(st->pid, &st->cpu_user_ns, &st->cpu_system_ns, &st->rss_bytes) < 0)
		return svm_error_set(err, SVM_NOT_FOUND, "cannot read /proc/%d", (int)st->pid);
	if (running) {
		st->uptime_ns = svm_now_ns() - running;
		st->boot_ns = running - spawn;
	}
	return 0;
}

char *svm_vm_snapshot_dir(svm_vm *vm)
{
	char *p = NULL;
	if (asprintf(&p, "%s/snapshots/%s", vm->s->data_dir, vm->name) < 0)
		return NULL;
	return p;
}

char *svm_vm_balloon_stats_json(svm_vm *vm, svm_error *err)
{
	if (!svm_vm_pid(vm)) {
		svm_error_set(err, SVM_INVALID_STATE, "%s is %s: balloon statistics exist while it runs",
			      vm->name, svm_state_name(svm_vm_state(vm)));
		return NULL;
	}
	svm_api_reply r = {0};
	char *s = NULL;
	if (svm_api_call(vm->api, "GET", "/balloon/statistics", NULL, &r, err) == 0)
		s = r.json ? json_dumps(r.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : strdup("{}");
	svm_api_reply_clear(&r);
	return s;
}

/* A live read-out of the VMM's (GET path) while it runs; what names it in errors. */
static char *vmm_get_json(svm_vm *vm, const char *path, const char *what, svm_error *err)
{
	if (!svm_vm_pid(vm)) {
		svm_error_set(err, SVM_INVALID_STATE, "%s is %s: %s exists while it runs", vm->name,
			      svm_state_name(svm_vm_state(vm)), what);
		return NULL;
	}
	svm_api_reply r = {0};
	char *s = NULL;
	if (svm_api_call(vm->api, "GET", path, NULL, &r, err) == 0)
		s = r.json ? json_dumps(r.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : strdup("{}");
	svm_api_reply_clear(&r);
	return s;
}

char *svm_vm_balloon_hinting_json(svm_vm *vm, svm_error *err)
{
	return vmm_get_json(vm, "/balloon/hinting/status", "a hinting status", err);
}

char *svm_vm_hotplug_json(svm_vm *vm, svm_error *err)
{
	return vmm_get_json(vm, "/hotplug/memory", "the hotplug region's state", err);
}

char *svm_vm_vsock_path(svm_vm *vm)
{
	pthread_mutex_lock(&vm->mu);
	char *p = vm_vsock_path_locked(vm, vm->config);
	pthread_mutex_unlock(&vm->mu);
	return p;
}

bool svm_text_incomplete(const char *text, size_t len)
{
	return svm_config_text_incomplete(text, len);
}
