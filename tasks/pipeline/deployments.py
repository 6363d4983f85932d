"""The deployment config of a flows folder, in whichever format the team has, as planned deployments.

`[flows] config` names the file; without it the flows folder is searched for
a prefect.yaml (or prefect.yml), then acme-portal-sdk's
`.acme_portal_sdk/static_flow_deploy_config.yaml`, then forkflow's own
deployments.yaml. Pocket-style `FLOW_SPEC = FlowSpec(...)` deployments come
with the flows themselves. Files are read in place, never rewritten. The
`flows` and `deploy` stages both read the config through here.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tasks.core import acme, prefect_yaml
from tasks.core.deploydefs import Planned, from_document, undefined_flows
from tasks.core.deployspec import Document, Layer, check_document, describe, invalid, parse_document
from tasks.core.discovery import FlowInfo, Parameter
from tasks.core.errors import ConfigError
from tasks.core.text import shown
from tasks.core.values import sha256_hex
from tasks.core.yamlfile import load_yaml
from tasks.core.yamllimits import check_size
from tasks.pipeline.deploy_files import config_file
from tasks.pipeline.settings import Settings, read_json, write_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tasks.adapters.prefect_settings import Connection


@dataclass(frozen=True)
class DeploymentConfig:
    """What the config defines: the file (None when there is none), its format, the deployments, notes."""

    file: Path | None
    format: str
    planned: tuple[Planned, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def read_yaml_file(file: Path) -> Any:
    """The YAML document in `file`, read within the limits of tasks.core.yamllimits (the size before reading)."""
    check_size(file.stat().st_size, str(file))
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file}: not UTF-8 text (byte {err.start})", where=str(file),
                          fix="save the file as UTF-8") from None
    return load_yaml(text, str(file))


def read_config(current: Settings, root: Path, flows: list[FlowInfo]) -> DeploymentConfig:
    """Every deployment the config (and FlowSpecs in the code) define, checked before anything is written."""
    file, kind = config_file(current, root)
    check_flow_specs(flows)
    if file is None:
        spec_flows = [flow for flow in flows if flow.spec_deployments]
        return DeploymentConfig(None, "none", tuple(from_document(Document(), spec_flows, "")))
    data = read_yaml_file(file)
    context = {"schedule_problem": ScheduleChecks(current.state_dir / CHECKS_FILE)}
    if kind == "prefect":
        from_path = current.config.flows is not None and current.config.flows.run_from == "path"
        prefix = "" if from_path else folder_prefix(file.parent, root)
        from tasks.pipeline.prefect_rules import RULES_FILE, PrefectRules, prefect_verdict

        strict = current.config.flows is not None and current.config.flows.strict
        data, warnings = prefect_verdict(data, str(file), strict, PrefectRules(current.state_dir / RULES_FILE))
        parsed = prefect_yaml.parse_file(data, str(file), context)
        planned, notes = prefect_yaml.planned_deployments(parsed, flows, str(file), prefix)
        return DeploymentConfig(file, kind, tuple(planned), tuple(notes), tuple(warnings))
    if kind == "acme":
        entries = acme.parse_entries(data, str(file), context)
        return DeploymentConfig(file, kind, tuple(acme.planned_deployments(entries, flows, str(file))))
    doc = parse_document(data, str(file), context)
    check_document(doc, flows, list(current.config.environments), str(file), trigger_problem)
    return DeploymentConfig(file, kind, tuple(from_document(doc, flows, str(file))), unlisted_note(doc, flows, file))


def unlisted_note(doc: Document, flows: list[FlowInfo], file: Path) -> tuple[str, ...]:
    left = undefined_flows(doc, flows)
    if not left:
        return ()
    names = ", ".join(shown(flow.name) for flow in left[:8]) + (", ..." if len(left) > 8 else "")
    return (f"{len(left)} flow(s) not listed in {file.name} and without a FLOW_SPEC are not deployed: {names} "
            f"(list them under flows:, or set every_flow: true)",)


def folder_prefix(folder: Path, root: Path) -> str:
    try:
        relative = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"the prefect.yaml in {folder} is outside the flows folder {root}", where="[flows] config",
                          fix="put [flows] path at or above the folder holding prefect.yaml") from None
    return "" if relative == "." else relative + "/"


def check_flow_specs(flows: list[FlowInfo]) -> None:
    """FlowSpec deployments use the keys of a deployments.yaml layer: check them the same way."""
    problems = []
    for flow in flows:
        for deployment in flow.spec_deployments:
            where = f"{flow.file}: FLOW_SPEC deployment {deployment['name']!r}"
            try:
                layer = Layer.model_validate({k: v for k, v in deployment.items() if k != "name"})
            except ValidationError as err:
                problems += [f"{where}: {describe(item)}" for item in err.errors()]
                continue
            problems += [f"{where}: parameters.{p}: flow {flow.name!r} does not take this parameter"
                         for p in sorted(layer.parameters or {}) if not flow.accepts(p)]
    if problems:
        raise invalid("FLOW_SPEC", problems)


def trigger_problem(trigger: dict[str, Any]) -> str | None:
    """Why a trigger is not one Prefect accepts (checked with Prefect's own models), or None."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    try:
        model: Any = TypeAdapter(DeploymentTriggerTypes).validate_python(trigger)
    except ValidationError as err:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3])
    unknown = sorted(set(trigger) - set(type(model).model_fields))
    if unknown:
        return f"unknown keys {unknown}; allowed: {', '.join(sorted(type(model).model_fields))}"
    return None


