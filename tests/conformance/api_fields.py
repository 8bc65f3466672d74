#!/usr/bin/env python3
"""The request-body fields of Firecracker's API description, as a JSON list.

    tests/conformance/api_fields.py FIRECRACKER-API.yaml > tests/conformance/api-fields-vX.json

One entry per PUT or PATCH request: its body's fields, nested objects as
`parent.child`; a rate limiter is one field (RateLimiter and TokenBucket are
listed once, on their own). test_api_fields.py holds docs/config.md against it:
every field is either mapped (what smartvmfs does with it) or listed as left out,
with the reason.
"""
import json
import sys

import yaml  # Debian's python3-yaml

SHARED = {"RateLimiter", "TokenBucket"}


def fields(defs, name, prefix=""):
    out = []
    for key, spec in sorted((defs[name].get("properties") or {}).items()):
        out.append(prefix + key)
        ref = spec.get("$ref") or (spec.get("items") or {}).get("$ref")
        sub = ref.split("/")[-1] if ref else None
        if sub and sub not in SHARED and defs[sub].get("properties"):
            out += fields(defs, sub, prefix + key + ".")
    return out


def main():
    doc = yaml.safe_load(open(sys.argv[1]))
    defs = doc["definitions"]
    res = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("put", "patch"):
                continue
            for prm in op.get("parameters", []):
                if prm.get("in") == "body" and "$ref" in prm["schema"]:
                    res[f"{method.upper()} {path}"] = fields(defs, prm["schema"]["$ref"].split("/")[-1])
    for name in sorted(SHARED):
        res[name] = fields(defs, name)
    json.dump({"version": doc["info"]["version"], "requests": res}, sys.stdout, indent=1,
              sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
