"""The local workflow runner's own pieces: expressions, conditions, matrices, outputs (no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_runner import condition, evaluate, key_values, matrix_cells

CONTEXTS = {"github": {"event_name": "push", "ref_name": "release"}, "inputs": {"images": True}, "vars": {},
            "secrets": {"TOKEN": "s3cret"}, "needs": {"matrix": {"outputs": {"cells": '{"include": [{"python": "3.12"}]}'},
                                                                "result": "success"}},
            "matrix": {"python": "3.12", "flavor": "base"}}


@pytest.mark.parametrize(("text", "expected"), [
    ("${{ vars.FORKFLOW_CONFIG || 'ci/pipeline.toml' }}", "ci/pipeline.toml"),
    ("${{ secrets.MISSING || secrets.TOKEN }}", "s3cret"),
    ("image ${{ matrix.python }}-${{ matrix.flavor }}", "image 3.12-base"),
    ("${{ fromJSON(needs.matrix.outputs.cells) }}", {"include": [{"python": "3.12"}]}),
    ("${{ github.event_name == 'release' || inputs.images }}", True),
    ("${{ needs.route.outputs.environments != '[]' }}", True),
    ("${{ contains(fromJSON('[\"dev\", \"prod\"]'), 'prod') }}", True),
    ("${{ format('{0}-{1}', matrix.python, 'x') }}", "3.12-x"),
])
def test_expressions_evaluate_as_github_does(text: str, expected: object) -> None:
    assert evaluate(text, CONTEXTS) == expected


def test_conditions_follow_the_status_of_earlier_steps() -> None:
    failed = {**CONTEXTS, "__status__": "failure"}
    assert condition(None, CONTEXTS) and not condition(None, failed)
    assert condition("${{ always() }}", failed) and not condition("${{ inputs.images }}", failed)
    assert condition("github.ref_name == 'release'", CONTEXTS)
    with pytest.raises(ValueError, match="does not know the function"):
        condition("${{ hashFiles('x') }}", CONTEXTS)


def test_matrices_and_outputs() -> None:
    assert matrix_cells({"python": ["3.11", "3.12"], "flavor": ["base"], "exclude": [{"python": "3.11"}]}) == [
        {"python": "3.12", "flavor": "base"}]
    assert matrix_cells({"include": [{"python": "3.12"}]}) == [{"python": "3.12"}] and matrix_cells(None) == [{}]
    assert key_values("cells={\"a\": 1}\nbody<<EOF\nline 1\nline 2\nEOF\n") == {"cells": '{"a": 1}',
                                                                              "body": "line 1\nline 2"}


def test_an_unknown_action_fails_its_job(tmp_path: Path) -> None:
    from tests.workflow_runner import Runner

    (tmp_path / "repo").mkdir()
    workflow = tmp_path / "w.yml"
    workflow.write_text("name: w\non: push\njobs:\n  one:\n    runs-on: x\n    steps:\n      - uses: someone/new-action@v1\n")
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    done = Runner(tmp_path / "repo", tmp_path / "runs").run(workflow, "push")
    assert done["one"][0].result == "failure" and "does not know this action" in done["one"][0].log
