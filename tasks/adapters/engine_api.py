"""The Docker engine's HTTP API, asked over its socket with the standard library.

Lookups (is this image here, what are its labels, which images carry a
label) are all the Docker work a no-op run does. Asked this way they cost a
millisecond or two each; importing and connecting the docker SDK costs a tenth
of a second before the first answer. Engines reached over ssh:// or with TLS
are left to the SDK (`from_env` returns None for them).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_HOST = "unix:///var/run/docker.sock"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass
class EngineApi:
    """GET requests to one engine, over one kept-alive connection per process."""

    address: str
    unix: bool
    timeout: float = 10.0
    _connections: dict[int, http.client.HTTPConnection] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        """The engine's answer to GET `path`; OSError (after one retry on a fresh connection) when it does not answer."""
        target = path + ("?" + urlencode(dict(query)) if query else "")
        with self._lock:
            try:
                return self.ask(target)
            except TimeoutError:
                self.drop()
                raise  # no second wait: the bound is for the whole call
            except (OSError, http.client.HTTPException):
                self.drop()
                return self.ask(target)

    def ask(self, target: str) -> Answer:
        connection = self.connection()
        connection.request("GET", target, headers={"Host": "docker"})
        response = connection.getresponse()
        raw = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return Answer(response.status, json.loads(raw or b"null"))
        return Answer(response.status, raw.decode("utf-8", errors="replace"))

    def connection(self) -> http.client.HTTPConnection:
        pid = os.getpid()  # a forked doit worker must not share its parent's socket
        if pid not in self._connections:
            self._connections[pid] = (UnixConnection(self.address, self.timeout) if self.unix
                                      else http.client.HTTPConnection(self.address, timeout=self.timeout))
        return self._connections[pid]

    def drop(self) -> None:
        connection = self._connections.pop(os.getpid(), None)
        if connection is not None:
            connection.close()


def from_env(environ: Mapping[str, str] | None = None, timeout: float = 60.0) -> EngineApi | None:
    """The engine DOCKER_HOST names (the local socket by default), or None when only the SDK can reach it."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH"):
        return None
    host = env.get("DOCKER_HOST") or DEFAULT_HOST
    parts = urlsplit(host)
    if parts.scheme == "unix":
        return EngineApi(parts.path, unix=True, timeout=timeout)
    if parts.scheme in ("tcp", "http") and parts.netloc:
        return EngineApi(parts.netloc, unix=False, timeout=timeout)
    return None


def image_path(ref: str) -> str:
    return f"/images/{quote(ref, safe='/:@')}/json"
