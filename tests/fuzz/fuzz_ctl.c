/*
 * fuzz_ctl.c - lines written to a VM's ctl file, on the core side: each line is
 * parsed by the daemon's own parser, fs/tree/ctlparse.c's fs_ctl_parse_line
 * over the core's command engine (Plan 9 parsecmd: the verb, then up to
 * max_args blank-separated arguments, the last taking the rest of the line;
 * the -o paths check is the caller's, left out here), and run with svm_vm_do on a VM whose VMM is the Firecracker emulator
 * ($SMARTVMFS_EMULATOR), running when each input starts.
 *
 * Host paths in arguments (snapshot's and restore's STATE and MEM, drive's
 * PATH) are kept inside a scratch directory: '/' becomes '_' under it, so no
 * input writes outside (the fuzzer runs as root).
 *
 * Checks: every failure is a well-formed error; a verb refused as INVALID_STATE
 * was not valid in the state the VM had; a failed verb leaves the state as it
 * was; a state verb that succeeds leaves the state it promises.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlparse.h"
#include "fuzz.h"

static svm *s;
static svm_vm *vm;
static char sandbox[300];

static void start_vm(void)
{
	svm_error e;
	svm_state st = svm_vm_state(vm);
	int rc = 0;
	if (st == SVM_PAUSED)
		rc = svm_vm_do(vm, &(svm_request){.verb = SVM_V_RESUME}, &e);
	else if (st != SVM_RUNNING)
		rc = svm_vm_do(vm, &(svm_request){.verb = SVM_V_START}, &e);
	FUZZ_CHECK(rc == 0 && svm_vm_state(vm) == SVM_RUNNING, "cannot (re)start the VM from %s: %s",
		   svm_state_name(st), e.message);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *emu = getenv("SMARTVMFS_EMULATOR");
	if (!emu || access(emu, X_OK) != 0) {
		fprintf(stderr, "fuzz_ctl: set SMARTVMFS_EMULATOR to the fc-emulator binary\n");
		exit(2);
	}
	s = fuzz_svm_new(emu);
	snprintf(sandbox, sizeof sandbox, "%s/paths", fuzz_dir);
	mkdir(sandbox, 0700);
	char kernel[320], disk[320], cfg[1024];
	snprintf(kernel, sizeof kernel, "%s/vmlinux", sandbox);
	snprintf(disk, sizeof disk, "%s/disk.img", sandbox);
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? disk : kernel, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		FUZZ_CHECK(fd >= 0 && write(fd, "\177ELF", 4) == 4, "file in the sandbox");
		close(fd);
	}
	/* no network interfaces: a start would make TAPs on the host */
	snprintf(cfg, sizeof cfg,
		 "{\"bootSource\": {\"kernelImagePath\": \"%s\", \"bootArgs\": \"console=ttyS0 "
		 "reboot=k panic=1 pci=off\"}, \"machineConfig\": {\"vcpuCount\": 1, \"memSizeMib\": 16},"
		 " \"drives\": [{\"driveId\": \"data\", \"pathOnHost\": \"%s\", \"isRootDevice\": false,"
		 " \"isReadOnly\": true}], \"balloon\": {\"amountMib\": 0, \"deflateOnOom\": false}}",
		 kernel, disk);
	svm_error e;
	vm = svm_create_vm(s, "fuzz", &e);
	FUZZ_CHECK(vm, "svm_create_vm: %s", e.message);
	FUZZ_CHECK(svm_vm_set_config_json(vm, cfg, strlen(cfg), &e) == 0, "config: %s", e.message);
	/* a data store from the start, so that the metadata verb can merge */
	FUZZ_CHECK(svm_vm_set_metadata_json(vm, "{}", 2, &e) == 0, "metadata: %s", e.message);
	start_vm();
	return 0;
}

