/*
 * internal.h - the orchestrator and VM objects, shared by vm*.c and svm.c.
 */
#ifndef SVM_INTERNAL_H
#define SVM_INTERNAL_H

#include <jansson.h>

#include "vmindex.h"
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "fcapi.h"
#include "dirwatch.h"
#include "loop.h"
#include "ring.h"
#include "smartvm.h"
#include "base.h"
#include "svmlog.h"

#define SVM_ID_LEN 8          /* random [a-z0-9] */
#define SVM_SOCK_MAX 108      /* sizeof(sun_path) */
#define SVM_ERRORS_KEPT 16384 /* bytes of each error file */
#define SVM_EVLOG_KEPT 16384 /* bytes of the events history */
#define SVM_FCLOG_KEPT (256 * 1024)
#define SVM_STDERR_KEPT 4096
#define SVM_MMDS_MAX 51200    /* Firecracker's default MMDS data store limit */

struct svm {
	svm_options opt;      /* strings below are owned copies */
	char *data_dir, *runtime_dir, *image_cache, *firecracker, *fc_version_opt, *arch,
		*bridge, *subnet, *manifest, *default_config;
	bool runtime_default; /* runtime_dir is DIR/.smartvm/runtime, .smartvm ours too */
	svm_loop *loop;
	svm_dirwatch *dirwatch;   /* the API sockets awaited (NULL: looked for) */
	struct svm_net *net;       /* net.c */
	struct svm_images *images; /* images.c */
	char *dns;
	pthread_mutex_t mu;   /* guards vms, nvms (also read atomically), next_gen, fc_version */
	svm_vm **vms;
	size_t nvms, capvms;
	vm_index index;       /* vms by name */
	uint64_t next_gen;
	char *fc_version;     /* resolved lazily */
	bool fc_emulator;     /* the binary is fc-emulator, the test double (with fc_version) */
	svm_sink sink;        /* the daemon's log, the root error file, events */
	svm_ring image_errors; /* /images/error */
	atomic_int ops;       /* async ops in flight */
	pthread_cond_t ops_cv;
	unsigned long long self_start; /* our own /proc start time, in each vm.json */
	bool adopt_done;      /* svm_adopt ran (once) */
	struct jail_conf *jail;       /* -o jailer (jail.h); NULL: VMMs run unjailed */
	struct hostpath_roots *roots; /* where users' host paths may lie (NULL: anywhere) */
	struct hostpath_roots *cache_root; /* base images (cache, DATADIR/kernels, rootfs):
	                                      opened as the daemon */
	pthread_mutex_t seal_mu;      /* seal.c: the key, read or made once */
	bool seal_ready;
	unsigned char seal_key[32];
};

struct svm_vm {
	atomic_int refs;
	svm *s;
	struct svm_vm *hnext; /* the next in its vm_index bucket (s->mu) */
	_Atomic(void *) front; /* the front end's own pointer (svm_vm_front_data) */
	char name[72];
	char id[SVM_ID_LEN + 1];
	uint64_t gen;
	char rundir[SVM_SOCK_MAX]; /* fits: every socket path in it must */
	char sock[SVM_SOCK_MAX];
	svm_api *api;

	pthread_mutex_t mu;   /* guards everything below that is not atomic */
	pthread_cond_t cv;    /* signalled when the process exits or metrics arrive */
	/* taken before mu: one metadata change at a time, from the state check through
	 * the VMM's answer to the stored copy, and a start's copy of it waits for it
	 * (so the VMM's MMDS and `metadata` never tell two stories) */
	pthread_mutex_t md_mu;
	atomic_int state;
	atomic_bool removed;
	atomic_llong mtime_ns;
	atomic_uint uid;
	atomic_llong quota_mem; /* memSizeMib while it holds resources (quota.c) */
	bool busy;            /* a state-changing op runs */
	json_t *config;
	json_t *metadata;     /* NULL: none set */
	svm_lines events;
	svm_ring evlog;       /* the same event lines as a byte stream (the events file) */
	bool autostart;       /* -o persist: start when a later mount restores it */

