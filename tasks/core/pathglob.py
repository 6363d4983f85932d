"""Path globs as pipeline.toml writes them: `*` and `?` within one folder name, `**` any number of folders."""

from __future__ import annotations

import re

GLOB_CHARS = re.compile(r"[*?]")


def is_glob(pattern: str) -> bool:
    return bool(GLOB_CHARS.search(pattern))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`a/**/prefect.yaml` matches a/prefect.yaml and a/b/c/prefect.yaml; `*.yaml` never crosses a `/`."""
    parts = []
    segments = pattern.strip("/").split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        text = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment)
        parts.append(text if last else text + "/")
    return re.compile("".join(parts) + r"\Z")


def matches(pattern: str, path: str) -> bool:
    """Whether the relative POSIX `path` matches `pattern`."""
    return bool(glob_regex(pattern.removeprefix("./")).match(path))
