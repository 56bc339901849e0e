"""A real HTTP server on 127.0.0.1 for the download tests, serving bytes the tests create.

Per file it can: honour ``Range`` (with ``If-Range``) or ignore it, cut the connection after N body
bytes for the next K requests, answer an error status for the next K requests, and trickle bytes
slowly. Every request is recorded so tests can assert what was (or was not) asked.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Served:
    """One file and how to misbehave while serving it."""

    data: bytes
    ranges: bool = True
    cut_after: int | None = None
    cuts: int = 0
    fail_status: int = 503
    fails: int = 0
    delay: float = 0.0
    chunk: int = 8192

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data).hexdigest() + '"'


@dataclass
class Request:
    """What the server saw."""

    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    sent: int = 0
    """Body bytes written to the client."""


@dataclass
class LoopbackServer:
    """Threaded HTTP/1.0 server; use as a context manager."""

    files: dict[str, Served] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> LoopbackServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                req = Request(path, self.headers.get("Range"), self.headers.get("If-Range"))
                server.requests.append(req)
                served = server.files.get(path)
                if served is None:
                    req.status = 404
                    self.send_error(404, "Not Found")
                    return
                if served.fails > 0:
                    served.fails -= 1
                    req.status = served.fail_status
                    self.send_error(served.fail_status)
                    return
                data, start = served.data, 0
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if served.ranges and rng and rng.startswith("bytes=") and if_range in (None, served.etag):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        req.status = 416
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    req.status = 206
                else:
                    self.send_response(200)
                    req.status = 200
                if served.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", served.etag)
                self.end_headers()
                body = data[start:]
                if served.cuts > 0 and served.cut_after is not None:
                    served.cuts -= 1
                    body = body[:served.cut_after]
                for i in range(0, len(body), served.chunk):
                    if served.delay:
                        time.sleep(served.delay)
                    try:
                        self.wfile.write(body[i:i + served.chunk])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    req.sent += len(body[i:i + served.chunk])
                # returning closes the connection (HTTP/1.0): a cut body ends short of Content-Length

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Full URL of ``path`` (which starts with ``/``)."""
        return self.base + urllib.parse.quote(path)

    def hits(self, path: str) -> list[Request]:
        """Requests made for ``path``."""
        return [r for r in self.requests if r.path == path]
