"""A prefect.yaml read before is taken from the memo (tasks.pipeline.prefect_yaml_memo), and only then.

The oracle is the full read: every answer from the memo must equal what
reading the file in full gives, and whatever the full read refuses (a flow that
is gone, keys `[flows] strict` refuses) is still refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.core import prefect_yaml
from tasks.core.deploydefs import DeploymentConfig
from tasks.core.discovery import FlowInfo, flow_from_entry
from tasks.core.errors import ConfigError
from tasks.pipeline import deployments
from tasks.pipeline.prefect_yaml_memo import MEMO_FILE
from tasks.pipeline.settings import Settings, settings
from tests.test_flow_formats import fixture_repo, pipeline, run_stages

FIXTURE_ENV = {"FIXTURE_POOL": "pool", "FIXTURE_TAG": "nightly", "FIXTURE_DIR": "/opt/flows"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """The prefect.yaml fixture as a repository, its config, and its flows listed once."""
    for key, value in FIXTURE_ENV.items():
        monkeypatch.setenv(key, value)
    repo = fixture_repo(tmp_path, "prefect_project")
    config = pipeline(tmp_path, "http://127.0.0.1:9/api")
    run_stages(config, monkeypatch)
    yield repo, config
    settings.cache_clear()  # the next test reads its own config


def current_flows(config: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Path, list[FlowInfo]]:
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings.cache_clear()
    current = settings()
    listing = json.loads((current.reports_dir / "flows.json").read_text())
    return current, Path(listing["flows_dir"]), [flow_from_entry(entry) for entry in listing["flows"]]


def read(config: Path, monkeypatch: pytest.MonkeyPatch, remembered: bool) -> DeploymentConfig:
    """read_config in a new run; with `remembered`, parsing the file fails the test."""
    current, root, flows = current_flows(config, monkeypatch)
    deployments.READ.clear()
    with monkeypatch.context() as patch:
        if remembered:
            patch.setattr(prefect_yaml, "parse_file", refuse_parse)
        return deployments.read_config(current, root, flows)


def refuse_parse(*_: object, **__: object) -> None:
    raise AssertionError("the file was parsed, not taken from the memo")


def parses(config: Path, monkeypatch: pytest.MonkeyPatch) -> DeploymentConfig:
    """read_config in a new run, asserting the file is parsed (the memo cannot answer)."""
    calls: list[int] = []
    real = prefect_yaml.parse_file

    def counted(*args: object, **kwargs: object) -> prefect_yaml.PrefectFile:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(prefect_yaml, "parse_file", counted)
        found = read(config, monkeypatch, remembered=False)
    assert calls == [1]
    return found


def full_read(config: Path, monkeypatch: pytest.MonkeyPatch) -> DeploymentConfig:
    """The oracle: the same read with no memo at all."""
    current, _, _ = current_flows(config, monkeypatch)
    memo = current.state_dir / MEMO_FILE
    kept = memo.read_bytes() if memo.exists() else None
    memo.unlink(missing_ok=True)
    try:
        return parses(config, monkeypatch)
    finally:
        if kept is not None:
            memo.write_bytes(kept)


def test_an_unchanged_prefect_yaml_is_taken_from_the_memo_without_the_models(
        project: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    repo, config = project
    remembered = read(config, monkeypatch, remembered=True)
    assert remembered == full_read(config, monkeypatch)
    assert [p.name for p in remembered.planned] == ["extract-nightly", "default", "default"]
    # a flow's code changed: its deployments are re-made from the memo, with the flow as discovered now
    etl = repo / "flows" / "etl.py"
    etl.write_text(etl.read_text().replace('"""', '"""Changed. ', 1))
    run_stages(config, monkeypatch)
    assert read(config, monkeypatch, remembered=True) == full_read(config, monkeypatch)
    # a new process, as `doit flows` and `doit deploy` are: the file's models are never loaded
    code = ("import json, sys\nfrom pathlib import Path\nfrom tasks.core.discovery import flow_from_entry\n"
            "from tasks.pipeline.deployments import read_config\nfrom tasks.pipeline.settings import settings\n"
            "current = settings()\nlisting = json.loads((current.reports_dir / 'flows.json').read_text())\n"
            "found = read_config(current, Path(listing['flows_dir']), [flow_from_entry(e) for e in listing['flows']])\n"
            "print(len(found.planned), 'pydantic' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "FORKFLOW_CONFIG": str(config)})
    assert done.stdout.split() == ["3", "False"]


def test_a_changed_file_or_setting_is_read_in_full_and_what_it_refuses_is_still_refused(
        project: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo, config = project
    file = repo / "prefect.yaml"
    text = file.read_text()
    file.write_text(text.replace("limit: 100", "limit: 250"))
    changed = parses(config, monkeypatch)
    assert changed.planned[0].layers[0][1]["parameters"] == {"source": "erp", "limit": 250}
    assert read(config, monkeypatch, remembered=True) == changed
    # a key Prefect ignores: a warning, remembered with the rest; [flows] strict must refuse it all the same
    file.write_text(text.replace("    description: Nightly extract.", "    descripton: typo"))
    (warning,) = parses(config, monkeypatch).warnings
    assert "descripton: prefect deploy ignores this key" in warning
    assert read(config, monkeypatch, remembered=True).warnings == (warning,)
    strict = pipeline(tmp_path, "http://127.0.0.1:9/api", flows="strict = true\n")
    with pytest.raises(ConfigError, match=r"keys prefect deploy ignores \(\[flows\] strict = true refuses them\)"):
        read(strict, monkeypatch, remembered=False)
    # the file as remembered, but a flow it deploys is gone: read in full, which names the problem
    pipeline(tmp_path, "http://127.0.0.1:9/api")
    file.write_text(text)
    parses(config, monkeypatch)
    current, root, flows = current_flows(config, monkeypatch)
    deployments.READ.clear()
    with pytest.raises(ConfigError, match=r"no flow at 'flows/etl.py:extract'"):
        deployments.read_config(current, root, [flow for flow in flows if flow.name != "extract"])


def test_a_damaged_or_inexact_memo_is_never_the_answer(project: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    repo, config = project
    current, _, _ = current_flows(config, monkeypatch)
    memo = current.state_dir / MEMO_FILE
    oracle = full_read(config, monkeypatch)
    memo.write_text(memo.read_text()[:200])
    assert parses(config, monkeypatch) == oracle
    entries = json.loads(memo.read_text())
    (entry,) = entries["files"].values()
    entry["deployments"][0]["layer"] = "not a layer"
    memo.write_text(json.dumps(entries))
    assert parses(config, monkeypatch) == oracle
    assert read(config, monkeypatch, remembered=True) == oracle
    # a value JSON cannot give back exactly (a YAML date in a pull step): the file is read in full every time
    file = repo / "prefect.yaml"
    file.write_text(file.read_text().replace('directory: "{{ $FIXTURE_DIR }}"',
                                             'directory: "{{ $FIXTURE_DIR }}"\n      since: 2026-01-01', 1))
    dated = parses(config, monkeypatch)
    assert dated.planned[0].layers[0][1]["pull"][0]["prefect.deployments.steps.set_working_directory"]["since"].year == 2026
    assert str(file) not in json.loads(memo.read_text())["files"]
    assert parses(config, monkeypatch) == dated
