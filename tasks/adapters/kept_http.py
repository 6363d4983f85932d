"""Keep-alive HTTP/1.1 connections to one plain-http server, shared by threads: a deploy's Prefect API calls.

A deploy that writes one deployment makes a handful of requests; httpx, its
transport and their imports (h11, h2, anyio, ssl) cost it about 50 ms before
the first one, and a few hundred microseconds of CPU per request, which a first
deploy of 1,600 deployments (3,200 writes) feels on a machine the server shares.
A plain `http://` server reached without a proxy (the local server, a server on
the team's network) needs none of it: requests go over sockets kept open
between them, one per thread at a time. https, a proxy in the environment or
credentials in the URL still go through httpx.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

from tasks.adapters.plain_http import Link, address_of, direct, exchange_kept, request_head

PATH_SAFE = "/:@!$&'()*+,;=-._~%"  # what a path keeps as it is (as httpx sends it); a space and the like are escaped


def usable_for(url: str) -> bool:
    """Whether requests to `url` can go over kept sockets: plain http, no credentials in it, no proxy."""
    parts = urlsplit(url)
    return parts.scheme == "http" and "@" not in parts.netloc and direct(parts.hostname or "")


@dataclass(frozen=True)
class Reply:
    """An answer, read whole; `status_code`, `headers` (names in lower case), `json()`, `text` and `url`
    as an httpx response has them."""

    status_code: int
    content: bytes
    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class KeptConnections:
    """Requests to paths under `base_url`, over connections kept open between them."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float):
        self.base = urlsplit(base_url.rstrip("/"))
        self.headers = {"Accept": "application/json", **headers}
        self.timeout = timeout
        self.idle: list[Link] = []
        self.lock = threading.Lock()

    def __enter__(self) -> KeptConnections:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        with self.lock:
            links, self.idle = self.idle, []
        for link in links:
            link.close()

    def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None,
                timeout: float | None = None) -> Reply:
        """Send one request and read its whole answer. OSError when the server cannot be reached, does not answer
        within `timeout` (TimeoutError) or cuts the answer; a kept connection the server closed meanwhile is
        replaced by a new one first."""
        body = None if json is None else dumps(json)
        path_part, _, query = path.partition("?")
        parts = self.base._replace(path=quote(f"{self.base.path}/{path_part}", safe=PATH_SAFE), query=query)
        extra = {"Content-Type": "application/json"} if body is not None else {}
        head = request_head(parts, method, body, {**self.headers, **extra, **(headers or {})}, "keep-alive")
        seconds = timeout or self.timeout
        link, answer = exchange_kept(self.take(), partial(self.connect, seconds), head + (body or b""), method, seconds)
        if answer.reusable:
            with self.lock:
                self.idle.append(link)
        return Reply(answer.status, answer.body, parts.geturl(), answer.headers)

    def connect(self, timeout: float) -> Link:
        return Link.tcp(address_of(self.base), timeout)

    def take(self) -> Link | None:
        with self.lock:
            return self.idle.pop() if self.idle else None


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
