"""Values read while they change: one read through one open sees one value, whole
(never two mixed, cut, or padded with zeros); an O_TRUNC open of a document
never makes it look empty; a document written in pieces may be cut anywhere."""
import errno
import json
import os
import re
import threading
import time

import pytest

from conftest import vm_config

CTL = re.compile(r"state [a-z]+\nverbs( [a-z]+)*\n")


def read_once(path):
    """One open, reads to the end, one close: what `cat` gets."""
    fd = os.open(path, os.O_RDONLY)
    try:
        out = b""
        while True:
            b = os.read(fd, 65536)
            if not b:
                return out
            out += b
    finally:
        os.close(fd)


def hammer(path, check, seconds, readers=2, change=None):
    """Reads path from `readers` threads while `change` runs for `seconds`;
    returns the bad reads (check(bytes) is False) and their count of reads."""
    stop = threading.Event()
    bad, counts, errors = [], [0], []

    def reader():
        while not stop.is_set():
            try:
                data = read_once(path)
            except OSError as e:
                errors.append(e)
                return
            counts[0] += 1
            if not check(data):
                bad.append(data)

    def changer():
        try:
            while not stop.is_set():
                change()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    threads.append(threading.Thread(target=changer))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return bad, counts[0]


def test_ctl_read_while_state_cycles(mnt):
    mnt.make_vm("web")
    cycle = ["start", "pause", "resume", "stop"]
    step = [0]

    def change():
        mnt.ctl("web", cycle[step[0] % 4])
        step[0] += 1

    bad, n = hammer(mnt.vm("web", "ctl"), lambda d: CTL.fullmatch(d.decode(errors="replace")),
                    3.0, change=change)
    assert step[0] >= 8 and n > 100
    assert not bad, f"{len(bad)} of {n} reads mixed, cut or padded: {bad[:3]!r}"


def test_config_read_while_replaced(mnt):
    mnt.make_vm("web")
    short = json.dumps(vm_config(mnt.kernel))
    long = json.dumps(vm_config(mnt.kernel, "x" * 3000))
    which = [0]

    def change():
        mnt.write(mnt.vm("web", "config.json"), long if which[0] % 2 else short)
        which[0] += 1

    def valid(data):
        try:
            json.loads(data)
            return True
        except ValueError:
            return False

    bad, n = hammer(mnt.vm("web", "config.json"), valid, 3.0, change=change)
    assert which[0] >= 10 and n > 100
    assert not bad, f"{len(bad)} of {n} reads not JSON: {[b[:80] for b in bad[:3]]!r}"


def test_otrunc_open_never_empties(mnt):
    mnt.make_vm("web")
    path = mnt.vm("web", "config.json")
    stored = mnt.read("vms", "web", "config.json")

    def change():
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        # the writer's buffer is empty; the stored document is not
        assert os.fstat(fd).st_size == len(stored)
        os.close(fd)

    bad, n = hammer(path, lambda d: d.decode() == stored, 3.0, change=change)
    assert n > 100
    empty = sum(1 for b in bad if not b)
    assert not bad, f"{len(bad)} of {n} reads not the stored config ({empty} empty)"
    assert os.stat(path).st_size == len(stored)
    assert mnt.read("vms", "web", "config.json") == stored


def test_otrunc_of_a_value_that_takes_no_writes_is_refused(mnt):
    """O_TRUNC travels with the OPEN (atomic O_TRUNC): on a file that takes no
    writes, read through the page cache or not, the open is refused before
    the kernel zeroes anything, even O_RDONLY|O_TRUNC (root passes the mode)."""
    mnt.make_vm("web")
    for path in (mnt.vm("web", "state"), mnt.p("version"), mnt.vm("web", "info")):
        before = open(path, "rb").read()
        assert before
        for flags in (os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_TRUNC):
            try:
                fd = os.open(path, flags)
            except PermissionError:
                continue
            os.close(fd)  # the mount must still come off at the end
            pytest.fail(f"{path} opened with flags {flags:#o}")
        assert open(path, "rb").read() == before
        assert os.stat(path).st_size == len(before)