def with_prefect_facts(config: DeploymentConfig, root: Path, state_dir: Path) -> DeploymentConfig:
    """prefect.yaml deployments get what `prefect deploy` derives from the code: Prefect's own parameter
    schema (read from the source, not imported; remembered per file content and Prefect version) and,
    without a `version`, the version it infers."""
    if not any(p.native for p in config.planned):
        return config
    from tasks.pipeline.version_info import VersionInfos

    schemas = SchemaCache(state_dir / SCHEMAS_FILE)
    version = RepositoryVersion(root)
    infos = VersionInfos(root)
    planned = []
    for item in config.planned:
        if item.native:
            info = infos.of(item.extra.get("version_type"))
            extra = {**item.extra, "parameter_openapi_schema": schemas.schema_of(root, item.flow),
                     "version": info["version"] if info else version.of(item.flow.file),
                     "version_info": {k: v for k, v in (info or {"type": "prefect:simple"}).items() if k != "version"}}
            planned.append(dataclasses.replace(item, extra=extra))
        else:
            planned.append(item)
    schemas.save()
    return dataclasses.replace(config, planned=tuple(planned))


class RepositoryVersion:
    """Prefect's rule when it infers no version info (tasks/pipeline/version_info.py): a hash of the flow's file."""

    def __init__(self, root: Path):
        self.root = root

    def of(self, file: str) -> str:
        import hashlib

        return hashlib.md5((self.root / file).read_bytes(), usedforsecurity=False).hexdigest()


SCHEMAS_FILE = "prefect-schemas.json"


class SchemaCache:
    """Prefect's parameter schema of each flow, by file content and Prefect version."""

    def __init__(self, file: Path):
        from importlib.metadata import version

        self.file = file
        self.version = version("prefect")
        saved = read_json(file) or {}
        self.known: dict[str, Any] = saved.get("schemas", {}) if saved.get("prefect") == self.version else {}
        self.changed = False

    def schema(self, root: Path, file: str, function: str) -> dict[str, Any]:

        key = f"{sha256_hex((root / file).read_bytes())}:{function}"
        if key not in self.known:
            from prefect.utilities.callables import parameter_schema_from_entrypoint

            self.known[key] = parameter_schema_from_entrypoint(f"{root / file}:{function}").model_dump(exclude_unset=True)
            self.changed = True
        found: dict[str, Any] = self.known[key]
        return found

    def save(self) -> None:
        if self.changed:
            write_json(self.file, {"prefect": self.version, "schemas": self.known})

    def schema_of(self, root: Path, flow: FlowInfo) -> dict[str, Any]:
        """The same schema without Prefect where the signature is plain (see `plain_schema`)."""
        return plain_schema(flow) or self.schema(root, flow.file, flow.function)


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



CHECKS_FILE = "prefect-checks.json"


class ScheduleChecks:
    """Prefect's verdict on each schedule, remembered per Prefect version so a run that changes nothing
    does not import Prefect (about 1.7 s) to hear the same verdicts again."""

    def __init__(self, file: Path):
        from importlib.metadata import version

        self.file = file
        self.version = version("prefect")
        saved = read_json(file) or {}
        self.verdicts: dict[str, str] = saved.get("verdicts", {}) if saved.get("prefect") == self.version else {}

    def __call__(self, fields: dict[str, Any]) -> str | None:
        import json

        key = json.dumps(fields, sort_keys=True, default=str)
        if key not in self.verdicts:
            self.verdicts[key] = prefect_schedule_problem(fields) or ""
            write_json(self.file, {"prefect": self.version, "verdicts": self.verdicts})
        return self.verdicts[key] or None


def prefect_schedule_problem(fields: dict[str, Any]) -> str | None:
    """Why Prefect's own schedule classes refuse the schedule, or None."""
    from datetime import timedelta

    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    given = {k: v for k, v in fields.items() if k in ("timezone", "day_or", "anchor_date")}
    try:
        if "cron" in fields:
            CronSchedule(cron=fields["cron"], **{k: v for k, v in given.items() if k != "anchor_date"})
        elif "interval" in fields:
            IntervalSchedule(interval=timedelta(seconds=float(fields["interval"])),
                             **{k: v for k, v in given.items() if k != "day_or"})
        else:
            RRuleSchedule(rrule=fields["rrule"], **{k: v for k, v in given.items() if k == "timezone"})
    except (ValidationError, ValueError, TypeError) as err:
        errors = err.errors() if isinstance(err, ValidationError) else [{"msg": str(err)}]
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors[:2])
    return None


