/*
 * check.c - what the host must offer smartvmfs. Each check says what it found,
 * or what is wrong and how to fix it, in one line. `smartvmfs --check` prints
 * them all; a mount logs the failed ones as warnings (DESIGN §6: clear, early
 * errors, before anything is half built).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "check.h"
#include "smartvm.h"

#define KVM_API_VERSION_IOCTL _IO(0xAE, 0x00) /* KVM_GET_API_VERSION, linux/kvm.h */
#define FDS_PER_VM SVM_FDS_PER_VM             /* what the daemon keeps per running VM */
#define NOFILE_WANTED 4096
#define FREE_WANTED (256ULL << 20)            /* staged drives are copied there */

struct run {
	fs_check_fn fn;
	void *ud;
	int problems;
};

static void say(struct run *r, bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void say(struct run *r, bool ok, const char *what, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (!ok)
		r->problems++;
	r->fn(r->ud, ok, what, line);
}

/* PATH, then the sbin directories a daemon's or a user's PATH may lack. */
static bool which(const char *prog, char *out, size_t len)
{
	const char *env = getenv("PATH");
	char *path = strdup(env && *env ? env : "");
	static const char *const more[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin", NULL};
	bool found = false;
	char *save = NULL;
	for (char *d = path ? strtok_r(path, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", d, prog);
		found = access(out, X_OK) == 0;
	}
	free(path);
	for (int i = 0; more[i] && !found; i++) {
		snprintf(out, len, "%s/%s", more[i], prog);
		found = access(out, X_OK) == 0;
	}
	return found;
}

static bool has_cap_net_admin(void)
{
	if (geteuid() == 0)
		return true;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	unsigned long long eff = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ULL << 12); /* CAP_NET_ADMIN */
}

static const char *who(char *buf, size_t len)
{
	snprintf(buf, len, "uid %u", (unsigned)geteuid());
	return buf;
}

static void check_kvm(struct run *r, bool emulator)
{
	char u[32];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0 && emulator) {
		say(r, true, "kvm", "/dev/kvm is not usable (%s), and not needed: the firecracker given "
		    "is fc-emulator, the test double (it boots no guest)", strerror(errno));
		return;
	}
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			say(r, false, "kvm", "/dev/kvm is missing: KVM is not available, so real VMs cannot "
			    "start; enable virtualization in the firmware (in a VM: nested virtualization) "
			    "and load kvm_intel or kvm_amd (modprobe kvm_intel)");
		else if (e == EACCES || e == EPERM)
			say(r, false, "kvm", "/dev/kvm is not readable and writable by %s: run smartvmfs "
			    "as root, or add the user to the kvm group (usermod -aG kvm USER) or give an ACL "
			    "(setfacl -m u:USER:rw /dev/kvm)", who(u, sizeof u));
		else
			say(r, false, "kvm", "/dev/kvm cannot be opened (%s): load the KVM module "
			    "(modprobe kvm_intel or kvm_amd)", strerror(e));
		return;
	}
	int v = ioctl(fd, KVM_API_VERSION_IOCTL, 0);
	close(fd);
	if (v != 12)
		say(r, false, "kvm", "/dev/kvm answers KVM API version %d, Firecracker needs 12: "
		    "update the host kernel", v);
	else
		say(r, true, "kvm", "/dev/kvm is readable and writable (KVM API version 12)");
}

static void check_tun(struct run *r)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		say(r, true, "tun", "/dev/net/tun is readable and writable");
		return;
	}
	int e = errno;
	if (e == ENOENT)
		say(r, false, "tun", "/dev/net/tun is missing: VMs with network interfaces cannot "
		    "start; load the tun module (modprobe tun), or in a container pass the device in "
		    "(--device /dev/net/tun)");
	else
		say(r, false, "tun", "/dev/net/tun cannot be opened (%s): VMs with network interfaces "
		    "cannot start; run smartvmfs as root (host networking needs CAP_NET_ADMIN)",
		    strerror(e));
}

static void check_net_admin(struct run *r)
{
	char u[32];
	if (has_cap_net_admin())
		say(r, true, "net", "networking: %s (TAPs, bridge and NAT can be made)",
		    geteuid() == 0 ? "running as root" : "CAP_NET_ADMIN held");
	else
		say(r, false, "net", "networking: %s has no CAP_NET_ADMIN, so TAPs, the bridge and NAT "
		    "cannot be made and VMs with network interfaces cannot start; run smartvmfs as root "
		    "(VMs without network interfaces work as they are)", who(u, sizeof u));
}

