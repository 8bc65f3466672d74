/*
 * check.h - a minimal TAP producer for the C unit tests (meson parses TAP).
 *
 *   CHECK(cond, "what")          one assertion, counted
 *   CHECK_STR(a, b, "what")      string equality (NULLs allowed)
 *   CHECK_INT(a, b, "what")      integer equality, prints both on failure
 *   check_skip("what", "why")    a part this host cannot exercise: a TAP "# SKIP"
 *                                line, and a line in the run's skip log
 *                                (SMARTVMFS_SKIP_LOG, see tests/skipreport.py)
 *   check_no_kvm()               the reason to give when /dev/kvm just failed
 *   return check_done();         prints the plan and the summary, exit status
 */
#ifndef SVM_TEST_CHECK_H
#define SVM_TEST_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_n, check_failed;

#define CHECK(cond, what) check_one(!!(cond), (what), __FILE__, __LINE__, NULL)
#define CHECK_STR(a, b, what)                                                        \
	do {                                                                         \
		const char *ca_ = (a), *cb_ = (b);                                   \
		int ok_ = (ca_ && cb_) ? strcmp(ca_, cb_) == 0 : ca_ == cb_;         \
		char d_[512];                                                        \
		snprintf(d_, sizeof d_, "got \"%s\", want \"%s\"", ca_ ? ca_ : "(null)", \
			 cb_ ? cb_ : "(null)");                                      \
		check_one(ok_, (what), __FILE__, __LINE__, d_);                      \
	} while (0)
#define CHECK_INT(a, b, what)                                                        \
	do {                                                                         \
		long long ca_ = (long long)(a), cb_ = (long long)(b);                \
		char d_[128];                                                        \
		snprintf(d_, sizeof d_, "got %lld, want %lld", ca_, cb_);            \
		check_one(ca_ == cb_, (what), __FILE__, __LINE__, d_);               \
	} while (0)

static inline void check_one(int ok, const char *what, const char *file, int line,
			     const char *detail)
{
	check_n++;
	if (ok) {
		printf("ok %d - %s\n", check_n, what);
	} else {
		check_failed++;
		printf("not ok %d - %s\n#   at %s:%d%s%s\n", check_n, what, file, line,
		       detail ? ": " : "", detail ? detail : "");
	}
	fflush(stdout);
}

static inline void check_skip(const char *what, const char *why)
{
	extern char *program_invocation_short_name;
	check_n++;
	printf("ok %d - %s # SKIP %s\n", check_n, what, why);
	fflush(stdout);
	const char *log = getenv("SMARTVMFS_SKIP_LOG"), *label = getenv("SMARTVMFS_SKIP_LABEL");
	FILE *f = log && *log ? fopen(log, "ae") : NULL;
	if (f) {
		fprintf(f, "%s\tunit\t%s: %s\t%s\n", label && *label ? label : "-",
			program_invocation_short_name, what, why);
		fclose(f);
	}
}

/* Why a guest cannot boot here, worded as tests/hostfacts.py words it (call it
 * right after an access() or open() of /dev/kvm failed). */
static inline const char *check_no_kvm(void)
{
	static char why[160];
	snprintf(why, sizeof why, "/dev/kvm is not usable here (%s): KVM is needed to boot a guest",
		 strerror(errno));
	return why;
}

static inline int check_done(void)
{
	printf("1..%d\n# %d passed, %d failed\n", check_n, check_n - check_failed,
	       check_failed);
	return check_failed ? 1 : 0;
}

#endif
