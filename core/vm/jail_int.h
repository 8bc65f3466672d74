/*
 * jail_int.h - what jail.c (the mode, the uids, the command line) and
 * jail_files.c (the files in a jail) share.
 */
#ifndef SVM_JAIL_INT_H
#define SVM_JAIL_INT_H

#include <pthread.h>

#include "jail.h"

#include "jail_acl.h"

/* A user's file given to a jailed uid: open (fd) for the grant's end; its path
 * for the state file, so that a daemon after a crash can take it back too. */
struct jail_granted {
	int fd;
	jail_grant g;
	char *path;
};

/* Host-wide: every mount on this host claims its jailed uids here. */
#define JAIL_CLAIMS "/run/smartvmfs/jail-uids"

struct jail_conf {
	char *path;        /* the jailer of -o jailer; NULL: each release's own */
	char version[64];  /* what it says, "1.5.1" (-o jailer) */
	unsigned first, last; /* -o jailuids */
	pthread_mutex_t mu;   /* guards what follows */
	/* the uids of the jails that exist, each with its claim on the host (a
	 * flock'd file under JAIL_CLAIMS, removed when the uid is given back): two
	 * mounts given one range never hand out one uid at once */
	struct jail_held { unsigned uid; int claim_fd; } *held;
	size_t nheld, cap;
	unsigned cursor;      /* where the next search starts */
	char *checked;        /* "JAILER\nVMM": a pair whose versions were found equal */
};

/* The VMM binary's version equal to jailer's (each pair asked once). */
int jail_check_version(jail_conf *jc, const char *jailer, const char *binary, svm_error *err);
/* The jailer for a VMM binary: -o jailer's, or the one beside a downloaded
 * release's VMM (DATADIR/bin/VERSION/jailer, from the same archive); NULL
 * when that release has none. */
char *jail_jailer_for(const jail_conf *jc, const char *binary);
/* A uid no jail holds (SVM_NO_SPACE when the range is used up), and its return. */
int jail_uid_take(jail_conf *jc, unsigned *uid, svm_error *err);
void jail_uid_give(jail_conf *jc, unsigned uid);
/* That very uid held (a re-adopted VMM's), if no VM of any mount holds it. */
int jail_uid_hold(jail_conf *jc, unsigned uid, svm_error *err);

#endif