def with_step_outputs(config: DeploymentConfig, root: Path, dry_run: bool, server: Callable[[], Connection],
                      variables: dict[str, str] | None = None) -> DeploymentConfig:
    """Run each prefect.yaml deployment's deploy-time build/push steps with Prefect's own step runner (in the
    file's folder, against the environment's server, as `prefect deploy` does) and fill `{{ <step>.<output> }}`
    with what they return. A dry run does not run them: it says so, and references to their outputs stay unfilled."""
    if not any(item.extra.get("steps") for item in config.planned):
        return config
    planned = []
    for item in config.planned:
        steps = item.extra.get("steps") or []
        if steps and dry_run:
            from tasks.adapters.console import say

            say(f"would run {len(steps)} deploy-time step(s) of {item.source} (their outputs are not known in a dry run)")
        elif steps:
            outputs = run_prefect_steps(steps, root / item.extra.get("folder", ""), item.source, server(), variables or {})
            filled = tuple((scope, with_outputs(layer, outputs)) for scope, layer in item.layers)
            planned.append(dataclasses.replace(item, layers=filled))
            continue
        planned.append(item)
    return dataclasses.replace(config, planned=tuple(planned))


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


def run_prefect_steps(steps: list[dict[str, Any]], folder: Path, source: str, server: Connection,
                      variables: dict[str, str]) -> dict[str, Any]:
    """The steps' outputs; `{{ prefect.variables.x }}` and blocks in their inputs are the server's (Prefect's step
    runner asks the server it is configured for: without one it would start a temporary server of its own), and
    `{{ $NAME }}` the environment's `variables`, else the process environment, with `$PWD` the file's folder."""
    import asyncio

    from prefect.deployments.steps.core import StepExecutionError, run_steps

    from tasks.core.errors import ForkflowError

    before = Path.cwd()
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(None), settings_of(server), step_environment(folder, variables):
            outputs: dict[str, Any] = asyncio.run(run_steps(steps, {}, print_function=lambda *_: None))
    except (StepExecutionError, ImportError, OSError, ValueError) as err:
        raise ForkflowError(f"{source}: a deploy-time step failed: {step_error(err)}", where=source,
                            fix="fix the step (it ran with Prefect's step runner in the file's folder); "
                                "nothing was deployed") from None
    finally:
        os.chdir(before)
    return outputs


def step_error(err: BaseException) -> str:
    """The step's own error under Prefect's "Encountered error while running <step>"."""
    cause = err.__cause__
    if cause is None or str(cause) in str(err):
        return str(err)
    return f"{err}: {type(cause).__name__}: {str(cause).strip()}"


@contextlib.contextmanager
def step_environment(folder: Path, variables: dict[str, str]) -> Iterator[None]:
    """The process environment the steps read `{{ $NAME }}` from, as a shell in `folder` would have it, for
    the steps' run only."""
    wanted = {"PWD": str(folder), **variables}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def settings_of(server: Connection) -> Any:
    """Prefect's settings for a client of `server` only: its URL, its credentials (in memory), its TLS choice; any
    other credential (the shell's, a profile's) is reset, so it never reaches this server."""
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_KEY,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        PREFECT_API_URL,
        temporary_settings,
    )

    updates: dict[Any, Any] = {PREFECT_API_URL: server.api_url, PREFECT_API_TLS_INSECURE_SKIP_VERIFY: server.verify is False}
    scheme, _, credential = server.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer":
        updates[PREFECT_API_KEY] = credential
    elif scheme == "Basic":
        updates[PREFECT_API_AUTH_STRING] = base64.b64decode(credential).decode()
    if isinstance(server.verify, str):
        updates[PREFECT_API_SSL_CERT_FILE] = server.verify
    reset = [setting for setting in (PREFECT_API_KEY, PREFECT_API_AUTH_STRING, PREFECT_API_SSL_CERT_FILE)
             if setting not in updates]
    return temporary_settings(updates=updates, restore_defaults=reset)


def flow_from_entry(entry: dict[str, Any]) -> FlowInfo:
    """Rebuild a FlowInfo from its flows.json entry."""
    return FlowInfo(
        name=entry["name"], function=entry["function"], file=entry["file"], line=entry["line"],
        is_async=entry["is_async"], description=entry.get("description"),
        parameters=tuple(Parameter(**p) for p in entry["parameters"]),
        accepts_any_parameter=entry["accepts_any_parameter"], spec=entry.get("spec") or {},
        spec_deployments=tuple(entry.get("spec_deployments") or ()), project=entry.get("project", ""),
        project_name=entry.get("project_name", ""), project_prefix=bool(entry.get("project_prefix")),
    )
