"""How to reach a Prefect server, the way the `prefect` CLI decides it.

A setting comes from the environment when set there, else from the active
profile (`PREFECT_PROFILE`, else the `active` key of
`$PREFECT_PROFILES_PATH`, default `$PREFECT_HOME/profiles.toml`,
`PREFECT_HOME` defaulting to ~/.prefect). Read here: PREFECT_API_URL,
PREFECT_API_KEY (bearer, Prefect Cloud), PREFECT_API_AUTH_STRING (basic auth
of a self-hosted server), PREFECT_API_SSL_CERT_FILE,
PREFECT_API_TLS_INSECURE_SKIP_VERIFY and PREFECT_CLIENT_CSRF_SUPPORT_ENABLED.
An environment of pipeline.toml may name its own variables for the key or
the auth string (`api_key_env`, `auth_string_env`), so dev and prod need not
share one credential. Values are never printed.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasks.core.errors import ConfigError
from tasks.core.values import parse_toml

TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Connection:
    api_url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    verify: bool | str = True
    csrf: bool = True


def profile_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The active profile's settings, {} when there is no profiles file."""
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    file = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    if not file.is_file():
        return {}
    data = parse_toml(file.read_bytes(), str(file), fix="fix the Prefect profiles file")
    active = environ.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = data.get("profiles", {}).get(active, {})
    return {str(k): str(v) for k, v in profile.items()}


def setting(name: str, environ: Mapping[str, str], profile: Mapping[str, str]) -> str:
    return environ.get(name) or profile.get(name, "")


def connect(api_url: str | None, *, api_key_env: str | None = None, auth_string_env: str | None = None,
            fallback_auth: str | None = None, environ: Mapping[str, str] | None = None) -> Connection:
    """The connection for one environment: URL, auth header, TLS and CSRF as Prefect's client would use them."""
    env = os.environ if environ is None else environ
    profile = profile_settings(env)
    url = api_url or setting("PREFECT_API_URL", env, profile)
    if not url:
        raise ConfigError("no Prefect API URL: the environment has no prefect_api_url, and PREFECT_API_URL is not set "
                          "(nor in the active Prefect profile)", where="[environments.<name>] prefect_api_url",
                          fix="set prefect_api_url, or export PREFECT_API_URL (or `prefect profile use` one that has it)")
    headers = auth_header(env, profile, api_key_env, auth_string_env, fallback_auth)
    return Connection(api_url=url.rstrip("/"), headers=headers, verify=tls_verify(env, profile),
                      csrf=setting("PREFECT_CLIENT_CSRF_SUPPORT_ENABLED", env, profile).lower() not in ("0", "false", "no", "off"))


def auth_header(environ: Mapping[str, str], profile: Mapping[str, str], api_key_env: str | None,
                auth_string_env: str | None, fallback_auth: str | None) -> dict[str, str]:
    for variable in (api_key_env, auth_string_env):
        if variable and not environ.get(variable):
            raise ConfigError(f"the environment variable {variable} is not set", where=f"api_key_env / auth_string_env = {variable!r}",
                              fix=f"export {variable} with the credential for this environment")
    key = environ.get(api_key_env) if api_key_env else setting("PREFECT_API_KEY", environ, profile)
    if key and not auth_string_env:
        return {"Authorization": f"Bearer {key}"}
    auth = environ.get(auth_string_env) if auth_string_env else setting("PREFECT_API_AUTH_STRING", environ, profile)
    auth = auth or fallback_auth or ""
    if auth:
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}


def tls_verify(environ: Mapping[str, str], profile: Mapping[str, str]) -> bool | str:
    if setting("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", environ, profile).lower() in TRUE:
        return False
    cert = setting("PREFECT_API_SSL_CERT_FILE", environ, profile)
    if cert and not Path(cert).expanduser().is_file():
        raise ConfigError(f"PREFECT_API_SSL_CERT_FILE={cert} does not exist", where="PREFECT_API_SSL_CERT_FILE",
                          fix="point it at the CA bundle that signed the server's certificate")
    return str(Path(cert).expanduser()) if cert else True
