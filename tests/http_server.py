"""A real HTTP server on 127.0.0.1 that answers Range requests, logs them, and can misbehave.

The first path segment picks the behaviour: /ok/<file> serves normally, /fail500/ answers 500,
/slow/ waits `slow_s` before answering, /drop/ sends the headers and half the body, then closes;
/dropfirst/ does that to the first request of each path only.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Hit:
    path: str
    range: str | None
    status: int
    bytes: int
    agent: str | None = None  # the User-Agent header


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (GDAL drops a Range read it no longer needs) is
    ordinary traffic, not a server error worth a traceback on stderr."""

    def handle_error(self, request: object, client_address: tuple) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class _Served:
    """Serving a handler class on 127.0.0.1 in a thread, as a context manager, at `url`."""

    def _serve(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self._httpd = _QuietServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"


@dataclass
class RangeServer(_Served):
    root: Path
    slow_s: float = 3.0
    log: list[Hit] = field(default_factory=list)  # answered requests
    arrivals: Counter = field(default_factory=Counter)  # every request, counted as it arrives
    dropped: set = field(default_factory=set)  # paths /dropfirst/ has cut short

    def __enter__(self) -> "RangeServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server.arrivals[self.path] += 1
                mode, _, rest = self.path.lstrip("/").partition("/")
                file = server.root / rest
                if mode == "fail500":
                    return self._send_error(500)
                if mode == "slow":
                    time.sleep(server.slow_s)
                if not file.is_file():
                    return self._send_error(404)
                data = file.read_bytes()
                status, body, headers = 200, data, {}
                header = self.headers.get("Range")
                match = _RANGE.fullmatch(header or "")
                if match:
                    start = int(match.group(1))
                    end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
                    status, body = 206, data[start:end + 1]
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                self.send_response(status)
                headers |= {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if mode == "drop" or (mode == "dropfirst" and self.path not in server.dropped):
                    server.dropped.add(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the peer sees the transfer cut short
                    server.log.append(Hit(self.path, header, status, len(body) // 2))
                    return
                self.wfile.write(body)
                server.log.append(Hit(self.path, header, status, len(body),
                                      self.headers.get("User-Agent")))

            def do_HEAD(self) -> None:
                server.arrivals[self.path] += 1
                if self.path.startswith("/slow/"):
                    time.sleep(server.slow_s)
                mode, _, rest = self.path.lstrip("/").partition("/")
                file = server.root / rest
                if mode == "fail500" or not file.is_file():
                    return self._send_error(500 if mode == "fail500" else 404)
                server.log.append(Hit(self.path, "HEAD", 200, 0))
                self.send_response(200)
                self.send_header("Content-Length", str(file.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def _send_error(self, status: int) -> None:
                server.log.append(Hit(self.path, self.headers.get("Range"), status, 0))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._serve(Handler)
        return self

    def arrived(self, fragment: str) -> int:
        return sum(n for path, n in self.arrivals.items() if fragment in path)


@dataclass
class FlakyProxy(_Served):
    """A proxy on 127.0.0.1 in front of `upstream` that answers the first requests whose path
    starts with `prefix` with the statuses in `failures` (one each, in order), then forwards
    everything. `searches` counts the requests under `prefix` that were forwarded."""

    upstream: str
    prefix: str = "/search"
    failures: list[int] = field(default_factory=list)
    searches: int = 0
    port: int = 0

    def __enter__(self) -> "FlakyProxy":
        import urllib.error
        import urllib.request

        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.startswith(proxy.prefix):
                    if proxy.failures:
                        status = proxy.failures.pop(0)
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    proxy.searches += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() == "content-type"}
                request = urllib.request.Request(proxy.upstream + self.path, data=body,
                                                 headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, data = answer.status, answer.read()
                        kind = answer.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as e:
                    status, data, kind = e.code, e.read(), "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self._serve(Handler, self.port)
        return self
