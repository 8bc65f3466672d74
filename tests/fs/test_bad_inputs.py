"""The table of bad inputs: one row per input, what docs/smartvmfs.5.md promises for it.

Each row says what is done where (a write to a file, a shell redirection, a
directory or link operation), the errno it must fail with, the `error` file that
must gain exactly one line (the VM's, the root's or images/error, as the manual
says; none for what the kernel refuses before any command runs) and a substring of
that line. Around every row the test takes a snapshot of what a user can read (the
values of both VMs, the root, /net, /images, the listings, the data and runtime
directories on the host) and checks that nothing changed: a bad input gets a
clear error and loses nothing.

Every row runs on a fresh mount with two VMs: `web` (created, with a config and
metadata) and `run` (running).
"""
import errno
import json
import os
import subprocess
import time
from collections import namedtuple

import pytest

from conftest import vm_config

MMDS_MAX = 51200          # Firecracker's default MMDS data store limit
CONFIG_MAX = 64 * 1024    # docs/config.md
CTL_LINE_MAX = 64 * 1024  # docs/smartvmfs.5.md: a control line

# op: what is done
#   write    one write() on an O_WRONLY|O_TRUNC open, then close() (at="write" or "close":
#            which of the two must fail; the other must succeed)
#   sh       a shell redirection as a user types it (sh -c): exit status != 0
#   truncate / mkdir / rmdir / symlink / link / rename / unlink / chmod / chown /
#   mknod / create (open O_CREAT|O_EXCL) / open_w (open O_WRONLY) / open_r (O_RDONLY)
# errfile: the error file that gains one line containing `text` (None: no error file
#   changes); errno 0: the operation succeeds and changes nothing
Row = namedtuple("Row", "id op path data errno errfile text at", defaults=(None, "write"))

BIG_STRING = "x" * (CONFIG_MAX + 10)


def big_config(kernel):
    cfg = vm_config(kernel)
    cfg["bootSource"]["bootArgs"] += " " + BIG_STRING
    return json.dumps(cfg)


