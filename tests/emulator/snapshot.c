/* Snapshot files. The state file is a JSON document of the emulator's own
 * (Firecracker's is a CRC-checked bitcode blob); the memory file has the
 * guest's size and is sparse. A load accepts only emulator state files and
 * checks what Firecracker checks on restore: memory file, drive backing
 * files, network overrides, the vsock socket path. */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAGIC "fc-emulator-snapshot"

static char *os_error(int e) { return xasprintf("%s (os error %d)", strerror(e), e); }

int snapshot_create(const json_t *p, char **err)
{
	const char *snap = json_string_value(json_object_get(p, "snapshot_path"));
	const char *mem = json_string_value(json_object_get(p, "mem_file_path"));
	long long mib = json_integer_value(json_object_get(g_vmm.machine, "mem_size_mib"));

	/* Firecracker writes the state first, then the memory. */
	int fd = open(snap, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		char *e = os_error(errno);
		*err = xasprintf("Cannot perform open on the snapshot backing file: %s", e);
		free(e);
		return -1;
	}
	json_t *st = json_pack("{s:s,s:i,s:s,s:s,s:O,s:O,s:O,s:O?,s:O?,s:O?,s:O?,s:O?,s:s?}", "magic", MAGIC,
			       "format", 1, "vmm_version", EMU_FC_VERSION, "snapshot_type",
			       json_string_value(json_object_get(p, "snapshot_type")) ?: "Full",
			       "machine-config", g_vmm.machine, "drives", g_vmm.drives,
			       "network-interfaces", g_vmm.nets, "vsock", g_vmm.vsock, "balloon",
			       g_vmm.balloon, "entropy", g_vmm.entropy, "mmds-config", g_vmm.mmds_config,
			       "boot-source", g_vmm.boot_source, "boot_args",
			       g_vmm.boot_source ? json_string_value(json_object_get(g_vmm.boot_source, "boot_args")) : NULL);
	char *s = json_dumps(st, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(st);
	size_t n = strlen(s);
	ssize_t w = write(fd, s, n);
	int we = errno;
	free(s);
	close(fd);
	if (w != (ssize_t)n) {
		char *e = os_error(w < 0 ? we : EIO);
		*err = xasprintf("Cannot save the microVM state: %s", e);
		free(e);
		return -1;
	}

	fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)mib << 20) < 0) {
		char *e = os_error(errno);
		*err = xasprintf("Cannot perform open on the memory backing file: %s", e);
		free(e);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int check_open(const char *path, int flags, const char *what, char **err)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		char *e = os_error(errno);
		*err = xasprintf("%s%s %s", what, e, path);
		free(e);
		return -1;
	}
	close(fd);
	return 0;
}

