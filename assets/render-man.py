#!/usr/bin/env python3
"""Renders a docs/ manual (Markdown) to a man page with lowdown(1).

    render-man.py LOWDOWN INPUT.md OUTPUT NAME SECTION VERSION

The Markdown stays readable on its own: its first line is a title
("# SMARTVMFS(5) — ...") that the man page header replaces, and every other
heading moves up one level so "## NAME" becomes the page's .SH NAME.
Links to other manuals in docs/ become plain names. Tables become lists (one item
per row: the first cell, then "header: cell" for the others), since a man page at
80 columns cannot hold four columns of sentences: troff would break words and warn.
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
    body = tables_to_lists(body)
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


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables_to_lists(lines):
    """| a | b | c | rows -> "- a — b: ...; c: ..." items (not inside code fences)."""
    out, i, fence = [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fence = not fence
        is_table = (not fence and line.lstrip().startswith("|") and i + 1 < len(lines)
                    and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]))
        if not is_table:
            out.append(line)
            i += 1
            continue
        head = cells(line)
        i += 2
        if out and out[-1].strip():
            out.append("")
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            row = cells(lines[i].replace("\\|", "\u2016"))
            parts = [f"{h}: {c}" for h, c in zip(head[1:], row[1:]) if c and c not in ("—", "-")]
            item = f"- {row[0]}" + (" — " + "; ".join(parts) if parts else "")
            out.append(item.replace("\u2016", "|"))
            i += 1
        out.append("")
    return out


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
