"""What to upload: a pure decision per file, from local hashes and what the index already has."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalFile:
    name: str
    path: str
    sha256: str
    package: str
    version: str


@dataclass(frozen=True)
class Decision:
    file: LocalFile
    action: str  # "upload", "skip" or "conflict"
    remote_sha256: str | None = None


def decide(file: LocalFile, remote: Mapping[str, str | None]) -> Decision:
    """Skip a file the index has with the same hash; a different hash is a conflict, never an overwrite."""
    if file.name not in remote:
        return Decision(file, "upload")
    theirs = remote[file.name]
    if theirs is None or theirs == file.sha256:
        return Decision(file, "skip", theirs)
    return Decision(file, "conflict", theirs)


def conflict_message(decisions: list[Decision]) -> str:
    lines = [f"  - {d.file.name}: index has sha256 {d.remote_sha256}, local file has {d.file.sha256}"
             for d in decisions if d.action == "conflict"]
    return "files already on the index with different content (they are never overwritten):\n" + "\n".join(lines)
