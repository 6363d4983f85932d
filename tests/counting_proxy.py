"""A byte-for-byte proxy that counts the HTTP requests passing through it.

Tests and the image bench put it in front of the Docker engine's socket
(DOCKER_HOST=unix://<proxy socket>) or a registry's port to count the
questions a run asks each system, without trusting forkflow's own count.
Only request lines are read (`GET /images/json?... HTTP/1.1`); bodies pass
through untouched, so counts are meant for runs that send no large bodies
(up-to-date checks), though builds and pushes work through it too.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path
from typing import Any

REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n")


class CountingProxy:
    """Listens on a unix socket (`listen` a path) or a TCP port on 127.0.0.1 (`listen` None) and forwards each
    connection to `upstream`: a unix socket path, or `host:port`."""

    def __init__(self, upstream: str, listen: Path | None = None):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.pairs: list[Pair] = []
        if listen is not None:
            self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.server.bind(str(listen))
        else:
            self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.listen = listen
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def address(self) -> str:
        """`unix:///path` for DOCKER_HOST, or `127.0.0.1:<port>` for a registry."""
        if self.listen is not None:
            return f"unix://{self.listen}"
        return f"127.0.0.1:{self.server.getsockname()[1]}"

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.close()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def seen(self) -> list[tuple[str, str]]:
        """(method, path with query) of each request since the last reset, in order."""
        with self.lock:
            return list(self.requests)

    def connect_upstream(self) -> socket.socket:
        if self.upstream.startswith("/"):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            return upstream
        host, _, port = self.upstream.rpartition(":")
        return socket.create_connection((host, int(port)))

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:  # closed
                return
            pair = Pair(client, self.connect_upstream())
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self.pump, args=(pair, client, pair.upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(pair, pair.upstream, client, False), daemon=True).start()

    def pump(self, pair: Pair, source: socket.socket, target: socket.socket, counted: bool) -> None:
        tail = b""
        try:
            while chunk := source.recv(65536):
                if counted:
                    tail = self.count(tail + chunk)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            pair.end_one()

    def count(self, data: bytes) -> bytes:
        """Record the request lines in `data`; return the end that may hold the start of the next one."""
        with self.lock:
            self.requests += [(m.group(1).decode(), m.group(2).decode(errors="replace"))
                              for m in REQUEST_LINE.finditer(data)]
        return data[-2:]


class Pair:
    """A client's connection and its upstream one: shut down when either side ends, closed when both pumps end."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client = client
        self.upstream = upstream
        self.running = 2
        self.lock = threading.Lock()

    def end_one(self) -> None:
        for end in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            self.close()

    def close(self) -> None:
        self.client.close()
        self.upstream.close()
