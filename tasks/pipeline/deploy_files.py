"""Where a flows folder keeps its deployment config, and in which format (no parsing: cheap enough for up-to-date checks).

`[flows] config` names the file; without it the flows folder is searched for
a prefect.yaml (or prefect.yml), then acme-portal-sdk's
`.acme_portal_sdk/static_flow_deploy_config.yaml`, then forkflow's own
deployments.yaml.
"""

from __future__ import annotations

from pathlib import Path

from tasks.core.errors import ConfigError
from tasks.pipeline.settings import Settings

PREFECT_FILES = ("prefect.yaml", "prefect.yml")
ACME_FILE = ".acme_portal_sdk/static_flow_deploy_config.yaml"
FORKFLOW_FILE = "deployments.yaml"


def config_file(current: Settings, root: Path) -> tuple[Path | None, str]:
    """The deployment config and its format: prefect, acme or forkflow."""
    assert current.config.flows is not None
    configured = current.config.flows.config
    if configured:
        file = current.path(configured)
        if not file.is_file():
            raise ConfigError(f"the deployment config {file} does not exist", where="[flows] config",
                              fix="correct the path, or remove the key to use the one found in the flows folder")
        return file, format_of(file)
    for name in (*PREFECT_FILES, ACME_FILE, FORKFLOW_FILE):
        if (root / name).is_file():
            return root / name, format_of(root / name)
    return None, "none"


def input_files(current: Settings) -> list[Path]:
    """pipeline.toml and the deployment config, when there is one now (a missing one is the action's to report)."""
    assert current.config.flows is not None
    root = current.path(current.config.flows.path)
    try:
        found = config_file(current, root)[0] if root.is_dir() else None
    except ConfigError:
        found = None
    return [current.config_file, *([found] if found else [])]


def format_of(file: Path) -> str:
    if file.name in PREFECT_FILES:
        return "prefect"
    if file.name == Path(ACME_FILE).name:
        return "acme"
    return "forkflow"
