/*
 * svm.c - the orchestrator: options and defaults, the VM list, stop-all and
 * cleanup, the daemon log and root error file, and event delivery.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "persist.h"
#include "quota.h"
#include "redact.h"
#include "fileio.h"
#include "hostpath.h"
#include "images.h"
#include "internal.h"
#include "jail.h"
#include "net.h"
#include "safedir.h"
#include "vm_verbs.h"
#include "vmm.h"
#include "vmstate.h"

_Static_assert(NET_VM_ID_MAX >= SVM_ID_LEN, "a lease keeps a whole VM id");

#define LOG_KEPT (256 * 1024)
#define ROOT_ERRORS_KEPT 16384


bool svm_fc_emulated(svm *s)
{
	svm_fc_version(s);
	pthread_mutex_lock(&s->mu);
	bool e = s->fc_emulator;
	pthread_mutex_unlock(&s->mu);
	return e;
}

const char *svm_lib_version(void)
{
	return SMARTVMFS_VERSION;
}

static char *line_of(const char *v)
{
	char *s = NULL;
	if (asprintf(&s, "%s\n", v ? v : "") < 0)
		return NULL;
	return s;
}

/* ------------------------------------------------------------ options */

static char *dup_or(const char *v, const char *def)
{
	return strdup(v && *v ? v : def);
}

static bool dir_usable(const char *dir)
{
	struct stat st;
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
}

static const char *host_arch(void)
{
	static struct utsname u;
	if (uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0)
		return "aarch64";
	return "x86_64";
}

static int fill_options(svm *s, const svm_options *in, svm_error *err)
{
	svm_options o = in ? *in : (svm_options){0};
	s->data_dir = dup_or(o.data_dir, "/tmp/.smartvm");
	if (o.runtime_dir && *o.runtime_dir) {
		s->runtime_dir = strdup(o.runtime_dir);
	} else if (dir_usable("/dev/shm")) {
		s->runtime_dir = strdup("/dev/shm/.smartvm/runtime");
		s->runtime_default = true;
	} else {
		s->runtime_default = true;
		const char *tmp = getenv("TMPDIR");
		char buf[PATH_MAX];
		snprintf(buf, sizeof buf, "%s/.smartvm/runtime", tmp && *tmp ? tmp : "/tmp");
		s->runtime_dir = strdup(buf);
	}
	char cache[PATH_MAX];
	snprintf(cache, sizeof cache, "%s/base-images", s->data_dir);
	s->image_cache = dup_or(o.image_cache, cache);
	s->firecracker = o.firecracker && *o.firecracker ? strdup(o.firecracker) : NULL;
	s->fc_version_opt = o.fc_version && *o.fc_version ? strdup(o.fc_version) : NULL;
	s->arch = dup_or(o.arch, host_arch());
	s->bridge = dup_or(o.bridge, "svbr0");
	s->subnet = dup_or(o.subnet, "172.30.0.0/24");
	s->manifest = o.manifest && *o.manifest ? strdup(o.manifest) : NULL;
	s->default_config = o.default_config ? strdup(o.default_config) : NULL;
	s->dns = o.dns && *o.dns ? strdup(o.dns) : NULL;
	if (strcmp(s->arch, "x86_64") != 0 && strcmp(s->arch, "aarch64") != 0)
		return svm_error_set(err, SVM_INVALID_ARGUMENT, "arch \"%s\": x86_64 or aarch64", s->arch);
	o.data_dir = s->data_dir;
	o.runtime_dir = s->runtime_dir;
	o.image_cache = s->image_cache;
	o.firecracker = s->firecracker;
	o.fc_version = s->fc_version_opt;
	o.arch = s->arch;
	o.bridge = s->bridge;
	o.subnet = s->subnet;
	o.manifest = s->manifest;
	o.default_config = s->default_config;
	o.dns = s->dns;
	if (!o.max_images)
		o.max_images = 2;
	if (!o.console_size)
		o.console_size = 1024 * 1024;
	if (o.stop_timeout_ms <= 0)
		o.stop_timeout_ms = 5000;
	if (o.kill_timeout_ms <= 0)
		o.kill_timeout_ms = 2000;
	if (o.ready_timeout_ms <= 0)
		o.ready_timeout_ms = 5000;
	if (o.api_timeout_ms <= 0)
		o.api_timeout_ms = 5000;
	s->opt = o;
	s->sink.log_stderr = o.log_stderr;
	s->sink.on_event = o.on_event;
	s->sink.event_ud = o.event_ud;
	/* every socket path must fit sun_path: RUNDIR/ID/fc.sock and vsock.sock */
	struct sockaddr_un sun;
	size_t need = strlen(s->runtime_dir) + 1 + SVM_ID_LEN + strlen("/vsock.sock") + 1;
	if (need > sizeof sun.sun_path)
		return svm_error_set(err, SVM_NAME_TOO_LONG,
				     "runtime dir %s is too long: socket paths in it would need %zu "
				     "bytes, a Unix socket path holds %zu",
				     s->runtime_dir, need, sizeof sun.sun_path);
	return 0;
}

