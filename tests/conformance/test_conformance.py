"""Conformance of the Firecracker test double with a real Firecracker (DESIGN §5).

The scenarios in cases.json were replayed once against a real Firecracker and the
answers committed as firecracker-v1.14.2.json (status, whether a fault_message or an
HTTP-level error came, the state `GET /` reports after each request, exit statuses,
console checks). Here the same scenarios are replayed

  - against the emulator named by SMARTVMFS_EMULATOR (skipped, saying why, when it is
    unset or missing), and
  - against a real binary named by SMARTVMFS_FIRECRACKER: every scenario's pre-boot
    part (the steps before its first "boot_side" step) on any host, since Firecracker
    serves its whole API without KVM; the boot side only where /dev/kvm is usable
    (skipped otherwise, saying why),

and compared with the recorded table, one test per scenario, row by row. Nothing
asserts version strings; fault message texts are shown in a mismatch but never compared.

The guest kernel is SMARTVMFS_GUEST_KERNEL (the tiny guest the build assembles). Without
it the emulator gets a dummy file (it only checks that the path exists), and the real
binary is skipped.

Run:  SMARTVMFS_EMULATOR=BUILD/tests/emulator/fc-emulator \\
      SMARTVMFS_GUEST_KERNEL=BUILD/assets/guest/smartvm-guest.elf \\
      /usr/bin/python3 -m pytest -q tests/conformance/test_conformance.py
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import hostfacts  # noqa: E402
import replay  # noqa: E402

RECORDED_PATH = os.path.join(HERE, "firecracker-v1.14.2.json")
CASES = replay.load_cases()
with open(RECORDED_PATH) as _f:
    RECORDED = json.load(_f)
SCENARIOS = [s["name"] for s in CASES["scenarios"]]


def _env_path(name):
    v = os.environ.get(name, "")
    return v if v else None


def _netns_usable():
    """The network scenarios need a private network namespace."""
    try:
        argv = replay.netns_prefix() + ["true"]
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=10)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if r.returncode != 0:
        return "%s: %s" % (" ".join(argv), r.stderr.decode(errors="replace").strip())
    return None


def _runnable_scenarios():
    """The network scenarios make TAPs: they need a private network namespace and
    /dev/net/tun."""
    why = _netns_usable()
    why = "no private network namespace: " + why if why else hostfacts.tun()
    skipped = {s["name"]: why for s in CASES["scenarios"] if s.get("netns")} if why else {}
    return [n for n in SCENARIOS if n not in skipped], skipped


def _replay(binary, kernel, preboot=False):
    only, skipped = _runnable_scenarios()
    table = replay.run_all(binary, kernel, CASES, only=only, preboot=preboot)
    return {s["name"]: s for s in table["scenarios"]}, skipped


BOOT_SIDE = {s["name"]: replay.boot_side_from(s) for s in CASES["scenarios"]}


def _fmt_row(r):
    if r is None:
        return "(missing)"
    if "method" in r:
        t = "%s fault=%s error=%s state=%s" % (
            r.get("status"), "y" if r.get("has_fault") else "n",
            "y" if r.get("has_error") else "n", r.get("state"))
        if r.get("exit") is not None:
            t += " exit=%s" % r["exit"]
        if r.get("keys") is not None:
            t += " keys=%s" % ",".join(r["keys"])
        return t
    parts = []
    for k in ("found", "alive", "exit", "state", "written"):
        if k in r:
            parts.append("%s=%s" % (k, r[k]))
    return " ".join(parts)


def _check(observed_by_name, skipped, name, who, preboot=False):
    if name in skipped:
        pytest.skip(skipped[name])
    recorded = next(s for s in RECORDED["scenarios"] if s["name"] == name)
    observed = dict(observed_by_name[name])
    if preboot and BOOT_SIDE[name]:  # compare the steps before the boot side only
        observed["boot_side_from"] = BOOT_SIDE[name]
    problems = replay.compare({"scenarios": [recorded]}, {"scenarios": [observed]})
    if problems:
        orows = {r["step"]: r for r in observed["steps"]}
        lines = ["%s differs from the recorded Firecracker table in scenario %r:" % (who, name),
                 ""]
        lines += ["  " + p for p in problems]
        lines += ["", "  %-34s %-48s %s" % ("step", "recorded (Firecracker)", who)]
        for r in recorded["steps"]:
            o = orows.get(r["step"])
            mark = "!!" if replay.row_diffs(r, o) else "  "
            lines.append("%s%-34s %-48s %s" % (mark, r["step"], _fmt_row(r), _fmt_row(o)))
        lines.append("  scenario end: recorded alive=%s exit=%s; %s alive=%s exit=%s" % (
            recorded["alive_at_end"], recorded["exit"], who,
            observed["alive_at_end"], observed["exit"]))
        if observed.get("stderr"):
            lines.append("  %s stderr: %s" % (who, observed["stderr"][-500:]))
        pytest.fail("\n".join(lines), pytrace=False)


def test_table_covers_cases():
    """The committed table answers every scenario and step of cases.json."""
    rec = {s["name"]: [r["step"] for r in s["steps"]] for s in RECORDED["scenarios"]}
    for s in CASES["scenarios"]:
        assert s["name"] in rec, "scenario %s was never recorded: re-record (README.md)" % s["name"]
        assert [st["name"] for st in s["steps"]] == rec[s["name"]], \
            "scenario %s changed since it was recorded: re-record (README.md)" % s["name"]
    requests = sum(1 for s in CASES["scenarios"] for st in s["steps"] if "method" in st)
    assert requests >= 40


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    k = _env_path("SMARTVMFS_GUEST_KERNEL")
    if k and os.path.isfile(k):
        return k, True
    # No guest kernel (nasm missing): the emulator only checks that the path exists.
    dummy = tmp_path_factory.mktemp("kernel") / "dummy-vmlinux"
    dummy.write_bytes(b"\x7fELF dummy kernel for the emulator\n")
    return str(dummy), False


@pytest.fixture(scope="session")
def emulator_run(kernel):
    emu = _env_path("SMARTVMFS_EMULATOR")
    if not emu:
        pytest.skip("SMARTVMFS_EMULATOR is not set (meson sets it when tests/emulator builds fc-emulator)")
    if not os.access(emu, os.X_OK):
        pytest.skip("SMARTVMFS_EMULATOR=%s is not an executable file (not built yet?)" % emu)
    return _replay(emu, kernel[0])


def _real_firecracker():
    fc = _env_path("SMARTVMFS_FIRECRACKER")
    if not fc:
        pytest.skip("SMARTVMFS_FIRECRACKER is not set: no real Firecracker to run")
    if not os.access(fc, os.X_OK):
        pytest.skip("SMARTVMFS_FIRECRACKER=%s is not an executable file" % fc)
    return fc


@pytest.fixture(scope="session")
def firecracker_run(kernel):
    """The whole table against the real binary: only where /dev/kvm is usable."""
    fc = _real_firecracker()
    why = hostfacts.kvm()
    if why:
        pytest.skip(why)
    if not kernel[1]:
        pytest.skip("SMARTVMFS_GUEST_KERNEL is not set or missing (nasm not found?): "
                    "a real Firecracker needs the tiny guest kernel")
    return _replay(fc, kernel[0])


@pytest.fixture(scope="session")
def firecracker_preboot_run(request, kernel):
    """The pre-boot part of every scenario against the real binary, on any host:
    taken from the whole run where /dev/kvm is usable, replayed on its own where not
    (the API answers without KVM; the guest kernel file need only exist)."""
    fc = _real_firecracker()
    if hostfacts.kvm() is None and kernel[1]:
        return request.getfixturevalue("firecracker_run")
    return _replay(fc, kernel[0], preboot=True)


@pytest.mark.parametrize("name", SCENARIOS)
def test_emulator_matches_firecracker(emulator_run, name):
    _check(emulator_run[0], emulator_run[1], name, "fc-emulator")


@pytest.mark.parametrize("name", [s["name"] for s in CASES["scenarios"]
                                  if not s["steps"][0].get("boot_side")])
def test_real_firecracker_preboot_matches_table(firecracker_preboot_run, name):
    _check(firecracker_preboot_run[0], firecracker_preboot_run[1], name, "firecracker",
           preboot=True)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if BOOT_SIDE[n]])
def test_real_firecracker_boot_side_matches_table(firecracker_run, name):
    _check(firecracker_run[0], firecracker_run[1], name, "firecracker")
