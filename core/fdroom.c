/* fdroom.c - what the process can still afford (see fdroom.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fdroom.h"

int limits_fds_for_start(svm_error *err)
{
	/* Take them, then give them back: the one exact answer, in 2*N syscalls
	 * (counting /proc/self/fd would cost a readdir of every VM's descriptors). */
	int fds[LIMITS_FDS_FOR_START], n = 0, e = 0;
	for (; n < LIMITS_FDS_FOR_START; n++) {
		fds[n] = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (fds[n] < 0) {
			e = errno;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (n == LIMITS_FDS_FOR_START)
		return 0;
	if (e != EMFILE && e != ENFILE)
		return 0; /* not a shortage: the start finds out for itself */
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	if (e == ENFILE)
		return svm_error_set(err, SVM_NO_SPACE, "the system's open-file table is full (ENFILE): "
				     "raise fs.file-max (sysctl), or stop VMs");
	return svm_error_set(err, SVM_NO_SPACE,
			     "no descriptors left for another VM: RLIMIT_NOFILE is %llu (the hard "
			     "limit %llu), a start needs %d free and a running VM keeps about %d: "
			     "raise LimitNOFILE= in the systemd unit or the hard limit (ulimit -Hn, "
			     "/etc/security/limits.conf) and mount again, or stop VMs",
			     (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			     LIMITS_FDS_FOR_START, LIMITS_FDS_PER_VM);
}
