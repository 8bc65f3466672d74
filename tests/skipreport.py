"""pytest plugin: every skip, with its reason, appended to the run's skip log.

tests/run-all.sh sets SMARTVMFS_SKIP_LOG (one file for the whole run) and
SMARTVMFS_SKIP_LABEL (the build: plain, asan); meson passes them to each suite, which
loads this plugin (`-p skipreport`). At the end, tests/skipsummary.py prints one
summary of what this host could not exercise. The C unit tests write the same lines
(tests/unit/check.h). A line: LABEL <tab> SUITE <tab> TEST <tab> REASON.
"""
import os

import pytest

_skips = []


def _reason(report):
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        text = str(lr[2])
    else:
        text = str(lr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


@pytest.hookimpl
def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, _reason(report)))


@pytest.hookimpl
def pytest_sessionfinish(session):
    path = os.environ.get("SMARTVMFS_SKIP_LOG")
    if not path or not _skips:
        return
    label = os.environ.get("SMARTVMFS_SKIP_LABEL", "-")
    suite = os.environ.get("SMARTVMFS_SUITE") or os.path.basename(str(session.config.rootpath))
    with open(path, "a") as f:
        for nodeid, reason in _skips:
            f.write("\t".join(x.replace("\t", " ").replace("\n", " ")
                              for x in (label, suite, nodeid, reason)) + "\n")
