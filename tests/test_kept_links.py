"""Kept connections (tasks.adapters.plain_http.Link, exchange_kept) and their users' failures, against real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.adapters import plain_http
from tasks.adapters.plain_http import Link, exchange_kept
from tests.test_kept_http import Seen, serving

REQUEST = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


class OneShot:
    """A server that answers one request per connection and then closes it when told, without saying so."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.requests = 0
        self.close_now = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(65536):
                    self.requests += 1
                    conn.sendall(ANSWER)
                self.close_now.wait(10)
            self.closed.set()


@pytest.fixture
def one_shot() -> Iterator[OneShot]:
    server = OneShot()
    yield server
    server.close_now.set()
    server.listener.close()


def test_an_idle_link_is_kept_and_one_the_server_closed_is_replaced_before_anything_is_sent(one_shot: OneShot) -> None:
    kept = Link.tcp(one_shot.address, 5)
    assert kept.exchange(REQUEST, "GET").reusable
    assert not kept.closed_by_server(), "open and idle: usable"
    one_shot.close_now.set()
    assert one_shot.closed.wait(5)
    assert kept.closed_by_server()
    sent_on: list[Link] = []
    original = Link.exchange

    def exchange(self: Link, *args: Any) -> plain_http.Response:
        sent_on.append(self)
        return original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Link, "exchange", exchange)
        link, answer = exchange_kept(kept, lambda: Link.tcp(one_shot.address, 5), REQUEST, "GET")
    assert (answer.status, answer.body) == (200, b"{}")
    assert link is not kept and sent_on == [link], "nothing was sent on the closed link"
    assert one_shot.requests == 2
    link.close()


def test_a_timeout_on_a_kept_link_is_not_waited_out_twice() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    connects: list[int] = []

    def connect() -> Link:
        connects.append(1)
        return Link.tcp(listener.getsockname(), 5)

    kept = Link.tcp(listener.getsockname(), 5)
    with pytest.raises(TimeoutError):
        exchange_kept(kept, connect, REQUEST, "GET", timeout=0.3)
    assert connects == []
    listener.close()


def registry_connection(url: str) -> Any:
    from tasks.adapters.registry import Connection

    return Connection(url.removeprefix("http://").split("/")[0], None)


def test_a_plain_http_registry_link_the_registry_closed_is_replaced_and_each_request_goes_once() -> None:
    seen = Seen()
    urls = serving(seen, close_silently=True)
    url = next(urls)
    with registry_connection(url) as connection:
        answers = [connection.get(f"/{index}") for index in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [path for _, path, *_ in seen.requests] == ["/v2/0", "/v2/1", "/v2/2"]
    assert len(seen.ports()) == 3
    next(urls, None)


def test_a_registry_that_cannot_be_connected_to_in_time_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that is not made in time (a firewalled host) is RegistryUnreachable, as a refused one is, so the
    image checks fall back to the engine's view; an answer that does not come in time is a clear error instead."""
    from tasks.adapters.registry import RegistryUnreachable

    def no_connection(*_: Any) -> Link:
        raise TimeoutError("timed out")

    monkeypatch.setattr(Link, "tcp", no_connection)  # a dropped SYN cannot be caused on the loopback
    with pytest.raises(RegistryUnreachable, match="did not answer: no connection within"), \
            registry_connection("http://127.0.0.1:9") as connection:
        connection.get("/")


def test_a_prefect_request_connects_within_its_own_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.adapters.kept_http import KeptConnections

    asked: list[float] = []
    original = Link.tcp

    def tcp(address: Any, timeout: float) -> Link:
        asked.append(timeout)
        return original(address, timeout)

    seen = Seen()
    urls = serving(seen)
    monkeypatch.setattr(Link, "tcp", tcp)
    with KeptConnections(next(urls), {}, timeout=30) as kept:
        assert kept.request("GET", "x", timeout=2.5).status_code == 200
    assert asked == [2.5]
    next(urls, None)
