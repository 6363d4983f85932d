"""Stage `flows`: find the flows in the fork checkout and list their deployments.

`doit flows` parses every Python file under `[flows] path` that git does not
ignore (user code is never imported), prints each flow with its file and the
deployment names it gets per environment, and writes
`.forkflow/reports/flows.json`. A file that does not parse is reported with
its line and the rest are still read; `deploy` refuses to run until it is fixed.
`[flows] include`/`exclude` choose the files (tests/ is left out by default);
flows in different sub-projects (folders with their own pyproject.toml) may
share a name. The deployments listed are the ones the deployment config
defines (tasks/deployments.py); without a config, flows are listed and none is
deployed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import tomllib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.adapters.console import say, say_all, warn
from tasks.adapters.git import Git
from tasks.core.deploynames import environments_for_branch, slug
from tasks.core.discovery import (
    DiscoveryError,
    FlowInfo,
    duplicate_names,
    flow_entry,
    normalized,
)
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.names import split_names, unknown_names
from tasks.core.text import shown
from tasks.core.values import parse_toml
from tasks.pipeline import prefetch
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, KeepFileDeps, Stale, report_intact
from tasks.pipeline.deploy_files import input_files
from tasks.pipeline.discovery_memo import discover_remembered
from tasks.pipeline.report_facts import report_facts
from tasks.pipeline.settings import Settings, read_report, settings, write_report

if TYPE_CHECKING:
    from tasks.core.deploydefs import DeploymentConfig, Planned
    from tasks.core.deployment import Context

BRANCH_ENV = "FORKFLOW_BRANCH"


def task_flows() -> dict[str, Any]:
    """Discover the flows in the fork checkout and write flows.json."""
    current = settings()
    doc = "find flows (parsed, never imported) under [flows] path, list their deployments, write flows.json"
    if current.config.flows is None:
        return missing_section_task("flows", "flows", doc)
    return {
        "doc": doc,
        "actions": [guarded(flows_action), KeepFileDeps(partial(input_files, current))],
        "file_dep": [str(file) for file in input_files(current)],
        "targets": [str(current.reports_dir / "flows.json")],
        # the flows' code version is the version stage's (a deploy-only run must name the version a full run names)
        "task_dep": ["checkout", "version"] if current.config.fork else [],
        "uptodate": [Check("flow files, branch, deployment config and versions are those flows.json was made from", flows_unchanged),
                     report_intact("flows", "flows")],
        "verbosity": 2,
    }


def flows_unchanged(task: Any = None, *_: Any) -> bool | Stale:
    """Up to date while the flow files, branch, deployment config, versions and choices are unchanged."""
    current = settings()
    saved = report_facts("flows", current)  # its inputs digest, without parsing flows.json again
    if not saved:
        read_report("flows", current)  # a corrupt one is set aside, with one warning
        return Stale("no flows.json yet")
    try:
        inputs = SEEN_INPUTS[current.state_dir] = flows_inputs(current)
    except (ForkflowError, OSError) as err:
        return Stale(f"cannot read the flows folder: {str(err).splitlines()[0]}")
    return saved["inputs"] == inputs or Stale("flow files, branch or deployment config changed")


# the inputs the up-to-date check just saw, for the action that follows it in this process: taken before anything is
# read, as the action would take them (a change after it makes the next run's check see different inputs)
SEEN_INPUTS: dict[Path, str] = {}


def flows_inputs(current: Settings) -> str:
    """A cheap hash of what flows.json depends on (three git calls, no parsing)."""
    import hashlib
    import os

    from tasks.pipeline.workspace import checkout_entries

    assert current.config.flows is not None
    root = flows_root(current)
    where = prefetch.answer(where_key(root), partial(where_flows_are, root))
    digest = hashlib.sha256()
    entries = sorted(checkout_entries(Path(where.splitlines()[0])).items())
    digest.update("".join(f"{name}\0{blob}\n" for name, blob in entries).encode())
    digest.update(where.encode())
    config_file, *deploy_config = input_files(current)
    for file in (config_file, *(deploy_config or [Path("-")]), current.reports_dir / "version.json"):
        digest.update(file.read_bytes() if file.is_file() else b"-")
    for variable in (ENVIRONMENT_ENV, BRANCH_ENV):
        digest.update(os.environ.get(variable, "").encode())
    return digest.hexdigest()


def where_flows_are(root: Path) -> str:
    """The checkout holding the flows folder, its HEAD and its branch (one git call)."""
    return Git(root).read("rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")


def where_key(root: Path) -> str:
    return f"flows-checkout:{root}"


def ask_where_early(current: Settings) -> None:
    """Send the check's git questions as the run starts (see tasks.pipeline.prefetch): where the flows checkout
    is, and its file listing (the checkout found by its `.git`, as git finds it)."""
    if current.config.flows is not None:
        root = current.path(current.config.flows.path)
        if root.is_dir():
            prefetch.send(where_key(root), partial(where_flows_are, root))
            top = next((folder for folder in (root, *root.parents) if (folder / ".git").exists()), None)
            if top is not None:
                from tasks.pipeline.workspace import ask_entries_early

                ask_entries_early(top)


def flows_action() -> dict[str, str]:
    current = settings()
    inputs = SEEN_INPUTS.pop(current.state_dir, None) or flows_inputs(current)
    report, refusal = flows_report(current)
    report["inputs"] = inputs
    write_report("flows", report, current)
    show(report)
    if refusal is not None:  # the listing is written; the run stops on the config, with or without other problems
        raise refusal
    made = f"{len(report['flows'])} flows on {report['branch']} -> {', '.join(report['environments']) or 'no environment'}"
    if report["errors"]:
        made += f", {len(report['errors'])} problems"
    if report["warnings"]:
        made += f", {len(report['warnings'])} files with problems no entrypoint needs"
    return {"made": made}


def blocking(errors: list[DiscoveryError], deployments: DeploymentConfig) -> tuple[list[DiscoveryError], list[DiscoveryError]]:
    """(problems that stop a deploy, problems reported only). A prefect.yaml deploys its entrypoints, as prefect
    deploy imports only them: a file no entrypoint names cannot stop it. Any other config deploys flows found
    anywhere, so every problem counts."""
    if deployments.format != "prefect":
        return errors, []
    deployed = {item.flow.file for item in deployments.planned}
    return [e for e in errors if e.file in deployed], [e for e in errors if e.file not in deployed]


def named_by_flow(flows: list[FlowInfo], deployments: DeploymentConfig) -> list[FlowInfo]:
    """The deployed flows whose deployments are named after them. A prefect.yaml names each deployment itself,
    so one flow name in two files is two deployments there, as prefect deploy makes them; a flow nothing deploys
    names nothing."""
    named = {(item.flow.project, normalized(item.flow.name)) for item in deployments.planned if not item.native}
    return [flow for flow in flows if (flow.project, normalized(flow.name)) in named]


def flows_report(current: Settings) -> tuple[dict[str, Any], ConfigError | None]:
    """Everything later stages need to know about the flows, as one JSON-ready mapping, and why the deployment
    config cannot be used, if it cannot."""
    from tasks.pipeline.deployments import read_config

    assert current.config.flows is not None
    root = flows_root(current)
    git = Git(root)
    files = chosen_files(tracked_python_files(git), current.config.flows.include, current.config.flows.exclude)
    flows, errors = discover_remembered(current.state_dir, root, files)
    flows = with_projects(root, flows, current.config.flows.subprojects)
    branch, commit = checkout_state(git)
    ctx = context_for(current, root, branch, commit)
    selected = chosen_environments(current, branch)
    deployments, refusal = None, None
    try:
        deployments = read_config(current, root, flows)
    except ConfigError as err:
        refusal = err
    warnings: list[DiscoveryError] = []
    if deployments is not None:  # an unusable config is the problem first; which names matter depends on it
        errors += duplicate_names(named_by_flow(flows, deployments))
        errors, warnings = blocking(errors, deployments)
    environments = list(current.config.environments)
    return {
        "flows": [flow_entry(flow) for flow in flows],
        "deployments": [planned_entry(p, ctx, environments) for p in deployments.planned] if deployments else [],
        "notes": list(deployments.notes) if deployments else [],
        "config_warnings": list(deployments.warnings) if deployments else [],
        "errors": [str(error) for error in errors],
        "warnings": [str(warning) for warning in warnings],
        "branch": branch,
        "commit": commit,
        "version": ctx.version,
        "environments": selected,
        "flows_dir": str(root),
        "config": str(deployments.file) if deployments and deployments.file else "",
        "configs": [str(file) for file in deployments.files] if deployments else [],
        "unusable_config": str(refusal.where or "the deployment config") if refusal else "",
        "format": deployments.format if deployments else "",
    }, refusal


ENVIRONMENT_ENV = "FORKFLOW_ENVIRONMENT"


def chosen_environments(current: Settings, branch: str) -> list[str]:
    """FORKFLOW_ENVIRONMENT when set (e.g. by `nox -s deploy -- dev`), else the branch map."""
    import os

    chosen = os.environ.get(ENVIRONMENT_ENV, "").strip()
    if not chosen:
        return environments_for_branch({name: env.branch for name, env in current.config.environments.items()}, branch)
    unknown = unknown_names(split_names(chosen), current.config.environments)
    if unknown:
        raise ForkflowError(f"{ENVIRONMENT_ENV}={chosen!r} names unknown environments: {', '.join(unknown)}",
                            where=f"{ENVIRONMENT_ENV} (environment variable)",
                            fix="use one of: " + ", ".join(current.config.environments))
    return split_names(chosen)


def flows_root(current: Settings) -> Path:
    assert current.config.flows is not None
    root = current.path(current.config.flows.path)
    if not root.is_dir():
        raise ForkflowError(f"the flows folder {root} does not exist", where="[flows] path",
                            fix="run `doit checkout` (or `doit sync`) first, or correct [flows] path")
    return root


def tracked_python_files(git: Git) -> list[str]:
    """Python files under the folder that git tracks or would track (ignored files are left out)."""
    args = ("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
    found = git.call(args, check=False)
    if found.returncode != 0 and not git.ok("rev-parse", "--show-toplevel"):
        raise ForkflowError(f"{git.repo} is not inside a git repository", where="[flows] path",
                            fix="point [flows] path into the fork checkout")
    listed = found.stdout if found.returncode == 0 else git.read(*args)  # git's own words for any other failure
    return sorted({name for name in listed.split("\0") if name.endswith(".py") and (git.repo / name).is_file()})


def chosen_files(files: list[str], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    """Files matching an include glob and no exclude glob (`*` spans folders)."""
    return [name for name in files if any(fnmatch.fnmatchcase(name, glob) for glob in include)
            and not any(fnmatch.fnmatchcase(name, glob) for glob in exclude)]


def with_projects(root: Path, flows: list[FlowInfo], configured: tuple[str, ...] | None) -> list[FlowInfo]:
    """Each flow with the sub-project it belongs to: the deepest folder above it that is one."""
    folders = [f.strip("/") for f in configured] if configured is not None else project_folders(root, flows)
    result = []
    for flow in flows:
        owner = max((f for f in folders if flow.file.startswith(f + "/")), key=len, default="")
        result.append(dataclasses.replace(flow, project=owner, project_name=project_name(root / owner) or owner))
    return result


def project_folders(root: Path, flows: list[FlowInfo]) -> list[str]:
    """Folders between the flows root and each flow file that hold a pyproject.toml."""
    found = set()
    for flow in flows:
        parts = flow.file.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if (root / folder / "pyproject.toml").is_file():
                found.add(folder)
    return sorted(found)


def project_name(folder: Path) -> str | None:
    """[project] name, or [tool.poetry] name, of the folder's pyproject.toml."""
    file = folder / "pyproject.toml"
    if not file.is_file():
        return None
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    name = data.get("project", {}).get("name") or data.get("tool", {}).get("poetry", {}).get("name")
    return str(name) if name else None