ROWS = [
    # ---- a VM's ctl: unknown verbs, arity, bytes, state
    Row("ctl-unknown-verb", "write", "vms/web/ctl", "frob 3\n", errno.EINVAL, "vms/web/error",
        'frob 3: unknown control message "frob 3"'),
    Row("ctl-too-many-args", "write", "vms/web/ctl", "start now\n", errno.EINVAL, "vms/web/error",
        'bad arguments "start now": usage: start'),
    Row("ctl-missing-arg", "write", "vms/web/ctl", "balloon\n", errno.EINVAL, "vms/web/error",
        "usage: balloon MIB"),
    Row("ctl-bad-number", "write", "vms/run/ctl", "balloon lots\n", errno.EINVAL, "vms/run/error",
        '"lots" is not a size in MiB'),
    Row("ctl-missing-path", "write", "vms/web/ctl", "snapshot\n", errno.EINVAL, "vms/web/error",
        "usage: snapshot NAME|DIR|STATEFILE MEMFILE [full|diff]"),
    Row("ctl-overlong-line", "write", "vms/web/ctl", "metadata " + "x" * (CTL_LINE_MAX + 1) + "\n",
        errno.EFBIG, "vms/web/error",
        f"control message of {CTL_LINE_MAX + 10} bytes is longer than the {CTL_LINE_MAX} allowed"),
    # a C string would end at the NUL and run "start": nothing may run
    Row("ctl-nul-inside", "write", "vms/web/ctl", "start\0junk\n", errno.EINVAL, "vms/web/error",
        "start\\x00junk: control message has a NUL byte at offset 5"),
    Row("ctl-escape", "write", "vms/web/ctl", "start \x1b[2J\n", errno.EINVAL, "vms/web/error",
        "start \\x1b[2J: control message has a control byte 0x1b at offset 6"),
    Row("ctl-nul-alone", "write", "vms/web/ctl", "\0\n", errno.EINVAL, "vms/web/error",
        "control message has a NUL byte at offset 0"),
    Row("ctl-pause-created", "write", "vms/web/ctl", "pause\n", errno.EBUSY, "vms/web/error",
        "web is created: pause is valid when running"),
    Row("ctl-stop-created", "write", "vms/web/ctl", "stop\n", errno.EBUSY, "vms/web/error",
        "web is created: stop is valid when running, paused"),
    Row("ctl-start-running", "write", "vms/run/ctl", "start\n", errno.EBUSY, "vms/run/error",
        "run is running: start is valid when created, stopped, error"),
    Row("ctl-resume-running", "write", "vms/run/ctl", "resume\n", errno.EBUSY, "vms/run/error",
        "run is running: resume is valid when paused"),
    Row("ctl-snapshot-running", "write", "vms/run/ctl", "snapshot s1\n", errno.EBUSY,
        "vms/run/error", "run is running: snapshot is valid when paused"),
    Row("ctl-restore-running", "write", "vms/run/ctl", "restore /nonexistent\n", errno.EBUSY,
        "vms/run/error", "run is running: restore is valid when created, stopped, error"),
    Row("ctl-drive-missing-file", "write", "vms/run/ctl", "drive rootfs /nonexistent/disk\n",
        errno.ENOENT, "vms/run/error", "/nonexistent/disk: No such file or directory"),
    Row("ctl-metadata-bad-json", "write", "vms/run/ctl", "metadata {bad\n", errno.EINVAL,
        "vms/run/error", "metadata (4 bytes of JSON not shown): metadata:"),
    Row("ctl-shell-unknown-verb", "sh", "vms/web/ctl", "echo frob > vms/web/ctl", errno.EINVAL,
        "vms/web/error", 'unknown control message "frob"'),
    # ---- config.json
    Row("config-syntax", "write", "vms/web/config.json", "{bad", errno.EINVAL, "vms/web/error",
        "write config.json: config.json: JSON syntax error"),
    Row("config-not-object", "write", "vms/web/config.json", "[1,2]", errno.EINVAL,
        "vms/web/error", "config must be a JSON object"),
    Row("config-wrong-type", "write", "vms/web/config.json",
        '{"machineConfig":{"vcpuCount":"two","memSizeMib":128}}', errno.EINVAL, "vms/web/error",
        "machineConfig.vcpuCount must be an integer"),
    Row("config-unknown-key", "write", "vms/web/config.json",
        '{"machineConfig":{"vcpuCount":1,"memSizeMib":128},"frob":1}', errno.EINVAL,
        "vms/web/error", 'unknown field "frob"'),
    Row("config-duplicate-key", "write", "vms/web/config.json",
        '{"machineConfig":{"vcpuCount":1,"memSizeMib":128},"machineConfig":{}}', errno.EINVAL,
        "vms/web/error", "duplicate object key"),
    Row("config-oversized", "write", "vms/web/config.json", "BIG_CONFIG", errno.EFBIG,
        "vms/web/error", f"more than the {CONFIG_MAX} allowed"),
    Row("config-incomplete", "write", "vms/web/config.json", '{"machineConfig":', errno.EINVAL,
        "vms/web/error", "incomplete JSON document (17 bytes) at close, nothing changed",
        at="close"),
    # the manual: a write that cannot become a document fails that very write
    Row("config-nul", "write", "vms/web/config.json", '{"a"\0:1}', errno.EINVAL,
        "vms/web/error", "NUL byte"),
    # docs/config.md: a text over 64 KiB is never incomplete, it fails at once
    Row("config-oversized-unfinished", "write", "vms/web/config.json",
        '{"a": "' + "x" * (CONFIG_MAX + 10), errno.EFBIG, "vms/web/error",
        f"more than the {CONFIG_MAX} allowed"),
    Row("config-running", "write", "vms/run/config.json", "WEB_CONFIG", errno.EBUSY,
        "vms/run/error", "config of run cannot change while it is running"),
    Row("config-shell-syntax", "sh", "vms/web/config.json", "echo '{bad' > vms/web/config.json",
        errno.EINVAL, "vms/web/error", "JSON syntax error"),
    # O_TRUNC alone (the shell's `: >`, truncate -s 0) never empties the stored document
    Row("config-shell-truncate", "sh", "vms/web/config.json", ": > vms/web/config.json", 0, None,
        None),
    Row("config-truncate", "truncate", "vms/web/config.json", 0, 0, None, None),
    # ---- metadata
    Row("metadata-syntax", "write", "vms/web/metadata", "{bad", errno.EINVAL, "vms/web/error",
        "write metadata: metadata: JSON syntax error"),
    Row("metadata-not-object", "write", "vms/web/metadata", "[1]", errno.EINVAL, "vms/web/error",
        "metadata must be a JSON object"),
    Row("metadata-oversized", "write", "vms/web/metadata",
        json.dumps({"k": "x" * MMDS_MAX}), errno.EFBIG, "vms/web/error",
        f"over the MMDS limit of {MMDS_MAX}"),
    Row("metadata-oversized-running", "write", "vms/run/metadata",
        json.dumps({"k": "x" * MMDS_MAX}), errno.EFBIG, "vms/run/error",
        f"over the MMDS limit of {MMDS_MAX}"),
    Row("metadata-incomplete", "write", "vms/web/metadata", '{"k":', errno.EINVAL,
        "vms/web/error", "incomplete JSON document (5 bytes) at close", at="close"),
    # ---- images/ctl
    Row("images-unknown", "write", "images/ctl", "frob\n", errno.EINVAL, "images/error",
        'frob: unknown control message "frob"'),
    Row("images-fetch-arity", "write", "images/ctl", "fetch\n", errno.EINVAL, "images/error",
        "usage: fetch"),
    Row("images-evict-unknown", "write", "images/ctl", "evict nosuch\n", errno.ENOENT,
        "images/error", "no cached bundle nosuch"),
    Row("images-blank-arity", "write", "images/ctl", "blank x\n", errno.EINVAL, "images/error",
        "usage: blank NAME MIB"),
    Row("images-blank-size", "write", "images/ctl", "blank x lots\n", errno.EINVAL,
        "images/error", '"lots" is not a size in MiB'),
    Row("images-blank-slash", "write", "images/ctl", "blank ../x 1\n", errno.EINVAL,
        "images/error", '"../x" is not a file name'),
    Row("images-blank-hidden", "write", "images/ctl", "blank .x 1\n", errno.EINVAL,
        "images/error", '".x" is not a file name'),
    Row("images-import-scheme", "write", "images/ctl", "import kernel ftp://host/k k\n",
        errno.EINVAL, "images/error", '"ftp://host/k" is not an http(s) URL'),
    Row("images-manifest-no-sha256", "write", "images/ctl", "fetch manifest MANIFEST\n",
        errno.EINVAL, "images/error", "kernel artifact with url requires sha256"),
    Row("images-verify-unknown", "write", "images/ctl", "verify nosuch\n", errno.ENOENT,
        "images/error", "nosuch"),
    Row("images-clone-missing-source", "write", "images/ctl", "clone /nonexistent/disk copy\n",
        errno.ENOENT, "images/error", "/nonexistent/disk"),
    Row("images-overlong", "write", "images/ctl", "fetch manifest /" + "x" * CTL_LINE_MAX + "\n",
        errno.EFBIG, "error", f"is longer than the {CTL_LINE_MAX} allowed"),
    Row("images-escape", "write", "images/ctl", "evict \x1b[2Jx\n", errno.EINVAL, "error",
        "images/ctl evict \\x1b[2Jx: control message has a control byte 0x1b at offset 6"),
    Row("images-nul", "write", "images/ctl", "fetch\0 latest\n", errno.EINVAL, "error",
        "images/ctl fetch\\x00 latest: control message has a NUL byte at offset 5"),
    # ---- /ctl and /net/ctl
    Row("root-ctl-unknown", "write", "ctl", "frob\n", errno.EINVAL, "error",
        'frob: unknown control message "frob"'),
    Row("root-ctl-args", "write", "ctl", "stopall now\n", errno.EINVAL, "error",
        'bad arguments "stopall now": usage: stopall'),
    Row("root-ctl-escape", "write", "ctl", "frob \x1b[2J\r\n", errno.EINVAL, "error",
        "frob \\x1b[2J: control message has a control byte 0x1b at offset 5"),
    Row("root-ctl-crlf", "write", "ctl", "frob\r\n", errno.EINVAL, "error",
        'frob: unknown control message "frob"'),
    Row("root-ctl-nul", "write", "ctl", "\0\n", errno.EINVAL, "error",
        "control message has a NUL byte at offset 0"),
    Row("root-ctl-shell", "sh", "ctl", "echo frob > ctl", errno.EINVAL, "error",
        'unknown control message "frob"'),
    Row("net-ctl-unknown", "write", "net/ctl", "frob web\n", errno.EINVAL, "error",
        'net/ctl frob web: unknown control message "frob web"'),
    Row("net-ctl-escape", "write", "net/ctl", "tap web \x1b]0;x\x07\n", errno.EINVAL, "error",
        "net/ctl tap web \\x1b]0;x\\x07: control message has a control byte 0x1b at offset 8"),
    Row("net-ctl-nul", "write", "net/ctl", "tap web\0 eth0\n", errno.EINVAL, "error",
        "net/ctl tap web\\x00 eth0: control message has a NUL byte at offset 7"),
    Row("net-ctl-arity", "write", "net/ctl", "tap web\n", errno.EINVAL, "error",
        "usage: tap VM IFACE"),
    Row("net-ctl-no-vm", "write", "net/ctl", "tap nosuch eth0\n", errno.ENOENT, "error",
        "net/ctl tap nosuch eth0: no VM named nosuch"),
    Row("net-ctl-iface", "write", "net/ctl", "tap web bad/iface\n", errno.EINVAL, "error",
        'interface id "bad/iface"'),
    # ---- VM names (mkdir)
    Row("mkdir-space", "mkdir", "vms/a b", None, errno.EINVAL, "error",
        'VM name "a b" must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}'),
    Row("mkdir-too-long", "mkdir", "vms/" + "x" * 65, None, errno.ENAMETOOLONG, "error",
        "is longer than 64 characters"),
    Row("mkdir-leading-dot", "mkdir", "vms/.hidden", None, errno.EINVAL, "error",
        'VM name ".hidden" must match'),
    Row("mkdir-dotdot-like", "mkdir", "vms/..x", None, errno.EINVAL, "error",
        'VM name "..x" must match'),
    Row("mkdir-leading-dash", "mkdir", "vms/-x", None, errno.EINVAL, "error",
        'VM name "-x" must match'),
    Row("mkdir-non-ascii", "mkdir", "vms/\u00e9", None, errno.EINVAL, "error",
        "must match [A-Za-z0-9]"),
    Row("mkdir-newline", "mkdir", "vms/a\nb", None, errno.EINVAL, "error",
        "must match [A-Za-z0-9]"),
    # the kernel knows the name: it answers before the daemon is asked
    Row("mkdir-exists", "mkdir", "vms/web", None, errno.EEXIST, None, None),
    Row("mkdir-dotdot", "mkdir", "vms/..", None, errno.EEXIST, None, None),
    Row("mkdir-outside-vms", "mkdir", "net/x", None, errno.EPERM, None, None),
    Row("mkdir-in-vm", "mkdir", "vms/web/x", None, errno.EPERM, None, None),
    # ---- rmdir
    Row("rmdir-running", "rmdir", "vms/run", None, errno.EBUSY, "error",
        "rmdir vms/run: run is running: stop or kill it first"),
    Row("rmdir-unknown", "rmdir", "vms/nosuch", None, errno.ENOENT, None, None),
    Row("rmdir-net", "rmdir", "net", None, errno.EPERM, None, None),
    # ---- read-only files and where writes are refused
    Row("write-state", "open_w", "vms/web/state", None, errno.EACCES, None, None),
    Row("write-vm-error", "open_w", "vms/web/error", None, errno.EACCES, None, None),
    Row("write-pid", "open_w", "vms/run/pid", None, errno.EACCES, None, None),
    Row("write-version", "open_w", "version", None, errno.EACCES, None, None),
    Row("write-net-bridge", "open_w", "net/bridge", None, errno.EACCES, None, None),
    Row("write-images-error", "open_w", "images/error", None, errno.EACCES, None, None),
    Row("shell-write-state", "sh", "vms/web/state", "echo running > vms/web/state", errno.EACCES,
        None, None),
    Row("clone-read-only", "open_r", "vms/clone", None, errno.EACCES, None, None),
    Row("console-not-running", "write", "vms/web/console", "hello\n", errno.EBUSY,
        "vms/web/error", "the console takes input only while it runs"),
    Row("truncate-state", "truncate", "vms/web/state", 0, errno.EACCES, None, None),
    # ---- the tree's shape: no links, renames, removals, new files, modes
    Row("symlink", "symlink", "vms/lnk", "/etc", errno.EPERM, None, None),
    Row("link", "link", "vms/l2", "vms/web/state", errno.EPERM, None, None),
    Row("rename-vm", "rename", "vms/web2", "vms/web", errno.EPERM, None, None),
    Row("rename-file", "rename", "vms/web/s2", "vms/web/state", errno.EPERM, None, None),
    Row("unlink", "unlink", "vms/web/state", None, errno.EPERM, None, None),
    Row("chmod", "chmod", "vms/web/state", 0o666, errno.EPERM, None, None),
    Row("chown", "chown", "vms/web/config.json", 1, errno.EPERM, None, None),
    Row("mknod", "mknod", "vms/fifo", None, errno.EACCES, None, None),
    Row("create-in-vms", "create", "vms/newfile", None, errno.EACCES, None, None),
    Row("create-in-vm", "create", "vms/web/newfile", None, errno.EACCES, None, None),
]


