"""How to reach a Prefect server, the way the `prefect` CLI decides it.

Prefect's own settings objects decide, read in a child process started in
the folder `prefect deploy` would run in (the flows folder), with the
environment given: environment variables, `.env` and `prefect.toml` of that
folder, `[tool.prefect]` of its pyproject.toml, and the active profile
(`PREFECT_PROFILE`, else the `active` key of the profiles file), in Prefect's
order. Read here: the API URL, PREFECT_API_KEY (bearer, Prefect Cloud),
PREFECT_API_AUTH_STRING (basic auth of a self-hosted server), the TLS
settings, CSRF support, custom client headers and the default work pool
(PREFECT_DEFAULT_WORK_POOL_NAME). A child process, because Prefect reads
those files relative to the working directory and the process environment:
changing either in forkflow's own process would race its other threads.
An environment of pipeline.toml may name its own variables for the key or
the auth string (`api_key_env`, `auth_string_env`), so dev and prod need not
share one credential. Values are never printed, never in argv.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.core.errors import ConfigError, ForkflowError

# the settings a connection needs, as Prefect's settings objects give them (secrets only on the pipe)
READ_SETTINGS = """
import json
from prefect.settings.models.root import Settings
s = Settings()
secret = lambda value: value.get_secret_value() if value is not None else None
print(json.dumps({
    "api_url": s.api.url, "api_key": secret(s.api.key), "auth_string": secret(s.api.auth_string),
    "ssl_cert_file": s.api.ssl_cert_file if "ssl_cert_file" in s.api.model_fields_set else None,
    "tls_insecure_skip_verify": s.api.tls_insecure_skip_verify, "csrf": s.client.csrf_support_enabled,
    "custom_headers": s.client.custom_headers, "default_work_pool": s.deployments.default_work_pool_name,
}))
"""


@dataclass(frozen=True)
class Connection:
    api_url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    verify: bool | str = True
    csrf: bool = True
    default_work_pool: str | None = None


def prefect_settings(folder: Path | None, environ: Mapping[str, str], remember: Path | None = None) -> dict[str, Any]:
    """What Prefect's settings say in `folder` (default: the current one) with `environ` as the environment.
    With `remember` (a file in the state folder), an answer that holds no secret of its own is kept there,
    keyed by a digest of everything Prefect reads, so a run that changes nothing starts no child."""
    where = folder if folder is not None and folder.is_dir() else Path.cwd()  # a flows folder not cloned yet
    key = settings_key(where, environ) if remember is not None else None
    kept = remembered_settings(remember, key, environ)
    if kept is not None:
        return kept
    found = dict(read_settings(str(where), tuple(sorted(environ.items()))))
    if remember is not None and key is not None:
        remember_settings(remember, key, found, environ)
    return found


SECRETS = {"api_key": "PREFECT_API_KEY", "auth_string": "PREFECT_API_AUTH_STRING"}
SETTINGS_FILES = (".env", "prefect.toml", "pyproject.toml")


def settings_key(folder: Path, environ: Mapping[str, str]) -> str | None:
    """A digest of what Prefect's settings are read from; None when it cannot be told (a profiles path set in a
    file of the folder)."""
    import hashlib
    from importlib.metadata import version

    texts = [(folder / name).read_bytes() if (folder / name).is_file() else b"-" for name in SETTINGS_FILES]
    if any(b"profiles_path" in text.lower() or b"PREFECT_HOME" in text for text in texts):
        return None
    home = Path(environ.get("PREFECT_HOME") or Path(environ.get("HOME") or Path.home()) / ".prefect").expanduser()
    profiles = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    digest = hashlib.sha256(f"{version('prefect')}\0{folder}\0".encode())
    for name, value in sorted(environ.items()):
        if name.startswith("PREFECT_") or name in ("SSL_CERT_FILE", "HOME"):
            digest.update(f"{name}={hashlib.sha256(value.encode()).hexdigest()}\0".encode())
    for text in (*texts, profiles.read_bytes() if profiles.is_file() else b"-"):
        digest.update(hashlib.sha256(text).digest())
    return digest.hexdigest()


def remembered_settings(file: Path | None, key: str | None, environ: Mapping[str, str]) -> dict[str, Any] | None:
    if file is None or key is None or not file.is_file():
        return None
    try:
        kept = json.loads(file.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None  # a damaged file costs one child, nothing else
    if not isinstance(kept, dict):
        return None
    secrets = {name: environ.get(variable) if kept.pop(f"{name}_from_environment", False) else None
               for name, variable in SECRETS.items()}
    return {**kept, **secrets, "custom_headers": {}}


def remember_settings(file: Path, key: str, found: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Only answers whose secrets come from the environment (read again from there) and that have no custom
    headers (which may carry credentials) are kept: the file never holds a secret."""
    if found.get("custom_headers"):
        return
    kept = {name: value for name, value in found.items() if name not in SECRETS and name != "custom_headers"}
    for name, variable in SECRETS.items():
        if found.get(name) and found[name] != environ.get(variable):
            return
        kept[f"{name}_from_environment"] = bool(found.get(name))
    try:
        saved = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.{os.getpid()}")
    try:
        temporary.write_text(json.dumps({**dict(list(saved.items())[-15:]), key: kept}), encoding="utf-8")
        temporary.replace(file)
    except OSError:  # a cache: a full disk costs one child next time, and leaves no half-written file
        temporary.unlink(missing_ok=True)


