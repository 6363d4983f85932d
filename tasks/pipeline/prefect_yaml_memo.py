"""A prefect.yaml's deployments, remembered by the file's content.

Reading a prefect.yaml checks every entry: the YAML, Prefect's own rules (keys
it ignores, files it refuses) and the file's models, schedules included. What
comes out depends only on the file's bytes, where it sits under the flows
folder, `[flows] strict`, the Prefect version whose rules apply and the code
that reads it. So it is kept in `.forkflow/prefect-yaml-read.json` per file
under a digest of all of those, and a run whose prefect.yaml is unchanged
(a flow's code changed, say) takes each deployment's checked keys from there,
without parsing the file or loading the models. The flows are looked up again
every time: an entrypoint whose flow is gone sends the file to a full read,
which says what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.deploydefs import PREFECT_YAML_PATTERN, Planned
from tasks.core.discovery import FlowInfo
from tasks.core.prefect_templates import entrypoint_files
from tasks.pipeline.settings import read_json, write_json

MEMO_FILE = "prefect-yaml-read.json"
READING_CODE = ("core/prefect_yaml.py", "core/prefect_schedules.py", "core/prefect_templates.py", "core/deployspec.py",
                "core/deploydefs.py", "core/deployment.py", "core/schedules.py", "core/yamlfile.py",
                "core/yamllimits.py", "pipeline/deployments.py", "pipeline/prefect_rules.py",
                "pipeline/schedule_rules.py", "pipeline/prefect_yaml_memo.py")


@dataclass(frozen=True)
class FileRead:
    """One prefect.yaml as read: its deployments, the notes on them and the warnings about keys Prefect ignores."""

    planned: list[Planned]
    notes: list[str]
    warnings: list[str]


def reading_key(file: Path, prefix: str, strict: bool, prefect_version: str) -> str:
    """Everything the reading of `file` depends on, as one digest."""
    digest = hashlib.sha256(f"{file}\0{prefix}\0{strict}\0{prefect_version}\0{reading_code()}\0".encode())
    digest.update(file.read_bytes())
    return digest.hexdigest()


@functools.cache
def reading_code() -> str:
    """The code that reads a prefect.yaml and the Python running it, as one digest (once per process: a monorepo
    reads several files)."""
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    tasks_dir = Path(__file__).resolve().parent.parent
    for module in READING_CODE:
        digest.update((tasks_dir / module).read_bytes())
    return digest.hexdigest()


def remembered_read(state_dir: Path, file: Path, key: str, flows: list[FlowInfo], prefix: str) -> FileRead | None:
    """The file's read from the memo, its flows looked up again; None when it is not there under `key`, or an
    entrypoint no longer finds its flow."""
    entry = ((read_json(state_dir / MEMO_FILE) or {}).get("files") or {}).get(str(file))
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    by_entrypoint = {flow.entrypoint: flow for flow in flows}
    try:
        planned = [with_flow(item, by_entrypoint, prefix) for item in entry["deployments"]]
        notes, warnings = list(entry["notes"]), list(entry["warnings"])
    except (KeyError, TypeError, ValueError):  # a damaged entry: the file is read again
        return None
    if any(item is None for item in planned):
        return None
    return FileRead([item for item in planned if item is not None], notes, warnings)


def with_flow(item: dict[str, Any], by_entrypoint: dict[str, FlowInfo], prefix: str) -> Planned | None:
    flow = next((by_entrypoint[prefix + file] for file in entrypoint_files(item["layer"]["entrypoint"])
                 if prefix + file in by_entrypoint), None)
    if flow is None:
        return None
    return Planned(flow, item["name"], ((None, item["layer"]),), pattern=PREFECT_YAML_PATTERN, native=True,
                   source=item["source"], flow_name=flow.name, extra=item["extra"])


def remember_read(state_dir: Path, file: Path, key: str, read: FileRead) -> None:
    """Keep the file's read under `key`, when JSON gives back exactly what was read (a YAML date, a mapping with
    number keys would not: such a file is read in full every time, and nothing is kept for it). Files that are gone
    are forgotten; the memo is written only when it changes."""
    entry: dict[str, Any] = {
        "key": key, "notes": read.notes, "warnings": read.warnings,
        "deployments": [{"name": planned.name, "layer": planned.layers[0][1], "source": planned.source,
                         "extra": planned.extra} for planned in read.planned]}
    try:
        exact = json.loads(json.dumps(entry)) == entry
    except (TypeError, ValueError):
        exact = False
    memo = read_json(state_dir / MEMO_FILE) or {}
    files = {name: kept for name, kept in (memo.get("files") or {}).items() if name != str(file) and Path(name).is_file()}
    if exact:
        files[str(file)] = entry
    if files != memo.get("files"):
        write_json(state_dir / MEMO_FILE, {"files": files}, compact=True)