static char *trim(char *line)
{
	while (*line && isspace((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	return line;
}

/* A host path argument, kept under the sandbox; a snapshot NAME (no '/') stays,
 * the core keeps it under the data dir. */
static const char *jail(const char *arg, bool name_ok, char *buf, size_t len)
{
	if (name_ok && !strchr(arg, '/'))
		return arg;
	int n = snprintf(buf, len, "%s/", sandbox);
	for (const char *p = arg; *p && (size_t)n < len - 1; p++)
		buf[n++] = *p == '/' ? '_' : *p;
	buf[n < (int)len ? n : (int)len - 1] = '\0';
	return buf;
}

static void run_request(svm_request r);

static void run_line(const char *line)
{
	svm_request r;
	svm_error pe;
	svm_error_clear(&pe);
	char *scratch = strdup(line);
	FUZZ_CHECK(scratch, "out of memory");
	if (fs_ctl_parse_line(line, scratch, &r, &pe) != 0) {
		fuzz_check_error(&pe);
		FUZZ_CHECK(pe.code == SVM_INVALID_ARGUMENT, "parse failure of code %d: %s", pe.code,
			   pe.message);
	} else {
		run_request(r); /* r.argv points into scratch */
	}
	free(scratch);
}

static void run_request(svm_request r)
{
	/* every argument that may name a host file: the first (a NAME stays) and,
	 * for the two-file forms (STATE MEM), the second when it is a path */
	char path[2][PATH_MAX];
	if (r.verb == SVM_V_SNAPSHOT || r.verb == SVM_V_RESTORE) {
		r.argv[0] = jail(r.argv[0], true, path[0], sizeof path[0]);
		if (r.argc > 1)
			r.argv[1] = jail(r.argv[1], true, path[1], sizeof path[1]);
	} else if (r.verb == SVM_V_DRIVE) {
		r.argv[1] = jail(r.argv[1], false, path[1], sizeof path[1]);
	}
	svm_state before = svm_vm_state(vm);
	svm_error e;
	svm_error_clear(&e);
	int rc = svm_vm_do(vm, &r, &e);
	svm_state after = svm_vm_state(vm);
	const svm_verb_info *vi = &svm_verb_table()[r.verb];
	if (rc < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(e.code != SVM_INVALID_STATE || !(vi->valid_states & (1u << before)) ||
				   strstr(e.message, "busy"),
			   "%s refused in %s, where it is valid: %s", vi->name, svm_state_name(before),
			   e.message);
		FUZZ_CHECK(after == before, "a failed %s changed the state %s -> %s (%s)", vi->name,
			   svm_state_name(before), svm_state_name(after), e.message);
		return;
	}
	FUZZ_CHECK(vi->valid_states & (1u << before), "%s succeeded in %s", vi->name,
		   svm_state_name(before));
	svm_state want = after;
	switch (r.verb) {
	case SVM_V_START:
	case SVM_V_RESUME:
		want = SVM_RUNNING;
		break;
	case SVM_V_PAUSE:
		want = SVM_PAUSED;
		break;
	case SVM_V_STOP:
	case SVM_V_KILL:
		want = SVM_STOPPED;
		break;
	case SVM_V_RESTORE:
		want = r.argc > 1 ? SVM_RUNNING : SVM_PAUSED;
		break;
	default:
		want = before;
	}
	FUZZ_CHECK(after == want, "%s: state %s, wanted %s", vi->name, svm_state_name(after),
		   svm_state_name(want));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	int lines = 0;
	/* fs/tree/lines.c: lines split at '\n', each trimmed; a NUL ends a line's text */
	for (char *p = text; p < text + size && lines < 8;) {
		char *nl = memchr(p, '\n', (size_t)(text + size - p));
		if (nl)
			*nl = '\0';
		char *line = trim(p);
		if (*line) {
			run_line(line);
			lines++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	free(text);
	start_vm();
	/* what snapshots left behind: the VM's named ones and the sandbox's */
	char dir[256];
	snprintf(dir, sizeof dir, "%s/data/snapshots", fuzz_dir);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	DIR *d = opendir(sandbox);
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "vmlinux") &&
		    strcmp(de->d_name, "disk.img")) {
			snprintf(dir, sizeof dir, "%s/%s", sandbox, de->d_name);
			nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		}
	if (d)
		closedir(d);
	return 0;
}
