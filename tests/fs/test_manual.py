"""The manual (docs/smartvmfs.5.md) and the tree tell one story (issue 17, point 2).

Every file the manual's tables list exists in the mount, and every file of the
mount is in a table; every verb its verb table lists is one the daemon takes, and
every verb the daemon takes is in the table. What the tables say of each file's
mode is the mode the mount shows (without allow_other).
"""
import errno
import os
import re
import stat

import pytest

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ROW = re.compile(r"^\| ([^|]+) \| ([^|]+) \|")


def sections():
    """{heading: [first-cell, second-cell] rows of its tables}"""
    out, head = {}, None
    for line in open(os.path.join(SRC, "docs", "smartvmfs.5.md")):
        if line.startswith("#"):
            head = line.strip("# \n")
            continue
        m = ROW.match(line.replace("\\|", "\x00"))  # an escaped | is not a column
        if m and head and not m[1].startswith("---") and m[1].strip() not in ("file", "verb"):
            out.setdefault(head, []).append((m[1].strip(), m[2].strip()))
    return out


def names(cell):
    """`a`, `b/` -> {"a", "b"} (symlink and directory marks dropped)."""
    return {n.replace("\x00", "|").rstrip("/") for n in re.findall(r"`([^`]+)`", cell)}


def modes(rows):
    out = {}
    for cell, mode in rows:
        m = re.match(r"(0[0-7]{3})", mode)
        for n in names(cell):
            out[n] = int(m[1], 8) if m else None
    return out


def listed(path):
    return {n for n in os.listdir(path)}


def test_root_files(mnt):
    rows = sections()["The root"]
    documented = modes(rows)
    documented.pop("vms/clone", None)
    assert set(documented) == listed(mnt.path), \
        f"manual {sorted(documented)} vs mount {sorted(listed(mnt.path))}"
    for name, mode in documented.items():
        if mode is not None:
            got = stat.S_IMODE(os.lstat(mnt.p(name)).st_mode)
            assert got == mode, f"{name}: manual {oct(mode)}, mount {oct(got)}"
    assert os.path.exists(mnt.p("vms", "clone"))


def test_vm_files(mnt):
    mnt.make_vm("web")
    rows = sections()["A VM: `vms/NAME/`"] + sections()["PERSISTENCE"]
    documented = modes(rows)
    assert set(documented) == listed(mnt.vm("web")), \
        f"manual {sorted(documented)} vs mount {sorted(listed(mnt.vm('web')))}"
    for name, mode in documented.items():
        if mode is not None:
            got = stat.S_IMODE(os.lstat(mnt.vm("web", name)).st_mode)
            assert got == mode, f"{name}: manual {oct(mode)}, mount {oct(got)}"


def test_net_and_images_files(mnt):
    net = modes(sections()["NETWORKING: `net/`"])
    assert set(net) == listed(mnt.p("net"))
    images = modes(sections()["BASE IMAGES: `images/`"])
    fixed = {n for n in images if n not in ("ID", "latest", "lts") and "/" not in n}
    # before any fetch: the fixed files only (ID/, latest and lts come with bundles)
    bundle_files = {"manifest.json", "bootargs", "rootfstype", "firecracker", "status", "kernel"}
    assert fixed - bundle_files == listed(mnt.p("images")), \
        f"manual {sorted(fixed - bundle_files)} vs mount {sorted(listed(mnt.p('images')))}"


def test_every_verb_and_only_those(mnt):
    rows = sections()["Verbs (`vms/NAME/ctl`)"]
    documented = set()
    for cell, _ in rows:
        for usage in re.findall(r"`([^`]+)`", cell):
            documented.add(usage.split()[0])
    mnt.make_vm("web")
    for verb in sorted(documented):
        with pytest.raises(OSError) as e:
            mnt.write(mnt.vm("web", "ctl"), f"{verb} x y z w\n")
        # a verb the daemon knows answers for its arguments or the state, never
        # "unknown control message"
        assert "unknown control message" not in mnt.read("vms", "web", "error").splitlines()[-1], verb
        assert e.value.errno in (errno.EINVAL, errno.EBUSY), (verb, e.value.errno)
    # and the reverse: the verbs the VM's ctl offers over its life are all documented
    offered = set()
    for state_line in mnt.read("vms", "web", "ctl").splitlines()[1:]:
        offered |= set(state_line.split())
    mnt.ctl("web", "start")
    offered |= set(" ".join(mnt.read("vms", "web", "ctl").splitlines()[1:]).split())
    mnt.ctl("web", "pause")
    offered |= set(" ".join(mnt.read("vms", "web", "ctl").splitlines()[1:]).split())
    offered = {w for w in offered if re.fullmatch(r"[a-z]+", w)} - {"verbs", "state"}
    assert offered <= documented, f"offered but not in the manual: {sorted(offered - documented)}"
