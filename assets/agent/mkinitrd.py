#!/usr/bin/python3
"""Writes the agent's initrd: a newc cpio archive (what the kernel unpacks into
its initramfs, uncompressed) holding /init (smartvm-init), /smartvm-agent and
the directories init mounts on. Owned by root, fixed times: the same inputs give
the same bytes.

    mkinitrd.py INIT AGENT OUTPUT [MODULE.ko...]

Modules given are kept as /modules/NN-NAME.ko, loaded by init in that order
(docs/exec.md: a distribution kernel's virtio drivers).
"""
import os
import sys


def entry(name, mode, data=b"", ino=1):
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1 if mode & 0o170000 != 0o040000 else 2, 0, len(data),
              0, 0, 0, 0, len(name_b), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = head + name_b
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def main():
    init, agent, output = sys.argv[1:4]
    parts = [entry("dev", 0o040755, ino=1), entry("proc", 0o040555, ino=2),
             entry("sys", 0o040555, ino=3), entry("newroot", 0o040755, ino=4),
             entry("init", 0o100755, open(init, "rb").read(), ino=5),
             entry("smartvm-agent", 0o100755, open(agent, "rb").read(), ino=6)]
    mods = sys.argv[4:]
    if mods:
        parts.append(entry("modules", 0o040755, ino=7))
    for i, m in enumerate(mods):
        parts.append(entry(f"modules/{i + 1:02d}-{os.path.basename(m)}", 0o100644,
                           open(m, "rb").read(), ino=8 + i))
    parts.append(entry("TRAILER!!!", 0, ino=0))
    data = b"".join(parts)
    data += b"\0" * (-len(data) % 512)
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, output)


if __name__ == "__main__":
    main()
