"""A checkout's pyproject.toml files, parsed once per process while they stay the same file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline import workspace
from tasks.pipeline.workspace import package_pyproject


def test_a_pyproject_is_parsed_once_and_each_caller_gets_its_own_copy(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pyproject.toml"
    file.write_text('[project]\nname = "orbit"\ndependencies = ["a"]\n', encoding="utf-8")
    parses: list[Path] = []
    real = workspace.read_pyproject

    def counted(path: Path) -> dict[str, Any]:
        parses.append(path)
        return real(path)

    monkeypatch.setattr(workspace, "read_pyproject", counted)
    first = package_pyproject(file)
    first["project"]["dependencies"].append("changed by a caller")
    second = package_pyproject(file)
    assert second == {"project": {"name": "orbit", "dependencies": ["a"]}}
    assert parses == [file]


def test_a_rewritten_pyproject_of_the_same_size_is_read_again(tmp_path: Path) -> None:
    file = tmp_path / "pyproject.toml"
    file.write_text('[project]\nversion = "3.1.0"\n', encoding="utf-8")
    stat = file.stat()
    assert package_pyproject(file)["project"]["version"] == "3.1.0"
    file.write_text('[project]\nversion = "3.1.1"\n', encoding="utf-8")  # in place: the same inode and size
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert package_pyproject(file)["project"]["version"] == "3.1.1"