int snapshot_load(const json_t *p, char **err)
{
	const char *snap = json_string_value(json_object_get(p, "snapshot_path"));
	const char *mem = json_string_value(json_object_get(p, "mem_file_path"));
	json_t *backend = json_object_get(p, "mem_backend");
	if (!mem && backend) {
		if (strcmp(json_string_value(json_object_get(backend, "backend_type")), "Uffd") == 0) {
			*err = strdup("Failed to load guest memory: fc-emulator does not emulate the Uffd backend");
			return -1;
		}
		mem = json_string_value(json_object_get(backend, "backend_path"));
	}

	int fd = open(snap, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		char *e = os_error(errno);
		*err = xasprintf("Failed to get snapshot state from file: Failed to open snapshot file: %s", e);
		free(e);
		return -1;
	}
	json_error_t je;
	json_t *st = json_loadfd(fd, 0, &je);
	close(fd);
	if (!st || strcmp(json_string_value(json_object_get(st, "magic")) ?: "", MAGIC) != 0) {
		json_decref(st);
		*err = strdup("Failed to get snapshot state from file: Failed to load snapshot state from file: "
			      "Magic value does not match arch: not a snapshot state file written by fc-emulator");
		return -1;
	}
	int rc = -1;
	if (check_open(mem, O_RDONLY, "Failed to load guest memory: Error creating guest memory from file: Failed to load guest memory: ", err) < 0) {
		char *sp = strrchr(*err, ' '); /* Firecracker does not name the file */
		if (sp)
			*sp = 0;
		goto out;
	}

	json_t *drives = json_object_get(st, "drives"), *nets = json_object_get(st, "network-interfaces"), *e;
	size_t i;
	json_array_foreach(drives, i, e) {
		const char *path = json_string_value(json_object_get(e, "path_on_host"));
		int fl = json_is_true(json_object_get(e, "is_read_only")) ? O_RDONLY : O_RDWR;
		if (path && check_open(path, fl, "Failed to build microVM from snapshot: Block: Virtio backend error: Error manipulating the backing file: ", err) < 0)
			goto out;
	}
	json_t *ov;
	json_array_foreach(json_object_get(p, "network_overrides"), i, ov) {
		const char *id = json_string_value(json_object_get(ov, "iface_id"));
		size_t k;
		json_t *n;
		bool found = false;
		json_array_foreach(nets, k, n) if (strcmp(json_string_value(json_object_get(n, "iface_id")), id) == 0) {
			json_object_set(n, "host_dev_name", json_object_get(ov, "host_dev_name"));
			found = true;
		}
		if (!found) {
			*err = strdup("Failed to get snapshot state from file: Unknown Network Device.");
			goto out;
		}
	}
	json_t *vs = json_object_get(st, "vsock");
	if (json_is_object(vs)) {
		const char *path = json_string_value(json_object_get(vs, "uds_path"));
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		unlink(path);
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0) {
			char *m = os_error(errno);
			*err = xasprintf("Failed to build microVM from snapshot: Vsock: Error binding to the host-side Unix socket: %s", m);
			free(m);
			if (s >= 0)
				close(s);
			goto out;
		}
		g_vmm.vsock_fd = s;
	}

	/* Restore. The docs say boot-source is empty after a restore; the real
	 * binary (v1.14.2) still reports it, and so do we. */
	json_decref(g_vmm.machine);
	g_vmm.machine = json_deep_copy(json_object_get(st, "machine-config"));
	json_object_set_new(g_vmm.machine, "track_dirty_pages",
			    json_boolean(json_is_true(json_object_get(p, "track_dirty_pages")) ||
					 json_is_true(json_object_get(p, "enable_diff_snapshots"))));
	json_object_del(g_vmm.machine, "cpu_template");
	json_decref(g_vmm.drives);
	g_vmm.drives = json_deep_copy(drives);
	json_decref(g_vmm.nets);
	g_vmm.nets = json_deep_copy(nets);
#define RESTORE(slot, key) do { json_t *v_ = json_object_get(st, key); \
	json_decref(slot); slot = json_is_null(v_) || !v_ ? NULL : json_deep_copy(v_); } while (0)
	RESTORE(g_vmm.vsock, "vsock");
	RESTORE(g_vmm.balloon, "balloon");
	RESTORE(g_vmm.entropy, "entropy");
	RESTORE(g_vmm.mmds_config, "mmds-config");
	RESTORE(g_vmm.boot_source, "boot-source");
#undef RESTORE
	/* The guest's own behaviour lives in its memory: keep its boot-args flags,
	 * but the VMM-level knobs (crash, boot delay) belong to InstanceStart. */
	guest_parse_knobs(json_string_value(json_object_get(st, "boot_args")), &g_vmm.knobs);
	g_vmm.knobs.crash_ms = g_vmm.knobs.boot_ms = -1;
	g_vmm.knobs.exit_after_line = false;
	g_vmm.restored = true;
	g_vmm.state = json_is_true(json_object_get(p, "resume_vm")) ? VM_RUNNING : VM_PAUSED;
	vmm_start_timers_after_boot();
	rc = 0;
out:
	json_decref(st);
	return rc;
}
