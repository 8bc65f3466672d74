/* fc-emulator: the host side of Firecracker's hybrid vsock, with the project's
 * agent playing the guest.
 *
 * Firecracker binds the device's Unix socket at configuration (vmm.c) and,
 * once the guest runs, serves it: a host connects, sends "CONNECT <port>\n",
 * and when a guest program listens on that port Firecracker answers
 * "OK <host-side port>\n" and forwards bytes both ways; when none listens it
 * ends the host's connection. The emulated guest listens on the agent's port
 * when the emulator knows an agent binary (EMU_AGENT_PATH at build time, or
 * SMARTVMFS_EMULATOR_AGENT; empty: none) and the boot arguments do not say
 * `emu.noagent`. A connection it accepts is served by the agent itself, run
 * as a host process on the very connection (`smartvm-agent --fd 3`): the agent
 * in a guest also serves each connection in a process of its own.
 *
 * This runs on a thread of its own, apart from the API's loop: accepting and
 * reading a CONNECT line never delays an API request. Each connection is
 * handed to a child process at once, which reads the line, answers, and
 * becomes the agent; it dies with the emulator (PR_SET_PDEATHSIG), as a
 * guest's programs end with its VMM.
 *
 * Not emulated: guest-initiated connections (the `<uds>_<port>` listeners;
 * the agent never dials the host), and a pause does not stop running agents. */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EMU_AGENT_PATH
#define EMU_AGENT_PATH ""
#endif

/* The agent of the initrd given at boot, in a memfd; -1: none. */
static int initrd_agent = -1;
#define AGENT_PORT 5252u /* core/base/agentproto.h SVM_AGENT_PORT */

static char agent[4096];
static int listen_fd = -1;
/* Firecracker numbers host-side ports from 2^30 up (vsock's csm). */
static unsigned next_port = 1u << 30;

/* The connect command: "CONNECT <port>\n", read a byte at a time so that not
 * one byte meant for the guest is taken. 0 and the port, or -1. */
static int read_connect(int fd, unsigned long *port)
{
	char line[32];
	size_t n = 0;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 5000) <= 0)
			return -1;
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		if (n + 1 >= sizeof line)
			return -1;
		line[n++] = c;
	}
	line[n] = '\0';
	char *end;
	if (strncmp(line, "CONNECT ", 8) || !line[8] || line[8] < '0' || line[8] > '9')
		return -1;
	errno = 0;
	*port = strtoul(line + 8, &end, 10);
	return *end || errno || *port > 0xffffffffUL ? -1 : 0;
}

/* The child: answers the connection, then becomes the agent serving it. */
static void serve(int c, unsigned host_port)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0); /* the emulator ended already */
	unsigned long port;
	if (read_connect(c, &port) != 0 || port != AGENT_PORT || (!agent[0] && initrd_agent < 0))
		_exit(0); /* nobody listens there: the connection ends */
	char ok[32];
	int n = snprintf(ok, sizeof ok, "OK %u\n", host_port);
	if (write(c, ok, (size_t)n) != n)
		_exit(0);
	if (dup2(c, 3) != 3)
		_exit(0);
	char *argv[] = {agent[0] ? agent : "smartvm-agent", "--fd", "3", NULL};
	if (initrd_agent >= 0) {
		char *envp[] = {NULL};
		syscall(SYS_execveat, initrd_agent, "", argv, envp, AT_EMPTY_PATH);
	} else {
		execv(agent, argv);
	}
	_exit(0);
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = {listen_fd, POLLIN, 0};
		int r = poll(&p, 1, 1000);
		/* connections end on their own; their processes are waited for here */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (r <= 0)
			continue;
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		fcntl(c, F_SETFL, 0); /* the agent reads and writes it blocking */
		unsigned host_port = next_port++;
		pid_t pid = fork();
		if (pid == 0)
			serve(c, host_port);
		close(c);
	}
	return NULL;
}

#define CPIO_HDR 110

static unsigned long cpio_field(const unsigned char *h, int at)
{
	char f[9];
	memcpy(f, h + at, 8);
	f[8] = '\0';
	return strtoul(f, NULL, 16);
}

void vsock_agent_from_initrd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < CPIO_HDR || st.st_size > (64 << 20))
		return;
	unsigned char *d = malloc((size_t)st.st_size);
	size_t len = 0;
	ssize_t n;
	while (d && len < (size_t)st.st_size &&
	       (n = pread(fd, d + len, (size_t)st.st_size - len, (off_t)len)) > 0)
		len += (size_t)n;
	for (size_t i = 0; d && i + CPIO_HDR <= len && !memcmp(d + i, "070701", 6);) {
		size_t namesize = cpio_field(d + i, 94), filesize = cpio_field(d + i, 54);
		size_t name = i + CPIO_HDR, data = (name + namesize + 3) & ~(size_t)3;
		if (namesize == 0 || data + filesize > len)
			break;
		if (!strncmp((char *)d + name, "smartvm-agent", namesize)) {
			int m = (int)syscall(SYS_memfd_create, "smartvm-agent", 0);
			if (m >= 0 && write(m, d + data, filesize) == (ssize_t)filesize) {
				if (initrd_agent >= 0)
					close(initrd_agent);
				initrd_agent = m;
			} else if (m >= 0) {
				close(m);
			}
			break;
		}
		if (!strncmp((char *)d + name, "TRAILER!!!", namesize))
			break;
		i = (data + filesize + 3) & ~(size_t)3;
	}
	free(d);
}

static bool knob_noagent(void)
{
	const char *args = json_string_value(json_object_get(g_vmm.boot_source, "boot_args"));
	if (!args)
		return false;
	for (const char *p = strstr(args, "emu.noagent"); p; p = strstr(p + 1, "emu.noagent"))
		if ((p == args || p[-1] == ' ') && (p[11] == '\0' || p[11] == ' '))
			return true;
	return false;
}

void vsock_host_start(void)
{
	if (g_vmm.vsock_fd < 0 || listen_fd >= 0)
		return;
	const char *env = getenv("SMARTVMFS_EMULATOR_AGENT");
	snprintf(agent, sizeof agent, "%s", env ? env : EMU_AGENT_PATH);
	if (knob_noagent() || (agent[0] && access(agent, X_OK) != 0))
		agent[0] = '\0';
	if (knob_noagent() && initrd_agent >= 0) {
		close(initrd_agent);
		initrd_agent = -1;
	}
	listen_fd = g_vmm.vsock_fd;
	/* bound with a backlog of 1 at configuration; Firecracker's listener (Rust's
	 * UnixListener) takes 128, and a burst of connections must not be refused */
	listen(listen_fd, 128);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, accept_loop, NULL) != 0)
		listen_fd = -1;
	pthread_attr_destroy(&a);
}
