/*
 * base.c - the small pure utilities every layer of the core uses: clocks, the
 * VM-name rule, string vectors. Nothing here knows an orchestrator or a VM, so
 * any file may call it without calling up.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "smartvm.h"

uint64_t svm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t svm_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool svm_name_valid(const char *name)
{
	if (!name || !*name)
		return false;
	size_t n = strlen(name);
	if (n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

void svm_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
