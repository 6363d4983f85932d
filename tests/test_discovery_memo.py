"""Flow discovery remembered per file gives discover_folder's answer after any edit, parsing only what changed."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tasks.core.discovery import DiscoveryError, FlowInfo, discover_source
from tasks.core.local_modules import file_offers, from_offers
from tasks.pipeline import discovery_memo
from tasks.pipeline.discovery_memo import DISCOVERY_FILE, discover_remembered, read_sources

LIBRARY = '''from prefect import flow as prefect_flow


def flow(*args, **kwargs):
    return prefect_flow(*args, **kwargs)
'''
CONSTANTS = '''APP = "orbit"
TAGS = {"b", "a", "c"}
ODD = float("nan")
LIMITS = (1, 2.5, None, b"x")
'''


def flow_file(index: int, body: str = "return x") -> str:
    kind = index % 3
    if kind == 0:
        return (f"from helpers.flowlib import flow\nfrom helpers.consts import APP\n\n\n"
                f"@flow(name=f\"{{APP}}-{index}\")\ndef run_{index}(x: int = {index}):\n    {body}\n")
    if kind == 1:
        return f"from prefect import flow\n\n\n@flow\ndef job_{index}(x: str = 'a'):\n    {body}\n"
    return f"import prefect\n\nLABEL = 'l{index}'\n\n\n@prefect.flow(name=LABEL)\nasync def task_{index}(x):\n    {body}\n"


def project(root: Path, count: int) -> None:
    (root / "helpers").mkdir(parents=True)
    (root / "flows").mkdir()
    (root / "helpers" / "flowlib.py").write_text(LIBRARY)
    (root / "helpers" / "consts.py").write_text(CONSTANTS)
    for index in range(count):
        (root / "flows" / f"f{index}.py").write_text(flow_file(index))
    (root / "flows" / "bom.py").write_bytes(b"\xef\xbb\xbf" + flow_file(99).encode())
    (root / "flows" / "latin.py").write_bytes(b"# caf\xe9\n")


def discover_folder(root: Path, files: list[str]) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """Every flow in the files, and every problem, found from scratch: what the memo must always answer."""
    sources, errors = read_sources(root, files)
    local = from_offers((name, file_offers(text, name)) for name, (_, text) in sources.items())
    flows: list[FlowInfo] = []
    for name, (_, text) in sources.items():
        found, problems = discover_source(text, name, local)
        flows += found
        errors += problems
    return flows, errors


def python_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.py"))


def edit(root: Path, rng: random.Random, count: int) -> str:
    """One edit a team makes to a flows folder; what it was."""
    index = rng.randrange(count)
    target = root / "flows" / f"f{index}.py"
    choice = rng.choice(["body", "body", "constant", "library", "add", "remove", "syntax", "rename", "set"])
    if choice == "constant":
        (root / "helpers" / "consts.py").write_text(CONSTANTS.replace('"orbit"', f'"orbit{rng.randrange(9)}"'))
    elif choice == "library":
        text = LIBRARY if rng.random() < 0.5 else LIBRARY.replace("def flow(", "def other(")
        (root / "helpers" / "flowlib.py").write_text(text)
    elif choice == "set":
        (root / "helpers" / "consts.py").write_text(CONSTANTS.replace('"c"', f'"c{rng.randrange(9)}"'))
    elif choice == "add":
        (root / "flows" / f"new{rng.randrange(99)}.py").write_text(flow_file(rng.randrange(99)))
    elif choice == "remove" and target.exists():
        target.unlink()
    elif choice == "syntax":
        target.write_text("def broken(:\n")
    elif choice == "rename" and target.exists():
        target.write_text(target.read_text().replace("def ", "def renamed_", 1))
    else:
        target.write_text(flow_file(index, f"return {rng.randrange(999)}"))
    return choice


def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files discovery parses for their flows."""
    parsed: list[str] = []

    def spy(text: str, name: str, local: Any = None) -> Any:
        parsed.append(name)
        return discover_source(text, name, local)
    monkeypatch.setattr(discovery_memo, "discover_source", spy)
    return parsed


def test_every_edit_gives_the_answer_from_scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, state = tmp_path / "flows", tmp_path / "state"
    state.mkdir()
    project(root, 12)
    rng = random.Random(7)
    seen = set()
    for _ in range(60):
        files = python_files(root)
        assert discover_remembered(state, root, files) == discover_folder(root, files)
        seen.add(edit(root, rng, 12))
    assert seen >= {"body", "constant", "library", "add", "remove", "syntax", "rename", "set"}
    flows, errors = discover_folder(root, python_files(root))
    assert flows and any("cannot read" in error.message for error in errors)


def test_one_changed_file_is_the_only_one_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, state = tmp_path / "flows", tmp_path / "state"
    state.mkdir()
    project(root, 30)
    files = python_files(root)
    first = discover_remembered(state, root, files)
    assert len(first[0]) == 31
    parsed = counted(monkeypatch)
    written = (state / DISCOVERY_FILE).stat().st_ino  # an atomic write is a new file
    assert discover_remembered(state, root, files) == first and parsed == []
    assert (state / DISCOVERY_FILE).stat().st_ino == written, "nothing changed: nothing written"
    for name, text in (("f4.py", flow_file(4, "return 2 * x")), ("f1.py", flow_file(1) + "RETRIES = 3\n")):
        (root / "flows" / name).write_text(text)  # a body, then a constant nothing imports
        expected = discover_folder(root, files)
        parsed.clear()
        assert discover_remembered(state, root, files) == expected and parsed == [f"flows/{name}"]
    parsed.clear()
    (root / "helpers" / "consts.py").write_text(CONSTANTS.replace('"orbit"', '"atlas"'))  # its importers name anew
    found, _ = discover_remembered(state, root, files)
    importers = [f"flows/f{index}.py" for index in range(0, 30, 3)]
    assert sorted(parsed) == sorted(["flows/bom.py", *importers, "helpers/consts.py"])
    assert "atlas-0" in {flow.name for flow in found}


def test_a_damaged_memo_is_read_as_far_as_it_can_be(tmp_path: Path) -> None:
    root, state = tmp_path / "flows", tmp_path / "state"
    state.mkdir()
    project(root, 6)
    files = python_files(root)
    expected = discover_folder(root, files)
    discover_remembered(state, root, files)
    memo = json.loads((state / DISCOVERY_FILE).read_text())
    entries = memo["files"]
    entries["flows/f0.py"]["offers"] = ["not", "[a list"]
    entries["flows/f1.py"]["flows"] = [{"name": "missing fields"}]
    entries["helpers/consts.py"]["offers"] = 7
    del entries["flows/f2.py"]["errors"]
    (state / DISCOVERY_FILE).write_text(json.dumps(memo))
    assert discover_remembered(state, root, files) == expected
    for damaged in ({**memo, "files": ["not", "a", "mapping"]}, {**memo, "files": {"flows/f0.py": {"flows": [], "errors": []}}}):
        (state / DISCOVERY_FILE).write_text(json.dumps(damaged))
        assert discover_remembered(state, root, files) == expected
    (state / DISCOVERY_FILE).write_text("{not json")
    assert discover_remembered(state, root, files) == expected
