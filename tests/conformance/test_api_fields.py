"""docs/config.md names every field of Firecracker's API (issue 17, point 10).

api-fields-v1.15.1.json lists the request-body fields of Firecracker's API
description (api_fields.py makes it). The table "Every field of Firecracker's
API" in docs/config.md must have one row per field - what smartvmfs does with it,
or `left out:` with the reason - and no row for a field the API does not have.
A mapped row names the config.json field, file or verb; that config.json field
must be one core/fc/config.c knows.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \| (.+) \|$")


def table():
    text = open(os.path.join(SRC, "docs", "config.md")).read()
    section = text.split("## Every field of Firecracker's API", 1)[1]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            assert (m[1], m[2]) not in rows, f"row twice: {m[1]} {m[2]}"
            rows[(m[1], m[2])] = m[3]
    return rows


def api():
    with open(os.path.join(HERE, "api-fields-v1.15.1.json")) as f:
        doc = json.load(f)
    return {(req, f) for req, fields in doc["requests"].items() for f in (fields or ["*"])}


def test_every_field_is_mapped_or_left_out_with_a_reason():
    rows, fields = table(), api()
    missing = sorted(fields - set(rows))
    assert not missing, "fields of Firecracker's API that docs/config.md does not name:\n" + \
        "\n".join(f"  {r} {f}" for r, f in missing)
    unknown = sorted(set(rows) - fields)
    assert not unknown, f"rows for no field of the API: {unknown}"
    for key, what in rows.items():
        if what.startswith("left out"):
            reason = what.split(":", 1)[1].strip() if ":" in what else ""
            assert len(reason.split()) >= 5, f"{key}: left out without a reason: {what!r}"


def test_mapped_config_fields_exist_in_the_core():
    """A row that says `section.field` names a field of core/fc/config.c's table."""
    known = set(re.findall(r'^\s+[A-Z]+\("([A-Za-z]+)"', open(os.path.join(SRC, "core", "fc", "config.c")).read(),
                           re.M))
    for key, what in table().items():
        if what.startswith("left out"):
            continue
        for ref in re.findall(r"`([a-z][A-Za-z]*(?:\[\])?\.[a-z][A-Za-z]*)`", what):
            leaf = ref.split(".")[-1]
            assert leaf in known, f"{key}: {ref} is no field of core/fc/config.c"
