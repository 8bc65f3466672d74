#!/bin/sh
# Installs what is missing, builds smartvmfs and mounts it. Run as root.
# Usage: assets/quickstart.sh [MOUNTPOINT]          (default /mnt/smartvm)
#   SMARTVMFS_FIRECRACKER=/path/to/firecracker      the VMM to use; without it, a
#   `firecracker` on PATH, else the project's Firecracker API emulator (no KVM needed).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mnt=${1:-/mnt/smartvm}
"$top/assets/install-deps.sh"
build="$top/build/plain"
if [ -f "$build/build.ninja" ]; then
	ninja -C "$build" >/dev/null
else
	meson setup "$build" "$top" --buildtype=debugoptimized >/dev/null
	ninja -C "$build" >/dev/null
fi
fc=${SMARTVMFS_FIRECRACKER:-$(command -v firecracker || true)}
if [ -z "$fc" ]; then
	fc="$build/tests/emulator/fc-emulator"
	echo "No Firecracker binary given: using the project's Firecracker API emulator ($fc)."
fi
kernel="$build/assets/guest/smartvm-guest.elf"
mkdir -p "$mnt"
if grep -qs " $mnt fuse.smartvmfs " /proc/mounts; then
	echo "smartvmfs is already mounted on $mnt (unmount: fusermount3 -u $mnt)"
else
	"$build/fs/smartvmfs" -o "firecracker=$fc" "$mnt"
	echo "smartvmfs mounted on $mnt (unmount: fusermount3 -u $mnt)"
fi
cat <<TRY

Try:
  cd $mnt
  mkdir vms/web
  cat > vms/web/config.json <<'JSON'
  {"bootSource": {"kernelImagePath": "$kernel", "bootArgs": "console=ttyS0 reboot=k panic=1 pci=off"},
   "machineConfig": {"vcpuCount": 1, "memSizeMib": 128}}
JSON
  echo start > vms/web/ctl
  cat vms/web/state vms/web/console
  echo hello > vms/web/console; cat vms/web/console
  echo stop > vms/web/ctl; rmdir vms/web
TRY
