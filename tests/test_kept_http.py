"""A deploy's Prefect API requests over kept connections (tasks.adapters.kept_http), against real local HTTP servers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tasks.adapters.kept_http import KeptConnections, usable_for

REPO = Path(__file__).resolve().parent.parent


class Seen:
    """What a server saw: each request's client port, path, headers and body."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[int, str, dict[str, str], bytes]] = []
        self.throttle = 0

    def ports(self) -> set[int]:
        with self.lock:
            return {port for port, *_ in self.requests}


def handler(seen: Seen, version: str = "HTTP/1.1", close_silently: bool = False) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = version

        def log_message(self, *_: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with seen.lock:
                seen.requests.append((self.client_address[1], self.path, dict(self.headers.items()), body))
                throttled = seen.throttle > 0
                seen.throttle -= 1
            if throttled:
                self.answer(429, b"slow down", {"Retry-After": "0"})
            else:
                self.answer(200, json.dumps({"path": self.path, "body": json.loads(body or b"null")}).encode(), {})
            self.close_connection = close_silently  # closed without saying so, as a server closes an idle one

        do_GET = do_POST  # noqa: N815

        def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serving(seen: Seen, **options: Any) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(seen, **options))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def server(seen: Seen) -> Iterator[str]:
    yield from serving(seen)


def test_requests_share_one_kept_connection(server: str, seen: Seen) -> None:
    with KeptConnections(server, {"Authorization": "Basic eDp5"}, timeout=5) as http:
        answers = [http.request("POST", "deployments/filter", json={"n": n}) for n in range(5)]
        plain = http.request("GET", "csrf-token?client=abc")
    assert [a.json() for a in answers] == [{"path": "/api/deployments/filter", "body": {"n": n}} for n in range(5)]
    assert (answers[0].status_code, answers[0].headers["content-type"], answers[0].url) == \
        (200, "application/json", f"{server}/deployments/filter")
    assert plain.json()["path"] == "/api/csrf-token?client=abc"
    assert len(seen.ports()) == 1  # one connection carried all six
    headers = seen.requests[0][2]
    assert headers["Authorization"] == "Basic eDp5" and headers["Content-Type"] == "application/json"
    assert "Content-Type" not in seen.requests[-1][2]  # a request without a body says no type
    assert seen.requests[0][3] == b'{"n":0}'


def test_a_connection_the_server_closed_while_idle_is_replaced(seen: Seen) -> None:
    for url in serving(seen, close_silently=True):
        with KeptConnections(url, {}, timeout=5) as http:
            answers = [http.request("POST", "flows/", json={"name": f"f{n}"}) for n in range(3)]
    assert [a.json()["body"]["name"] for a in answers] == ["f0", "f1", "f2"]
    assert len(seen.requests) == 3  # each sent once to a server that took it: no request lost, none doubled
    assert len(seen.ports()) == 3


def test_an_http_1_0_server_gets_a_connection_per_request(seen: Seen) -> None:
    for url in serving(seen, version="HTTP/1.0"):
        with KeptConnections(url, {}, timeout=5) as http:
            for n in range(3):
                assert http.request("POST", "x", json=n).json()["body"] == n
    assert len(seen.ports()) == 3


def test_threads_share_the_connections(server: str, seen: Seen) -> None:
    with KeptConnections(server, {}, timeout=5) as http, ThreadPoolExecutor(max_workers=4) as pool:
        bodies = list(pool.map(lambda n: http.request("POST", "deployments/", json=n).json()["body"], range(40)))
    assert bodies == list(range(40))
    assert len(seen.requests) == 40 and 1 <= len(seen.ports()) <= 4


def test_a_path_is_escaped_as_httpx_escapes_it(server: str, seen: Seen) -> None:
    with KeptConnections(server, {}, timeout=5) as http:
        http.request("GET", "variables/name/a b")
        http.request("GET", "block_types/slug/secret/block_documents/name/x?include_secrets=true")
    assert [path for _, path, *_ in seen.requests] == [
        "/api/variables/name/a%20b", "/api/block_types/slug/secret/block_documents/name/x?include_secrets=true"]


def test_a_server_that_never_answers_times_out_and_a_closed_port_is_an_oserror() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepted by the kernel, never answered
        with KeptConnections(f"http://127.0.0.1:{sock.getsockname()[1]}/api", {}, timeout=5) as http, \
                pytest.raises(TimeoutError):
            http.request("GET", "health", timeout=0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with KeptConnections(f"http://127.0.0.1:{port}/api", {}, timeout=2) as http, pytest.raises(OSError):
        http.request("GET", "health")


def test_which_urls_go_over_kept_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert usable_for("http://127.0.0.1:4200/api") and usable_for("http://prefect.internal:4200/api")
    assert not usable_for("https://api.prefect.cloud/api/accounts/a/workspaces/w")
    assert not usable_for("http://user:secret@prefect.internal/api")  # credentials in the URL: httpx sends them
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
    assert not usable_for("http://prefect.internal:4200/api") and usable_for("http://127.0.0.1:4200/api")


def test_the_prefect_api_waits_out_a_429_over_kept_connections(server: str, seen: Seen) -> None:
    from tasks.adapters.prefect import PrefectApi
    from tasks.adapters.prefect_settings import connect

    seen.throttle = 2
    with PrefectApi(server, connection=connect(server, environ={})) as api:
        answer = api.call("GET", "variables/name/x", what="read a variable")
        assert answer.json() == {"path": "/api/variables/name/x", "body": None}
        assert api.retried == 2 and api.writes == 0
    assert [path for _, path, *_ in seen.requests] == ["/api/variables/name/x"] * 3


def test_the_prefect_api_over_plain_http_does_not_load_httpx(server: str) -> None:
    code = ("import sys; from tasks.adapters.prefect import PrefectApi; "
            "from tasks.adapters.prefect_settings import connect; "
            f"api = PrefectApi({server!r}, connection=connect({server!r}, environ={{}})); "
            "api.call('POST', 'work_pools/filter', {}, what='list'); api.http.close(); "
            "print(sorted(m for m in ('httpx', 'httpcore', 'h11', 'ssl', 'anyio') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
