"""The registry adapter's exchanges that the local docker-registry does not make: the token exchange of
public registries (Docker Hub answers 401 with a Bearer challenge) and a redirect to blob storage on another
host. Served by a small HTTP server in this process that answers as those registries do."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.adapters import emulation, registry
from tasks.core.errors import ForkflowError

INDEX: dict[str, Any] = {"schemaVersion": 2, "mediaType": registry.DOCKER_INDEX, "manifests": [
    {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
]}


class TokenRegistry(http.server.BaseHTTPRequestHandler):
    """/v2/ wants a Bearer token from /token (given for robot:secret, or anonymously when `anonymous`)."""

    seen: list[tuple[str, str]] = []
    anonymous = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.path.startswith("/token"):
            basic = "Basic " + base64.b64encode(b"robot:secret").decode()
            if "scope=repository%3Alibrary%2Fpython%3Apull" not in self.path or \
                    not (self.anonymous or self.headers.get("Authorization") == basic):
                return self.answer(401, b"{}")
            return self.answer(200, b'{"token": "T0KEN"}')
        if self.headers.get("Authorization") != "Bearer T0KEN":
            realm = f"http://{self.headers['Host']}/token"
            return self.answer(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry.example",'
                                                                 'scope="repository:library/python:pull"'})
        if self.path == "/v2/library/python/manifests/moved":
            return self.answer(307, b"", {"Location": "/v2/library/python/manifests/3.11-slim"})
        return self.answer(200, json.dumps(INDEX).encode(), {"Content-Type": registry.DOCKER_INDEX,
                                                             "Docker-Content-Digest": "sha256:index"})

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_registry() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    TokenRegistry.seen = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("username", [None, "robot"])
def test_a_bearer_challenge_is_answered_with_a_token_once(token_registry: str, username: str | None) -> None:
    TokenRegistry.anonymous = username is None
    auth = {"username": username, "password": "secret"} if username else None

    found = registry.platform_images(token_registry, "library/python", "3.11-slim", auth)
    again = registry.platform_images(token_registry, "library/python", "moved", auth)

    assert found == again == {"linux/amd64": "sha256:amd", "linux/arm64/v8": "sha256:arm",
                              "unknown/unknown": "sha256:att"}
    paths = [path.split("?")[0] for path, _ in TokenRegistry.seen]
    assert paths[:3] == ["/v2/library/python/manifests/3.11-slim", "/token", "/v2/library/python/manifests/3.11-slim"]
    assert all("secret" not in path for path, _ in TokenRegistry.seen), "credentials travel in headers only"


def test_a_token_service_that_refuses_says_so(token_registry: str) -> None:
    TokenRegistry.anonymous = False
    with pytest.raises(ForkflowError) as caught:
        registry.platform_images(token_registry, "library/python", "3.11-slim", {"username": "x", "password": "y"})
    assert f"its token service http://{token_registry}/token answered 401" in caught.value.what


def test_a_registry_that_is_not_there_is_unreachable() -> None:
    from tests.image_helpers import unused_registry

    with pytest.raises(registry.RegistryUnreachable):
        registry.platform_images(unused_registry(), "library/python", "3.11-slim", None)


def test_platform_names_come_from_the_index_entries() -> None:
    assert [registry.platform_of(m) for m in INDEX["manifests"]] == ["linux/amd64", "linux/arm64/v8", "unknown/unknown"]


def test_emulation_is_read_from_binfmt_misc(tmp_path: Any) -> None:
    assert not emulation.registered("aarch64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    (tmp_path / "qemu-riscv64").write_text("disabled\n")
    assert emulation.registered("aarch64", tmp_path)
    assert not emulation.registered("riscv64", tmp_path)
