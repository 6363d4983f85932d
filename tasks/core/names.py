"""Comma-separated choices given on a command line or in an environment variable."""

from __future__ import annotations

from collections.abc import Iterable


def split_names(text: str) -> list[str]:
    """`"a, b,,c"` -> `["a", "b", "c"]`."""
    return [part.strip() for part in text.split(",") if part.strip()]


def unknown_names(names: Iterable[str], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [name for name in names if name not in allowed]