@pytest.mark.parametrize("cut", ["literal", "utf8", "number"])
def test_config_cut_anywhere(mnt, cut):
    """docs/config.md "Partial writes": a document may arrive in pieces cut at
    any byte, inside `false` or a multi-byte UTF-8 character too."""
    mnt.make_vm("web")
    cfg = vm_config(mnt.kernel, "quiet caf\u00e9")
    cfg["machineConfig"]["smt"] = False
    text = json.dumps(cfg, ensure_ascii=False).encode()
    at = {
        "literal": text.index(b"false") + 2,   # ..."smt": fa|lse
        "utf8": text.index("\u00e9".encode()) + 1,  # inside the two bytes of é
        "number": text.index(b'"memSizeMib": 128') + len(b'"memSizeMib": 1'),  # 1|28
    }[cut]
    fd = os.open(mnt.vm("web", "config.json"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.write(fd, text[:at]) == at
        assert os.write(fd, text[at:]) == len(text) - at
    finally:
        os.close(fd)
    got = json.loads(mnt.read("vms", "web", "config.json"))
    assert got["bootSource"]["bootArgs"].endswith("caf\u00e9")
    assert got["machineConfig"]["memSizeMib"] == 128


def test_config_cut_still_rejects_garbage(mnt):
    """What no more bytes can cure still fails the very write."""
    mnt.make_vm("web")
    fd = os.open(mnt.vm("web", "config.json"), os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b'{"machineConfig": {"smt": fx')
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)


STATES = (b"paused\n", b"running\n")


def test_state_flipping_under_many_readers(mnt):
    """`state` goes through the page cache while it holds still: many readers
    while it flips between paused and running (cat-like open/read/close, and
    open/read/sleep/read with a re-read from the start) each get one whole
    value with its newline, never two mixed, cut or padded; a read past the end
    gets nothing; once the readers are gone, stat and cat agree with the last
    verb written."""
    mnt.started_vm("web")
    state = mnt.vm("web", "state")
    bad, errors, seen, counts = [], [], set(), {"cat": 0, "slow": 0, "flips": 0}

    def whole(kind, data):
        seen.add(data)
        if data not in STATES:
            bad.append((kind, data))

    def cat_reader(stop):
        while not stop.is_set():
            whole("cat", read_once(state))
            counts["cat"] += 1

    def slow_reader(stop):
        while not stop.is_set():
            fd = os.open(state, os.O_RDONLY)
            try:
                first = os.read(fd, 4096)
                whole("first", first)
                time.sleep(0.001)
                rest = os.read(fd, 4096)  # at the end of the value it read
                if rest:
                    bad.append(("past the end", first + rest))
                whole("re-read", os.pread(fd, 4096, 0))
                st = os.fstat(fd)
                if st.st_size not in (len(s) for s in STATES):
                    bad.append(("fstat", st.st_size))
            finally:
                os.close(fd)
            counts["slow"] += 1

    def changer(stop, last):
        while not stop.is_set():
            verb = "pause" if last[0] == "running" else "resume"
            mnt.ctl("web", verb)
            last[0] = "paused" if verb == "pause" else "running"
            counts["flips"] += 1

    def guarded(fn, *args):
        def run():
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        return run

    last = ["running"]
    for rnd in range(6):
        stop = threading.Event()
        threads = [threading.Thread(target=guarded(cat_reader, stop)) for _ in range(4)]
        threads += [threading.Thread(target=guarded(slow_reader, stop)) for _ in range(3)]
        threads.append(threading.Thread(target=guarded(changer, stop, last)))
        for t in threads:
            t.start()
        time.sleep(0.8)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        # a quiet point: no reader left (their releases, which the kernel sends
        # after close, have arrived), the last verb answered
        time.sleep(0.05)
        want = (last[0] + "\n").encode()
        for _ in range(3):
            size = os.stat(state).st_size
            data = read_once(state)
            assert data == want, f"round {rnd}: {data!r} after {last[0]}"
            assert size == len(data), f"round {rnd}: st_size {size} for {data!r}"
    assert counts["flips"] >= 20 and counts["cat"] > 200 and counts["slow"] > 50, counts
    assert set(STATES) <= seen, seen
    assert not bad, f"{len(bad)} bad reads of {counts}: {bad[:5]!r}"
