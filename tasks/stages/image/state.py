"""The image report (image.json) and per-cell state, and the engine client and revision, once per process."""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters.console import say
from tasks.core import images as core
from tasks.pipeline.actions import is_dry_run
from tasks.pipeline.checks import Stale
from tasks.pipeline.settings import Settings, read_json, read_report, settings, write_json, write_report
from tasks.stages.image.setup import ImageSetup, image_setup


def report_settled(run_id: str, task: Any = None, *_: Any) -> bool | Stale:
    """Up to date when no image task ran in this run: the report still describes the last change."""
    if task is not None and (task.options or {}).get("dry_run") or is_dry_run(False):
        return Stale("dry run")
    data = read_report("image", settings()) or {}
    records = data.get("images", []) + data.get("environments", [])
    if not records:
        return Stale("no image.json yet")
    ran = [r.get("name") or r.get("key") or "?" for r in records if r.get("run") == run_id]
    return Stale(f"{len(ran)} image task(s) ran in this run") if ran else True


def report_action(run_id: str, dry_run: bool = False) -> dict[str, str]:
    """Images whose subtask did not run this time are up to date; say so, then summarise."""
    setup = image_setup(dry_run)
    if setup.dry_run:
        say("dry run: reports/image.json left as it is")
        return {"made": "dry run"}

    def mark_unchanged(data: dict[str, Any]) -> None:
        for record in data.get("images", []) + data.get("environments", []):
            if record.get("run") != run_id and record.get("status") != "failed":
                record["status"] = "up-to-date"
                record["reason"] = f"inputs unchanged (input hash {str(record.get('input_hash'))[:12]})"
                record["run"] = run_id

    data = update_report(setup, setup.keys, change=mark_unchanged)
    counts: dict[str, int] = {}
    for record in data.get("images", []):
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        size = f"{record['size_mb']} MB" if "size_mb" in record else "-"
        say(f"{record['name']:<18} {record['status']:<10} {core.short(record.get('digest')):<12} {size:>10}  "
            f"{', '.join(record.get('tags', []))}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return {"made": f"image.json ({summary})"}


@contextmanager
def report_lock(current: Settings) -> Iterator[None]:
    current.reports_dir.mkdir(parents=True, exist_ok=True)
    with (current.reports_dir / "image.json.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_report(setup: ImageSetup, keys: list[str] | None, *, images: list[dict[str, Any]] | None = None,
                  environments: list[dict[str, Any]] | None = None,
                  change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Merge records into reports/image.json under a lock (image subtasks may run in parallel)."""
    current = setup.settings
    with report_lock(current):
        data = read_report("image", current) or {}
        merged = {r["name"]: r for r in data.get("images", [])}
        merged.update({r["name"]: r for r in images or []})
        order = keys if keys is not None else list(merged)
        data["images"] = [merged[k] for k in order if k in merged]
        if environments is not None:
            data["environments"] = environments
        if change:
            change(data)
        write_report("image", data, current)
    return data


def in_report(setup: ImageSetup, key: str) -> bool:
    """Whether reports/image.json holds a record of the image `key`."""
    records = (read_report("image", setup.settings) or {}).get("images")
    return isinstance(records, list) and any(isinstance(r, dict) and r.get("name") == key for r in records)


def clean_image(key: str) -> None:
    """`doit clean image`: forget what was built (state and build context); images stay in the engine and registry."""
    folder = image_setup().state_folder
    (folder / f"{key}.json").unlink(missing_ok=True)
    shutil.rmtree(folder / key, ignore_errors=True)
    say(f"image:{key}: removed its state and build context (images in the engine and registry are kept)")


def read_state(setup: ImageSetup, key: str) -> dict[str, Any] | None:
    return read_json(setup.state_folder / f"{key}.json")


def saved_values(state: dict[str, Any] | None) -> dict[str, Any]:
    """The values of the last real run, kept by a dry run so it does not make the next run redo the push."""
    if not state:
        return {}
    return {"input_hash": state.get("input_hash"), "image_id": state.get("image_id"),
            "target": core.input_hash(state.get("target", {}))}


def save_state(setup: ImageSetup, key: str, data: dict[str, Any]) -> None:
    write_json(setup.state_folder / f"{key}.json", data)


CLIENTS: dict[int, Any] = {}


REVISIONS: dict[tuple[int, str], str] = {}


def engine() -> Any:
    """A connected Docker client for this process (forked doit workers get their own)."""
    pid = os.getpid()
    if pid not in CLIENTS:
        CLIENTS[pid] = docker_adapter.connect()
        atexit.register(CLIENTS[pid].close)
    return CLIENTS[pid]


def revision(setup: ImageSetup) -> str:
    """The commit the images are built from: the fork checkout's HEAD, else $GITHUB_SHA, else unknown."""
    key = (os.getpid(), str(setup.settings.config_file))
    if key not in REVISIONS:
        REVISIONS[key] = read_revision(setup.settings)
    return REVISIONS[key]


def read_revision(current: Settings) -> str:
    from tasks.adapters.git import Git

    fork = current.fork_path
    if fork and (fork / ".git").exists():
        found = Git(fork).rev("HEAD")
        if found:
            return found
    return os.environ.get("GITHUB_SHA", "")
