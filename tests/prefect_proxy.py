"""A small HTTP proxy in front of a real Prefect server: counts writes, can answer 429 first.

Tests point `prefect_api_url` at the proxy to count the API writes (and reads) a deploy
makes without trusting forkflow's own count, and to cause rate limiting
(429 with Retry-After), which a local server never does by itself.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class PrefectProxy:
    def __init__(self, upstream_api: str, *, throttle_writes: int = 0, retry_after: str = "1"):
        self.upstream = upstream_api.rstrip("/")
        self.throttle_writes = throttle_writes
        self.retry_after = retry_after
        self.writes: list[tuple[str, str]] = []
        self.reads: list[tuple[str, str]] = []  # every other request's method and path
        self.bodies: list[tuple[str, str, bytes]] = []  # each write's method, path and body, as sent
        self.read_bodies: list[tuple[str, str, bytes]] = []  # each read's method, path and body
        self.throttled: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=60)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def __enter__(self) -> PrefectProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def reset(self) -> None:
        with self.lock:
            self.writes.clear()
            self.reads.clear()
            self.throttled.clear()
            self.bodies.clear()
            self.read_bodies.clear()

    def write_count(self) -> int:
        with self.lock:
            return len(self.writes)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = self.path.removeprefix("/api")
                is_write = self.command != "GET" and not path.rstrip("/").endswith(("filter", "count", "paginate"))
                if is_write and proxy.take_throttle(self.command, path):
                    self.send_response(429)
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with proxy.lock:
                    if is_write:
                        proxy.writes.append((self.command, path))
                        proxy.bodies.append((self.command, path, body or b""))
                    else:
                        proxy.reads.append((self.command, path))
                        proxy.read_bodies.append((self.command, path, body or b""))
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                if self.headers.get("Authorization"):
                    headers["Authorization"] = self.headers["Authorization"]
                answer = proxy.client.request(self.command, proxy.upstream + path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = forward

        return Handler

    def take_throttle(self, method: str, path: str) -> bool:
        with self.lock:
            if self.throttle_writes <= 0:
                return False
            self.throttle_writes -= 1
            self.throttled.append((method, path))
            return True
