"""Hostile flow repositories through doit: an alias bomb, a huge expression, names with control characters."""

from __future__ import annotations

import re
from pathlib import Path

from tests.core.test_bounded_input import alias_bomb
from tests.flows_repo import flows_repo, write_config
from tests.helpers import run_doit

EVIL = "evil\x1b[31mred\nfix: run this"
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def prefect_yaml(deployment_name: str, parameters: str = "") -> str:
    return ("name: orbit-flows\ndeployments:\n"
            f"  - name: \"{deployment_name.encode('unicode_escape').decode()}\"\n"
            "    entrypoint: orbit_flows/hello.py:hello\n" + parameters)


def config_for(root: Path, files: dict[str, str]) -> Path:
    flows_repo(root, files)
    (root / "repo" / "flows" / "deployments.yaml").unlink()
    from tests.flows_repo import commit_all

    commit_all(root / "repo", "prefect.yaml")
    return write_config(root, "http://127.0.0.1:9/api", project="orbit").parent / "pipeline.toml"


def with_prefect_yaml(root: Path, text: str, extra: dict[str, str] | None = None) -> Path:
    config = config_for(root, {"prefect.yaml": text, **(extra or {})})
    config.write_text(config.read_text().replace("repo/flows/deployments.yaml", "repo/flows/prefect.yaml"))
    return config


def test_an_alias_bomb_in_parameters_is_refused_with_its_line(tmp_path: Path) -> None:
    config = with_prefect_yaml(tmp_path, prefect_yaml("bomb", "    parameters:\n" + alias_bomb("      ")))
    done = run_doit(config, "flows", timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "prefect.yaml:11: the document expands to more than 250,000 values" in output
    assert "Traceback" not in output


def test_a_huge_expression_is_one_problem_and_the_other_flows_are_found(tmp_path: Path) -> None:
    huge = "X = " + " + ".join(["1"] * 100_000) + "\n"
    config = with_prefect_yaml(tmp_path, prefect_yaml("hello"), {"orbit_flows/huge.py": "import os\n" + huge})
    done = run_doit(config, "flows", timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "orbit_flows/huge.py:2: code nested too deeply for Python's parser" in output
    assert "hello" in output and "RecursionError" not in output and "Traceback" not in output


def test_control_characters_in_names_are_escaped_in_output_and_summary(tmp_path: Path) -> None:
    evil_flow = f"from prefect import flow\n\n\n@flow(name={EVIL!r})\ndef evil():\n    pass\n"
    config = with_prefect_yaml(tmp_path, prefect_yaml(EVIL), {"orbit_flows/evil.py": evil_flow})
    done = run_doit(config, "flows", timeout=120)
    output = done.stdout + done.stderr
    assert "evil\\x1b[31mred\\nfix: run this" in output, output
    assert not CONTROLS.search(output), output
    assert not any(line.startswith("fix: run this") for line in output.splitlines())
    summary = (tmp_path / ".forkflow" / "reports" / "summary.md").read_text(encoding="utf-8")
    assert not CONTROLS.search(summary)
