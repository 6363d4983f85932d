"""The validated config, remembered: a start whose pipeline.toml, forkflow code, Python and pydantic are those of
an earlier start takes the validated values from `<state folder>/config-cache.json` as plain objects
(`tasks.core.config_plain`) and imports no pydantic.

Validation reads nothing but the file's text (no environment variable, no other file), so the text, the file's
path and what the validators are made of (every module under tasks/ by size and modification time, the Python
version and pydantic's own files) decide whether a remembered result holds. Anything else, a missing, torn or
foreign cache file included, means a full validation, which writes the cache again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tasks.core.config_plain import from_tree, plain_tree, section_kind

if TYPE_CHECKING:
    from tasks.core.config import Config

CACHE_FILE = "config-cache.json"
FORMAT = 1
TASKS_FOLDER = Path(__file__).resolve().parents[1]


def remembered_config(cache: Path, config_file: Path, text: str) -> Config | None:
    """The config validated from this very text by this very code, as plain objects; None when not known."""
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept.get("key") != cache_key(config_file, text):
            return None
        config = from_tree(kept["config"])
        # the attributes, dumps and repr of the Config it came from
        return cast("Config", config) if section_kind(config) == "Config" else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def remember_config(cache: Path, config_file: Path, text: str, config: Config) -> None:
    """Keep a validated config for the next start; a config that cannot be kept, or a state folder that cannot be
    written (a read-only checkout), only means the next start validates again."""
    from tasks.pipeline.credentials import write_private

    temp = cache.with_name(f".{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        data = {"key": cache_key(config_file, text), "config": plain_tree(config)}
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_private(temp, json.dumps(data) + "\n")  # the config's values, readable by its owner only
        temp.replace(cache)  # no reader sees half of it
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            temp.unlink()


def cache_key(config_file: Path, text: str) -> dict[str, Any]:
    return {"format": FORMAT, "file": str(config_file), "text": text, "code": code_stamp(),
            "python": sys.version, "pydantic": pydantic_stamp()}


def code_stamp() -> list[list[Any]]:
    """Every module under tasks/ by path, size and modification time: any edit, checkout or install of forkflow
    changes it."""
    found: list[list[Any]] = []
    folders = [str(TASKS_FOLDER)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                if entry.is_dir() and entry.name != "__pycache__":
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    status = entry.stat()
                    found.append([entry.path.removeprefix(f"{TASKS_FOLDER}/"), status.st_size, status.st_mtime_ns])
    return found


def pydantic_stamp() -> list[Any]:
    """pydantic's installed files (its version module's size and modification time), found without importing it."""
    from importlib.util import find_spec

    spec = find_spec("pydantic")
    if spec is None or spec.origin is None:
        return []
    status = Path(spec.origin).with_name("version.py").stat()
    return [spec.origin, status.st_size, status.st_mtime_ns]
