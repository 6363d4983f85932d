"""The code's own shape: layers that only import downwards, modules of a readable size, ruff and mypy clean."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LAYERS = ("core", "adapters", "pipeline", "stages")
MAX_LINES = 450


def modules() -> dict[str, Path]:
    return {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
            for path in sorted((REPO / "tasks").rglob("*.py"))}


def layer(module: str) -> int:
    """0 core, 1 adapters, 2 pipeline, 3 stages, 4 the top (tasks.early, beside dodo.py)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else len(LAYERS)


def stage_of(module: str) -> str:
    return ".".join(module.split(".")[:3])


def imported(path: Path) -> set[str]:
    """The tasks.* modules a file imports (`from tasks.x import y` counts tasks.x.y when that is a module)."""
    known = modules()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tasks.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks"):
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= (names & set(known)) or {node.module}
    return found


def wrong_imports() -> list[str]:
    wrong = []
    for module, path in modules().items():
        for target in sorted(imported(path)):
            if layer(target) > layer(module):
                wrong.append(f"{module} -> {target} (an import upwards)")
            elif layer(module) == layer(target) == LAYERS.index("stages") and stage_of(module) != stage_of(target):
                wrong.append(f"{module} -> {target} (a stage importing another stage)")
            elif layer(module) == 0 and layer(target) != 0:
                wrong.append(f"{module} -> {target} (core must stay pure)")
    return wrong


def test_layers_only_import_downwards() -> None:
    assert wrong_imports() == []


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from tasks.stages.sync.setup import SyncSetup\nfrom tasks.core import images\n")
    assert imported(bad) == {"tasks.stages.sync.setup", "tasks.core.images"}
    assert layer("tasks.adapters.git") < layer("tasks.stages.sync.setup")


def test_no_module_is_over_the_size_limit() -> None:
    long = {module: n for module, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is not installed (pip install -e '.[dev]')"
    return found


def test_ruff_is_clean() -> None:
    done = subprocess.run([tool("ruff"), "check", "."], check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    done = subprocess.run([tool("mypy")], check=False, cwd=REPO, capture_output=True, text=True, timeout=600)
    settings = (REPO / "pyproject.toml").read_text()
    covered = 'files = ["tasks", "bench", "tests", "dodo.py", "noxfile.py"]' in settings
    assert done.returncode == 0 and "strict = true" in settings and covered, done.stdout[-4000:]


def declared_dependencies() -> list[tuple[str, str]]:
    """(distribution name, the comment block above it) for each runtime dependency in pyproject.toml."""
    found, comment = [], ""
    lines = (REPO / "pyproject.toml").read_text(encoding="utf-8").split("dependencies = [", 1)[1].split("]", 1)[0]
    for line in lines.splitlines():
        text = line.strip()
        if text.startswith("#"):
            comment += text
        elif text:
            found.append((re.split(r"[<>=!\[]", text.strip('",'))[0], comment))
            comment = ""
    return found


def forkflow_sources() -> str:
    files = [*(REPO / "tasks").rglob("*.py"), *(REPO / "bench").glob("*.py"), REPO / "dodo.py", REPO / "noxfile.py"]
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def test_every_declared_dependency_is_used() -> None:
    """A dependency is imported, run as a program or module, named as a build tool, or pinned with a reason."""
    source = forkflow_sources()
    unused = []
    for name, comment in declared_dependencies():
        module = {"pyyaml": "yaml", "python-semantic-release": "semantic_release"}.get(name.lower(), name.replace("-", "_"))
        uses = (rf"^\s*(import|from) {module}\b", rf"[\"']{re.escape(name)}[\"']", rf"[\"']-m[\"'], [\"']{module}[\"']")
        if not comment and not any(re.search(use, source, re.MULTILINE) for use in uses):
            unused.append(name)
    assert unused == [], f"declared in pyproject.toml but never used: {unused}"


def test_the_dependency_check_sees_an_unused_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "declared_dependencies", lambda: [("GitPython", "")])
    with pytest.raises(AssertionError, match="GitPython"):
        test_every_declared_dependency_is_used()