static void check_fuse(struct run *r)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		say(r, true, "fuse", "/dev/fuse is readable and writable");
		return;
	}
	int e = errno;
	char fm[4096];
	struct stat st;
	if ((e == EACCES || e == EPERM) && which("fusermount3", fm, sizeof fm) &&
	    stat(fm, &st) == 0 && (st.st_mode & S_ISUID) && st.st_uid == 0) {
		say(r, true, "fuse", "/dev/fuse is opened through %s (setuid root)", fm);
		return;
	}
	if (e == ENOENT)
		say(r, false, "fuse", "/dev/fuse is missing: load the fuse module (modprobe fuse), or in "
		    "a container pass the device in (--device /dev/fuse)");
	else
		say(r, false, "fuse", "/dev/fuse cannot be opened (%s): run smartvmfs as root, or install "
		    "fuse3 (its fusermount3 is setuid root)", strerror(e));
}

static void check_firewall(struct run *r)
{
	char p[4096], n[4096];
	if (which("iptables", p, sizeof p))
		say(r, true, "iptables", "iptables: %s (NAT for the guests)", p);
	else if (which("nft", n, sizeof n))
		say(r, false, "iptables", "iptables is not installed (nft is: %s), and smartvmfs drives "
		    "NAT through iptables: install it (apt-get install iptables; it uses nftables "
		    "underneath)", n);
	else
		say(r, false, "iptables", "neither iptables nor nft is installed: the guests get no NAT "
		    "to the outside; install iptables (apt-get install iptables)");
}

static void check_nofile(struct run *r)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		say(r, false, "nofile", "RLIMIT_NOFILE cannot be read (%s)", strerror(errno));
		return;
	}
	/* the core raises the soft limit to the hard one at mount */
	unsigned long long hard = rl.rlim_max == RLIM_INFINITY ? 1048576ULL : rl.rlim_max;
	if (hard < NOFILE_WANTED)
		say(r, false, "nofile", "RLIMIT_NOFILE is %llu (hard): room for about %llu VMs at ~%d "
		    "descriptors each; raise it to 65536 or more (LimitNOFILE=65536 in the systemd unit, "
		    "`ulimit -Hn 65536` as root, or /etc/security/limits.conf)", hard,
		    hard / FDS_PER_VM, FDS_PER_VM);
	else
		say(r, true, "nofile", "RLIMIT_NOFILE: %llu (hard), room for about %llu VMs", hard,
		    hard / FDS_PER_VM);
}

static void check_space(struct run *r, const char *dir)
{
	/* the dir itself, or the nearest ancestor that exists (it is made at mount) */
	char at[4096];
	snprintf(at, sizeof at, "%s", dir);
	struct statvfs sv;
	while (statvfs(at, &sv) != 0) {
		char *slash = strrchr(at, '/');
		if (!slash || slash == at) {
			snprintf(at, sizeof at, "/");
			if (statvfs(at, &sv) != 0) {
				say(r, false, "space", "runtime dir %s: cannot tell its free space (%s)", dir,
				    strerror(errno));
				return;
			}
			break;
		}
		*slash = '\0';
	}
	if (access(at, W_OK | X_OK) != 0) {
		say(r, false, "space", "runtime dir %s: %s is not writable by uid %u (%s): choose "
		    "another with -o runtimedir=DIR", dir, at, (unsigned)geteuid(), strerror(errno));
		return;
	}
	unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	double mib = avail / 1048576.0;
	if (avail < FREE_WANTED)
		say(r, false, "space", "runtime dir %s: only %.0f MiB free on its filesystem (staged "
		    "drives are copied there): free some space, or choose a larger filesystem with "
		    "-o runtimedir=DIR", dir, mib);
	else if (mib >= 10240)
		say(r, true, "space", "runtime dir %s: %.1f GiB free", dir, mib / 1024);
	else
		say(r, true, "space", "runtime dir %s: %.0f MiB free", dir, mib);
}

