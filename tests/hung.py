"""Listeners that accept connections and never answer: a remote that hangs, for the time-bound tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def hung_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    with hold_connections(server):
        yield int(server.getsockname()[1])


@contextmanager
def hung_unix_socket(path: Path) -> Iterator[Path]:
    """A unix socket at path that accepts every connection and never sends a byte (a hung Docker engine)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    with hold_connections(server):
        yield path


@contextmanager
def hold_connections(server: socket.socket) -> Iterator[None]:
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join()
        for connection in accepted:
            connection.close()
