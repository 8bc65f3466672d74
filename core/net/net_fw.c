/* net_fw.c - iptables from an argv (svm_run: no shell), rules tagged with a
 * comment, and the ip_forward sysctl. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net_fw.h"
#include "svmspawn.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define MAX_ARGS 40

const char *net_fw_binary(void)
{
	/* the daemon may run with a PATH that lacks the sbin directories */
	static const char *const known[] = {"/usr/sbin/iptables", "/sbin/iptables",
					    "/usr/bin/iptables", NULL};
	for (int i = 0; known[i]; i++)
		if (access(known[i], X_OK) == 0)
			return known[i];
	return NULL;
}

int net_fw_run(const char *const args[], char **out, svm_error *err)
{
	if (out)
		*out = NULL;
	const char *bin = net_fw_binary();
	if (!bin)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED,
				     "iptables is not installed (Debian package iptables): the guests' "
				     "NAT and forwarding rules need it");
	char *argv[MAX_ARGS];
	int argc = 0;
	argv[argc++] = (char *)bin;
	argv[argc++] = "-w"; /* wait for the xtables lock instead of failing */
	for (int i = 0; args[i] && argc < MAX_ARGS - 1; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;

	/* what it says on either stream is one text: its complaint is the message */
	svm_run_io io = {.out_fd = -1, .capture = true, .merge_err = true, .timeout_ms = -1};
	svm_error e;
	if (svm_run(argv, &io, &e) < 0 && io.failed == SVM_RUN_PIPE)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "pipe: %s", strerror(errno));
	if (io.failed)
		return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "cannot run %s: %s", bin,
				     strerror(errno));
	if (WIFEXITED(io.wstatus)) {
		if (out)
			*out = io.out;
		else
			free(io.out);
		return WEXITSTATUS(io.wstatus);
	}
	free(io.out);
	return svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "%s ended by signal %d", bin,
			     WTERMSIG(io.wstatus));
}

/* -t TABLE OP CHAIN [1] SPEC... with the comment before the target (where
 * iptables -S prints it). */
static void rule_args(const char **a, const net_rule *r, const char *op, bool pos,
		      const char *tag)
{
	int n = 0;
	a[n++] = "-t";
	a[n++] = r->table;
	a[n++] = op;
	a[n++] = r->chain;
	if (pos)
		a[n++] = "1";
	for (int i = 0; r->spec[i]; i++) {
		if (!strcmp(r->spec[i], "-j")) {
			a[n++] = "-m";
			a[n++] = "comment";
			a[n++] = "--comment";
			a[n++] = tag;
		}
		a[n++] = r->spec[i];
	}
	a[n] = NULL;
}

static void rule_text(const char *const *a, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; a[i]; i++) {
		if (i)
			strncat(buf, " ", size - strlen(buf) - 1);
		strncat(buf, a[i], size - strlen(buf) - 1);
	}
}

int net_fw_ensure(const net_rule *r, const char *tag, svm_error *err)
{
	const char *a[MAX_ARGS];
	rule_args(a, r, "-C", false, tag);
	int rc = net_fw_run(a, NULL, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0; /* there already: never a duplicate */
	rule_args(a, r, r->insert ? "-I" : "-A", r->insert, tag);
	char *out = NULL;
	rc = net_fw_run(a, &out, err);
	if (rc != 0) {
		char text[512];
		rule_text(a, text, sizeof text);
		if (rc > 0) {
			out[strcspn(out, "\n")] = '\0';
			svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "iptables %s: exit %d: %s", text,
				      rc, out);
		}
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

void net_fw_remove(const net_rule *r, const char *tag)
{
	const char *a[MAX_ARGS];
	rule_args(a, r, "-D", false, tag);
	for (int i = 0; i < 16 && net_fw_run(a, NULL, NULL) == 0; i++)
		;
}

int net_fw_forward_drops(bool *drops, svm_error *err)
{
	static const char *const a[] = {"-t", "filter", "-S", "FORWARD", NULL};
	char *out = NULL;
	int rc = net_fw_run(a, &out, err);
	if (rc != 0) {
		if (rc > 0)
			svm_error_set(err, SVM_BRIDGE_SETUP_FAILED, "iptables -S FORWARD: exit %d: %s",
				      rc, out ? out : "");
		free(out);
		return -1;
	}
	*drops = strstr(out, "-P FORWARD DROP") != NULL;
	free(out);
	return 0;
}

/* Splits one line of `iptables -S` into words; "quoted words" with \" and \\
 * escapes, as iptables prints comments. Modifies line in place. */
static int split_words(char *line, char **w, int max)
{
	int n = 0;
	char *p = line;
	while (*p && n < max - 1) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char *dst = p;
		w[n++] = p;
		if (*p == '"') {
			char *s = p + 1;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1])
					s++;
				*dst++ = *s++;
			}
			p = *s ? s + 1 : s;
		} else {
			while (*p && *p != ' ')
				*dst++ = *p++;
			if (*p)
				p++;
		}
		*dst = '\0';
		/* dst <= p always; a word ends where its terminator is */
	}
	w[n] = NULL;
	return n;
}

int net_fw_collect(const char *table, const char *tag,
		   void (*found)(void *ud, const char *rule), void *ud)
{
	const char *list[] = {"-t", table, "-S", NULL};
	char *out = NULL;
	if (net_fw_run(list, &out, NULL) != 0) {
		free(out);
		return -1;
	}
	int removed = 0;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "-A ", 3))
			continue;
		char copy[1024];
		snprintf(copy, sizeof copy, "%s", line);
		char *w[MAX_ARGS];
		int n = split_words(line, w, MAX_ARGS - 3);
		bool ours = false;
		for (int i = 0; i + 1 < n; i++)
			if (!strcmp(w[i], "--comment") && !strcmp(w[i + 1], tag))
				ours = true;
		if (!ours)
			continue;
		const char *a[MAX_ARGS];
		a[0] = "-t";
		a[1] = table;
		a[2] = "-D";
		for (int i = 1; i <= n; i++)
			a[2 + i] = w[i]; /* the chain, the words, the NULL */
		if (net_fw_run(a, NULL, NULL) == 0) {
			removed++;
			if (found)
				found(ud, copy);
		}
	}
	free(out);
	return removed;
}

int net_ip_forward_get(void)
{
	FILE *f = fopen(IP_FORWARD, "re");
	int v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int net_ip_forward_set(int value)
{
	int fd = open(IP_FORWARD, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = write(fd, value ? "1\n" : "0\n", 2) == 2 ? 0 : -1;
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}
