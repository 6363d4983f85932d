"""The loaded pipeline: config file, resolved paths, state folders, reports.

`settings()` reads pipeline.toml once per process (from `FORKFLOW_CONFIG` or
the repo root), validates it, and checks that the paths it names exist,
except those the pipeline itself creates (the fork clone made by `sync`, the
demo workspace made by `demo`).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tasks.adapters import limits
from tasks.core.config_plain import declared_paths
from tasks.core.errors import ConfigError
from tasks.core.values import is_under, parse_toml
from tasks.pipeline.config_cache import CACHE_FILE, remember_config, remembered_config

if TYPE_CHECKING:
    from tasks.core.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "FORKFLOW_CONFIG"


@dataclass(frozen=True)
class Settings:
    """The validated config plus the folders it implies."""

    config: Config
    config_file: Path

    @property
    def root(self) -> Path:
        return self.config_file.parent

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return resolved(self.root, value)

    @property
    def state_dir(self) -> Path:
        return self.path(self.config.state_dir)

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def services_dir(self) -> Path:
        return self.state_dir / "services"

    @property
    def demo_workspace(self) -> Path | None:
        return self.path(self.config.demo.workspace) if self.config.demo else None

    @property
    def fork_path(self) -> Path | None:
        return self.path(self.config.fork.path) if self.config.fork else None

    def remote(self, value: str) -> str:
        """A git remote from the config: URLs unchanged, local paths made absolute."""
        from tasks.core.values import is_local_path

        if is_local_path(value) and not value.startswith("file://"):
            return str(self.path(value))
        return value


@functools.lru_cache(maxsize=256)
def resolved(root: Path, value: str) -> Path:
    """root / value made absolute, symlinks resolved: once per process (a no-op run asks for the state folder
    hundreds of times, and each resolve walks the path with system calls)."""
    return (root / value).resolve()


def config_path() -> Path:
    """The config file in use: $FORKFLOW_CONFIG, else pipeline.toml at the repo root."""
    chosen = os.environ.get(CONFIG_ENV)
    return Path(chosen).resolve() if chosen else REPO_ROOT / "pipeline.toml"


@functools.cache
def settings() -> Settings:
    """Load and validate the config once per process."""
    return load_settings(config_path())


def load_settings(file: Path) -> Settings:
    if not file.is_file():
        raise ConfigError(
            f"config file not found: {file}",
            where=f"{CONFIG_ENV}={os.environ.get(CONFIG_ENV, '')!r}" if os.environ.get(CONFIG_ENV) else str(file),
            fix=f"create it, or point {CONFIG_ENV} at an existing pipeline.toml",
        )
    text = file.read_text(encoding="utf-8")
    config, cache = read_config(file, text)
    result = Settings(config=config, config_file=file)
    check_paths(result)
    if cache:  # only a config that passed every check, so a bad one still creates nothing
        remember_config(cache, file, text, config)
    limits.configure(limits.Limits(**config.timeouts.model_dump()))
    return result


def read_config(file: Path, text: str) -> tuple[Config, Path | None]:
    """The validated config of a file's text: remembered from an earlier start of the same text and code, else
    validated; and the cache file to remember a newly validated one in (None when it was remembered)."""
    data = parse_toml(text, str(file))
    state_dir = data.get("state_dir", ".forkflow")
    cache = resolved(file.parent, state_dir) / CACHE_FILE if isinstance(state_dir, str) and state_dir.strip() else None
    config = remembered_config(cache, file, text) if cache else None
    if config is not None:
        return config, None
    from tasks.core.config import parse_config

    config = parse_config(data, str(file))
    return config, cache if cache and resolved(file.parent, config.state_dir) / CACHE_FILE == cache else None


def check_paths(result: Settings) -> None:
    """Every configured path exists, unless the pipeline creates it."""
    created_by_us = [p for p in (result.fork_path, result.demo_workspace) if p]
    missing = []
    for key, value in declared_paths(result.config).items():
        resolved = Path(value.removeprefix("file://")) if value.startswith("file://") else result.path(value)
        if any(is_under(PurePosixPath(resolved), PurePosixPath(folder)) for folder in created_by_us):
            continue
        if not resolved.exists():
            missing.append(f"  - {key} = {value!r}: no such file or folder ({resolved})")
    if missing:
        raise ConfigError(
            f"{result.config_file}: configured paths do not exist\n" + "\n".join(missing),
            where=str(result.config_file),
            fix="paths are relative to the config file's folder; correct them or create what they name",
        )


def write_report(stage: str, data: dict[str, Any], target: Settings | None = None) -> Path:
    """Write .forkflow/reports/<stage>.json atomically and return its path."""
    from tasks.core.secrets import mask, secret_values

    final = (target or settings()).reports_dir / f"{stage}.json"
    text = json_text(data)
    masked = mask(text, secret_values(os.environ))
    if masked != text:
        json.loads(masked)  # a secret masked inside JSON's own punctuation would leave a report no one can read
    write_text_atomically(final, masked + "\n")
    return final


def write_failed_report(stage: str, error: Exception, data: dict[str, Any], target: Settings | None = None) -> Path:
    """A failed run's report: what it got to (items not done are `failed`) and the error, never the last good run."""
    return write_report(stage, {**data, "status": "failed", "error": str(error)}, target)


