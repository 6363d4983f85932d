"""What the up-to-date checks and the run summary need of a report, without parsing it in every run.

A no-op run asks of each report only a few facts: which keys hold lists (`report_intact`), its `inputs` digest
(the flows check), the sha256 of its bytes (the deploy check, which depends on all of flows.json), and for the
summary the count of items per status, whether it failed and its own summary lines. They are kept in
`<state>/report-facts.json` by the report's inode, size and modification time (a report is written beside and
renamed over, so a new one is a new inode), so a run that changed nothing does not read flows.json of 5,000
deployments (5 MB) at all; a report that is not the one the facts were read from is parsed again.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from tasks.pipeline.settings import Settings, parsed_once, read_json, settings, write_json

FACTS = "report-facts.json"

_known: dict[Path, dict[str, Any]] = {}  # facts file -> its content, read once per process


def report_facts(stage: str, target: Settings | None = None) -> dict[str, Any] | None:
    """The facts of reports/<stage>.json; None when it is missing, not JSON or not an object."""
    current = target or settings()
    file = current.reports_dir / f"{stage}.json"
    try:
        stat = file.stat()
    except OSError:
        return None
    key = [stat.st_ino, stat.st_size, stat.st_mtime_ns]
    known = known_facts(current.state_dir / FACTS)
    entry = known.get(file.name)
    if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("facts"), dict) \
            and "sha256" in entry["facts"]:  # facts kept before the digest was one of them are read again
        return dict(entry["facts"])
    try:
        data = parsed_once(file)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    facts = {**facts_of(data), "sha256": content_digest(file)}
    known[file.name] = {"key": key, "facts": facts}
    with contextlib.suppress(OSError):  # a cache: a full disk only costs parsing the report again next run
        write_json(current.state_dir / FACTS, known, compact=True)
    return dict(facts)


def content_digest(file: Path) -> str | None:
    """sha256 of the report's bytes: what a check that depends on the whole report compares, without reading it."""
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return None


def known_facts(file: Path) -> dict[str, Any]:
    if file not in _known:
        _known[file] = read_json(file) or {}
    return _known[file]


def facts_of(data: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for items in data.values():
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "status" in item:
                counts[str(item["status"])] = counts.get(str(item["status"]), 0) + 1
    own = data.get("summary_lines")
    inputs = data.get("inputs")
    return {
        "lists": sorted(key for key, value in data.items() if isinstance(value, list)),
        "inputs": inputs if isinstance(inputs, str) else None,
        "counts": counts,
        "failed": data.get("status") == "failed",
        "error": str(data.get("error") or "see the log"),
        "summary_lines": [line for line in own if isinstance(line, str)] if isinstance(own, list) else [],
    }
