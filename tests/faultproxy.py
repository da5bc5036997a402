"""A real HTTP proxy on loopback that injects faults between a client and a real server.

Each request is, with probability ``fault_rate``, answered 500, held past the
client's timeout before being forwarded, or forwarded with its JSON body cut in
half; the rest pass through untouched. ``upstream_down`` makes the proxy act
as if its upstream had stopped (502 for everything), as a gateway does;
``down_after`` sets it once that many requests have passed.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("error", "delay", "broken_json")


class FaultProxy:
    def __init__(self, upstream: str, *, fault_rate: float = 0.2, delay: float = 5.0, seed: int = 0):
        target = urlsplit(upstream)
        self.upstream_host, self.upstream_port = target.hostname, target.port
        self.fault_rate, self.delay = fault_rate, delay
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.upstream_down = False
        self.down_after: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _choose(self) -> str:
        with self.lock:
            if self.down_after is not None and self.counts["none"] >= self.down_after:
                self.upstream_down = True
            if self.upstream_down:
                fault = "upstream_down"
            elif self.rng.random() < self.fault_rate:
                fault = self.rng.choice(FAULTS)
            else:
                fault = "none"
            self.counts[fault] += 1
            return fault

    def _forward(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=600)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type", "application/json")
        finally:
            conn.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet test output
                pass

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._choose()
                if fault == "upstream_down":
                    return self._reply(502, json.dumps({"error": {"message": "upstream unavailable"}}).encode())
                if fault == "error":
                    return self._reply(500, json.dumps({"error": {"message": "injected fault"}}).encode())
                if fault == "delay":
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    status, data, content_type = proxy._forward(self.command, self.path, body, headers)
                except OSError as exc:
                    return self._reply(502, json.dumps({"error": {"message": str(exc)}}).encode())
                if fault == "broken_json":
                    data = data[: len(data) // 2]
                try:
                    self._reply(status, data, content_type)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a delayed request)
                    pass

            do_GET = do_POST = _proxy

        return Handler
