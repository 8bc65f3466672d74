/* verbs.c - the verb table: names, arity and the states each verb is valid in. */
#include "smartvm.h"

#define S(x) (1u << SVM_##x)

static const svm_verb_info verbs[SVM_VERB_COUNT] = {
	{SVM_V_START, "start", 0, 0, S(CREATED) | S(STOPPED) | S(ERROR), "start"},
	{SVM_V_PAUSE, "pause", 0, 0, S(RUNNING), "pause"},
	{SVM_V_RESUME, "resume", 0, 0, S(PAUSED), "resume"},
	{SVM_V_STOP, "stop", 0, 0, S(RUNNING) | S(PAUSED), "stop"},
	{SVM_V_KILL, "kill", 0, 0, S(STARTING) | S(RUNNING) | S(PAUSED) | S(STOPPING), "kill"},
	{SVM_V_SNAPSHOT, "snapshot", 1, 3, S(PAUSED), "snapshot NAME|DIR|STATEFILE MEMFILE [full|diff]"},
	{SVM_V_RESTORE, "restore", 1, 3, S(CREATED) | S(STOPPED) | S(ERROR),
	 "restore NAME|DIR|STATEFILE MEMFILE [resume]"},
	{SVM_V_BALLOON, "balloon", 1, 1, S(RUNNING) | S(PAUSED), "balloon MIB"},
	{SVM_V_DRIVE, "drive", 2, 3, S(RUNNING) | S(PAUSED), "drive ID PATH|- [RATELIMITER-JSON]"},
	{SVM_V_NETIF, "netif", 2, 2, S(RUNNING) | S(PAUSED), "netif ID JSON"},
	{SVM_V_METADATA, "metadata", 1, 1, S(RUNNING) | S(PAUSED), "metadata JSON"},
	{SVM_V_FLUSH_METRICS, "flushmetrics", 0, 0, S(RUNNING) | S(PAUSED), "flushmetrics"},
	{SVM_V_HINTING, "hinting", 1, 2, S(RUNNING) | S(PAUSED), "hinting start [ack]|stop"},
	{SVM_V_HOTPLUG, "hotplug", 1, 1, S(RUNNING) | S(PAUSED), "hotplug MIB"},
};

static const char *const state_names[SVM_STATE_COUNT] = {
	"created", "starting", "running", "paused", "stopping", "stopped", "error",
};

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
