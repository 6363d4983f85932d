"""One HTTP request of an up-to-date check, with as little to load as the request needs.

A no-op run asks local servers small questions: a service's health, a Prefect
server's deployment signals, the index's file listing. urllib carries ssl, the
email parser and the idna codec with it (about 10 ms of a 0.2 s no-op), none of
which a plain `http://` request to a host without a proxy uses. Such a request
goes over a socket here: HTTP/1.1, `Connection: close`, a body by
Content-Length, chunks or end of stream, redirects not followed. Anything else
(https, a proxy in the environment) goes through urllib as before.

A `Link` keeps a connection open between requests instead (the Prefect API in
tasks.adapters.kept_http, the Docker engine, a plain-http registry), and
`exchange_kept` holds the one rule for a kept connection the server closed.
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reusable: bool = False  # the connection may carry another request (HTTP/1.1, a known length, no "close")
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 5.0, context: Any = None) -> Response:
    """Send one request and read the whole answer; redirects come back as they are (3xx). `context`: the
    ssl context of an https request. Raises OSError (TimeoutError on a timeout) when the server cannot be
    reached or the answer is cut."""
    parts = urlsplit(url)
    if parts.scheme == "http" and direct(parts.hostname or ""):
        return over_socket(parts, method, body, headers or {}, timeout)
    return over_urllib(url, method, body, headers or {}, timeout, context)


def direct(host: str) -> bool:
    """True when urllib would not send a request to `host` through a proxy: none is set, or the host is local."""
    return host in LOOPBACK or not any(os.environ.get(name) for name in PROXY_VARIABLES)


def over_socket(parts: SplitResult, method: str, body: bytes | None, headers: dict[str, str],
                timeout: float) -> Response:
    head = request_head(parts, method, body, headers, "close")
    with socket.create_connection(address_of(parts), timeout=timeout) as sock:
        sock.sendall(head + (body or b""))
        with sock.makefile("rb") as stream:
            try:
                return read_response(stream, method)
            except ValueError as err:  # a length or chunk size that is not a number
                raise ConnectionError(f"not a well-formed HTTP answer: {err}") from None


def request_head(parts: SplitResult, method: str, body: bytes | None, headers: dict[str, str], connection: str) -> bytes:
    """The request line and headers of one HTTP/1.1 request to the URL in `parts`."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return head_of(method, target, parts.netloc.rpartition("@")[2], body, headers, connection)


def head_of(method: str, target: str, host: str, body: bytes | None, headers: dict[str, str], connection: str) -> bytes:
    """The request line and headers of one HTTP/1.1 request for `target` on `host`."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Connection: {connection}", "Accept-Encoding: identity"]
    if body is not None and not any(name.lower() == "content-length" for name in headers):
        lines.append(f"Content-Length: {len(body)}")
    if any(mark in text for item in headers.items() for text in item for mark in "\r\n"):
        raise ValueError("a header name or value holds a line break")  # as urllib refuses it
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def address_of(parts: SplitResult) -> Any:
    host = parts.hostname or ""
    return (host.encode("ascii") if host.isascii() else host, parts.port or 80)  # bytes: no idna codec to load


class Link:
    """One open connection (TCP, or a unix socket's path) and its buffered reader, kept between requests."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.stream = sock.makefile("rb")

    @classmethod
    def tcp(cls, address: Any, timeout: float) -> Link:
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    @classmethod
    def unix(cls, path: str, timeout: float) -> Link:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def exchange(self, data: bytes, method: str, timeout: float | None = None) -> Response:
        """Send one request and read its whole answer. The link is closed when anything goes wrong on it (a
        half-read answer must never be taken for the next one's) and when the answer says it cannot be kept."""
        try:
            if timeout is not None:
                self.sock.settimeout(timeout)
            self.sock.sendall(data)
            answer = read_response(self.stream, method)
        except ValueError as err:  # a length or chunk size that is not a number
            self.close()
            raise ConnectionError(f"not a well-formed HTTP answer: {err}") from None
        except BaseException:
            self.close()
            raise
        if not answer.reusable:
            self.close()
        return answer

    def closed_by_server(self) -> bool:
        """True when the server closed this idle link (or sent what no request asked for): not to be used. An idle
        link has nothing to read; one the server closed reads as its end."""
        import select

        poller = select.poll()  # not select.select: a socket numbered past 1023 is out of its range
        poller.register(self.sock, select.POLLIN)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def exchange_kept(kept: Link | None, connect: Callable[[], Link], data: bytes, method: str,
                  timeout: float | None = None) -> tuple[Link, Response]:
    """The answer to `data`, over `kept` when there is one, and the link it came over (keep it while
    `answer.reusable`). A kept link the server closed while idle is seen before anything is sent, and replaced by
    one from `connect`. One that fails once the request is sent, other than by a timeout, was closed at that very
    moment, before the server read the request: it goes once more, on a new link. (A server that acted on it and
    then cut its answer would see it twice: forkflow's requests are reads and writes of named things, a deployment
    or flow by its name, a blob by its digest, which a second time leave as they are.)"""
    if kept is not None and kept.closed_by_server():
        kept.close()
        kept = None
    if kept is not None:
        try:
            return kept, kept.exchange(data, method, timeout)
        except TimeoutError:
            raise  # no second wait: the bound is for the whole call
        except OSError:
            pass
    link = connect()
    return link, link.exchange(data, method, timeout)


def read_response(stream: io.BufferedReader, method: str) -> Response:
    status_line = stream.readline(65537)
    try:
        status = int(status_line.split(None, 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = read_headers(stream)
    kept = status_line.startswith(b"HTTP/1.1") and headers.get("connection", "").lower() != "close"
    reason = status_line.split(None, 2)[2].decode("latin-1").strip() if status_line.count(b" ") >= 2 else ""
    if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
        return Response(status, b"", headers, kept, reason)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, read_chunks(stream), headers, kept, reason)
    if "content-length" in headers:
        size = int(headers["content-length"])
        data = stream.read(size)
        if len(data) != size:
            raise ConnectionError(f"the answer was cut: {len(data)} of {size} bytes")
        return Response(status, data, headers, kept, reason)
    return Response(status, stream.read(), headers, reason=reason)


def read_headers(stream: io.BufferedReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = stream.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


def read_chunks(stream: io.BufferedReader) -> bytes:
    data = bytearray()
    while True:
        size_line = stream.readline(65537)
        if not size_line:
            raise ConnectionError("the answer was cut inside a chunk")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            read_headers(stream)  # the trailer
            return bytes(data)
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ConnectionError("the answer was cut inside a chunk")
        data += chunk
        stream.readline(3)  # the CRLF after each chunk


def over_urllib(url: str, method: str, body: bytes | None, headers: dict[str, str], timeout: float,
                context: Any) -> Response:
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect(), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(urllib.request.Request(url, data=body, method=method, headers=headers),
                         timeout=timeout) as answer:
            return Response(answer.status, answer.read(), {k.lower(): v for k, v in answer.headers.items()})
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read(), {k.lower(): v for k, v in (err.headers or {}).items()})
    except urllib.error.URLError as err:
        reason = err.reason
        raise (reason if isinstance(reason, OSError) else ConnectionError(str(reason))) from None
