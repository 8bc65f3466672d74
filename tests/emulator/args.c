/* Command line, parsed the way Firecracker's own utils::arg_parser does:
 * "--name value" pairs and bare flags, no "--name=value", no positionals,
 * each argument at most once. Errors are reported with Firecracker's texts
 * and exit codes so a caller's error handling is exercised for real. */
#include "emu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opt {
	const char *name;
	bool takes_value;
	const char *help;
};

static const struct opt opts[] = {
	{"api-sock", true, "Path to unix domain socket used by the API. [default: \"/run/firecracker.socket\"]"},
	{"boot-timer", false, "Whether or not to load boot timer device for logging elapsed time since InstanceStart command."},
	{"config-file", true, "Path to a file that contains the microVM configuration in JSON format."},
	{"describe-snapshot", true, "Print the data format version of the provided snapshot state file."},
	{"enable-pci", false, "Enables PCIe support."},
	{"help", false, "Show the help message."},
	{"http-api-max-payload-size", true, "Http API request payload max size, in bytes. [default: \"51200\"]"},
	{"id", true, "MicroVM unique identifier. [default: \"anonymous-instance\"]"},
	{"level", true, "Set the logger level."},
	{"log-path", true, "Path to a fifo or a file used for configuring the logger on startup."},
	{"metadata", true, "Path to a file that contains metadata in JSON format to add to the mmds."},
	{"metrics-path", true, "Path to a fifo or a file used for configuring the metrics on startup."},
	{"mmds-size-limit", true, "Mmds data store limit, in bytes."},
	{"module", true, "Set the logger module filter."},
	{"no-api", false, "Optional parameter which allows starting and using a microVM without an active API socket."},
	{"no-seccomp", false, "Optional parameter which allows starting and using a microVM without seccomp filtering. Not recommended."},
	{"parent-cpu-time-us", true, "Parent process CPU time (wall clock, microseconds). This parameter is optional."},
	{"seccomp-filter", true, "Optional parameter which allows specifying the path to a custom seccomp filter. For advanced users."},
	{"show-level", false, "Whether or not to output the level in the logs."},
	{"show-log-origin", false, "Whether or not to include the file path and line number of the log's origin."},
	{"snapshot-version", false, "Print the supported data format version."},
	{"start-time-cpu-us", true, "Process start CPU time (wall clock, microseconds). This parameter is optional."},
	{"start-time-us", true, "Process start time (wall clock, microseconds). This parameter is optional."},
	{"version", false, "Print the binary version number."},
};
#define NOPTS (sizeof opts / sizeof opts[0])

/* Firecracker prints the parse error through its logger (stdout, as no
 * logger is configured yet) and the Debug form of the error on stderr. */
static int arg_error(const char *msg, const char *dbg)
{
	LOGE("main", "Arguments parsing error: %s \\n\\nFor more information try --help.", msg);
	fprintf(stderr, "Error: ParseArguments(%s)\n", dbg);
	LOGE("main", "Firecracker exiting with error. exit_code=%d", FC_EXIT_ARG_PARSING);
	return -FC_EXIT_ARG_PARSING;
}

static void print_help(void)
{
	printf("Firecracker v%s\n\n\noptional arguments:\n", EMU_FC_VERSION);
	for (size_t i = 0; i < NOPTS; i++) {
		char lhs[80];
		if (opts[i].takes_value)
			snprintf(lhs, sizeof lhs, "--%s <%s>", opts[i].name, opts[i].name);
		else
			snprintf(lhs, sizeof lhs, "--%s", opts[i].name);
		printf("  %-58s%s\n", lhs, opts[i].help);
	}
}

static int parse_size(const char *name, const char *v, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || !*v || *end || *v == '-') {
		/* Firecracker .expect()s here: a panic, i.e. SIGABRT. */
		LOGE("main", "Firecracker panicked at src/firecracker/src/main.rs:0:0:\n"
			     "'%s' parameter expected to be of 'usize' type.: ParseIntError { kind: InvalidDigit }",
		     name);
		fflush(stdout);
		abort();
	}
	*out = (size_t)n;
	return 0;
}

