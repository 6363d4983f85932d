"""Reaching a Prefect server the way the prefect CLI does: settings, profiles, credentials, TLS, bounded time."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tasks.adapters.prefect import PrefectApi
from tasks.adapters.prefect_settings import connect
from tasks.core.errors import ConfigError, ForkflowError


def basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


def test_the_environment_wins_over_the_active_profile(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text('active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://profile/api"\n'
                                            'PREFECT_API_AUTH_STRING = "p:q"\n[profiles.other]\nPREFECT_API_URL = "http://other/api"\n')
    home = {"PREFECT_HOME": str(tmp_path)}
    found = connect(None, environ=home)
    assert found.api_url == "http://profile/api" and found.headers == {"Authorization": basic("p:q")}
    assert connect(None, environ={**home, "PREFECT_PROFILE": "other"}).api_url == "http://other/api"
    assert connect(None, environ={**home, "PREFECT_API_URL": "http://env/api"}).api_url == "http://env/api"
    assert connect("http://config/api", environ=home).api_url == "http://config/api", "the config's URL wins"
    keyed = connect("http://x/api", environ={**home, "PREFECT_API_KEY": "key-4711"})
    assert keyed.headers == {"Authorization": "Bearer key-4711"}
    assert "4711" not in repr(keyed) and "p:q" not in repr(found), "credentials never in a repr"


def test_each_environment_may_name_its_own_credential() -> None:
    environ = {"PREFECT_API_KEY": "shared", "PROD_KEY": "prod-key", "STAGING_AUTH": "u:pw"}
    assert connect("http://x/api", api_key_env="PROD_KEY", environ=environ).headers == {"Authorization": "Bearer prod-key"}
    assert connect("http://x/api", auth_string_env="STAGING_AUTH", environ=environ).headers == {"Authorization": basic("u:pw")}
    with pytest.raises(ConfigError, match="the environment variable MISSING_KEY is not set"):
        connect("http://x/api", api_key_env="MISSING_KEY", environ=environ)


def test_no_url_anywhere_and_a_missing_cert_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Prefect API URL"):
        connect(None, environ={"PREFECT_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="PREFECT_API_SSL_CERT_FILE=/nowhere/ca.pem does not exist"):
        connect("https://x/api", environ={"PREFECT_API_SSL_CERT_FILE": "/nowhere/ca.pem"})
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-")
    assert connect("https://x/api", environ={"PREFECT_API_SSL_CERT_FILE": str(bundle)}).verify == str(bundle)
    assert connect("https://x/api", environ={"PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"}).verify is False


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A real listener that accepts connections and never answers: a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_hung_server_fails_within_the_total_time_with_a_clear_message(silent_server: str) -> None:
    connection = connect(silent_server, environ={})
    started = time.monotonic()
    with PrefectApi(silent_server, timeout=1.0, total_timeout=3.0, connection=connection) as api, \
            pytest.raises(ForkflowError, match=r"did not answer within 3 s \(could not read deployments"):
        api.read_deployments(name_like="x")
    assert time.monotonic() - started < 6


class Refusing(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"exception_message": "Invalid request received.", "exception_detail": [
            {"loc": ["body", "schedules", 0, "schedule", "cron"], "msg": "Value error, Invalid cron string", "type": "value_error"}],
            "request_body": {"secret": "do-not-show"}}).encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_422_is_shown_field_by_field_never_as_raw_json() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with PrefectApi(url, connection=connect(url, environ={})) as api, pytest.raises(ForkflowError) as caught:
            api.create_deployment({"name": "x"})
    finally:
        server.shutdown()
        server.server_close()
    message = str(caught.value)
    assert "HTTP 422: schedules.0.schedule.cron: Value error, Invalid cron string" in message
    assert "do-not-show" not in message and "{" not in message.split("HTTP 422")[1].split("\n", maxsplit=1)[0]


@pytest.mark.services
@pytest.mark.slow
def test_a_server_with_csrf_protection_gets_its_token(tmp_path: Path) -> None:
    from tests.conftest import running_prefect_server
    from tests.helpers import prefect_http

    server = running_prefect_server(tmp_path, {"PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true"}, pools=False)
    api = next(server)
    try:
        with prefect_http(api) as http:
            refused = http.post("flows/", json={"name": "without-token"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        with PrefectApi(api) as client:
            assert client.ensure_flow("with-token")
            assert set(client.csrf_headers or {}) == {"Prefect-Csrf-Token", "Prefect-Csrf-Client"}
    finally:
        server.close()


def test_prefect_toml_dotenv_and_custom_headers_in_the_flows_folder_are_read_as_prefect_reads_them(tmp_path: Path) -> None:
    """A URL and key in prefect.toml, the default pool in .env, custom headers: what Prefect's CLI uses there."""
    home = {"PREFECT_HOME": str(tmp_path / "home")}
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "prefect.toml").write_text('[api]\nurl = "http://toml.example/api"\nkey = "toml-key"\n'
                                        'tls_insecure_skip_verify = true\n'
                                        '[client]\ncustom_headers = {X-Team = "data", Authorization = "ignored"}\n')
    (flows / ".env").write_text("PREFECT_DEFAULT_WORK_POOL_NAME=from-dotenv\n")
    found = connect(None, environ=home, folder=flows)
    assert found.api_url == "http://toml.example/api"
    assert found.headers == {"X-Team": "data", "Authorization": "Bearer toml-key"}, "the credential wins over a header"
    assert found.default_work_pool == "from-dotenv" and found.verify is False, "TLS as prefect.toml says"
    assert connect(None, environ={**home, "PREFECT_API_URL": "http://env/api"}, folder=flows).api_url == "http://env/api"
    assert connect(None, environ={**home, "PREFECT_DEFAULT_WORK_POOL_NAME": "shell"}, folder=flows).default_work_pool == \
        "shell", "the environment wins over .env, as in Prefect"
    with pytest.raises(ConfigError, match="no Prefect API URL"):
        connect(None, environ=home, folder=tmp_path), "elsewhere, without the flows folder's prefect.toml"


def test_an_answer_without_secrets_of_its_own_is_remembered_and_never_holds_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that changes nothing starts no child; the file keeps no credential; a changed prefect.toml is read."""
    from tasks.adapters import prefect_settings

    flows, remember = tmp_path / "flows", tmp_path / "state" / "prefect-settings.json"
    flows.mkdir()
    (flows / "prefect.toml").write_text('[api]\nurl = "http://toml.example/api"\n')
    environ = {"PREFECT_HOME": str(tmp_path / "home"), "PREFECT_API_KEY": "key-in-the-env-4711"}
    first = connect(None, environ=environ, folder=flows, remember=remember)
    assert "4711" not in remember.read_text() and remember.is_file()
    children: list[Any] = []
    def counted(*args: Any) -> dict[str, Any]:
        children.append(args)
        return {}

    monkeypatch.setattr(prefect_settings, "read_settings", counted)
    assert connect(None, environ=environ, folder=flows, remember=remember) == first, "remembered: no child"
    assert children == [] and first.headers == {"Authorization": "Bearer key-in-the-env-4711"}
    (flows / "prefect.toml").write_text('[api]\nurl = "http://other.example/api"\nkey = "key-in-the-file-0815"\n')
    monkeypatch.undo()
    changed = connect(None, environ={"PREFECT_HOME": str(tmp_path / "home")}, folder=flows, remember=remember)
    assert changed.api_url == "http://other.example/api" and changed.headers == {"Authorization": "Bearer key-in-the-file-0815"}
    assert "0815" not in remember.read_text() and "other.example" not in remember.read_text(), \
        "a key from a file: not remembered at all"