static void check_firecracker(struct run *r, const char *fc, const char *data_dir)
{
	if (!fc || !*fc) {
		say(r, true, "firecracker", "firecracker: none given, so a release is downloaded into "
		    "%s/bin at the first start (needs the network); -o firecracker=PATH uses yours",
		    data_dir && *data_dir ? data_dir : "/tmp/.smartvm");
		return;
	}
	struct stat st;
	if (stat(fc, &st) != 0)
		say(r, false, "firecracker", "firecracker %s: %s: give the path of a Firecracker binary "
		    "(-o firecracker=PATH), or leave the option out to download a release", fc,
		    strerror(errno));
	else if (!S_ISREG(st.st_mode) || access(fc, X_OK) != 0)
		say(r, false, "firecracker", "firecracker %s is not an executable file: chmod +x it, or "
		    "give another with -o firecracker=PATH", fc);
	else
		say(r, true, "firecracker", "firecracker: %s", fc);
}

/* " vX.Y.Z" of what binary --version says ("Jailer v1.5.1", "Firecracker
 * v1.15.1"), in v; empty when it says none. */
static void version_of(const char *binary, char *v, size_t len)
{
	char out[512], *argv[] = {(char *)binary, "--version", NULL};
	char *p = svm_run_capture(argv, out, sizeof out, 2000, NULL) > 0 ? strstr(out, " v") : NULL;
	v[0] = '\0';
	if (p)
		snprintf(v, len, "%.*s", (int)strcspn(p + 2, " \r\n"), p + 2);
}

/* The jailer and the VMM must come from one release (docs/jailer.md). */
static void check_jailer(struct run *r, const char *jailer, bool off, const char *fc)
{
	if (off || ((!jailer || !*jailer) && ((fc && *fc) || geteuid() != 0))) {
		say(r, true, "jailer", "jailer: VMMs run unjailed (%s)",
		    off ? "-o nojailer"
		    : geteuid() != 0 ? "no -o jailer=PATH given, and not root: the jailer needs root"
				     : "no -o jailer=PATH given, and -o firecracker's VMM comes with none");
		return;
	}
	if (!jailer || !*jailer) {
		say(r, true, "jailer", "jailer: VMMs run jailed, each under the jailer of its downloaded "
		    "Firecracker release (-o nojailer: unjailed)");
		return;
	}
	char jv[64], fv[64];
	if (access(jailer, X_OK) != 0) {
		say(r, false, "jailer", "jailer %s: %s: give the path of Firecracker's jailer, of the "
		    "release of the VMM (-o jailer=PATH), or -o nojailer", jailer, strerror(errno));
		return;
	}
	version_of(jailer, jv, sizeof jv);
	if (!jv[0]) {
		say(r, false, "jailer", "jailer %s does not say its version (--version): not a jailer?",
		    jailer);
		return;
	}
	if (!fc || !*fc) {
		say(r, true, "jailer", "jailer: %s v%s (the VMM's version is checked at the first start)",
		    jailer, jv);
		return;
	}
	version_of(fc, fv, sizeof fv);
	if (strcmp(jv, fv) != 0)
		say(r, false, "jailer", "jailer %s is v%s but firecracker %s is v%s: take both from one "
		    "Firecracker release", jailer, jv, fc, fv[0] ? fv : "unknown");
	else
		say(r, true, "jailer", "jailer: %s v%s, the version of firecracker %s", jailer, jv, fc);
}

const char *fs_check_default_runtime_dir(char *buf, unsigned len)
{
	struct stat st;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK | X_OK) == 0) {
		snprintf(buf, len, "/dev/shm/.smartvm/runtime");
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(buf, len, "%s/.smartvm/runtime", tmp && *tmp ? tmp : "/tmp");
	}
	return buf;
}

int fs_check_run(const struct fs_check_in *in, fs_check_fn fn, void *ud)
{
	struct run r = {.fn = fn, .ud = ud};
	char rt[4096];
	const char *dir = in->runtime_dir && *in->runtime_dir
	                      ? in->runtime_dir : fs_check_default_runtime_dir(rt, sizeof rt);
	check_kvm(&r, in->emulator);
	check_tun(&r);
	check_net_admin(&r);
	check_fuse(&r);
	check_firewall(&r);
	check_nofile(&r);
	check_space(&r, dir);
	check_firecracker(&r, in->firecracker, in->data_dir);
	check_jailer(&r, in->jailer, in->no_jailer, in->firecracker);
	return r.problems;
}
