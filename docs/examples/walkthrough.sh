#!/bin/bash
# A walk through smartvmfs with nothing but the shell: create a VM, start it,
# look at it, talk to its console, pause and snapshot it, stop and destroy it.
# Each step prints the command it runs, then runs it.
#
# Usage: walkthrough.sh MOUNTPOINT KERNEL
#   MOUNTPOINT  a mounted smartvmfs (smartvmfs -o firecracker=PATH MOUNTPOINT)
#   KERNEL      a guest kernel for the VM: the project's tiny guest
#               (BUILD/assets/guest/smartvm-guest.elf) prints a line and echoes
#               what it reads, under a real Firecracker or the emulator
#   VM=NAME     the VM's name (default walk-PID)
set -eu
[ $# -eq 2 ] || { echo "usage: $0 MOUNTPOINT KERNEL" >&2; exit 2; }
mnt=$1
kernel=$2
vm=${VM:-walk-$$}
cd "$mnt"

step() { printf '$ %s\n' "$*"; eval "$*"; }
# a failure half-way leaves no VM behind
trap 'echo kill > "vms/$vm/ctl" 2>/dev/null; rmdir "vms/$vm" 2>/dev/null' EXIT

step cat version
step mkdir "vms/$vm"
step ls "vms/$vm"
config='{"bootSource": {"kernelImagePath": "'$kernel'", "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off"}, "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}'
step "printf '%s\n' '$config' > vms/$vm/config.json"
step cat "vms/$vm/ctl"                 # the state, and the verbs valid now

# a write returns when the work is done: here, with the VM running
step "echo start > vms/$vm/ctl"
step cat "vms/$vm/state"
# events: the first read() answers at once with the state, later ones wait
# for the next event (cat would follow it, like tail -f); dd reads once
step dd if="vms/$vm/events" bs=4k count=1 status=none
step cat "vms/$vm/pid" "vms/$vm/runtime"
step cat "vms/$vm/stat"

# the guest's serial console: a file that grows; writes go to the guest's input
i=0
until grep -q ready "vms/$vm/console"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "the guest said nothing" >&2; exit 1; }
	sleep 0.05
done
step cat "vms/$vm/console"
step "echo hello > vms/$vm/console"
i=0
until grep -q hello "vms/$vm/console"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "the guest did not echo" >&2; exit 1; }
	sleep 0.05
done
step cat "vms/$vm/console"

# a refused command changes nothing; the shell prints the errno and error says why
step "echo frobnicate > vms/$vm/ctl || cat vms/$vm/error"

step "echo pause > vms/$vm/ctl"
step "echo 'snapshot first' > vms/$vm/ctl"
step ls "vms/$vm/snapshots"
step "echo resume > vms/$vm/ctl"
step cat "vms/$vm/state"

step "echo stop > vms/$vm/ctl"
step cat "vms/$vm/state"
step rmdir "vms/$vm"
step ls vms
trap - EXIT
