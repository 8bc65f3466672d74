#!/usr/bin/python3
"""A stand-in for GitHub's Firecracker releases and Firecracker's CI bucket, for
test_images.c. It builds its own data under --root, listens on 127.0.0.1 (a free
port), prints "PORT <n>" and serves until killed.

  /releases/latest                    302 -> /releases/tag/<--latest>
  /releases/tag/<v>                   200
  /releases/download/<v>/<file>       release archives (and .sha256.txt where made;
                                      v1.6.6's archive comes in 2.5 s)
  /bucket/?prefix=P&list-type=2[&continuation-token=T]
                                      an S3 ListObjectsV2 listing, --page-size keys a page
  /bucket/<key>                       an artifact
  /files/<name>                       any file under ROOT/files
  /slow/<name>                        the same, in small pieces with pauses
  /trickle/<name>                     the same, 1% every 0.2 s (20 s a file)
  /drop/<name>                        announces the whole length, sends half, hangs up
  /dropfirst/<name>                   /drop the first time, /files afterwards
  /__stats                            {"<path without query>": GET count, ...}
"""
import argparse
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile
import threading
import time
import urllib.parse

LOCK = threading.Lock()
COUNTS = {}
DROPPED = set()

CI = {
    # minor version / arch -> keys (a few the selection must skip)
    ("v1.15", "x86_64"): [
        "vmlinux-5.10.239", "vmlinux-6.1.141", "vmlinux-6.1.141.config", "vmlinux-6.1.99",
        "debug/vmlinux-6.1.999", "ubuntu-22.04.ext4", "ubuntu-22.04.squashfs",
        "ubuntu-24.04.ext4", "ubuntu-24.04.squashfs", "ubuntu-24.04.id_rsa",
        "firecracker-v1.15.0", "jailer-v1.15.0",
    ],
    ("v1.15", "aarch64"): ["vmlinux-6.1.141", "ubuntu-24.04.squashfs"],
    ("v1.7", "x86_64"): ["vmlinux-5.10.100", "vmlinux-4.14.300", "ubuntu-22.04.ext4",
                         "ubuntu-18.04.ext4"],
}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def add_bytes(tar, name, data, mode=0o755, uid=4242):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.uid = uid  # an owner that must never reach the disk
    tar.addfile(info, io.BytesIO(data))


def make_release(root, version, arch, sha="good", jailer=True, link=False):
    """firecracker-V-A.tgz as Firecracker's releases lay it out, plus what must
    never be unpacked: a member that climbs out, and (link) the binary as a link."""
    base = f"release-{version}-{arch}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if link:
            info = tarfile.TarInfo(f"{base}/firecracker-{version}-{arch}")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            add_bytes(tar, f"{base}/firecracker-{version}-{arch}",
                      f"#!/bin/sh\necho Firecracker {version}\n".encode())
        if jailer:
            add_bytes(tar, f"{base}/jailer-{version}-{arch}", b"#!/bin/sh\necho jailer\n")
        add_bytes(tar, f"{base}/SHA256SUMS", b"whatever\n", mode=0o644)
        add_bytes(tar, "../escaped-from-archive", b"must never be written\n", mode=0o644)
    data = buf.getvalue()
    name = f"firecracker-{version}-{arch}.tgz"
    write(os.path.join(root, "releases", version, name), data)
    if sha == "good":
        digest = hashlib.sha256(data).hexdigest()
    elif sha == "bad":
        digest = "0" * 64
    else:
        return
    write(os.path.join(root, "releases", version, name + ".sha256.txt"),
          f"{digest}  {name}\n".encode())


def build(root):
    for (minor, arch), keys in CI.items():
        for k in keys:
            key = f"firecracker-ci/{minor}/{arch}/{k}"
            write(os.path.join(root, "bucket", key), f"artifact {key}\n".encode() * 64)
    make_release(root, "v1.15.1", "x86_64", sha="good")
    make_release(root, "v1.15.1", "aarch64", sha="good")
    make_release(root, "v1.7.0", "x86_64", sha="none", jailer=False)
    make_release(root, "v1.9.9", "x86_64", sha="bad")
    make_release(root, "v1.8.8", "x86_64", sha="good", link=True)
    make_release(root, "v1.6.6", "x86_64", sha="good")  # served slowly (below)