def checkout_state(git: Git) -> tuple[str, str]:
    """The branch being deployed ($FORKFLOW_BRANCH wins) and the commit checked out."""
    commit, _, checked_out = git.read("rev-parse", "HEAD", "--abbrev-ref", "HEAD").partition("\n")
    branch = os.environ.get(BRANCH_ENV) or checked_out.strip()
    if branch == "HEAD":
        raise ForkflowError(f"the checkout at {git.repo} is on a detached HEAD, so its branch is unknown",
                            where=str(git.repo), fix=f"check out a branch, or set {BRANCH_ENV}=<branch> (CI: the pushed branch)")
    return branch, commit


def context_for(current: Settings, root: Path, branch: str, commit: str) -> Context:
    from tasks.core.deployment import Context
    from tasks.core.runtime import code_version

    assert current.config.flows is not None
    package, version = pyproject_identity(root)
    return Context(
        project=current.config.project.name,
        branch=branch,
        commit=commit,
        version=code_version(read_report("version", current), package, version, commit),
        name_pattern=current.config.flows.name_pattern,
    )


def pyproject_identity(root: Path) -> tuple[str | None, str | None]:
    """The flows package's name and version from its pyproject.toml, when it has one."""
    file = root / "pyproject.toml"
    if not file.is_file():
        return None, None
    project = parse_toml(file.read_bytes(), str(file)).get("project", {})
    return project.get("name"), project.get("version")