	/* the VMM process; pid != 0 while it is alive (until reaped) */
	atomic_int pid;
	int pidfd;
	svm_watch *w_pid, *w_out, *w_log, *w_metrics;
	int out_fd, log_fd, metrics_fd; /* stdin and stderr: by name (vm_proc.c) */
	int logcopy_fd, metcopy_fd; /* logger.logPath, metrics.metricsPath: copies, or -1 */
	int sercopy_fd;             /* serial.serialOutPath: a copy of the console, or -1 */
	unsigned long long pid_start; /* its /proc start time: a reused pid is not it */
	bool adopted;         /* re-adopted after a daemon restart (docs/restart.md): not
	                         our child, so its exit has no status to reap; only
	                         such a VMM has a pidfd (our own: see vm_proc.c) */
	bool reaped;          /* our child is reaped: its pid may name another process
	                         now, and is never signalled (pid is still set until
	                         the exit is fully handled) */
	bool state_warned;    /* vm.json could not be written: said once */
	bool state_saved;     /* vm.json exists ... */
	pid_t state_saved_pid; /* ... and names this pid (0: no VMM) */
	bool state_force;      /* the next save writes, whatever changed */
	bool expect_exit;     /* we asked it to end: an exit means stopped */
	bool exit_telling;    /* the end is settled, its events not yet all reported:
	                         a verb that waits for the end waits for them too */
	char *image_held;     /* the bundle this VMM was started from: held (images.h)
	                         until it ends */
	bool kill_requested;  /* kill verb: a start in progress ends in stopped */
	char last_exit[32];
	/* a restore as a clone (docs/staging.md): where the VMM sees rundir, in its own
	 * mount namespace ("" = at rundir itself), and the topmost directory made on
	 * the host for that path ("" = none), removed up to there when the VMM ends */
	char vmm_rundir[SVM_SOCK_MAX];
	char made_dir[SVM_SOCK_MAX];
	/* its jail (jail.h) while one exists: the uid and gid it holds, the chroot
	 * base RUNDIR/jail and the VMM's root in it (malloc'd: most VMs have none) */
	bool jailed;
	unsigned jail_uid;
	char *jail_base, *jail_root;
	char (*jail_taps)[16]; /* the TAPs given to the uid, root's again at the end */
	size_t njail_taps;
	char *jail_vsock_link; /* the config's udsPath, a link to the jailed socket */
	char *jail_path;       /* the jailer this start runs (-o jailer's, or the release's) */
	char *jail_netns;      /* the config's netns, its TAPs' namespace; NULL: the host's */
	struct jail_granted *jail_grants; /* users' files given to the uid (jail_acl.h) */
	size_t njail_grants;
	struct vmlim_args *lim; /* a jailed start's limit arguments for the jailer (vmlimits.c) */
	uint64_t spawn_ns, ready_ns, running_ns; /* CLOCK_MONOTONIC */
	svm_state started_as;  /* how the last start or restore ended, for its log line */
	pid_t started_pid;

	svm_ring console, fclog, errtail, errors;
	char *metrics_line;
	char *mpart;          /* metrics line being assembled (loop thread only) */
	size_t mpart_len, mpart_cap;
	uint64_t metrics_seq;
};

/* events: record under vm->mu with vm_event_locked, deliver after unlocking
 * (sink_emit(&vm->s->sink, ...)) */
uint64_t vm_state_locked(svm_vm *vm, svm_state st); /* set + record; returns seq */
uint64_t vm_event_locked(svm_vm *vm, const char *line); /* record an event; returns seq */
/* -o persist: rewrites the VM's definition (persist.c); a failure is a log line. */
void vm_persist_locked(svm_vm *vm);
/* The host side of cfg's vsock (malloc'd): vsock.udsPath, or RUNTIME/vsock.sock; NULL
 * without a vsock device. Caller holds vm->mu, or owns cfg. */
static inline char *vm_vsock_path_locked(svm_vm *vm, const json_t *cfg)
{
	return svm_config_vsock_host_path(cfg, vm->rundir);
}
/* The states in which a VM's VMM may be alive (it holds its TAPs, memory, a
 * quota slot): the rule untap, remove and the quotas share. */
static inline bool vm_state_has_vmm(svm_state st)
{
	return st == SVM_STARTING || st == SVM_RUNNING || st == SVM_PAUSED || st == SVM_STOPPING;
}
/* The runtime dir as the VMM sees it, which the paths of its device state are
 * in: "/" for a jailed one (its jail's root), a clone's original's, or its own. */
#define VMM_RUNDIR_JAILED "/"
static inline const char *vm_vmm_rundir(const svm_vm *vm)
{
	return vm->jailed ? VMM_RUNDIR_JAILED : vm->vmm_rundir[0] ? vm->vmm_rundir : vm->rundir;
}
/* The owner's uid, for the lower files (svm_vm_owner_uid is the public one). */
static inline uid_t vm_owner(const svm_vm *vm) { return (uid_t)atomic_load(&vm->uid); }
void vm_touch(svm_vm *vm);

/* vm.c */
svm_vm *vm_new(svm *s, const char *name, svm_error *err);
/* A VM object for runtime dir RUNDIR/id, which exists (re-adoption). */
svm_vm *vm_new_at(svm *s, const char *name, const char *id, svm_error *err);
void vm_destroy_files(svm_vm *vm);
int vm_kill_and_wait(svm_vm *vm);

/* vm_proc.c: the process side of a VM */
/* show_at: NULL, or the path where the VMM is to see vm->rundir (svm_spawn_bind) */
int vm_proc_spawn(svm_vm *vm, const char *binary, const json_t *cfg, const char *show_at,
		  svm_error *err);
int vm_proc_wait_ready(svm_vm *vm, const atomic_bool *cancel, svm_error *err);
/* Sends sig; waits until the loop has reaped it or timeout_ms passes (-1: forever).
 * Returns 0 if it has ended. vm->mu must NOT be held. */
int vm_proc_signal_wait(svm_vm *vm, int sig, int timeout_ms);
/* Waits for the exit without signalling. */
int vm_proc_wait_exit(svm_vm *vm, int timeout_ms);
/* Re-adoption: takes over a running VMM that is not our child (pidfd refers to
 * it), reopening its FIFOs by name and watching them and its exit. */
int vm_proc_adopt(svm_vm *vm, pid_t pid, int pidfd, svm_error *err);
/* A VMM that is not our child, or ours: the signal through its pidfd. */
int vm_proc_pidfd_signal(int pidfd, int sig);

/* svm.c: lists a VM made by vm_new_at (re-adoption): EXISTS if the name is
 * taken. The list takes its own reference. */
int vm_list_add(svm *s, svm_vm *vm, svm_error *err);

#endif
