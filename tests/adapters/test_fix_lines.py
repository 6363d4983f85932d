"""Fix lines that fix: a 401/403 names the credentials variables, a 5xx says it is the server's failure and that
running again is safe. The index, registry and Prefect server answering those statuses are played by a small
HTTP server in this process (a real index's 5xx cannot be caused on purpose); the local pypiserver's own 403 is
covered by tests/test_publish.py."""

from __future__ import annotations

import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasks.adapters import index, registry
from tasks.adapters.docker import registry_error
from tasks.adapters.prefect import api_error
from tasks.core.errors import ForkflowError
from tasks.core.secrets import Credentials


class Answering(http.server.BaseHTTPRequestHandler):
    """Answers every request with `status`; remembers the Authorization headers it got."""

    status = 500
    authorizations: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer()

    def answer(self) -> None:
        self.authorizations.append(self.headers.get("Authorization", ""))
        body = b"{}"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    found = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    thread = threading.Thread(target=found.serve_forever, daemon=True)
    thread.start()
    Answering.authorizations = []
    try:
        yield f"127.0.0.1:{found.server_address[1]}"
    finally:
        found.shutdown()
        found.server_close()


def index_failure(url: str, status: int) -> index.IndexError_:
    Answering.status = status
    with pytest.raises(index.IndexError_) as caught:
        index.remote_files(url, "orbit")
    return caught.value


@pytest.mark.parametrize("status", [401, 403])
def test_an_index_refusing_a_read_names_the_credentials_variables(server: str, status: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINE_USERNAME", "reader")
    monkeypatch.setenv("TWINE_PASSWORD", "Read-Secret-1")
    err = index_failure(f"http://{server}", status)
    assert isinstance(err, index.AuthError)
    assert f"answered {status}" in err.what and "TWINE_USERNAME / TWINE_PASSWORD" in str(err.fix)
    assert "refused the credentials" in str(err.fix) and "check [index] url" not in str(err)
    assert "Read-Secret-1" not in str(err)
    assert Answering.authorizations[0].startswith("Basic "), "reads send TWINE_USERNAME / TWINE_PASSWORD"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_an_index_failing_says_it_is_the_servers_failure_and_a_rerun_is_safe(server: str, status: int) -> None:
    err = index_failure(f"http://{server}", status)
    assert isinstance(err, index.TransientIndexError)
    assert f"failed on its side (HTTP {status})" in str(err.fix) and "running again is safe" in str(err.fix)
    assert err.where == f"[index] url = 'http://{server}'"


@pytest.mark.parametrize(("status", "words"), [(401, "TWINE_USERNAME / TWINE_PASSWORD"), (500, "running again is safe")])
def test_an_upload_answered_so_says_the_same(server: str, tmp_path: Path, status: int, words: str) -> None:
    Answering.status = status
    wheel = tiny_wheel(tmp_path)
    with pytest.raises(index.IndexError_) as caught:
        index.upload(f"http://{server}", wheel, Credentials("uploader", "Upload-Secret-2"))
    assert words in str(caught.value.fix) and "Upload-Secret-2" not in str(caught.value)


def test_an_upload_without_credentials_names_the_variables(server: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWINE_USERNAME", raising=False)
    monkeypatch.delenv("TWINE_PASSWORD", raising=False)
    with pytest.raises(index.AuthError) as caught:
        index.upload(f"http://{server}", tiny_wheel(tmp_path), None)
    assert "TWINE_USERNAME / TWINE_PASSWORD" in str(caught.value.fix)


def tiny_wheel(folder: Path) -> Path:
    """The smallest wheel twine uploads: a module and its metadata."""
    wheel = folder / "orbit-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("orbit/__init__.py", "")
        archive.writestr("orbit-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: orbit\nVersion: 1.0\n")
        archive.writestr("orbit-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("orbit-1.0.dist-info/RECORD", "")
    return wheel


@pytest.mark.parametrize(("status", "words"), [(401, "FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD"),
                                               (403, "FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD"),
                                               (500, "running again is safe"), (503, "failed on its side")])
def test_a_registry_answering_so_says_what_to_do(server: str, status: int, words: str) -> None:
    Answering.status = status
    with pytest.raises(ForkflowError) as caught:
        registry.platform_images(server, "library/python", "3.11-slim", None)
    assert words in str(caught.value.fix) and caught.value.where == f"[images] registry = {server!r}"


def test_a_push_failing_on_the_registry_says_so() -> None:
    assert "running again is safe" in str(registry_error("r:5000", "received unexpected HTTP status: 500 Internal Server Error").fix)
    assert "FORKFLOW_REGISTRY_USERNAME" in str(registry_error("r:5000", "denied: requested access to the resource is denied").fix)


@pytest.mark.parametrize(("status", "words"), [(401, "PREFECT_API_KEY or PREFECT_API_AUTH_STRING"),
                                               (403, "PREFECT_API_KEY or PREFECT_API_AUTH_STRING"),
                                               (500, "running again is safe"), (422, "correct it in the deployment config")])
def test_a_prefect_server_answering_so_says_what_to_do(status: int, words: str) -> None:
    response = httpx.Response(status, json={"detail": "no"}, request=httpx.Request("POST", "http://127.0.0.1:9/api/deployments/"))
    assert words in str(api_error("create deployment", "x", response).fix)
