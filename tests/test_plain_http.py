"""The up-to-date checks' HTTP requests (tasks.adapters.plain_http), against a real local HTTP server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.adapters.plain_http import direct, request

REPO = Path(__file__).resolve().parent.parent


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/length":
            self.answer(200, b'{"a": 1}', {"Content-Length": "8"})
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"to the end")
            self.close_connection = True
        elif self.path == "/cut":
            self.answer(200, b"short", {"Content-Length": "100"})
            self.close_connection = True
        elif self.path == "/moved":
            self.answer(301, b"", {"Location": "/length", "Content-Length": "0"})
        elif self.path == "/auth":
            seen = self.headers.get("Authorization", "").encode()
            self.answer(200, seen, {"Content-Length": str(len(seen))})
        elif self.path == "/bad-length":
            self.answer(200, b"x", {"Content-Length": "many"})
            self.close_connection = True
        elif self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        else:
            self.answer(404, b"no", {"Content-Length": "2"})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(201, body[::-1], {"Content-Length": str(len(body))})

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_bodies_by_length_chunks_and_end_of_stream(server: str) -> None:
    assert request(f"{server}/length").body == b'{"a": 1}'
    assert request(f"{server}/chunked").body == b"hello chunked world"
    assert request(f"{server}/until-close").body == b"to the end"
    empty = request(f"{server}/empty")
    assert (empty.status, empty.body, empty.ok) == (204, b"", True)


def test_statuses_come_back_and_redirects_are_not_followed(server: str) -> None:
    moved = request(f"{server}/moved")
    assert (moved.status, moved.ok, moved.headers["location"]) == (301, False, "/length")
    missing = request(f"{server}/nothing")
    assert (missing.status, missing.body, missing.ok) == (404, b"no", False)


def test_a_post_sends_its_body_and_headers(server: str) -> None:
    answer = request(f"{server}/post", "POST", b"abc", {"Content-Type": "application/json"})
    assert (answer.status, answer.body) == (201, b"cba")
    assert request(f"{server}/auth", headers={"Authorization": "Basic eDp5"}).body == b"Basic eDp5"


def test_a_cut_answer_and_a_closed_port_raise_oserror(server: str) -> None:
    with pytest.raises(ConnectionError, match="cut"):
        request(f"{server}/cut")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        request(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_malformed_answer_is_an_oserror_and_a_header_cannot_break_a_line(server: str) -> None:
    with pytest.raises(ConnectionError, match="well-formed"):
        request(f"{server}/bad-length")
    with pytest.raises(ValueError, match="line break"):
        request(f"{server}/auth", headers={"Authorization": "Basic x\r\nX-Injected: 1"})


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepted by the kernel, never answered
        with pytest.raises(TimeoutError):
            request(f"http://127.0.0.1:{sock.getsockname()[1]}/", timeout=0.3)


def test_a_proxy_in_the_environment_sends_other_hosts_through_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert direct("index.example.com")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
    assert not direct("index.example.com")
    assert direct("127.0.0.1") and direct("localhost")


def test_a_plain_request_loads_neither_urllib_nor_ssl_nor_idna(server: str) -> None:
    code = ("import sys; from tasks.adapters.plain_http import request; "
            f"assert request({server + '/chunked'!r}).body == b'hello chunked world'; "
            "print(sorted(m for m in ('urllib.request', 'ssl', 'encodings.idna', 'http.client') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