def bucket_keys(root):
    out = []
    base = os.path.join(root, "bucket")
    for d, _, files in os.walk(base):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), base))
    return sorted(out)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    latest = "v1.15.1"
    page_size = 4

    def log_message(self, fmt, *args):  # quiet: TAP owns stdout
        pass

    def count(self, path):
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1

    def reply(self, code, body=b"", ctype="application/octet-stream", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def listing(self, query):
        q = urllib.parse.parse_qs(query)
        prefix = q.get("prefix", [""])[0]
        keys = [k for k in bucket_keys(self.root) if k.startswith(prefix)]
        start = 0
        tok = q.get("continuation-token", [None])[0]
        if tok:
            start = int(tok.split("-")[1])
        page = keys[start:start + self.page_size]
        more = start + self.page_size < len(keys)
        xml = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
               f"<Name>spec.ccfc.min</Name><Prefix>{prefix}</Prefix>",
               f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{self.page_size}</MaxKeys>",
               f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"]
        if more:
            xml.append(f"<NextContinuationToken>tok-{start + self.page_size}</NextContinuationToken>")
        for k in page:
            xml.append(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>")
        xml.append("</ListBucketResult>")
        self.reply(200, "\n".join(xml).encode(), "application/xml")

    def send_file(self, path, mode="plain"):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            self.reply(404, b"not found\n", "text/plain")
            return
        if mode == "drop":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode in ("slow", "steady", "trickle"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            parts, pause = {"slow": (20, 0.02), "steady": (50, 0.05), "trickle": (100, 0.2)}[mode]
            step = max(1, len(data) // parts)
            try:
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass  # the client went away
            return
        self.reply(200, data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        self.count(path)
        if path == "/__stats":
            with LOCK:
                body = json.dumps(COUNTS).encode()
            self.reply(200, body, "application/json")
        elif path == "/releases/latest":
            self.reply(302, b"", "text/plain", {"Location": f"/releases/tag/{self.latest}"})
        elif path.startswith("/releases/tag/"):
            self.reply(200, b"release page\n", "text/html")
        elif path.startswith("/releases/download/"):
            rel = path[len("/releases/download/"):]
            # v1.6.6's archive comes steadily (2.5 s): a download in progress to watch
            slow = rel.startswith("v1.6.6/") and rel.endswith(".tgz")
            self.send_file(os.path.join(self.root, "releases", *rel.split("/")),
                           "steady" if slow else "plain")
        elif path in ("/bucket", "/bucket/"):
            self.listing(url.query)
        elif path.startswith("/bucket/"):
            self.send_file(os.path.join(self.root, "bucket", path[len("/bucket/"):]))
        else:
            for mode in ("files", "slow", "trickle", "drop", "dropfirst"):
                pre = f"/{mode}/"
                if path.startswith(pre):
                    name = os.path.basename(path[len(pre):])
                    target = os.path.join(self.root, "files", name)
                    if mode == "dropfirst":
                        with LOCK:
                            first = name not in DROPPED
                            DROPPED.add(name)
                        mode = "drop" if first else "plain"
                    self.send_file(target, "plain" if mode == "files" else mode)
                    return
            self.reply(404, b"not found\n", "text/plain")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients hanging up (curl closing kept-alive connections, our own /drop/)
        # are part of the game, not errors worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--page-size", type=int, default=4)
    ap.add_argument("--latest", default="v1.15.1")
    a = ap.parse_args()
    os.makedirs(a.root, exist_ok=True)
    build(a.root)
    Handler.root = a.root
    Handler.page_size = a.page_size
    Handler.latest = a.latest
    srv = Server(("127.0.0.1", 0), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)

    def watch_parent():
        # the test holds our stdin open: its end, however it ends, ends us
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
