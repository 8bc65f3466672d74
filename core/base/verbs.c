/* verbs.c - the VM verbs: names, arity, the states each is valid in, and what
 * sets one apart (boots a VMM, names a host path, has a secret argument). */
#include "smartvm.h"

#define S(x) (1u << SVM_##x)

/* The VM verbs (a VM's ctl file). Every verb's last argument takes the rest of
 * the line: a JSON argument (netif, metadata, drive's rate limiter) has blanks. */
#define R SVM_CF_REST
static const svm_cmd verbs[SVM_VERB_COUNT] = {
	{SVM_V_START, "start", 0, 0, S(CREATED) | S(STOPPED) | S(ERROR), R | SVM_CF_BOOTS, -1, "start"},
	{SVM_V_PAUSE, "pause", 0, 0, S(RUNNING), R, -1, "pause"},
	{SVM_V_RESUME, "resume", 0, 0, S(PAUSED), R, -1, "resume"},
	{SVM_V_STOP, "stop", 0, 0, S(RUNNING) | S(PAUSED), R, -1, "stop"},
	{SVM_V_KILL, "kill", 0, 0, S(STARTING) | S(RUNNING) | S(PAUSED) | S(STOPPING), R, -1, "kill"},
	/* NAME (no '/') is the VM's own snapshot store; DIR or STATEFILE a host path */
	{SVM_V_SNAPSHOT, "snapshot", 1, 3, S(PAUSED), R | SVM_CF_PATH_IF_SLASH, 0,
	 "snapshot NAME|DIR|STATEFILE MEMFILE [full|diff]"},
	{SVM_V_RESTORE, "restore", 1, 3, S(CREATED) | S(STOPPED) | S(ERROR),
	 R | SVM_CF_BOOTS | SVM_CF_PATH_IF_SLASH, 0, "restore NAME|DIR|STATEFILE MEMFILE [resume]"},
	{SVM_V_BALLOON, "balloon", 1, 1, S(RUNNING) | S(PAUSED), R, -1, "balloon MIB"},
	/* "drive ID - JSON" keeps the backing file */
	{SVM_V_DRIVE, "drive", 2, 3, S(RUNNING) | S(PAUSED), R | SVM_CF_DASH_KEEPS, 1,
	 "drive ID PATH|- [RATELIMITER-JSON]"},
	{SVM_V_NETIF, "netif", 2, 2, S(RUNNING) | S(PAUSED), R, -1, "netif ID JSON"},
	/* MMDS contents may carry secrets, and error files are world-readable */
	{SVM_V_METADATA, "metadata", 1, 1, S(RUNNING) | S(PAUSED), R | SVM_CF_SECRET, -1,
	 "metadata JSON"},
	{SVM_V_FLUSH_METRICS, "flushmetrics", 0, 0, S(RUNNING) | S(PAUSED), R, -1, "flushmetrics"},
	{SVM_V_HINTING, "hinting", 1, 2, S(RUNNING) | S(PAUSED), R, -1, "hinting start [ack]|stop"},
	{SVM_V_HOTPLUG, "hotplug", 1, 1, S(RUNNING) | S(PAUSED), R, -1, "hotplug MIB"},
};
#undef R

static const svm_cmdtab vm_commands = {verbs, SVM_VERB_COUNT};

static const char *const state_names[SVM_STATE_COUNT] = {
	"created", "starting", "running", "paused", "stopping", "stopped", "error",
};

const svm_cmdtab *svm_vm_commands(void)
{
	return &vm_commands;
}

const svm_verb_info *svm_verb_table(void)
{
	return verbs;
}

unsigned svm_verbs_valid_in(svm_state s)
{
	unsigned mask = 0;
	for (int v = 0; v < SVM_VERB_COUNT; v++)
		if (verbs[v].valid_states & (1u << s))
			mask |= 1u << v;
	return mask;
}

const char *svm_state_name(svm_state s)
{
	if ((unsigned)s >= SVM_STATE_COUNT)
		return "unknown";
	return state_names[s];
}
