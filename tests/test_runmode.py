"""One run mode, read from doit's own command parsing; every doit command that can execute an action holds the lock."""

from __future__ import annotations

import dbm
import fcntl
import pickle
from pathlib import Path

import pytest
from doit.doit_cmd import DoitMain

from tasks.core.errors import ConfigError
from tasks.pipeline.actions import Guarded, is_dry_run, plan_only
from tasks.pipeline.runmode import RunMode, installed, read_run_mode, run_mode
from tests.helpers import run_doit

READ_ONLY = {"list", "help", "info", "dumpdb", "tabcompletion"}
ARGUMENTS = {"run": ["version"], "strace": ["version"], "clean": ["version"], "forget": ["version"],
             "ignore": ["version"], "info": ["version"]}


@pytest.mark.parametrize(("argv", "workers"), [
    ([], 1), (["-n", "2"], 2), (["-n2", "sync"], 2), (["--process=3"], 3), (["--process", "4", "wheel"], 4),
    (["-P", "thread", "wheel"], 1), (["run", "-n", "2", "wheel"], 2), (["info", "wheel"], 1),
])
def test_workers_are_what_doit_reads(argv: list[str], workers: int) -> None:
    assert read_run_mode(argv, {}).workers == workers


@pytest.mark.parametrize(("argv", "command", "tasks", "runs"), [
    ([], "run", (), True), (["deploy"], "run", ("deploy",), True), (["-n", "2", "wheel:orbit"], "run", ("wheel:orbit",), True),
    (["run", "x=1", "wheel"], "run", ("wheel",), True), (["-f", "dodo.py", "run", "wheel"], "run", ("wheel",), True),
    (["strace", "publish"], "strace", ("publish",), True), (["list"], "list", (), False),
    (["info", "deploy"], "info", (), False), (["forget", "sync"], "forget", (), False),
    (["clean", "-n", "image"], "clean", (), False),
])
def test_the_command_and_its_tasks(argv: list[str], command: str, tasks: tuple[str, ...], runs: bool) -> None:
    mode = read_run_mode(argv, {})
    assert (mode.command, mode.tasks, mode.runs_tasks) == (command, tasks, runs)


def test_dry_run_from_the_command_line_or_the_documented_variable() -> None:
    assert read_run_mode(["image", "--dry-run"], {}).dry_run
    assert not read_run_mode(["image"], {}).dry_run
    for value in ("1", "true", "YES", "on"):
        assert read_run_mode(["sync"], {"FORKFLOW_DRY_RUN": value}).dry_run, value
    for value in ("0", "false", "no", "off", ""):
        assert not read_run_mode(["sync"], {"FORKFLOW_DRY_RUN": value}).dry_run, value
    with pytest.raises(ConfigError, match="FORKFLOW_DRY_RUN='maybe' is not a boolean"):
        read_run_mode(["sync"], {"FORKFLOW_DRY_RUN": "maybe"})


def test_a_bare_run_plans_only_what_the_config_says() -> None:
    assert read_run_mode([], {}, ["sync", "publish"]).planned == ("sync", "publish")
    assert read_run_mode(["sync"], {}, ["sync", "publish"]).planned == ()
    assert read_run_mode(["list"], {}, ["sync"]).planned == ()


def test_every_doit_command_is_classified() -> None:
    for name in DoitMain().get_cmds():
        mode = read_run_mode([name, *ARGUMENTS.get(name, [])], {})
        assert mode.executes is (name not in READ_ONLY), name


def test_an_action_carries_the_mode_and_pickles_without_closures() -> None:
    mode = RunMode(dry_run=True, planned=("publish",), workers=2)
    with installed(mode):
        action = Guarded(is_dry_run)
        planned = Guarded(plan_only)
    copy = pickle.loads(pickle.dumps(action))
    assert not run_mode().dry_run
    assert copy() is True and pickle.loads(pickle.dumps(planned))("publish") is True
    assert copy.__name__ == "is_dry_run"


def test_every_command_that_executes_refuses_while_the_lock_is_held(demo_config: Path) -> None:
    state = demo_config.parent / ".forkflow"
    state.mkdir(parents=True, exist_ok=True)
    with (state / "run.lock").open("a+", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with dbm.open(str(state / "dump.db"), "c"):
            pass  # dumpdb reads a dbm file named on its command line (it never loads dodo.py)
        arguments = {**ARGUMENTS, "dumpdb": ["--db-file", str(state / "dump.db")]}
        for name in DoitMain().get_cmds():
            result = run_doit(demo_config, name, *arguments.get(name, []))
            if name in READ_ONLY:
                # `info` exits 1 for a task that is not up to date; 3 would be the refusal
                assert result.returncode in (0, 1), (name, result.stdout[-2000:], result.stderr[-2000:])
                assert "another forkflow run" not in result.stderr and "Traceback" not in result.stderr, name
            else:
                assert result.returncode == 3, (name, result.stdout[-2000:], result.stderr[-2000:])
                assert "another forkflow run (pid 4242)" in result.stderr, name
    assert not (state / "demo").exists(), "nothing ran"


def test_a_bad_dry_run_variable_stops_before_anything(demo_config: Path) -> None:
    result = run_doit(demo_config, "version", env={"FORKFLOW_DRY_RUN": "maybe"})
    assert result.returncode == 2 and "FORKFLOW_DRY_RUN='maybe' is not a boolean" in result.stderr
    assert "Traceback" not in result.stderr


def test_forkflow_dry_run_0_is_a_real_run_for_deploys_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline import settings as settings_module
    from tasks.stages.deploy.check import deploy_unchanged

    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n', encoding="utf-8")
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings_module.settings.cache_clear()
    try:
        monkeypatch.setenv("FORKFLOW_DRY_RUN", "0")
        assert deploy_unchanged().reason == "no complete deploy recorded yet"  # type: ignore[union-attr]
        monkeypatch.setenv("FORKFLOW_DRY_RUN", "1")
        assert deploy_unchanged().reason == "asked for dry_run"  # type: ignore[union-attr]
    finally:
        settings_module.settings.cache_clear()


@pytest.mark.parametrize(("argv", "wanted"), [
    ([], ()), (["deploy"], ()), (["list"], ()), (["deploy", "--dry-run"], ()),
    (["list", "--all"], None), (["deploy:hello--dev", "--dry-run"], ("deploy:hello--dev",)),
    (["info", "deploy:hello--dev"], ("deploy:hello--dev",)), (["forget", "deploy:a--dev", "wheel:x"], ("deploy:a--dev",)),
])
def test_per_deployment_subtasks_are_made_only_when_the_command_names_them(argv: list[str], wanted: object) -> None:
    assert read_run_mode(argv, {}).names_subtasks_of("deploy") == wanted
