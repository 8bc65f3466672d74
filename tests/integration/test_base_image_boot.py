"""The seed's opt-in base-image boot test, through the mounted filesystem.

It needs what this suite's default run never has: internet access (the
Firecracker CI bucket, GitHub releases, or a hosted manifest) and /dev/kvm.
It runs only when SMARTVM_RUN_INTEGRATION is 1, true or yes, and keeps the
meaning of the seed's variables:

  SMARTVM_BASE_IMAGE_PRESET        latest (default) or lts
  SMARTVM_BASE_IMAGE_MANIFEST_URL  a hosted manifest URL (used instead of the preset)
  SMARTVM_BASE_IMAGE_MANIFEST_PATH a local hosted manifest (idem)
  SMARTVM_BASE_IMAGE_CACHE_DIR     -o imagecache
  SMARTVM_MAX_STORED_BASE_IMAGES   -o maximages
  SMARTVM_FIRECRACKER_VERSION      -o fcversion (default: the bundle's)
  SMARTVM_ARCH                     -o arch (default: the host's)
  SMARTVM_INTEGRATION_DATA_DIR     -o datadir (default: $TMPDIR/.smartvm-integration)

SMARTVMFS_FIRECRACKER, when set, names the VMM binary instead of downloading one.
"""
import json
import os
import subprocess
import tempfile
import time

import pytest

ENABLED = os.environ.get("SMARTVM_RUN_INTEGRATION", "").lower() in ("1", "true", "yes")
BIN = os.environ.get("SMARTVMFS_BIN", "")

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="opt-in: set SMARTVM_RUN_INTEGRATION=true (needs internet and /dev/kvm)"
)


def mount_options(tmp):
    env = os.environ.get
    opts = [
        "datadir=" + (env("SMARTVM_INTEGRATION_DATA_DIR")
                      or os.path.join(tempfile.gettempdir(), ".smartvm-integration")),
        "runtimedir=" + os.path.join(tmp, "run"),
        "nocheck",
    ]
    for var, opt in (("SMARTVM_BASE_IMAGE_CACHE_DIR", "imagecache"),
                     ("SMARTVM_MAX_STORED_BASE_IMAGES", "maximages"),
                     ("SMARTVM_FIRECRACKER_VERSION", "fcversion"),
                     ("SMARTVM_ARCH", "arch"),
                     ("SMARTVMFS_FIRECRACKER", "firecracker")):
        if env(var):
            opts.append(f"{opt}={env(var)}")
    return ",".join(opts)


def fetch_command():
    url = os.environ.get("SMARTVM_BASE_IMAGE_MANIFEST_URL")
    path = os.environ.get("SMARTVM_BASE_IMAGE_MANIFEST_PATH")
    if url or path:
        return f"fetch manifest {url or path}"
    return "fetch " + os.environ.get("SMARTVM_BASE_IMAGE_PRESET", "latest")


def test_boots_a_base_image(tmp_path):
    assert os.access("/dev/kvm", os.R_OK | os.W_OK), "/dev/kvm must be readable and writable"
    assert BIN, "SMARTVMFS_BIN names the smartvmfs binary"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    daemon = subprocess.Popen([BIN, "-f", "-o", mount_options(str(tmp_path)), str(mnt)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            if os.path.ismount(mnt):
                break
            time.sleep(0.05)
        assert os.path.ismount(mnt), "smartvmfs did not mount"
        with open(mnt / "images" / "ctl", "w") as f:
            f.write(fetch_command() + "\n")
        # the bundle the fetch resolved to: the preset's link, or the only new one
        preset = os.environ.get("SMARTVM_BASE_IMAGE_PRESET", "latest")
        link = mnt / "images" / preset
        bundle = (os.path.basename(os.readlink(link)) if os.path.islink(link)
                  else sorted(p for p in os.listdir(mnt / "images")
                              if (mnt / "images" / p / "manifest.json").exists())[-1])
        assert (mnt / "images" / bundle / "status").read_text().strip() == "ready"
        os.mkdir(mnt / "vms" / "it")
        cfg = {"image": bundle, "machineConfig": {"vcpuCount": 1, "memSizeMib": 256}}
        (mnt / "vms" / "it" / "config.json").write_text(json.dumps(cfg))
        try:
            (mnt / "vms" / "it" / "ctl").write_text("start\n")
            assert (mnt / "vms" / "it" / "state").read_text() == "running\n"
            assert json.loads((mnt / "vms" / "it" / "info").read_text())
        finally:
            state = (mnt / "vms" / "it" / "state").read_text().strip()
            if state in ("running", "paused"):
                (mnt / "vms" / "it" / "ctl").write_text("stop\n")
            os.rmdir(mnt / "vms" / "it")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
