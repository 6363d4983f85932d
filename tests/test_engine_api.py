"""The Docker engine's API over its socket (tasks.adapters.engine_api), against a real HTTP server on a unix socket."""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tasks.adapters.engine_api import EngineApi, from_env

REPO = Path(__file__).resolve().parent.parent


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str):
        self.connections = 0
        self.paths: list[str] = []
        self.close_after_each = False
        super().__init__(path, handler(self))


def handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            engine.connections += 1

        def address_string(self) -> str:
            return "engine"

        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            engine.paths.append(self.path)
            if self.path == "/_ping":
                self.reply(b"OK", "text/plain; charset=utf-8")
            elif self.path.startswith("/images/json"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                body = json.dumps([{"Id": "sha256:1", "Labels": {"a": "b"}}]).encode()
                for part in (body[:10], body[10:]):
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.reply(json.dumps({"message": "No such image"}).encode(), "application/json", 404)
            self.close_connection = engine.close_after_each  # closed without a word, as an engine closes an idle one

        def reply(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    server = Engine(str(tmp_path / "docker.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def api_of(engine: Engine) -> EngineApi:
    found = from_env({"DOCKER_HOST": f"unix://{engine.server_address}"}, timeout=5)
    assert found is not None
    return found


def test_answers_come_back_as_json_or_text_over_one_connection(engine: Engine) -> None:
    api = api_of(engine)
    assert (api.get("/_ping").status, api.get("/_ping").body) == (200, "OK")
    listed = api.get("/images/json", {"filters": json.dumps({"label": ["a=b"]})})
    assert listed.body == [{"Id": "sha256:1", "Labels": {"a": "b"}}]
    missing = api.get("/images/nothing/json")
    assert (missing.status, missing.body) == (404, {"message": "No such image"})
    api.close()
    assert engine.connections == 1
    assert engine.paths[2] == "/images/json?filters=%7B%22label%22%3A+%5B%22a%3Db%22%5D%7D"


def test_a_connection_the_engine_closed_is_replaced(engine: Engine) -> None:
    engine.close_after_each = True
    api = api_of(engine)
    assert [api.get("/_ping").body for _ in range(3)] == ["OK"] * 3
    api.close()
    assert engine.paths == ["/_ping"] * 3  # each asked once: none lost, none twice
    assert engine.connections == 3


def test_no_engine_is_an_oserror_and_tls_engines_are_left_to_the_sdk(tmp_path: Path) -> None:
    api = from_env({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}, timeout=2)
    assert api is not None
    with pytest.raises(OSError):
        api.get("/_ping")
    assert from_env({"DOCKER_HOST": "tcp://engine:2376", "DOCKER_TLS_VERIFY": "1"}) is None
    assert from_env({"DOCKER_HOST": "ssh://me@engine"}) is None
    tcp = from_env({"DOCKER_HOST": "tcp://engine:2375"})
    assert tcp is not None and (tcp.address, tcp.unix) == ("engine:2375", False)


def test_asking_the_engine_loads_neither_http_client_nor_ssl(engine: Engine) -> None:
    code = ("import sys; from tasks.adapters.engine_api import from_env; "
            f"api = from_env({{'DOCKER_HOST': 'unix://{engine.server_address}'}}); "
            "assert api.get('/_ping').body == 'OK'; "
            "print(sorted(m for m in ('http.client', 'ssl', 'email.parser', 'encodings.idna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
