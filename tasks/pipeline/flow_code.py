"""What a prefect.yaml deployment needs from the flows project's own code: Prefect's parameter schemas and the
outputs of its deploy-time steps, both from a child process per project (tasks/adapters/flow_code.py), never
from forkflow's interpreter."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.adapters.flow_code import Project, StepRun, parameter_schemas, step_outputs
from tasks.core.deploydefs import DeploymentConfig
from tasks.core.discovery import FlowInfo
from tasks.pipeline.settings import Settings, read_json, write_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.adapters.prefect_settings import Connection
    from tasks.core.deploydefs import Planned


def project_of(current: Settings, folder: Path) -> Project:
    """The project in `folder` as its child sees it: this process's environment without forkflow's credentials
    (among them every environment's own credential variables)."""
    hidden = tuple(name for env in current.config.environments.values()
                   for name in (env.api_key_env, env.auth_string_env) if name)
    return Project(folder=folder, environ=dict(os.environ), hidden=hidden)


def project_folder(root: Path, item: Planned) -> Path:
    """Where `prefect deploy` would run for this deployment: the prefect.yaml's folder (or [flows] path)."""
    folder = str(item.extra.get("folder") or "")
    return root / folder if folder else root


def with_prefect_facts(config: DeploymentConfig, root: Path, current: Settings) -> DeploymentConfig:
    """prefect.yaml deployments get what `prefect deploy` derives from the code: Prefect's own parameter
    schema (remembered per project source and Prefect version) and, without a `version`, the version and the
    version_info it infers (per `version_type`)."""
    if not any(p.native for p in config.planned):
        return config
    from tasks.pipeline.version_info import INFOS_FILE, VersionInfos

    schemas = SchemaCache(current.state_dir / SCHEMAS_FILE)
    schemas.fill(root, [item for item in config.planned if item.native], partial_project(current))
    infos = VersionInfos(root, current.state_dir / INFOS_FILE)
    version = RepositoryVersion(root, infos.facts)
    planned = []
    for item in config.planned:
        if item.native:
            info = infos.of(item.extra.get("version_type"))
            extra = {**item.extra, "parameter_openapi_schema": schemas.schema_of(root, item),
                     "version": info["version"] if info else version.of(item.flow.file),
                     "version_info": {k: v for k, v in (info or {"type": "prefect:simple"}).items() if k != "version"}}
            planned.append(dataclasses.replace(item, extra=extra))
        else:
            planned.append(item)
    schemas.save()
    return dataclasses.replace(config, planned=tuple(planned))


def partial_project(current: Settings) -> Callable[[Path], Project]:
    def make(folder: Path) -> Project:
        return project_of(current, folder)
    return make


class RepositoryVersion:
    """Prefect's rule: in a git checkout with a remote, the commit's first 8 characters; else a hash of the flow's file.
    `facts` are the checkout's (version_info.git_facts)."""

    def __init__(self, root: Path, facts: dict[str, str]):
        self.root = root
        self.commit = facts["commit_sha"][:8] if "url" in facts and "commit_sha" in facts else None

    def of(self, file: str) -> str:
        if self.commit:
            return self.commit
        return hashlib.md5((self.root / file).read_bytes(), usedforsecurity=False).hexdigest()


SCHEMAS_FILE = "prefect-schemas.json"
SKIPPED_FOLDERS = ("__pycache__", "node_modules", "venv", "site-packages")


def source_digest(folder: Path) -> str:
    """A hash of every Python file of the project (a flow's schema may use types from any of its modules)."""
    digest = hashlib.sha256()
    for directory, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in SKIPPED_FOLDERS)
        for name in sorted(f for f in files if f.endswith(".py")):
            path = Path(directory) / name
            digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


