#!/usr/bin/env python3
"""Drive smartvmfs from Python with plain file I/O: no library, no client.

Creates two VMs (one through vms/clone, one with mkdir), starts both, reads
what the tree says about them, talks to a console, waits for an event, stops
them and destroys them.

Usage: vms.py MOUNTPOINT KERNEL
  MOUNTPOINT  a mounted smartvmfs
  KERNEL      a guest kernel, e.g. the project's tiny guest
              (BUILD/assets/guest/smartvm-guest.elf)
"""
import json
import os
import sys
import time


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    """One command per write; the write returns when the work is done,
    or raises OSError with the errno (the VM's `error` file says why)."""
    with open(path, "w") as f:
        f.write(text)


def wait_for(path, word, timeout=5.0):
    deadline = time.monotonic() + timeout
    while word not in read(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never said {word!r}")
        time.sleep(0.05)


def main(mnt, kernel):
    vms = os.path.join(mnt, "vms")
    config = {
        "bootSource": {"kernelImagePath": kernel,
                       "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off"},
        "machineConfig": {"vcpuCount": 1, "memSizeMib": 128},
    }

    # Plan 9 style: opening vms/clone for writing creates a VM; reading the
    # same descriptor says its name
    fd = os.open(os.path.join(vms, "clone"), os.O_RDWR)
    try:
        first = os.read(fd, 256).decode().strip()
    finally:
        os.close(fd)
    second = f"py-{os.getpid()}"
    os.mkdir(os.path.join(vms, second))
    names = [first, second]
    print("created:", ", ".join(names))

    try:
        for name in names:
            vm = os.path.join(vms, name)
            write(os.path.join(vm, "config.json"), json.dumps(config))
            write(os.path.join(vm, "ctl"), "start\n")
            state = read(os.path.join(vm, "state")).strip()
            pid = read(os.path.join(vm, "pid")).strip()
            print(f"{name}: {state}, pid {pid}")

        vm = os.path.join(vms, first)
        info = json.loads(read(os.path.join(vm, "info")))  # Firecracker's GET /
        print(f"{first}: info says {info.get('state')}, id {info.get('id')}")
        print(f"{first}: stat:", " ".join(read(os.path.join(vm, "stat")).split()))

        console = os.path.join(vm, "console")
        wait_for(console, "ready")
        write(console, "hello from python\n")
        wait_for(console, "hello from python")
        print(f"{first}: console:", read(console).splitlines()[-1])

        # events: read-only it is the history, and ends; opened read-write,
        # the first read answers at once with the state, each later read waits
        # for the next event
        # (unbuffered: the file is a stream, not seekable)
        with open(os.path.join(vm, "events"), "rb+", buffering=0) as ev:
            print(f"{first}: events:", ev.readline().decode().strip())
            write(os.path.join(vm, "ctl"), "pause\n")
            print(f"{first}: events:", ev.readline().decode().strip())

        write(os.path.join(mnt, "ctl"), "stopall\n")  # every VM, in parallel
        for name in names:
            print(f"{name}:", read(os.path.join(vms, name, "state")).strip())
    finally:
        for name in names:
            try:
                write(os.path.join(vms, name, "ctl"), "kill\n")
            except OSError:
                pass  # not running: nothing to kill
            os.rmdir(os.path.join(vms, name))
    print("vms/ now holds:", " ".join(sorted(os.listdir(vms))))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