def _row_id(r):
    return r.values[0].id if hasattr(r, "values") else r.id


ERROR_FILES = ("error", "images/error", "vms/web/error", "vms/run/error")
VM_FILES = ("ctl", "state", "config.json", "metadata", "pid", "net", "runtime", "vsock", "info",
            "console")


def _host_tree(top):
    out = []
    for d, dirs, files in os.walk(top):
        for x in sorted(dirs + files):
            p = os.path.join(d, x)
            st = os.lstat(p)
            out.append((os.path.relpath(p, top), oct(st.st_mode), st.st_size))
    return sorted(out)


def snapshot(m):
    """What a user can read, and the host directories the daemon writes."""
    s = {}
    for vm in ("web", "run"):
        for f in VM_FILES:
            s[f"vms/{vm}/{f}"] = m.read("vms", vm, f)
        s[f"vms/{vm}/"] = sorted(os.listdir(m.vm(vm)))
        s[f"vms/{vm}/snapshots/"] = sorted(os.listdir(m.vm(vm, "snapshots")))
    for f in ("ctl", "version", "net/bridge", "net/subnet", "net/gateway", "net/leases"):
        s[f] = m.read(f)
    # images/ctl also says the last failure: that is its error report
    s["images/ctl"] = [l for l in m.read("images", "ctl").splitlines()
                       if not l.startswith("last failure")]
    for d in ("", "vms", "images", "images/kernels", "images/rootfs", "net"):
        s[d + "/"] = sorted(os.listdir(m.p(d)))
    s["host:datadir"] = _host_tree(m.datadir)
    s["host:runtime"] = _host_tree(m.runtime)
    s["run pid alive"] = os.path.exists(f"/proc/{m.read('vms', 'run', 'pid').strip()}")
    return s


