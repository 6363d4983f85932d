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

import io
import json
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tasks.adapters.plain_http import head_of, read_response

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class Link:
    """One open connection to the engine and its buffered reader."""

    def __init__(self, address: str, unix: bool, timeout: float):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(address)
            except OSError:
                self.sock.close()
                raise
        else:
            host, colon, port = address.rpartition(":")
            host, port = (host, port) if colon else (address, "")
            where: Any = (host.strip("[]").encode("ascii"), int(port or 2375))  # bytes: no idna codec to load
            self.sock = socket.create_connection(where, timeout=timeout)
        self.stream: io.BufferedReader = self.sock.makefile("rb")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


@dataclass
class EngineApi:
    """GET requests to one engine, over one kept-alive connection per process."""

    address: str
    unix: bool
    timeout: float = 10.0
    _links: dict[int, Link] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        """The engine's answer to GET `path`; OSError (after one retry on a fresh connection) when it does not answer."""
        target = path + ("?" + urlencode(dict(query)) if query else "")
        with self._lock:
            try:
                return self.ask(target)
            except TimeoutError:
                raise  # no second wait: the bound is for the whole call
            except (OSError, ValueError):
                pass  # a kept connection the engine closed meanwhile: once more, on a new one
            try:
                return self.ask(target)
            except ValueError as err:  # a length or chunk size that is not a number
                raise ConnectionError(f"not a well-formed HTTP answer: {err}") from None

    def ask(self, target: str) -> Answer:
        """One request and its whole answer; the connection is closed when anything goes wrong on it (a half-read
        answer must never be taken for the next one's)."""
        link = self.link()
        try:
            link.sock.sendall(head_of("GET", target, "docker", None, {}, "keep-alive"))
            response = read_response(link.stream, "GET")
        except BaseException:
            self.drop()
            raise
        if not response.reusable:
            self.drop()
        if response.headers.get("content-type", "").startswith("application/json"):
            return Answer(response.status, json.loads(response.body or b"null"))
        return Answer(response.status, response.body.decode("utf-8", errors="replace"))

    def link(self) -> Link:
        pid = os.getpid()  # a forked doit worker must not share its parent's socket
        if pid not in self._links:
            self._links[pid] = Link(self.address, self.unix, self.timeout)
        return self._links[pid]

    def drop(self) -> None:
        link = self._links.pop(os.getpid(), None)
        if link is not None:
            link.close()


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
