"""The deployment config of a flows folder, in whichever format the team has, as planned deployments.

`[flows] config` names the file; without it the flows folder is searched for
a prefect.yaml (or prefect.yml), then acme-portal-sdk's
`.acme_portal_sdk/static_flow_deploy_config.yaml`, then forkflow's own
deployments.yaml. Pocket-style `FLOW_SPEC = FlowSpec(...)` deployments come
with the flows themselves. Files are read in place, never rewritten. The
`flows` and `deploy` stages both read the config through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.deploydefs import DeploymentConfig, Planned, from_document, undefined_flows
from tasks.core.discovery import FlowInfo
from tasks.core.errors import ConfigError
from tasks.core.text import shown
from tasks.core.yamllimits import check_size
from tasks.pipeline.deploy_files import config_files
from tasks.pipeline.prefect_yaml_memo import FileRead, reading_key, remember_read, remembered_read
from tasks.pipeline.schedule_rules import schedule_problem
from tasks.pipeline.settings import Settings, read_json, write_json

if TYPE_CHECKING:
    from tasks.core.deployspec import Document

# the config's models (pydantic) are loaded where a file is read in full: a prefect.yaml read before is remembered


def read_yaml_file(file: Path) -> Any:
    """The YAML document in `file`, read within the limits of tasks.core.yamllimits (the size before reading)."""
    check_size(file.stat().st_size, str(file))
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file}: not UTF-8 text (byte {err.start})", where=str(file),
                          fix="save the file as UTF-8") from None
    from tasks.core.yamlfile import load_yaml

    return load_yaml(text, str(file))


READ: dict[tuple[str, str], DeploymentConfig] = {}  # this process's last reading (flows, then deploy, in one run)


def read_config(current: Settings, root: Path, flows: list[FlowInfo]) -> DeploymentConfig:
    """Every deployment the config (and FlowSpecs in the code) define, checked before anything is written; read once
    per process for the same settings, flows and file contents (`flows` and `deploy` both read it in one run)."""
    import hashlib

    found = config_files(current, root)
    digest = hashlib.sha256(f"{current.config!r}\0{current.state_dir}\0{root}\0{flows!r}".encode())
    for file, _ in found:
        digest.update(str(file).encode() + b"\0" + file.read_bytes())
    key = (str(root), digest.hexdigest())
    if key not in READ:
        READ.clear()
        READ[key] = read_config_files(current, root, flows, found)
    return READ[key]


def read_config_files(current: Settings, root: Path, flows: list[FlowInfo], found: list[tuple[Path, str]]) -> DeploymentConfig:
    check_flow_specs(flows)
    if not found:
        from tasks.core.deployspec import Document

        spec_flows = [flow for flow in flows if flow.spec_deployments]
        return DeploymentConfig(None, "none", tuple(from_document(Document(), spec_flows, "")))
    checks = ScheduleChecks(current.state_dir / CHECKS_FILE)
    context = {"schedule_problem": checks}
    if len(found) > 1:
        return read_prefect_files(current, root, flows, [file for file, _ in found], context)
    file, kind = found[0]
    if kind == "prefect":
        planned, notes, warnings = read_prefect_file(current, root, flows, file, context)
        return DeploymentConfig(file, kind, tuple(planned), tuple(notes), (file,), tuple(warnings))
    data = read_yaml_file(file)
    if kind == "acme":
        from tasks.core import acme

        entries = acme.parse_entries(data, str(file), context)
        return DeploymentConfig(file, kind, tuple(acme.planned_deployments(entries, flows, str(file))), (), (file,))
    from tasks.core.deployspec import check_document, parse_document

    doc = parse_document(data, str(file), context)
    check_document(doc, flows, list(current.config.environments), str(file), checks.trigger)
    return DeploymentConfig(file, kind, tuple(from_document(doc, flows, str(file))), unlisted_note(doc, flows, file),
                            (file,))


def read_prefect_file(current: Settings, root: Path, flows: list[FlowInfo], file: Path,
                      context: dict[str, Any]) -> tuple[list[Planned], list[str], list[str]]:
    """One prefect.yaml's deployments, entrypoints from its own folder (or [flows] path with run_from = "path"),
    after Prefect's own rules (keys it ignores are dropped with a warning, files it rejects refused); and the
    warnings."""
    from_path = current.config.flows is not None and current.config.flows.run_from == "path"
    prefix = "" if from_path else folder_prefix(file.parent, root)
    strict = current.config.flows is not None and current.config.flows.strict
    check_size(file.stat().st_size, str(file))
    key = reading_key(file, prefix, strict, context["schedule_problem"].version)
    kept = remembered_read(current.state_dir, file, key, flows, prefix)
    if kept is None:
        kept = read_prefect_file_in_full(current, flows, file, context, prefix, strict)
        remember_read(current.state_dir, file, key, kept)
    return kept.planned, kept.notes, kept.warnings


def read_prefect_file_in_full(current: Settings, flows: list[FlowInfo], file: Path, context: dict[str, Any],
                              prefix: str, strict: bool) -> FileRead:
    from tasks.core import prefect_yaml
    from tasks.pipeline.prefect_rules import RULES_FILE, PrefectRules, prefect_verdict

    data, warnings = prefect_verdict(read_yaml_file(file), str(file), strict,
                                     PrefectRules(current.state_dir / RULES_FILE))
    parsed = prefect_yaml.parse_file(data, str(file), context)
    planned, notes = prefect_yaml.planned_deployments(parsed, flows, str(file), prefix)
    return FileRead(planned, notes, list(warnings))


def read_prefect_files(current: Settings, root: Path, flows: list[FlowInfo], files: list[Path],
                       context: dict[str, Any]) -> DeploymentConfig:
    """A monorepo's prefect.yaml files, each as `prefect deploy --all --prefect-file <file>` reads it; every file's
    problems are listed before any write, and so are deployments two files define under one flow and name."""
    planned: list[Planned] = []
    notes: list[str] = []
    warnings: list[str] = []
    problems: list[str] = []
    for file in files:
        try:
            found, said, warned = read_prefect_file(current, root, flows, file, context)
        except ConfigError as err:
            problems.append(err.what)
            continue
        planned += found
        warnings += warned
        notes += [f"{file.parent.relative_to(root).as_posix()}: {note}" for note in said]
    if problems:
        raise ConfigError(f"{len(problems)} of {len(files)} prefect.yaml files cannot be deployed:\n" + "\n".join(problems),
                          where="[flows] config", fix="correct the files listed above; nothing was deployed")
    shared_names(planned)
    return DeploymentConfig(files[0], "prefect", tuple(planned), tuple(notes), tuple(files), tuple(warnings))


def shared_names(planned: list[Planned]) -> None:
    """Two files that define one deployment (one flow name, one deployment name) would overwrite each other."""
    from tasks.core.discovery import normalized

    seen: dict[tuple[str, str], Planned] = {}
    problems = []
    for item in planned:
        first = seen.setdefault((normalized(item.server_flow), normalized(str(item.name))), item)
        if first is not item and first.source.split(": ")[0] != item.source.split(": ")[0]:
            problems.append(f"  - {first.server_flow}/{first.name}: {first.source} and {item.source}")
    if problems:
        raise ConfigError("deployments of several prefect.yaml files would be one deployment on the server:\n"
                          + "\n".join(problems), where="[flows] config",
                          fix="rename one of each pair (its `name:`, or the flow's name); nothing was deployed")


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
    if not any(flow.spec_deployments for flow in flows):
        return
    from pydantic import ValidationError

    from tasks.core.deployspec import Layer, describe, invalid

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
    from pydantic import TypeAdapter, ValidationError

    try:
        model: Any = TypeAdapter(DeploymentTriggerTypes).validate_python(trigger)
    except ValidationError as err:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3])
    unknown = sorted(set(trigger) - set(type(model).model_fields))
    if unknown:
        return f"unknown keys {unknown}; allowed: {', '.join(sorted(type(model).model_fields))}"
    return None


CHECKS_FILE = "prefect-checks.json"


class ScheduleChecks:
    """Prefect's verdict on each schedule (its rules, applied without importing Prefect: schedule_rules), remembered
    per Prefect version so a run that changes nothing does not check the same schedules again."""

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
            self.verdicts[key] = schedule_problem(fields) or ""
            write_json(self.file, {"prefect": self.version, "verdicts": self.verdicts})
        return self.verdicts[key] or None

    def trigger(self, trigger: dict[str, Any]) -> str | None:
        """Prefect's verdict on a deployments.yaml trigger (its own models, so Prefect is imported the first time a
        trigger is seen), remembered beside the schedules'."""
        import json

        key = "trigger " + json.dumps(trigger, sort_keys=True, default=str)
        if key not in self.verdicts:
            self.verdicts[key] = trigger_problem(trigger) or ""
            write_json(self.file, {"prefect": self.version, "verdicts": self.verdicts})
        return self.verdicts[key] or None


def prefect_schedule_problem(fields: dict[str, Any]) -> str | None:
    """Why Prefect's own schedule classes refuse the schedule, or None."""
    from datetime import timedelta

    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
    from pydantic import ValidationError

    from tasks.pipeline.timezones import list_timezones_once

    list_timezones_once()
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
