"""Questions sent as the run starts: taken once, dropped when an action runs, never shared with a forked worker."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.pipeline import prefetch
from tasks.pipeline.actions import guarded
from tasks.pipeline.settings import settings


@pytest.fixture(autouse=True)
def nothing_sent() -> None:
    prefetch.forget_all()


def counter() -> tuple[list[int], Callable[[], int]]:
    calls: list[int] = []

    def ask() -> int:
        calls.append(1)
        return len(calls)

    return calls, ask


def test_an_early_answer_is_taken_once_then_asked_again() -> None:
    calls, ask = counter()
    prefetch.send("k", ask)
    assert prefetch.answer("k", ask) == 1
    assert prefetch.answer("k", ask) == 2, "the second look asks again"
    assert len(calls) == 2


def test_the_early_question_runs_while_the_caller_goes_on() -> None:
    release = threading.Event()
    prefetch.send("slow", lambda: release.wait(5) and "answered")
    assert not prefetch.SENT["slow"].done.is_set()
    release.set()
    assert prefetch.answer("slow", lambda: "asked late") == "answered"


def test_an_error_reaches_the_check_that_takes_the_answer() -> None:
    def fails() -> None:
        raise OSError("connection refused")

    prefetch.send("k", fails)
    with pytest.raises(OSError, match="connection refused"):
        prefetch.answer("k", lambda: "unused")


def test_any_action_drops_what_was_asked_before_it() -> None:
    calls, ask = counter()
    prefetch.send("k", ask)
    prefetch.SENT["k"].done.wait(5)
    guarded(lambda: {"made": "something"})()
    assert "k" not in prefetch.SENT
    assert prefetch.answer("k", ask) == 2, "asked again after the action"


def test_a_forked_worker_asks_for_itself() -> None:
    prefetch.send("k", lambda: "parent's answer")
    prefetch.SENT["k"].done.wait(5)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, prefetch.answer("k", lambda: "child's own").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 100).decode() == "child's own"
    assert prefetch.answer("k", lambda: "unused") == "parent's answer"


def test_a_first_deploy_has_prefect_read_its_settings_once_while_the_run_loads(tmp_path: Path) -> None:
    """No deploy recorded yet: Prefect's settings (a child process that imports Prefect) are read as the run starts,
    and the deploy's own read takes that answer instead of starting a second child."""
    from tasks.adapters.prefect_settings import prefect_settings, read_settings_once
    from tasks.early import send_early_questions
    from tasks.pipeline.credentials import PREFECT_SETTINGS_FILE, prefect_folder
    from tasks.pipeline.settings import load_settings

    (tmp_path / "flows").mkdir()
    (tmp_path / "pipeline.toml").write_text('[project]\nname = "p"\n\n[flows]\npath = "flows"\n\n'
                                            '[environments.dev]\nprefect_api_url = "http://127.0.0.1:9/api"\n'
                                            'branch = "*"\n', encoding="utf-8")
    current = load_settings(tmp_path / "pipeline.toml")
    read_settings_once.cache_clear()
    send_early_questions(current, ["deploy"])
    assert "prefect-settings" in prefetch.SENT
    found = prefect_settings(prefect_folder(current), os.environ, current.state_dir / PREFECT_SETTINGS_FILE)
    assert prefetch.SENT["prefect-settings"].done.wait(120)
    assert prefetch.SENT["prefect-settings"].error is None
    assert read_settings_once.cache_info().misses == 1, "one child for both reads"
    assert "api_url" in found


def test_a_recorded_deploy_sends_no_settings_read(tmp_path: Path) -> None:
    from tasks.early import send_early_questions
    from tasks.pipeline.settings import load_settings
    from tasks.stages.deploy.check import RECORD

    (tmp_path / "flows").mkdir()
    (tmp_path / "pipeline.toml").write_text('[project]\nname = "p"\n\n[flows]\npath = "flows"\n\n'
                                            '[environments.dev]\nprefect_api_url = "http://127.0.0.1:9/api"\n'
                                            'branch = "*"\n', encoding="utf-8")
    current = load_settings(tmp_path / "pipeline.toml")
    current.state_dir.mkdir(parents=True, exist_ok=True)
    (current.state_dir / RECORD).write_text(
        '{"inputs": "x", "checked": 0, "servers": [{"url": "http://127.0.0.1:9/api", "environment": "dev", '
        '"prefixes": ["p--"]}]}', encoding="utf-8")
    send_early_questions(current, ["deploy"])
    assert "prefect-settings" not in prefetch.SENT
    assert any(key.startswith("signals:") for key in prefetch.SENT)
    assert not any(key.startswith("version-inputs:") for key in prefetch.SENT), "no fork: no versions to check"


def test_the_flows_check_takes_its_git_answer_sent_as_the_run_starts(tmp_path: Path) -> None:
    import subprocess

    from tasks.early import send_early_questions
    from tasks.pipeline.settings import load_settings
    from tasks.stages.flows import flows_inputs, where_key

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flow.py").write_text("X = 1\n", encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "flows"]):
        subprocess.run(argv, cwd=tmp_path, env=env, check=True)
    (tmp_path / "pipeline.toml").write_text('[project]\nname = "p"\n\n[flows]\npath = "flows"\n', encoding="utf-8")
    current = load_settings(tmp_path / "pipeline.toml")
    send_early_questions(current, ["flows"])
    key = where_key(flows)
    assert key in prefetch.SENT
    first = flows_inputs(current)
    assert key not in prefetch.SENT, "taken by the check"
    assert flows_inputs(current) == first, "asked again, the same answer"


def test_the_version_check_takes_its_inputs_asked_as_the_run_starts(demo_config: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of what is built from the versions asks the version check's git questions while doit loads; the check
    takes that answer (the same as its own), and a run of sync alone does not ask them."""
    from types import SimpleNamespace

    from tasks.early import send_early_questions
    from tasks.pipeline.settings import load_settings
    from tasks.stages.version import inputs_key, version_inputs, versions_unchanged
    from tests.helpers import run_doit

    done = run_doit(demo_config, "version")
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("FORKFLOW_CONFIG", str(demo_config))
    settings.cache_clear()  # the check reads the settings of FORKFLOW_CONFIG, not another test's
    current = load_settings(demo_config)
    key = inputs_key(current)
    send_early_questions(current, ["sync"])
    assert key not in prefetch.SENT
    send_early_questions(current, ["wheel"])
    assert key in prefetch.SENT
    assert prefetch.SENT[key].done.wait(30) and prefetch.SENT[key].value == version_inputs(current)
    assert versions_unchanged(SimpleNamespace(options={}), {}) is True
    assert key not in prefetch.SENT, "taken by the check"
