"""Redact secret values from any text before it is printed or logged."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SECRET_ENV_VARS = (
    "TWINE_PASSWORD",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "FORKFLOW_REGISTRY_PASSWORD",
    "GITHUB_TOKEN",
    "FORK_SYNC_TOKEN",
    "FORK_READ_TOKEN",
    "FORK_GITHUB_TOKEN",
    "GH_TOKEN",
)
MASK = "********"


def secret_values(environ: Mapping[str, str], names: Iterable[str] = SECRET_ENV_VARS) -> list[str]:
    """The values of the secret variables that are set (longest first, so overlaps mask fully)."""
    values = {environ[name] for name in names if environ.get(name)}
    return sorted(values, key=len, reverse=True)


URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@'\"]+)(?::(?P<password>[^/\s@'\"]*))?@")


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in text, and credentials written into URLs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return mask_urls(text)


def mask_urls(text: str) -> str:
    """`https://user:pw@host` -> `https://user:********@host`; a lone token (`https://tok@host`) is masked
    whole, except over ssh, where it is a user name (`ssh://git@host`)."""

    def hide(match: re.Match[str]) -> str:
        if match.group("password") is None and "ssh" in match.group("scheme").lower():
            return match.group(0)
        if match.group("password") is not None:
            return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
        return f"{match.group('scheme')}{MASK}@"

    return URL_CREDENTIALS.sub(hide, text)


@dataclass(frozen=True)
class Credentials:
    """A username and a password; the password never shows in a repr."""

    username: str
    password: str = field(repr=False)