def errors(m):
    return {f: m.read(f) for f in ERROR_FILES}


def run_op(m, row, tmp_path):
    """Does what the row says; returns the errno it got (0: success)."""
    p = m.p(row.path)
    data = row.data
    if data == "BIG_CONFIG":
        data = big_config(m.kernel)
    elif data == "WEB_CONFIG":
        data = json.dumps(vm_config(m.kernel))
    elif isinstance(data, str) and "MANIFEST" in data:
        man = tmp_path / "no-sha256.manifest.json"
        man.write_text(json.dumps({
            "schemaVersion": 1, "bundleId": "nosha", "arch": os.uname().machine,
            "firecrackerVersion": "v1.15.1", "rootfsType": "ext4", "bootArgs": "console=ttyS0",
            "kernel": {"url": "http://127.0.0.1:9/vmlinux", "fileName": "vmlinux"},
            "rootfs": {"url": "http://127.0.0.1:9/rootfs.ext4", "fileName": "rootfs.ext4",
                       "sha256": "0" * 64}}))
        data = data.replace("MANIFEST", str(man))
    try:
        if row.op == "write":
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            try:
                n = os.write(fd, data.encode() if isinstance(data, str) else data)
            except OSError as e:
                os.close(fd)
                assert row.at == "write", f"the write failed ({e}), not the close"
                return e.errno
            try:
                os.close(fd)  # raises for at="close"
            except OSError:
                assert row.at == "close", f"the write was not refused (wrote {n}); close was"
                raise
            assert row.at == "close", f"the write was not refused (wrote {n})"
            return 0
        if row.op == "sh":
            r = subprocess.run(["bash", "-c", data], cwd=m.path, capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            if row.errno == 0:
                assert r.returncode == 0, r.stderr
                return 0
            assert r.returncode != 0, f"{data!r} succeeded"
            assert os.strerror(row.errno) in r.stderr, r.stderr  # what the shell prints
            return row.errno
        if row.op == "truncate":
            os.truncate(p, data)
        elif row.op == "mkdir":
            os.mkdir(p)
        elif row.op == "rmdir":
            os.rmdir(p)
        elif row.op == "symlink":
            os.symlink(data, p)
        elif row.op == "link":
            os.link(m.p(data), p)
        elif row.op == "rename":
            os.rename(m.p(data), p)
        elif row.op == "unlink":
            os.unlink(p)
        elif row.op == "chmod":
            os.chmod(p, data)
        elif row.op == "chown":
            os.chown(p, data, data)
        elif row.op == "mknod":
            os.mknod(p, 0o600 | 0o010000)
        elif row.op == "create":
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        elif row.op == "open_w":
            os.close(os.open(p, os.O_WRONLY))
        elif row.op == "open_r":
            os.close(os.open(p, os.O_RDONLY))
        else:
            raise AssertionError(f"unknown op {row.op}")
    except OSError as e:
        return e.errno
    return 0


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_bad_input(mnt, row, tmp_path):
    m = mnt
    os.mkdir(m.p("vms", "web"))
    m.write(m.vm("web", "config.json"), json.dumps(vm_config(m.kernel)))
    m.write(m.vm("web", "metadata"), '{"k": "v"}')
    m.started_vm("run")
    # the guest's first line arrives on its own time: not a change of the row's
    deadline = time.monotonic() + 10
    while "ready" not in m.read("vms", "run", "console"):
        assert time.monotonic() < deadline, "the guest printed nothing"
        time.sleep(0.01)
    before, errs_before = snapshot(m), errors(m)

    got = run_op(m, row, tmp_path)

    assert got == row.errno, f"{row.id}: {errno.errorcode.get(got, got)}, " \
                             f"wanted {errno.errorcode.get(row.errno, row.errno)}"
    errs_after = errors(m)
    for f in ERROR_FILES:
        old, new = errs_before[f].splitlines(), errs_after[f].splitlines()
        if f != row.errfile:
            assert new == old, f"{f} changed: {new[len(old):]}"
            continue
        assert new[:len(old)] == old
        added = new[len(old):]
        assert len(added) == 1, f"{f}: wanted one new line, got {added}"
        assert row.text in added[0], f"{f}: {added[0]!r} does not say {row.text!r}"
    assert snapshot(m) == before, "a refused input changed something"