class SchemaCache:
    """Prefect's parameter schema of each flow, by the project's source and Prefect's version."""

    def __init__(self, file: Path):
        from importlib.metadata import version

        self.file = file
        self.version = version("prefect")
        saved = read_json(file) or {}
        self.known: dict[str, Any] = saved.get("schemas", {}) if saved.get("prefect") == self.version else {}
        self.digests: dict[Path, str] = {}
        self.changed = False

    def key(self, root: Path, item: Planned) -> str:
        folder = project_folder(root, item)
        if folder not in self.digests:
            self.digests[folder] = source_digest(folder)
        return f"{self.digests[folder]}:{item.flow.file}:{item.flow.function}"

    def fill(self, root: Path, items: list[Planned], project: Callable[[Path], Project]) -> None:
        """Ask one child per project for the schemas not known yet."""
        missing: dict[Path, dict[str, Planned]] = defaultdict(dict)
        for item in items:
            if plain_schema(item.flow) is None and self.key(root, item) not in self.known:
                missing[project_folder(root, item)][self.key(root, item)] = item
        for folder, wanted in missing.items():
            flows = [(str(root / item.flow.file), item.flow.function) for item in wanted.values()]
            self.known.update(zip(wanted, parameter_schemas(project(folder), flows), strict=True))
            self.changed = True

    def save(self) -> None:
        if self.changed:
            write_json(self.file, {"prefect": self.version, "schemas": self.known})

    def schema_of(self, root: Path, item: Planned) -> dict[str, Any]:
        """Prefect's schema; without Prefect where the signature is plain (see `plain_schema`)."""
        found: dict[str, Any] = plain_schema(item.flow) or self.known[self.key(root, item)]
        return found


PLAIN_TYPES = (None, "str", "int", "float", "bool")
PARAMETER_SECTIONS = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Other Parameters)\s*:?\s*$|:param ",
                                re.MULTILINE | re.IGNORECASE)


def documents_parameters(docstring: str) -> bool:
    """Whether the docstring has a parameter section, from which Prefect takes descriptions."""
    return bool(PARAMETER_SECTIONS.search(docstring))


def plain_schema(flow: FlowInfo) -> dict[str, Any] | None:
    """Prefect's parameter schema, derived without Prefect, for signatures where the two are known to agree:
    parameters without annotation or annotated str/int/float/bool, scalar defaults, and no docstring that
    documents parameters (Prefect adds their descriptions). None otherwise."""
    from tasks.core.discovery import parameter_schema

    if flow.accepts_any_parameter or documents_parameters(flow.description or ""):
        return None
    for parameter in flow.parameters:
        if parameter.annotation not in PLAIN_TYPES:
            return None
        if not parameter.required and not isinstance(parameter.default, str | int | float | bool | None):
            return None
    schema = parameter_schema(flow)
    schema.pop("definitions", None)
    return schema


def with_step_outputs(config: DeploymentConfig, root: Path, dry_run: bool, server: Callable[[], Connection],
                      project: Callable[[Path], Project], variables: dict[str, str] | None = None) -> DeploymentConfig:
    """Run each prefect.yaml deployment's deploy-time build/push steps with Prefect's own step runner (in the
    file's folder, against the environment's server, as `prefect deploy` does; one child process per project)
    and fill `{{ <step>.<output> }}` with what they return. A dry run does not run them: it says so, and
    references to their outputs stay unfilled."""
    with_steps = [item for item in config.planned if item.extra.get("steps")]
    if not with_steps:
        return config
    if dry_run:
        from tasks.adapters.console import say

        for item in with_steps:
            say(f"would run {len(item.extra['steps'])} deploy-time step(s) of {item.source} "
                "(their outputs are not known in a dry run)")
        return config
    by_project: dict[Path, list[Planned]] = defaultdict(list)
    for item in with_steps:
        by_project[project_folder(root, item)].append(item)
    outputs: dict[int, dict[str, Any]] = {}
    connection = server()
    for folder, items in by_project.items():
        runs = [StepRun(item.extra["steps"], folder, item.source, item.extra.get("docker_outputs") or {}) for item in items]
        found = step_outputs(project(folder), runs, connection, variables or {})
        outputs.update({id(item): result for item, result in zip(items, found, strict=True)})
    return dataclasses.replace(config, planned=tuple(
        dataclasses.replace(item, layers=tuple((scope, with_outputs(layer, outputs[id(item)])) for scope, layer in item.layers))
        if id(item) in outputs else item for item in config.planned))


def with_outputs(layer: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Step outputs filled in as `prefect deploy` fills them: everywhere but trigger parameters (event templates)."""
    from prefect.utilities.templating import apply_values

    def fill(value: dict[str, Any]) -> dict[str, Any]:
        filled: dict[str, Any] = apply_values(value, outputs, remove_notset=False, skip_prefixes=["ctx."])  # type: ignore[assignment]
        return filled

    done = fill({k: v for k, v in layer.items() if k != "triggers"})
    if "triggers" in layer:
        done["triggers"] = [{**fill({k: v for k, v in trigger.items() if k != "parameters"}),
                             **({"parameters": trigger["parameters"]} if "parameters" in trigger else {})}
                            for trigger in layer["triggers"]]
    return done