/* The soft RLIMIT_NOFILE up to the hard one: each running VM keeps
 * SVM_FDS_PER_VM descriptors, and a soft limit of 1024 (the usual default)
 * would stop a mount at about 330 VMs. Says what it did (for the log), or
 * nothing when the soft limit is the hard one already (the host checks, unless
 * -o nocheck, say whether that is enough). */
static void raise_nofile(char *said, size_t len)
{
	struct rlimit rl;
	said[0] = '\0';
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(said, len, "RLIMIT_NOFILE cannot be read: %s", strerror(errno));
		return;
	}
	unsigned long long was = rl.rlim_cur, hard = rl.rlim_max;
	if (rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(said, len, "RLIMIT_NOFILE %llu, cannot raise it to the hard limit %llu: %s",
			 was, hard, strerror(errno));
		return;
	}
	unsigned long long now = rl.rlim_cur == RLIM_INFINITY ? 1048576ULL : rl.rlim_cur;
	snprintf(said, len, "RLIMIT_NOFILE %llu (from %llu) raised to the hard limit: room for "
		 "about %llu running VMs at %d descriptors each (more: LimitNOFILE= in the systemd "
		 "unit, or the hard limit)", now, was, now > 64 ? (now - 64) / SVM_FDS_PER_VM : 0,
		 SVM_FDS_PER_VM);
}

static void on_images_event(void *ud, images_event ev, const char *id)
{
	svm *s = ud;
	/* a bundle's own files, or the list/presets/summary as a whole */
	bool bundle = id && (ev == IMAGES_EV_STATUS || ev == IMAGES_EV_CHANGED);
	sink_emit(&s->sink, SVM_EV_IMAGES, NULL, 0, bundle ? id : NULL);
}

/* /images/ctl's host paths: as every host path a user names */
static bool host_path_allowed(void *ud, const char *path)
{
	return svm_host_path_allowed(ud, path);
}

svm *svm_new(const svm_options *opts, svm_error *err)
{
	svm *s = calloc(1, sizeof *s);
	if (!s) {
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->seal_mu, NULL);
	pthread_cond_init(&s->ops_cv, NULL);
	sink_init(&s->sink, LOG_KEPT, ROOT_ERRORS_KEPT);
	ring_init(&s->image_errors, ROOT_ERRORS_KEPT);
	atomic_init(&s->ops, 0);
	s->self_start = proc_start_time(getpid());
	char jail_mode[PATH_MAX + 128];
	if (fill_options(s, opts, err) < 0 ||
	    jail_conf_new(&s->opt, s->firecracker, &s->jail, jail_mode, sizeof jail_mode, err) < 0)
		goto fail;
	/* both default to world-writable places: made safely, refused if tampered */
	if (safedir_make(s->data_dir, err) < 0 || safedir_make(s->runtime_dir, err) < 0)
		goto fail;
	char nofile[256];
	raise_nofile(nofile, sizeof nofile);
	s->net = net_new(&(net_settings){.runtime_dir = s->runtime_dir, .bridge = s->bridge,
					 .subnet = s->subnet, .dns = s->dns},
			 &s->sink, err);
	if (!s->net)
		goto fail;
	s->images = images_new(&(images_settings){.data_dir = s->data_dir, .cache_dir = s->image_cache,
						   .arch = s->arch, .manifest = s->manifest,
						   .firecracker = s->firecracker,
						   .fc_version = s->fc_version_opt,
						   .default_config = s->default_config,
						   .releases_url = s->opt.releases_url,
						   .ci_bucket_url = s->opt.ci_bucket_url,
						   .max_images = s->opt.max_images,
						   .path_allowed = host_path_allowed, .path_ud = s},
			       &s->sink, err);
	if (!s->images)
		goto fail;
	{
		/* base images, the cache's and the ones images/ctl makes: the daemon's
		 * to open for any VM (hostpath.h), beneath these */
		char kernels[PATH_MAX], rootfs[PATH_MAX];
		snprintf(kernels, sizeof kernels, "%s/kernels", s->data_dir);
		snprintf(rootfs, sizeof rootfs, "%s/rootfs", s->data_dir);
		mkdir(kernels, 0755);
		mkdir(rootfs, 0755);
		const char *base[] = {s->image_cache, kernels, rootfs, NULL};
		s->cache_root = hostpath_roots_new(base, err);
	}
	images_set_hook(s->images, on_images_event, s);
	s->loop = loop_new();
	if (!s->loop) {
		svm_error_set(err, SVM_START_FAILED, "cannot start the event loop");
		goto fail;
	}
	s->dirwatch = dirwatch_new(s->loop);
	svm_log(s, "smartvmfs %s: runtime dir %s, firecracker %s", SMARTVMFS_VERSION,
		s->runtime_dir, s->firecracker ? s->firecracker : "(none)");
	svm_log(s, "%s", jail_mode);
	if (nofile[0])
		svm_log(s, "%s", nofile);
	return s;
fail:
	s->loop = NULL;
	svm_free(s);
	return NULL;
}

