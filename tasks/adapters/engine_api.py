"""The Docker engine's HTTP API, asked over its socket with the standard library.

Lookups (is this image here, what are its labels, which images carry a
label) are all the Docker work a no-op run does. Asked this way they cost a
millisecond or two each; importing and connecting the docker SDK costs a tenth
of a second before the first answer. The requests go over a socket kept open
between them, read by tasks.adapters.plain_http (http.client would bring ssl
and the email parser into every no-op). Engines reached over ssh:// or with
TLS are left to the SDK (`from_env` returns None for them).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tasks.adapters.plain_http import Link, exchange_kept, head_of

DEFAULT_HOST = "unix:///var/run/docker.sock"


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
    _links: dict[int, Link] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        """The engine's answer to GET `path`; OSError when it does not answer (a kept connection the engine closed
        meanwhile is replaced once)."""
        target = path + ("?" + urlencode(dict(query)) if query else "")
        data = head_of("GET", target, "docker", None, {}, "keep-alive")
        pid = os.getpid()  # a forked doit worker must not share its parent's socket
        with self._lock:
            link, response = exchange_kept(self._links.pop(pid, None), self.connect, data, "GET")
            if response.reusable:
                self._links[pid] = link
        if response.headers.get("content-type", "").startswith("application/json"):
            return Answer(response.status, json.loads(response.body or b"null"))
        return Answer(response.status, response.body.decode("utf-8", errors="replace"))

    def close(self) -> None:
        """Close this process's connection (the next request opens a new one)."""
        link = self._links.pop(os.getpid(), None)
        if link is not None:
            link.close()

    def connect(self) -> Link:
        if self.unix:
            return Link.unix(self.address, self.timeout)
        host, colon, port = self.address.rpartition(":")
        host, port = (host, port) if colon else (self.address, "")
        return Link.tcp((host.strip("[]").encode("ascii"), int(port or 2375)), self.timeout)  # bytes: no idna codec


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
