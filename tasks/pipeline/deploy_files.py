"""Where a flows folder keeps its deployment config, and in which format (no parsing: cheap enough for up-to-date checks).

`[flows] config` names the file, or several prefect.yaml files (a list, and/or
globs matched under `[flows] path`); without it the flows folder is searched
for a prefect.yaml (or prefect.yml), then acme-portal-sdk's
`.acme_portal_sdk/static_flow_deploy_config.yaml`, then forkflow's own
deployments.yaml.
"""

from __future__ import annotations

import os
from pathlib import Path

from tasks.core.errors import ConfigError
from tasks.core.pathglob import is_glob, matches
from tasks.pipeline.settings import Settings

PREFECT_FILES = ("prefect.yaml", "prefect.yml")
ACME_FILE = ".acme_portal_sdk/static_flow_deploy_config.yaml"
FORKFLOW_FILE = "deployments.yaml"
SKIPPED_FOLDERS = ("__pycache__", "node_modules", "venv", "site-packages")


def config_file(current: Settings, root: Path) -> tuple[Path | None, str]:
    """The deployment config and its format (prefect, acme or forkflow); the first one when there are several."""
    found = config_files(current, root)
    return found[0] if found else (None, "none")


def config_files(current: Settings, root: Path) -> list[tuple[Path, str]]:
    """Every deployment config and its format: one file of any format, or several prefect.yaml files."""
    assert current.config.flows is not None
    patterns = current.config.flows.config_patterns
    if not patterns:
        for name in (*PREFECT_FILES, ACME_FILE, FORKFLOW_FILE):
            if (root / name).is_file():
                return [(root / name, format_of(root / name))]
        return []
    files: list[Path] = []
    for pattern in patterns:
        files += [file for file in configured_files(current, root, pattern) if file not in files]
    found = [(file, format_of(file)) for file in files]
    others = [str(file) for file, kind in found if kind != "prefect"]
    if len(found) > 1 and others:
        raise ConfigError(f"several deployment configs are named, and these are no prefect.yaml: {', '.join(others)}",
                          where="[flows] config",
                          fix="list several files only for prefect.yaml / prefect.yml files; other formats take one file")
    return found


def configured_files(current: Settings, root: Path, pattern: str) -> list[Path]:
    """The file one entry of `[flows] config` names (relative to the config's folder), or the files its glob matches
    under the flows folder (hidden folders, virtual environments and node_modules are not searched)."""
    if not is_glob(pattern):
        file = current.path(pattern)
        if not file.is_file():
            raise ConfigError(f"the deployment config {file} does not exist", where=f"[flows] config ({pattern!r})",
                              fix="correct the path, or remove the key to use the one found in the flows folder")
        return [file]
    found = sorted(file for file in files_under(root) if matches(pattern, relative_to_config(current, file)))
    if not found:
        raise ConfigError(f"no file under the flows folder {root} matches {pattern!r}", where=f"[flows] config ({pattern!r})",
                          fix="globs are relative to the config file's folder, like every path in it "
                              f"(e.g. \"{relative_to_config(current, root / '**' / 'prefect.yaml')}\")")
    return found


def relative_to_config(current: Settings, file: Path) -> str:
    return Path(os.path.relpath(file, current.path("."))).as_posix()


def files_under(root: Path) -> list[Path]:
    found = []
    for directory, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in SKIPPED_FOLDERS)
        found += [Path(directory) / name for name in files]
    return found


def input_files(current: Settings) -> list[Path]:
    """pipeline.toml and the deployment configs, when there are some now (a missing one is the action's to report)."""
    assert current.config.flows is not None
    root = current.path(current.config.flows.path)
    try:
        found = [file for file, _ in config_files(current, root)] if root.is_dir() else []
    except ConfigError:
        found = []
    return [current.config_file, *found]


def format_of(file: Path) -> str:
    if file.name in PREFECT_FILES:
        return "prefect"
    if file.name == Path(ACME_FILE).name:
        return "acme"
    return "forkflow"
