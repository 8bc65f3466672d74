"""The layering holds: no #include, and no call, goes up a layer or across to a
sibling (layers.py). The include check reads the sources; the call check reads
the symbols of the built objects (nm), when the build is beside the tests."""
import os
import re
import subprocess

import pytest

from layers import LAYERS, PUBLIC, may_use

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SMARTVMFS_BUILD_DIR")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(rel):
    return os.path.dirname(rel)


def sources():
    """Every .c and .h of the layered folders, as paths relative to SRC."""
    out = []
    for folder in LAYERS:
        d = os.path.join(SRC, folder)
        if not os.path.isdir(d):
            continue
        out += [os.path.join(folder, n) for n in sorted(os.listdir(d)) if n.endswith((".c", ".h"))]
    return out


def headers():
    """header name -> its path; a name given twice would make includes ambiguous."""
    seen = {}
    for rel in sources():
        if rel.endswith(".h"):
            name = os.path.basename(rel)
            assert name not in seen, f"{name} is both {seen[name]} and {rel}"
            seen[name] = rel
    return seen


def test_every_source_is_in_a_layer():
    """No .c or .h sits in a folder the layers do not name."""
    stray = []
    for side in ("core", "fs"):
        for top, _, files in os.walk(os.path.join(SRC, side)):
            rel = os.path.relpath(top, SRC)
            if rel not in LAYERS and any(f.endswith((".c", ".h")) for f in files):
                stray.append(rel)
    assert not stray, f"folders outside the layering (add them to layers.py): {stray}"
    assert len(sources()) > 40


def test_includes_follow_the_layers():
    hs = headers()
    wrong = []
    for rel in sources():
        text = open(os.path.join(SRC, rel), errors="replace").read()
        for name in INCLUDE.findall(text):
            target = hs.get(os.path.basename(name))
            if target is None:
                wrong.append(f"{rel}: includes \"{name}\", which no layer holds")
                continue
            if target in PUBLIC:
                continue
            if not may_use(folder_of(rel), folder_of(target)):
                wrong.append(f"{rel} ({folder_of(rel)}) includes {target} ({folder_of(target)})")
    assert not wrong, "includes against the layering:\n" + "\n".join(wrong)


def test_the_check_catches_a_climb():
    """The rule itself: a lower layer using a higher one, or a sibling, is refused."""
    assert not may_use("core/base", "core/vm")
    assert not may_use("core/images", "core/net")
    assert not may_use("fs/serve", "fs/tree")
    assert not may_use("fs", "core/vm")
    assert may_use("core/vm", "core/base") and may_use("fs", "fs/serve")


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDBRC":
            defined.add(p[2])
        elif len(p) == 2 and p[0] == "U":
            undefined.add(p[1])
    return defined, undefined


def objects():
    """source path -> its object file in the build (meson names them by path)."""
    found = {}
    for top, _, files in os.walk(BUILD):
        for n in files:
            if not n.endswith(".c.o"):
                continue
            if top.endswith("libsmartvm.a.p"):
                found[("core", n)] = os.path.join(top, n)
            elif top.endswith("smartvmfs.p"):
                found[("fs", n)] = os.path.join(top, n)
    out = {}
    for rel in sources():
        if not rel.endswith(".c"):
            continue
        side, _, rest = rel.partition("/")
        key = rest.replace("/", "_") + ".o"
        if (side, key) in found:
            out[rel] = found[(side, key)]
    return out


@pytest.mark.skipif(not BUILD, reason="no SMARTVMFS_BUILD_DIR: the built objects are not at hand")
def test_calls_follow_the_layers():
    objs = objects()
    assert len(objs) > 40, f"objects not found under {BUILD}"
    owner = {}
    table = {rel: symbols(o) for rel, o in objs.items()}
    for rel, (defined, _) in table.items():
        for s in defined:
            owner[s] = rel
    # what the public header declares: the front end's whole way into the core
    public = set()
    for h in PUBLIC:
        public |= set(re.findall(r"\b(\w+)\s*\(", open(os.path.join(SRC, h)).read()))
    wrong = []
    for rel, (_, undefined) in table.items():
        for s in sorted(undefined):
            to = owner.get(s)
            if not to or to == rel or may_use(folder_of(rel), folder_of(to)):
                continue
            if rel.split("/")[0] != to.split("/")[0] and s in public:
                continue
            wrong.append(f"{rel} calls {s} of {to}")
    assert not wrong, "calls against the layering:\n" + "\n".join(wrong)


def circles(graph):
    """The strongly connected sets of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            ring = []
            while True:
                w = stack.pop()
                on.discard(w)
                ring.append(w)
                if w == v:
                    break
            if len(ring) > 1:
                out.append(sorted(ring))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.skipif(not BUILD, reason="no SMARTVMFS_BUILD_DIR: the built objects are not at hand")
def test_no_circle_of_calls_between_files():
    """Inside a layer too, files call each other one way: no two files (or more)
    call each other round in a circle."""
    objs = objects()
    table = {rel: symbols(o) for rel, o in objs.items()}
    owner = {s: rel for rel, (defined, _) in table.items() for s in defined}
    graph = {rel: {owner[s] for s in undefined if s in owner and owner[s] != rel}
             for rel, (_, undefined) in table.items()}
    found = circles(graph)
    assert not found, "circles of calls: " + "; ".join(" <-> ".join(c) for c in found)
