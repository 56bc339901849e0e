"""Benchmark model downloads and checks on loopback; prints one table.

Serves a random file (``--mb`` MB, default 256, about the size of the VGGish checkpoint) from a local
HTTP server and measures, in one run so that the ratios are meaningful on a shared machine:

* the raw loopback rate (``urllib`` read into nothing) and ``audiotagger.download.download`` (stream to
  disk, fsync, sha256+md5 verification, rename) as a fraction of it;
* a transfer cut at half and resumed: bytes sent over the wire / file size (1.00 = nothing re-sent);
* the full-verify rate (sha256+md5 in one read) against a plain read of the same file;
* the load-time check of a cached, stamped file (``hub.verify_file(full=False)``) in milliseconds.

Usage: ``python scripts/bench_download.py [--mb 256]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchutil import print_table  # noqa: E402

from audiotagger import download as dl  # noqa: E402
from audiotagger import hub  # noqa: E402
from tests.loopback_http import LoopbackServer, Served  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="file size in MB (default 256)")
    args = parser.parse_args()
    os.environ["no_proxy"] = "127.0.0.1,localhost"
    data = os.urandom(args.mb * 1_000_000)
    size = len(data)
    expected = dl.Expected(size=size, sha256=hashlib.sha256(data).hexdigest(),
                           md5=hashlib.md5(data).hexdigest())
    rows = []
    with LoopbackServer() as srv, tempfile.TemporaryDirectory() as tmp:
        srv.files["/f.bin"] = Served(data, chunk=1 << 20)
        url = srv.url("/f.bin")

        def raw():
            with urllib.request.urlopen(url) as r:
                while r.read(1 << 20):
                    pass

        t_raw = timed(raw)
        dest = Path(tmp) / "f.bin"
        t_dl = timed(lambda: dl.download(url, dest, expected, progress=False, backoff=0))
        rows.append(("loopback read (urllib)", f"{size / t_raw / 1e6:.0f} MB/s", "1.00"))
        rows.append(("download + verify + rename", f"{size / t_dl / 1e6:.0f} MB/s", f"{t_raw / t_dl:.2f}"))

        dest.unlink()
        srv.requests.clear()
        srv.files["/f.bin"] = Served(data, chunk=1 << 20, cut_after=size // 2, cuts=1)
        t_res = timed(lambda: dl.download(url, dest, expected, progress=False, backoff=0))
        sent = sum(r.sent for r in srv.requests)  # as counted by the server
        assert [r.status for r in srv.requests] == [200, 206], srv.requests
        assert dest.read_bytes() == data
        rows.append(("cut at 50 % then resumed", f"{size / t_res / 1e6:.0f} MB/s",
                     f"bytes sent / size = {sent / size:.2f}"))

        def plain_read():
            with open(dest, "rb") as fh:
                while fh.read(1 << 20):
                    pass

        t_read = timed(plain_read)
        t_hash = timed(lambda: dl.file_digests(dest))
        rows.append(("plain file read", f"{size / t_read / 1e6:.0f} MB/s", "1.00"))
        rows.append(("full verify (sha256+md5)", f"{size / t_hash / 1e6:.0f} MB/s", f"{t_read / t_hash:.2f}"))

        info = hub.ModelInfo("bench", dest.name, url, sha256=expected.sha256, md5=expected.md5, size=size)
        hub.verify_file(info, dest, full=True)  # writes the stamp
        n = 20
        t_light = timed(lambda: [hub.verify_file(info, dest, full=False) for _ in range(n)]) / n
        rows.append(("load-time check (stamped)", f"{t_light * 1e3:.2f} ms",
                     f"{t_light / t_hash:.5f} of a full verify"))

    print(f"bench_download: {args.mb} MB file on 127.0.0.1")
    print_table(("step", "rate", "ratio"), rows)


if __name__ == "__main__":
    main()
