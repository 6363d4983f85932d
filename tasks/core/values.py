"""Checks of single config values: URLs, git ref names, paths; and the merge of nested mappings."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import PurePosixPath
from typing import Any

from tasks.core.errors import ConfigError


def http_url(value: str | None) -> str | None:
    """An http(s) URL with a host and, when given, a port in 1-65535; ValueError naming what is wrong."""
    if value is None:
        return value
    if any(character.isspace() for character in value):
        raise ValueError("a URL cannot contain spaces")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    host = parts.hostname or ""
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9a-fA-F:.]+", host) or ".." in host:
        raise ValueError(f"has no valid host ({host or 'none'}); e.g. http://127.0.0.1:4201/api")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("its port must be a number in 1-65535") from None
    if port == 0:
        raise ValueError("its port must be a number in 1-65535")
    return value


REF_FORBIDDEN = re.compile(r"\.\.|//|@\{|[\x00-\x20\x7f~^:\\]")


def ref_problem(name: str, glob: bool = False) -> str | None:
    """Why `name` is not a branch name git accepts (git check-ref-format), or None; `glob` allows * ? [ ]."""
    if not name:
        return "a branch name cannot be empty"
    if REF_FORBIDDEN.search(name) or (not glob and re.search(r"[*?\[]", name)):
        return "not a valid git branch name (no '..', '//', '@{', spaces, ~ ^ : \\" + ("" if glob else " * ? [") + ")"
    if name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")) or name == "@":
        return "not a valid git branch name (cannot start with '-' or '/', nor end with '/', '.' or '.lock')"
    if any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        return "not a valid git branch name (no part may start with '.' or end with '.lock')"
    return None


def branch_name(value: str, glob: bool = False) -> str:
    problem = ref_problem(value, glob)
    if problem:
        raise ValueError(problem)
    return value


def distinct(value: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not value:
        raise ValueError(f"needs at least one {what}")
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repeated)} more than once")
    return value


def is_local_path(remote: str) -> bool:
    """True for a filesystem path, False for a URL or scp-like remote (git@host:repo)."""
    if "://" in remote:
        return remote.startswith("file://")
    return not re.match(r"^[\w.-]+@[\w.-]+:", remote)


def is_under(path: PurePosixPath, folder: PurePosixPath) -> bool:
    return path == folder or folder in path.parents


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_toml(data: str | bytes, source: str, fix: str = "fix the syntax at the line and column given") -> dict[str, Any]:
    """TOML text (or UTF-8 bytes) as a mapping, or a ConfigError naming `source`, the line and the column."""
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: not valid TOML: {err}", where=source, fix=fix) from None


def sha256_hex(data: str | bytes) -> str:
    """The SHA-256 of text (as UTF-8) or bytes, in hex."""
    import hashlib

    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()