/* Instance ids: 1..64 characters, alphanumeric or '-' (validate_instance_id). */
static void check_id(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n > 64) {
		LOGE("main", "Firecracker panicked at src/firecracker/src/main.rs:296:48:\n"
			     "Invalid instance ID: InvalidLen(%zu, 1, 64)", n);
		fflush(stdout);
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
			LOGE("main", "Firecracker panicked at src/firecracker/src/main.rs:296:48:\n"
				     "Invalid instance ID: InvalidChar('%c', %zu)", c, i);
			fflush(stdout);
			abort();
		}
	}
}

static size_t idx(const char *n)
{
	for (size_t k = 0; k < NOPTS; k++)
		if (strcmp(opts[k].name, n) == 0)
			return k;
	abort();
}

/* Returns 0 to run, 1 to exit 0 at once (--version, --help), or -exitcode. */
int args_parse(int argc, char **argv, struct emu_args *a)
{
	const char *val[NOPTS] = {0};
	bool seen[NOPTS] = {0};
	char msg[512], dbg[512];

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *name = strncmp(arg, "--", 2) == 0 ? arg + 2 : arg;
		size_t k;
		for (k = 0; k < NOPTS; k++)
			if (strncmp(arg, "--", 2) == 0 && strcmp(name, opts[k].name) == 0)
				break;
		if (k == NOPTS) {
			snprintf(msg, sizeof msg,
				 "Found argument '%s' which wasn't expected, or isn't valid in this context.", name);
			snprintf(dbg, sizeof dbg, "UnexpectedArgument(\"%s\")", name);
			return arg_error(msg, dbg);
		}
		if (seen[k]) {
			snprintf(msg, sizeof msg, "The argument '%s' was provided more than once.", name);
			snprintf(dbg, sizeof dbg, "DuplicateArgument(\"%s\")", name);
			return arg_error(msg, dbg);
		}
		seen[k] = true;
		if (opts[k].takes_value) {
			if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
				snprintf(msg, sizeof msg,
					 "The argument '%s' requires a value, but none was supplied.", name);
				snprintf(dbg, sizeof dbg, "MissingValue(\"%s\")", name);
				return arg_error(msg, dbg);
			}
			val[k] = argv[++i];
		}
	}

#define V(n) val[idx(n)]
#define F(n) seen[idx(n)]
	if (F("help")) {
		print_help();
		return 1;
	}
	if (F("version")) {
		/* Firecracker's own line, then what this binary is (smartvmfs tells
		 * its users it runs on the test double, not on a Firecracker) */
		printf("Firecracker v%s\n%s\n\n", EMU_FC_VERSION, EMU_VERSION_NOTE);
		return 1;
	}
	if (F("snapshot-version")) {
		printf("v8.0.0\n");
		return 1;
	}

	a->api_sock = V("api-sock") ? V("api-sock") : "/run/firecracker.socket";
	a->id = V("id") ? V("id") : "anonymous-instance";
	check_id(a->id);
	a->level = V("level");
	a->log_path = V("log-path");
	a->metrics_path = V("metrics-path");
	a->config_file = V("config-file");
	a->seccomp_filter = V("seccomp-filter");
	a->metadata = V("metadata");
	a->module = V("module");
	a->show_level = F("show-level");
	a->show_log_origin = F("show-log-origin");
	a->boot_timer = F("boot-timer");
	a->no_seccomp = F("no-seccomp");
	a->no_api = F("no-api");
	a->payload_limit = EMU_DEFAULT_PAYLOAD;
	if (V("http-api-max-payload-size"))
		parse_size("http-api-max-payload-size", V("http-api-max-payload-size"), &a->payload_limit);
	a->mmds_limit = a->payload_limit; /* Firecracker's default */
	if (V("mmds-size-limit"))
		parse_size("mmds-size-limit", V("mmds-size-limit"), &a->mmds_limit);
	return 0;
#undef V
#undef F
}