def read_report(stage: str, target: Settings | None = None) -> dict[str, Any] | None:
    return read_json((target or settings()).reports_dir / f"{stage}.json")


_seen: dict[tuple[Path, Callable[[Path], Any]], tuple[tuple[int, int, int], Any]] = {}


def read_json_text(file: Path) -> Any:
    return json.loads(file.read_text(encoding="utf-8"))


def parsed_once(file: Path, parse: Callable[[Path], Any] = read_json_text) -> Any:
    """A file (JSON unless `parse` says otherwise), parsed once per process while it stays the same file (inode,
    size, modification time): a run's checks and its summary share one parse of a large report (flows.json of
    5,000 deployments is 5 MB). OSError or ValueError when it is missing or cannot be parsed. Never change what
    it returns."""
    stat = file.stat()
    key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    kept = _seen.get((file, parse))
    if kept is None or kept[0] != key:
        kept = _seen[(file, parse)] = (key, parse(file))
    return kept[1]


def look_at_report(stage: str, target: Settings | None = None) -> Mapping[str, Any] | None:
    """reports/<stage>.json for a reader that only looks (an up-to-date check, a task creator), through
    `parsed_once`; `read_report` gives a copy of one's own. A missing or corrupt report reads as read_json
    reads it (a corrupt one is set aside, with one warning)."""
    return look_at_json((target or settings()).reports_dir / f"{stage}.json")


def look_at_json(file: Path) -> Mapping[str, Any] | None:
    """A state or report file for a reader that only looks, through `parsed_once`; else as `read_json` reads it."""
    try:
        data = parsed_once(file)
    except (OSError, ValueError):
        return read_json(file)
    return data if isinstance(data, dict) else read_json(file)


def write_json(file: Path, data: dict[str, Any], *, compact: bool = False) -> None:
    """Write a state or report file atomically; `compact` for state rewritten after every step."""
    text = json.dumps(data, separators=(",", ":")) if compact else json_text(data)
    write_text_atomically(file, text + "\n")


def json_text(value: Any, depth: int = 0) -> str:
    """JSON for people and programs alike: keys sorted, the two outer levels indented, each value below them on
    one line (a report's entries, one per line). Python's encoder indents in Python, several times slower than
    its one-line encoder in C: a 5 MB flows.json took a quarter of a second to write."""
    pad = "  " * (depth + 1)
    if depth < 2 and isinstance(value, dict) and value and all(isinstance(key, str) for key in value):
        inner = ",\n".join(f"{pad}{ONE_LINE.encode(key)}: {json_text(value[key], depth + 1)}" for key in sorted(value))
        return "{\n" + inner + "\n" + pad[2:] + "}"
    if depth < 2 and isinstance(value, list | tuple) and value:
        return "[\n" + ",\n".join(pad + json_text(item, depth + 1) for item in value) + "\n" + pad[2:] + "]"
    return ONE_LINE.encode(value)


ONE_LINE = json.JSONEncoder(sort_keys=True)  # one encoder for every value (json.dumps with options makes one per call)


def write_text_atomically(file: Path, text: str) -> None:
    """Write a file so that no reader ever sees half of it: a temporary file beside it (one per process and
    thread), then a rename over it."""
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        temp.replace(file)
    except BaseException as err:  # a full disk: no half-written temporary file is left to take more space
        temp.unlink(missing_ok=True)
        if isinstance(err, OSError) and not err.filename:
            err.filename = str(file)  # a failed write or close names no file: this is the one
        raise


def read_json(file: Path) -> dict[str, Any] | None:
    """A state or report file; None when it is missing, or unreadable or not a JSON object: then it is set aside
    (`<name>.corrupt`) with one warning, and treated as missing (its work is redone, its report rebuilt)."""
    from tasks.pipeline.heal import treat_as_missing

    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        treat_as_missing(file, str(err).splitlines()[0] if str(err) else type(err).__name__, "and treated as missing")
        return None
    if not isinstance(loaded, dict):
        treat_as_missing(file, f"a JSON {type(loaded).__name__}, not an object", "and treated as missing")
        return None
    return loaded
