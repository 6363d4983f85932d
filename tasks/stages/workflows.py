"""Stage `workflows`: the GitHub workflows of the repository that runs forkflow.

`doit workflows` renders templates/github/<name>.yml.j2 into
`<target>/.github/workflows/<name>.yml` for sync-upstream, release, deploy
and promote: the ones the config has sections for, or those `[github]
workflows` or `--only a,b` name. The target is `[github] target`, else the
git repository holding the config file. `--dry-run` prints a unified diff
per file and writes nothing into the target. The task is up to date while
every file already has the rendered text. Each run writes
`.forkflow/reports/workflows.json` (created / updated / unchanged per file).
What goes into the templates is decided in tasks.core.workflows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.adapters.console import say
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.values import sha256_hex
from tasks.core.workflows import (
    Rendered,
    choose_workflows,
    file_status,
    github_section,
    parse_only,
    render_workflows,
    unified_diff,
    workflow_context,
)
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run, not_after_dry_run, note_dry_run
from tasks.pipeline.checks import Check
from tasks.pipeline.settings import REPO_ROOT, Settings, settings, write_report, write_text_atomically

STAGE = "workflows"
TEMPLATES = REPO_ROOT / "templates" / "github"
DOC = ("render the GitHub workflows (sync-upstream, release, deploy, promote, pull-request) into the target repository "
       "(--dry-run shows the diff, --only a,b)")

ONLY_PARAM = {
    "name": "only",
    "long": "only",
    "type": str,
    "default": "",
    "help": "comma-separated workflows to render (default: [github] workflows, else every one the config feeds)",
}


def task_workflows() -> dict[str, Any]:
    """Render the GitHub workflows into the target repository."""
    return {
        "basename": STAGE,
        "doc": DOC,
        "actions": [guarded(workflows_action)],
        "params": [dry_run_param(), ONLY_PARAM],
        "file_dep": [str(path) for path in template_files()],
        "uptodate": [Check("the last run was not a dry run", not_after_dry_run(STAGE)),
                     Check("every chosen workflow file already has the rendered text", files_match)],
        "verbosity": 2,
    }


def template_files() -> list[Path]:
    return sorted(TEMPLATES.glob("*.j2"))


def workflows_action(dry_run: bool = False, only: str = "") -> dict[str, str]:
    current = settings()
    dry = is_dry_run(dry_run)
    target = target_folder(current)
    rendered, skipped = render_for(current, target, only)
    results = [apply(target, item, dry) for item in rendered]
    write_report(STAGE, report(target, dry, results, skipped), current)
    note_dry_run(STAGE, dry)
    return {"made": summary(results, dry)}


def render_for(current: Settings, target: Path, only: str) -> tuple[list[Rendered], dict[str, str]]:
    source = str(current.config_file)
    names, skipped = choose_workflows(current.config, parse_only(only), source)
    context = workflow_context(current.config, inside(target, current.config_file, "the config file"),
                               inside(target, current.state_dir, "the state folder"), source)
    return render_workflows(read_templates(), names, context), skipped


def target_folder(current: Settings) -> Path:
    """`[github] target`, else the git repository holding the config file (else the config's folder)."""
    configured = github_section(current.config).target
    if configured is None:
        return repository_root(current.root)
    folder = current.path(configured)
    if not folder.is_dir():
        raise ConfigError(f"[github] target {configured!r} is not a folder ({folder})", where=str(current.config_file),
                          fix="create it, or point [github] target at the repository that should get the workflows")
    return folder


def repository_root(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def inside(target: Path, path: Path, what: str) -> str:
    """`path` relative to the target, as the workflows see it from the checkout's root."""
    try:
        return path.resolve().relative_to(target.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"workflows: {what} ({path}) is outside the target repository {target}", where="[github] target",
                          fix="set [github] target to the repository that holds the config and its state folder") from None


def read_templates() -> dict[str, str]:
    files = template_files()
    if not files:
        raise ForkflowError(f"workflows: no templates in {TEMPLATES}", where=str(TEMPLATES),
                            fix="restore templates/github/ from the forkflow repository")
    return {file.name: file.read_text(encoding="utf-8") for file in files}


def read_text(file: Path) -> str | None:
    return file.read_text(encoding="utf-8") if file.is_file() else None


def apply(target: Path, item: Rendered, dry: bool) -> dict[str, Any]:
    """Write one workflow (or, in a dry run, print its diff) and describe what happened."""
    file = target / item.path
    old = read_text(file)
    status = file_status(old, item.text)
    if dry:
        diff = unified_diff(old, item.text, item.path)
        say(f"{item.path}: would be {status}" + (":\n" + diff.rstrip("\n") if diff else ""))
    elif status != "unchanged":
        write_text_atomically(file, item.text)
        say(f"{item.path}: {status}")
    else:
        say(f"{item.path}: unchanged")
    return {"name": item.name, "file": str(file), "path": item.path, "status": status,
            "sha256": sha256_hex(item.text)}




def report(target: Path, dry: bool, results: list[dict[str, Any]], skipped: dict[str, str]) -> dict[str, Any]:
    return {
        "target": str(target),
        "dry_run": dry,
        "workflows": results,
        "skipped": [{"name": name, "reason": reason} for name, reason in skipped.items()],
    }


def summary(results: list[dict[str, Any]], dry: bool) -> str:
    counts: dict[str, int] = {}
    for item in results:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    text = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no workflows"
    return f"dry run: would be {text}" if dry else text


def files_match(task: Any = None, values: Any = None) -> bool:
    """Up to date while every chosen workflow file already has the rendered text."""
    only = str((getattr(task, "options", None) or {}).get("only") or "")
    try:
        current = settings()
        target = target_folder(current)
        rendered, _ = render_for(current, target, only)
    except ForkflowError:
        return False
    return all(read_text(target / item.path) == item.text for item in rendered)