const svm_options *svm_get_options(const svm *s) { return &s->opt; }
const char *svm_runtime_dir(const svm *s) { return s->runtime_dir; }

const char *svm_fc_version(svm *s)
{
	pthread_mutex_lock(&s->mu);
	if (!s->fc_version) {
		if (s->fc_version_opt) {
			s->fc_version = strdup(s->fc_version_opt);
		} else if (s->firecracker) {
			/* "Firecracker v1.14.2\n\n": ask the binary once, never the network */
			char *argv[] = {s->firecracker, "--version", NULL};
			char *out = vmm_capture(argv, 2000);
			char *v = out ? strstr(out, " v") : NULL;
			s->fc_emulator = out && strstr(out, "\nfc-emulator:");
			if (v) {
				v++;
				v[strcspn(v, " \r\n")] = '\0';
				s->fc_version = strdup(v);
			}
			free(out);
		}
		if (!s->fc_version)
			s->fc_version = images_cached_fc_version(s->images);
		if (!s->fc_version)
			s->fc_version = strdup("unknown");
	}
	const char *v = s->fc_version;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* ------------------------------------------------------------ VMs */


static bool taken_locked(svm *s, const char *name)
{
	return vmindex_find(&s->index, name) != NULL;
}

/* Where vm sits in the list (only a removal needs it). */
static ssize_t index_of_locked(svm *s, const svm_vm *vm)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (s->vms[i] == vm)
			return (ssize_t)i;
	return -1;
}

/* Appends vm with a new generation; the list takes a reference. */
static int list_append_locked(svm *s, svm_vm *vm)
{
	if (svm_grow(&s->vms, &s->capvms, s->nvms + 1, sizeof *s->vms) < 0)
		return -1;
	if (vmindex_add(&s->index, vm) < 0)
		return -1;
	vm->gen = ++s->next_gen;
	s->vms[s->nvms] = vm;
	__atomic_store_n(&s->nvms, s->nvms + 1, __ATOMIC_RELAXED); /* svm_count_vms */
	svm_vm_ref(vm); /* the list's reference */
	return 0;
}

/* The host roots (hostpath.h): where users' host paths may lie. */
int svm_set_host_roots(svm *s, const char *const *roots, svm_error *err)
{
	svm_error_clear(err);
	hostpath_roots *r = hostpath_roots_new(roots, err);
	if (!r && roots)
		return -1;
	hostpath_roots_free(s->roots);
	s->roots = r;
	return 0;
}

bool svm_host_path_allowed(const svm *s, const char *path)
{
	/* base images are every VM's to name (the daemon opens them) */
	return hostpath_roots_cover(s->roots, path) ||
	       (s->cache_root && hostpath_roots_cover(s->cache_root, path));
}

void svm_images_cancel(svm *s)
{
	if (s && s->images)
		images_cancel(s->images);
}

svm_vm *svm_create_vm(svm *s, const char *name, svm_error *err)
{
	return svm_create_vm_for(s, name, (uid_t)-1, err);
}

