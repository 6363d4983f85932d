"""Redact secret values from any text before it is printed or logged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SECRET_ENV_VARS = (
    "TWINE_PASSWORD",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "FORKFLOW_REGISTRY_PASSWORD",
    "GITHUB_TOKEN",
    "FORK_SYNC_TOKEN",
)
MASK = "********"


def secret_values(environ: Mapping[str, str], names: Iterable[str] = SECRET_ENV_VARS) -> list[str]:
    """The values of the secret variables that are set (longest first, so overlaps mask fully)."""
    values = {environ[name] for name in names if environ.get(name)}
    return sorted(values, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
