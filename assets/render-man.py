#!/usr/bin/env python3
"""Renders a docs/ manual (Markdown) to a man page with lowdown(1).

    render-man.py LOWDOWN INPUT.md OUTPUT NAME SECTION VERSION

The Markdown stays readable on its own: its first line is a title
("# SMARTVMFS(5) — ...") that the man page header replaces, and every other
heading moves up one level so "## NAME" becomes the page's .SH NAME.
Links to other manuals in docs/ become plain names.
"""
import os
import re
import subprocess
import sys
import time

VOLUMES = {"1": "User Commands", "5": "File Formats", "8": "System Administration"}


def main():
    lowdown, src, out, name, section, version = sys.argv[1:7]
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body, fence = [], False
    for line in lines:
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#{2,} ", line):
            line = line[1:]
        # [docs/architecture.md](architecture.md) -> docs/architecture.md
        line = re.sub(r"\[([^\]]+)\]\([^)]+\.md\)", r"\1", line)
        body.append(line)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = int(epoch) if epoch else int(os.stat(src).st_mtime)
    date = time.strftime("%Y-%m-%d", time.gmtime(stamp))
    r = subprocess.run(
        [lowdown, "-s", "-Tman",
         "-M", f"title={name.upper()}", "-M", f"section={section}", "-M", f"date={date}",
         "-M", f"source=smartvmfs {version}", "-M", f"volume={VOLUMES.get(section, '')}"],
        input="\n".join(body) + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"lowdown failed on {src}: {r.stderr.strip()}")
    with open(out, "w", encoding="utf-8") as f:
        f.write(fix_troff(r.stdout))


def fix_troff(text):
    """What man-db's whatis and lexgrog expect: `.SH NAME` on one line, and
    `name \- description` under it."""
    def heading(m):
        title = m.group(2).replace('"', "\\(dq")
        return f'.{m.group(1)} "{title}"'
    text = re.sub(r"^\.(SH|SS)\n([^.\n][^\n]*)$", heading, text, flags=re.M)
    return re.sub(r'(^\.SH "NAME"\n(?:\.[A-Z]+\n)*[^\n]*?) — ', r"\1 \\- ", text,
                  count=1, flags=re.M)


if __name__ == "__main__":
    main()