/* owner (uid_t)-1: nobody's yet (the front end sets it), no quota */
svm_vm *svm_create_vm_for(svm *s, const char *name, uid_t owner, svm_error *err)
{
	char gen[32];
	if (name && !svm_name_valid(name)) {
		if (strlen(name) > 64)
			svm_error_set(err, SVM_NAME_TOO_LONG, "VM name \"%.64s...\" is longer than 64 characters", name);
		else
			svm_error_set(err, SVM_INVALID_ARGUMENT,
				      "VM name \"%s\" must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}", name);
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	if (!name) {
		/* generated names: vm-1, vm-2, ... skipping taken ones */
		for (uint64_t n = s->next_gen + 1;; n++) {
			snprintf(gen, sizeof gen, "vm-%llu", (unsigned long long)n);
			if (!taken_locked(s, gen))
				break;
		}
		name = gen;
	}
	if (taken_locked(s, name)) {
		pthread_mutex_unlock(&s->mu);
		svm_error_set(err, SVM_EXISTS, "VM \"%s\" exists", name);
		return NULL;
	}
	if (owner != (uid_t)-1 && quota_may_create_locked(s, owner, err) < 0) {
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	svm_vm *vm = vm_new(s, name, err);
	if (!vm) {
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	if (owner != (uid_t)-1)
		atomic_store(&vm->uid, owner); /* counted by the next create at once */
	if (list_append_locked(s, vm) < 0) {
		pthread_mutex_unlock(&s->mu);
		vm_destroy_files(vm);
		svm_vm_unref(vm);
		svm_error_set(err, SVM_NO_SPACE, "out of memory");
		return NULL;
	}
	pthread_mutex_unlock(&s->mu);
	/* its definition (-o persist), outside s->mu; its state file comes with
	 * its first VMM (docs/restart.md) */
	pthread_mutex_lock(&vm->mu);
	vm_persist_locked(vm);
	pthread_mutex_unlock(&vm->mu);
	return vm;
}

int vm_list_add(svm *s, svm_vm *vm, svm_error *err)
{
	pthread_mutex_lock(&s->mu);
	int rc = 0;
	if (taken_locked(s, vm->name))
		rc = svm_error_set(err, SVM_EXISTS, "VM \"%s\" exists", vm->name);
	else if (list_append_locked(s, vm) < 0)
		rc = svm_error_set(err, SVM_NO_SPACE, "out of memory");
	pthread_mutex_unlock(&s->mu);
	return rc;
}

svm_vm *svm_get_vm(svm *s, const char *name)
{
	pthread_mutex_lock(&s->mu);
	svm_vm *vm = vmindex_find(&s->index, name);
	if (vm)
		svm_vm_ref(vm);
	pthread_mutex_unlock(&s->mu);
	return vm;
}

char **svm_list_vms(svm *s, size_t *count)
{
	pthread_mutex_lock(&s->mu);
	char **v = calloc(s->nvms + 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; v && i < s->nvms; i++)
		v[n++] = strdup(s->vms[i]->name);
	pthread_mutex_unlock(&s->mu);
	if (count)
		*count = n;
	return v;
}


size_t svm_count_vms(svm *s)
{
	/* without s->mu, which a listing of 10,000 VMs holds a while: the
	 * attributes of vms/ (its link count) are asked after every mkdir */
	return __atomic_load_n(&s->nvms, __ATOMIC_RELAXED);
}

void svm_count_by_state(svm *s, size_t *counts)
{
	memset(counts, 0, SVM_STATE_COUNT * sizeof *counts);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nvms; i++)
		counts[svm_vm_state(s->vms[i])]++;
	pthread_mutex_unlock(&s->mu);
}

int svm_remove_vm(svm *s, const char *name, svm_error *err)
{
	pthread_mutex_lock(&s->mu);
	svm_vm *vm = vmindex_find(&s->index, name);
	ssize_t i = vm ? index_of_locked(s, vm) : -1;
	if (i < 0) {
		pthread_mutex_unlock(&s->mu);
		return svm_error_set(err, SVM_NOT_FOUND, "no VM \"%s\"", name);
	}
	pthread_mutex_lock(&vm->mu);
	svm_state st = vm->state;
	bool live = vm_state_has_vmm(st) || vm->busy || vm->pid != 0;
	if (!live)
		atomic_store(&vm->removed, true);
	pthread_mutex_unlock(&vm->mu);
	if (live) {
		pthread_mutex_unlock(&s->mu);
		return svm_error_set(err, SVM_INVALID_STATE, "%s is %s: stop or kill it first", name,
				     svm_state_name(st));
	}
	memmove(&s->vms[i], &s->vms[i + 1], (s->nvms - (size_t)i - 1) * sizeof *s->vms);
	__atomic_store_n(&s->nvms, s->nvms - 1, __ATOMIC_RELAXED); /* svm_count_vms */
	vmindex_del(&s->index, vm);
	pthread_mutex_unlock(&s->mu);
	net_release_vm(s->net, vm->id);
	vm_destroy_files(vm);
	persist_remove(s, vm->name);
	sink_emit(&s->sink, SVM_EV_REMOVED, vm, 0, NULL);
	svm_vm_unref(vm);
	return 0;
}

/* A snapshot of the list with references, so work on VMs runs without s->mu. */
static svm_vm **grab_all(svm *s, size_t *n)
{
	pthread_mutex_lock(&s->mu);
	svm_vm **v = calloc(s->nvms + 1, sizeof *v);
	*n = 0;
	for (size_t i = 0; v && i < s->nvms; i++) {
		svm_vm_ref(s->vms[i]);
		v[(*n)++] = s->vms[i];
	}
	pthread_mutex_unlock(&s->mu);
	return v;
}

static void release_all(svm_vm **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		svm_vm_unref(v[i]);
	free(v);
}

typedef struct stop_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t left;
} stop_wait;

static void stop_done(void *ud, const svm_error *e)
{
	(void)e;
	stop_wait *w = ud;
	pthread_mutex_lock(&w->mu);
	if (--w->left == 0)
		pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int svm_stop_all(svm *s, svm_error *err)
{
	size_t n;
	svm_vm **v = grab_all(s, &n);
	stop_wait w = {.left = 1};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	svm_request req = {.verb = SVM_V_STOP};
	/* in parallel: each graceful stop may wait seconds for its guest */
	for (size_t i = 0; i < n; i++) {
		svm_state st = svm_vm_state(v[i]);
		if (st != SVM_RUNNING && st != SVM_PAUSED)
			continue;
		pthread_mutex_lock(&w.mu);
		w.left++;
		pthread_mutex_unlock(&w.mu);
		if (!svm_vm_submit(v[i], &req, stop_done, &w))
			stop_done(&w, NULL);
	}
	stop_done(&w, NULL);
	pthread_mutex_lock(&w.mu);
	while (w.left)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	release_all(v, n);
	svm_error_clear(err);
	return 0;
}

int svm_cleanup(svm *s, svm_error *err)
{
	size_t n;
	svm_vm **v = grab_all(s, &n);
	for (size_t i = 0; i < n; i++)
		vm_kill_and_wait(v[i]);
	release_all(v, n);
	svm_error_clear(err);
	return 0;
}

int svm_purge(svm *s, svm_error *err)
{
	svm_cleanup(s, NULL);
	size_t n;
	svm_vm **v = grab_all(s, &n);
	size_t kept = 0;
	char first[80];
	first[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		svm_error e;
		/* one that a start took again meanwhile stays, and is named */
		if (svm_remove_vm(s, v[i]->name, &e) < 0 && e.code != SVM_NOT_FOUND) {
			if (!kept++)
				snprintf(first, sizeof first, "%s", v[i]->name);
		}
	}
	release_all(v, n);
	net_reset(s->net);
	svm_log(s, "purge: every VM removed%s, the network taken down", kept ? " but some" : "");
	if (kept)
		return svm_error_set(err, SVM_INVALID_STATE, "purge: %zu VM(s) were started again "
				     "meanwhile and stay (%s first)", kept, first);
	svm_error_clear(err);
	return 0;
}

void svm_free(svm *s)
{
	if (!s)
		return;
	if (s->loop) {
		svm_cleanup(s, NULL);
		/* async ops still finishing hold references and may call back */
		pthread_mutex_lock(&s->mu);
		while (atomic_load(&s->ops) > 0)
			pthread_cond_wait(&s->ops_cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
		/* a start that raced with the cleanup above */
		svm_cleanup(s, NULL);
		for (size_t i = 0; i < s->nvms; i++) {
			net_release_vm(s->net, s->vms[i]->id);
			vm_destroy_files(s->vms[i]);
			svm_vm_unref(s->vms[i]);
		}
		loop_free(s->loop);
		s->loop = NULL;
		dirwatch_free(s->dirwatch);
		s->dirwatch = NULL;
		rmdir(s->runtime_dir); /* only if empty: other mounts may share it */
	}
	if (s->net)
		net_free(s->net);
	if (s->runtime_default && s->runtime_dir) {
		/* the last files are gone now (net's lock): the runtime dir, and the
		 * .smartvm the default made above it, go when empty */
		rmdir(s->runtime_dir);
		char *slash = strrchr(s->runtime_dir, '/');
		if (slash && slash != s->runtime_dir) {
			*slash = '\0';
			rmdir(s->runtime_dir);
			*slash = '/';
		}
	}
	if (s->images)
		images_free(s->images);
	hostpath_roots_free(s->roots);
	hostpath_roots_free(s->cache_root);
	jail_conf_free(s->jail);
	free(s->vms);
	vmindex_free(&s->index);
	free(s->dns);
	free(s->data_dir);
	free(s->runtime_dir);
	free(s->image_cache);
	free(s->firecracker);
	free(s->fc_version_opt);
	free(s->arch);
	free(s->bridge);
	free(s->subnet);
	free(s->manifest);
	free(s->default_config);
	free(s->fc_version);
	sink_destroy(&s->sink);
	ring_destroy(&s->image_errors);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->seal_mu);
	pthread_cond_destroy(&s->ops_cv);
	free(s);
}

/* ------------------------------------------------------------ logs, events */


/* ------------------------------------------------------------ networking */


char *svm_net_text(svm *s, const char *name)
{
	if (strcmp(name, "bridge") == 0)
		return line_of(net_bridge(s->net));
	if (strcmp(name, "subnet") == 0)
		return line_of(net_subnet(s->net));
	if (strcmp(name, "gateway") == 0)
		return line_of(net_gateway(s->net));
	if (strcmp(name, "leases") == 0)
		return net_leases_text(s->net);
	return NULL;
}

/* /net/ctl: "tap VM IFACE", "untap VM IFACE". The TAP of a VM whose VMM may be
 * using it stays. */
enum { NET_TAP, NET_UNTAP };
static const svm_cmd net_commands[] = {
	{NET_TAP, "tap", 2, 2, 0, 0, -1, "tap VM IFACE"},
	{NET_UNTAP, "untap", 2, 2, 0, 0, -1, "untap VM IFACE"},
};
static const svm_cmdtab net_table = {net_commands, 2};

int svm_net_ctl(svm *s, const char *line, svm_error *err)
{
	char *scratch = strdup(line);
	if (!scratch)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	svm_cmdline c;
	int rc = svm_cmd_parse(&net_table, line, scratch, &c, err);
	svm_vm *vm = rc == 0 ? svm_get_vm(s, c.argv[0]) : NULL;
	if (rc == 0 && !vm)
		rc = svm_error_set(err, SVM_NOT_FOUND, "no VM named %s", c.argv[0]);
	if (vm) {
		svm_state st = svm_vm_state(vm);
		if (c.cmd->index == NET_TAP)
			rc = net_tap(s->net, vm->id, vm->name, c.argv[1], err);
		else if (vm_state_has_vmm(st))
			rc = svm_error_set(err, SVM_INVALID_STATE, "untap: %s is %s, its VMM uses the "
					   "TAP: stop it first", vm->name, svm_state_name(st));
		else
			rc = net_untap(s->net, vm->id, vm->name, c.argv[1], err);
		svm_vm_unref(vm);
	}
	free(scratch);
	return rc;
}

/* /ctl: the mount's own commands. */
enum { ROOT_STOPALL, ROOT_CLEANUP, ROOT_PURGE };
static const svm_cmd root_commands[] = {
	{ROOT_STOPALL, "stopall", 0, 0, 0, 0, -1, "stopall"},
	{ROOT_CLEANUP, "cleanup", 0, 0, 0, 0, -1, "cleanup"},
	{ROOT_PURGE, "purge", 0, 0, 0, 0, -1, "purge"},
};
static const svm_cmdtab root_table = {root_commands, 3};
static int (*const root_handlers[])(svm *s, svm_error *err) = {
	[ROOT_STOPALL] = svm_stop_all, [ROOT_CLEANUP] = svm_cleanup, [ROOT_PURGE] = svm_purge,
};

int svm_root_ctl(svm *s, const char *line, svm_error *err)
{
	char *scratch = strdup(line);
	if (!scratch)
		return svm_error_set(err, SVM_NO_SPACE, "out of memory");
	svm_cmdline c;
	int rc = svm_cmd_parse(&root_table, line, scratch, &c, err);
	free(scratch);
	return rc == 0 ? root_handlers[c.cmd->index](s, err) : rc;
}

char *svm_vm_net_text(svm_vm *vm)
{
	return net_vm_text(vm->s->net, vm->id);
}

/* ------------------------------------------------------------ base images */

int svm_parse_cache_limit(const char *text, unsigned *out, svm_error *err)
{
	return images_parse_cache_limit(text, out, err);
}

int svm_images_ctl(svm *s, const char *line, svm_error *err)
{
	svm_error local;
	svm_error *e = err ? err : &local;
	int rc = images_ctl(s->images, line, e);
	if (rc < 0)
		svm_images_note_error(s, line, e);
	return rc;
}

void svm_images_note_error(svm *s, const char *command, const svm_error *e)
{
	svm_note_line(&s->image_errors, command, e);
	sink_emit(&s->sink, SVM_EV_IMAGES, NULL, 0, NULL);
}

char *svm_images_summary(svm *s) { return images_summary(s->images); }
char *svm_images_error_text(svm *s) { return ring_text(&s->image_errors); }
char **svm_images_list(svm *s, size_t *count) { return images_list(s->images, count); }
char *svm_images_preset(svm *s, const char *preset) { return images_preset_target(s->images, preset); }

char *svm_image_file(svm *s, const char *id, const char *file, svm_error *err)
{
	if (strcmp(file, "status") == 0)
		return images_status(s->images, id, err);
	images_bundle b;
	if (images_bundle_info(s->images, id, &b, err) < 0)
		return NULL;
	char *out = NULL;
	if (strcmp(file, "manifest.json") == 0)
		out = b.manifest_json ? strdup(b.manifest_json) : NULL;
	else if (strcmp(file, "bootargs") == 0)
		out = line_of(b.boot_args);
	else if (strcmp(file, "rootfstype") == 0)
		out = line_of(b.rootfs_type);
	else if (strcmp(file, "firecracker") == 0)
		out = line_of(b.fc_version);
	else if (strcmp(file, "kernel") == 0)
		out = b.kernel ? strdup(b.kernel) : NULL;
	else if (strcmp(file, "rootfs") == 0)
		out = b.rootfs ? strdup(b.rootfs) : NULL;
	else
		svm_error_set(err, SVM_NOT_FOUND, "bundle %s has no file %s", id, file);
	images_bundle_clear(&b);
	return out;
}

static bool user_kind_valid(const char *kind)
{
	return strcmp(kind, "kernels") == 0 || strcmp(kind, "rootfs") == 0;
}

/* Names in dir (no dot files), NULL-terminated; only directories if dirs_only. */
static bool is_dir(void *ud, const char *dir, const struct dirent *de)
{
	(void)ud;
	(void)dir;
	return de->d_type == DT_DIR || de->d_type == DT_UNKNOWN;
}

char **svm_images_user_files(svm *s, const char *kind, size_t *count)
{
	if (count)
		*count = 0;
	if (!user_kind_valid(kind))
		return NULL;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/%s", s->data_dir, kind);
	return svm_dir_names(dir, NULL, NULL, count);
}

char **svm_vm_snapshot_list(svm_vm *vm, size_t *count)
{
	char *dir = svm_vm_snapshot_dir(vm);
	char **v = dir ? svm_dir_names(dir, is_dir, NULL, count) : NULL;
	free(dir);
	return v;
}

char *svm_images_user_file(svm *s, const char *kind, const char *name)
{
	if (!user_kind_valid(kind) || strchr(name, '/') || name[0] == '.')
		return NULL;
	char *p = NULL;
	if (asprintf(&p, "%s/%s/%s", s->data_dir, kind, name) < 0)
		return NULL;
	if (access(p, F_OK) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* ------------------------------------------------ the log and the error file */

void svm_log(svm *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sink_vlog(&s->sink, fmt, ap);
	va_end(ap);
}

char *svm_log_text(svm *s) { return ring_text(&s->sink.log); }

void svm_note_error(svm *s, const char *command, const svm_error *e)
{
	sink_note_error(&s->sink, command, e);
}

char *svm_error_text(svm *s) { return ring_text(&s->sink.errors); }
