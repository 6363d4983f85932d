"""The registry adapter's HTTP exchanges that no local registry here makes: the token exchange of public
registries (Docker Hub answers 401 with a Bearer challenge). Served by httpx's MockTransport."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tasks.adapters import emulation, registry

INDEX = {"schemaVersion": 2, "mediaType": registry.DOCKER_INDEX, "manifests": [
    {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
]}


def token_registry(seen: list[httpx.Request], username: str | None = None) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.example":
            if username:
                expected = "Basic " + base64.b64encode(f"{username}:secret".encode()).decode()
                assert request.headers.get("Authorization") == expected
            assert request.url.params["scope"] == "repository:library/python:pull"
            return httpx.Response(200, json={"token": "T0KEN"})
        if request.headers.get("Authorization") != "Bearer T0KEN":
            challenge = 'Bearer realm="https://auth.example/token",service="registry.example",' \
                        'scope="repository:library/python:pull"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, content=json.dumps(INDEX).encode(), headers={
            "Content-Type": registry.DOCKER_INDEX, "Docker-Content-Digest": "sha256:index"})
    return httpx.MockTransport(answer)


@pytest.mark.parametrize("username", [None, "robot"])
def test_a_bearer_challenge_is_answered_with_a_token_once(monkeypatch: pytest.MonkeyPatch, username: str | None) -> None:
    seen: list[httpx.Request] = []
    real = httpx.Client

    def client(*args: Any, **kwargs: Any) -> httpx.Client:
        return real(*args, transport=token_registry(seen, username), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    auth = {"username": username, "password": "secret"} if username else None

    found = registry.platform_images("registry.example", "library/python", "3.11-slim", auth)

    assert found == {"linux/amd64": "sha256:amd", "linux/arm64/v8": "sha256:arm", "unknown/unknown": "sha256:att"}
    assert [r.url.host for r in seen] == ["registry.example", "auth.example", "registry.example"]
    assert all("secret" not in str(r.url) for r in seen), "credentials travel in headers only"


def test_platform_names_come_from_the_index_entries() -> None:
    assert [registry.platform_of(m) for m in INDEX["manifests"]] == ["linux/amd64", "linux/arm64/v8", "unknown/unknown"]


def test_emulation_is_read_from_binfmt_misc(tmp_path: Any) -> None:
    assert not emulation.registered("aarch64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    (tmp_path / "qemu-riscv64").write_text("disabled\n")
    assert emulation.registered("aarch64", tmp_path)
    assert not emulation.registered("riscv64", tmp_path)