def planned_entry(planned: Planned, ctx: Context, environments: list[str]) -> dict[str, Any]:
    """One deployment the config defines, with its name in each environment (for listings and subtasks)."""
    from tasks.core.deploydefs import deployment_name

    return {
        "flow": planned.server_flow,
        "entrypoint": planned.flow.entrypoint,
        "name": planned.name,
        "names": {env: deployment_name(ctx, planned, env, ctx.name_pattern) for env in environments},
        "source": planned.source,
        "key": slug(planned.server_flow) + (f"--{slug(planned.name)}" if planned.name is not None else ""),
    }


def show(report: dict[str, Any]) -> None:
    say(f"flows on branch {report['branch']} ({report['commit'][:7]}), code version {report['version']}, "
        f"deploys to: {', '.join(report['environments']) or 'no environment (see [environments.*] branch)'}")
    say_all([f"  {shown(flow['name']):<24} {shown(flow['entrypoint'])}{' (async)' if flow['is_async'] else ''}"
             for flow in report["flows"]])
    if len(report.get("configs", [])) > 1:
        say(f"deployments from {len(report['configs'])} {report['format']} files:")
        for file in report["configs"]:
            say(f"  {file}")
    elif report["config"]:
        say(f"deployments from {report['config']} ({report['format']}):")
    elif report.get("unusable_config"):
        say(f"deployment config {report['unusable_config']} cannot be used (see below): nothing is deployed")
    elif report["deployments"]:
        say("deployments from FLOW_SPEC in the code (no deployment config file):")
    else:
        say("no deployment config (prefect.yaml, acme static config, deployments.yaml) and no FLOW_SPEC: "
            "nothing is deployed")
    say_all([f"  {shown(item['flow']):<24} -> "
             + (", ".join(shown(item["names"][env]) for env in report["environments"]) or "(no environment for this branch)")
             for item in report["deployments"]])
    for note in report.get("notes", []):
        say(f"  note: {note}")
    for error in report["errors"]:
        warn(error)
    for warning in report.get("config_warnings", []):
        warn(warning)
    for warning in report.get("warnings", []):
        warn(f"{warning} (no entrypoint is in this file, so it does not stop a deploy)")