def read_settings(folder: str, environ: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Prefect's own reading of its settings, once per folder and environment in a process: a read that another
    thread started first (a run reads them early, see tasks.early) is waited for, not made again."""
    with SETTINGS_READ:
        return read_settings_once(folder, environ)


SETTINGS_READ = threading.Lock()


@functools.lru_cache(maxsize=32)
def read_settings_once(folder: str, environ: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", READ_SETTINGS], cwd=folder, env=dict(environ), capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ForkflowError(f"Prefect could not read its settings in {folder}: {lines[-1] if lines else done.returncode}",
                            where=f"{folder}: prefect.toml, .env, pyproject.toml [tool.prefect], the Prefect profile",
                            fix="correct the setting Prefect names (`prefect config view` there shows them)")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def connect(api_url: str | None, *, api_key_env: str | None = None, auth_string_env: str | None = None,
            fallback_auth: str | None = None, environ: Mapping[str, str] | None = None,
            folder: Path | None = None, remember: Path | None = None) -> Connection:
    """The connection for one environment: URL, headers, TLS and CSRF as Prefect's client would use them."""
    env = os.environ if environ is None else environ
    found = prefect_settings(folder, env, remember)
    url = api_url or found["api_url"]
    if not url:
        raise ConfigError("no Prefect API URL: the environment has no prefect_api_url, and Prefect's settings have none "
                          "(PREFECT_API_URL, prefect.toml, .env, the active Prefect profile)",
                          where="[environments.<name>] prefect_api_url",
                          fix="set prefect_api_url, or export PREFECT_API_URL (or `prefect profile use` one that has it)")
    headers = {**{str(k): str(v) for k, v in (found["custom_headers"] or {}).items()},
               **auth_header(env, found, api_key_env, auth_string_env, fallback_auth)}
    return Connection(api_url=str(url).rstrip("/"), headers=headers, verify=tls_verify(found), csrf=bool(found["csrf"]),
                      default_work_pool=found["default_work_pool"] or None)


def auth_header(environ: Mapping[str, str], found: Mapping[str, Any], api_key_env: str | None,
                auth_string_env: str | None, fallback_auth: str | None) -> dict[str, str]:
    for variable in (api_key_env, auth_string_env):
        if variable and not environ.get(variable):
            raise ConfigError(f"the environment variable {variable} is not set", where=f"api_key_env / auth_string_env = {variable!r}",
                              fix=f"export {variable} with the credential for this environment")
    key = environ.get(api_key_env) if api_key_env else found["api_key"]
    if key and not auth_string_env:
        return {"Authorization": f"Bearer {key}"}
    auth = environ.get(auth_string_env) if auth_string_env else found["auth_string"]
    auth = auth or fallback_auth or ""
    if auth:
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}


def tls_verify(found: Mapping[str, Any]) -> bool | str:
    if found["tls_insecure_skip_verify"]:
        return False
    cert = found["ssl_cert_file"]
    if cert and not Path(cert).expanduser().is_file():
        raise ConfigError(f"PREFECT_API_SSL_CERT_FILE={cert} does not exist", where="PREFECT_API_SSL_CERT_FILE",
                          fix="point it at the CA bundle that signed the server's certificate")
    return str(Path(cert).expanduser()) if cert else True
