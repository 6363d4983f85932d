"""doit's own commands on forkflow's tasks, as a doit user runs them: forget, info, clean -n, ignore."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_doit


def status_of(output: str, task: str) -> str:
    """The summary table's status for a task."""
    for line in output.rsplit("\nsummary:\n", maxsplit=1)[-1].splitlines():
        parts = line.split()
        if parts[:1] == [task] and len(parts) > 1:
            return parts[1]
    raise AssertionError(f"{task} not in the summary:\n{output}")


def summary(output: str) -> list[str]:
    return output.rsplit("\nsummary:\n", maxsplit=1)[-1].splitlines()


def test_forget_info_clean_and_ignore_on_a_wheel(demo_config: Path) -> None:
    task = "wheel:orbit-slack"
    assert status_of(run_doit(demo_config, task).stdout, task) == "ran"
    assert status_of(run_doit(demo_config, task).stdout, task) == "up-to-date"

    forgot = run_doit(demo_config, "forget", task)
    assert forgot.returncode == 0 and f"forgetting {task}" in forgot.stdout
    info = run_doit(demo_config, "info", task).stdout
    assert "status     : run" in info
    assert "the files in dist/orbit-slack were built from the current inputs" in info
    assert "functools.partial" not in info and " at 0x" not in info
    assert status_of(run_doit(demo_config, task).stdout, task) == "ran", "forget forces a rebuild"
    assert status_of(run_doit(demo_config, task).stdout, task) == "up-to-date"
    assert "status     : up-to-date" in run_doit(demo_config, "info", task).stdout

    cleaning = run_doit(demo_config, "clean", "-n", task).stdout
    assert f"{task} - executing 'Python: remove dist/orbit-slack'" in cleaning and "unctools" not in cleaning
    assert (demo_config.parent / ".forkflow" / "dist" / "orbit-slack").is_dir(), "-n removes nothing"

    assert "ignoring wheel:orbit-slack" in run_doit(demo_config, "ignore", task).stdout
    assert status_of(run_doit(demo_config, task).stdout, task) == "ignored"
    run_doit(demo_config, "forget", task)
    assert status_of(run_doit(demo_config, task).stdout, task) == "ran", "forget also ends ignore"


def test_forget_all_and_forget_sync(demo_config: Path) -> None:
    assert run_doit(demo_config, "sync").returncode == 0
    again = run_doit(demo_config, "sync").stdout
    assert status_of(again, "sync:main") == "up-to-date" and status_of(again, "sync:push") == "up-to-date"
    assert "forgetting sync:main" in run_doit(demo_config, "forget", "sync").stdout
    after = run_doit(demo_config, "sync").stdout
    assert status_of(after, "sync:main") == "ran" and status_of(after, "sync:push") == "ran"

    run_doit(demo_config, "version")
    assert status_of(run_doit(demo_config, "version").stdout, "version") == "up-to-date"
    assert "forgetting all tasks" in run_doit(demo_config, "forget", "--all").stdout
    assert status_of(run_doit(demo_config, "version").stdout, "version") == "ran"
    assert status_of(run_doit(demo_config, "version").stdout, "version") == "up-to-date"


def test_a_forgotten_task_with_several_checks_says_so_once(demo_config: Path) -> None:
    assert run_doit(demo_config, "workflows").returncode == 0
    run_doit(demo_config, "forget", "workflows")
    line = next(line for line in run_doit(demo_config, "workflows").stdout.splitlines() if line.startswith("workflows "))
    assert line.count("forgotten (doit forget)") == 1, line


def test_the_summary_says_why_a_wheel_was_rebuilt(demo_config: Path) -> None:
    task = "wheel:orbit-slack"
    first = run_doit(demo_config, task).stdout
    assert "(first build (no build.json yet))" in first
    fork = demo_config.parent / ".forkflow" / "demo" / "fork"
    source = fork / "src" / "integrations" / "orbit-slack" / "orbit_slack" / "__init__.py"
    original = source.read_text()
    try:
        source.write_text(original + "\n# edited\n")
        edited = run_doit(demo_config, task).stdout
    finally:
        source.write_text(original)
    line = next(line for line in edited.splitlines() if line.startswith(task))
    assert "ran" in line and "(src/integrations/orbit-slack/orbit_slack/__init__.py changed)" in line
    run_doit(demo_config, "forget", task)
    assert "(forgotten (doit forget))" in run_doit(demo_config, task).stdout


def test_real_files_are_file_deps_that_doit_names_when_they_change(demo_config: Path) -> None:
    assert run_doit(demo_config, "flows").returncode == 0
    fork = demo_config.parent / ".forkflow" / "demo" / "fork"
    info = run_doit(demo_config, "info", "flows").stdout
    assert f" - {fork / 'flows' / 'deployments.yaml'}" in info and f" - {demo_config}" in info
    assert str(fork / "src" / "integrations" / "orbit-aws" / "pyproject.toml") in run_doit(demo_config, "info", "version").stdout
    assert "flows.json" in run_doit(demo_config, "info", "deploy").stdout
    assert status_of(run_doit(demo_config, "flows").stdout, "flows") == "up-to-date"

    config = fork / "flows" / "deployments.yaml"
    config.write_text(config.read_text() + "# reviewed\n")
    line = next(line for line in summary(run_doit(demo_config, "flows").stdout) if line.startswith("flows "))
    assert " ran " in line and "(changed: flows/deployments.yaml)" in line
    assert run_doit(demo_config, "version").returncode == 0
    pyproject = fork / "src" / "integrations" / "orbit-aws" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# reviewed\n")
    line = next(line for line in summary(run_doit(demo_config, "version").stdout) if line.startswith("version "))
    assert "(changed: orbit-aws/pyproject.toml)" in line


def test_wheel_builds_report_progress_while_they_run(demo_config: Path) -> None:
    import time

    from tests.helpers import start_doit

    with start_doit(demo_config, "-n", "2", "wheel") as proc:
        assert proc.stdout is not None
        arrivals = [(time.monotonic(), line.rstrip("\n")) for line in proc.stdout]
    assert proc.returncode == 0, "\n".join(line for _, line in arrivals)
    started = [i for i, (_, line) in enumerate(arrivals) if line.startswith(".  wheel:") and "report" not in line]
    built = [i for i, (_, line) in enumerate(arrivals) if ": built " in line and not line.startswith("ui:")]
    assert len(started) == 6 and len(built) == 6, arrivals
    assert built[0] < started[-1], "a package's result is printed before the last build starts, not all at the end"
    assert arrivals[built[0]][0] < arrivals[built[-1]][0], "lines arrive as builds finish"
    building = [i for i, (_, line) in enumerate(arrivals) if ": building " in line]
    assert len(building) == 6 and building[0] < built[0], "each build says it started before any finishes"


def test_a_terminal_shows_a_live_status_line_and_ci_does_not(demo_config: Path) -> None:
    from tests.helpers import run_doit_on_a_terminal

    task = "wheel:orbit-slack"
    code, shown = run_doit_on_a_terminal(demo_config, task)
    assert code == 0, shown
    assert f"running: {task} " in shown, "the live line names the task while it builds"
    summary = shown[shown.index("summary:"):]
    ran = re.search(r"(\d+) ran", summary)
    assert ran and f"({ran.group(1)} done)" in shown, "it counts the tasks that ran"
    assert "\x1b[?25h" in shown, "and gives the cursor back"
    assert "running:" not in summary and f"{task}  ran" in summary, "the line is gone before the summary"
    assert "built orbit_slack" in shown.split("summary:")[0], "the build's own lines still show, above the line"

    for options, env in ((("-n", "2"), {}), ((), {"CI": "true"}), ((), {"FORKFLOW_STATUS": "0"})):
        run_doit(demo_config, "forget", task)
        code, plain = run_doit_on_a_terminal(demo_config, *options, task, env=env)
        assert code == 0 and "summary:" in plain and "running:" not in plain, (options, env, plain)


def real_config(folder: Path, extra: str = "") -> Path:
    """A config without [demo] on the demo's repositories: what a team's own pipeline.toml looks like."""
    config = folder / "real.toml"
    config.write_text(f'''state_dir = ".real-state"
{extra}
[project]
name = "orbit"

[fork]
path = ".forkflow/demo/fork"
upstream = ".forkflow/demo/upstream.git"
origin = ".forkflow/demo/origin.git"

[packages]
verify_python = ["3.11"]
''')
    return config


def origin_refs(folder: Path) -> str:
    import subprocess

    return subprocess.run(["git", "for-each-ref"], cwd=folder / ".forkflow" / "demo" / "origin.git",
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_bare_doit_on_a_real_config_builds_and_only_plans_remote_writes(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    folder = demo_config.parent
    before = origin_refs(folder)
    config = real_config(folder)

    bare = run_doit(config)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "the remote writes of sync, publish, image, deploy are only planned" in bare.stdout
    assert "would run: git push" in bare.stdout and "sync:push" in bare.stdout
    assert status_of(bare.stdout, "wheel:orbit-aws") == "ran" and status_of(bare.stdout, "verify:orbit-aws") == "ran"
    assert origin_refs(folder) == before, "nothing was pushed"

    named = run_doit(config, "sync")
    assert named.returncode == 0 and "pushed main" in named.stdout, named.stdout + named.stderr
    assert origin_refs(folder) != before

    listed = real_config(folder, 'default_writes = ["sync"]\n')
    again = run_doit(listed)
    assert "only planned" in again.stdout and "the remote writes of publish, image, deploy" in again.stdout
    assert "would run: git push" not in again.stdout


def test_doctor_names_each_missing_part_and_what_to_do(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    result = run_doit(demo_config, "doctor")
    output = result.stdout
    assert result.returncode == 1, output + result.stderr
    for name in ("docker engine", "buildkit", "package index", "registry", "prefect (dev)", "prefect (prod)",
                 "fork upstream", "fork origin"):
        assert any(line[6:].startswith(name) for line in output.splitlines()), name
    assert "fix: start it: `doit services:prefect`" in output and "fix: start it: `doit services:index`" in output
    assert any(line.startswith("ok    fork origin") and "main at " in line for line in output.splitlines())
    assert "doctor: " in output and "checks failed" in output
    assert any(line.startswith("ok    buildkit") and "provenance attestation" in line for line in output.splitlines())
    assert not (demo_config.parent / ".forkflow" / "services").exists(), "a check creates nothing"


def test_doctor_checks_emulation_for_each_foreign_platform(tmp_path: Path) -> None:
    from tests.image_helpers import image_config_text, unused_registry, write_config

    extra = 'platforms = ["linux/amd64", "linux/arm64"]\n'
    config = write_config(tmp_path, image_config_text(unused_registry(), "orbit", python=("3.11",), flavors=("base",),
                                                      extra=extra))
    empty = tmp_path / "binfmt_misc"
    empty.mkdir()
    missing = run_doit(config, "doctor", env={"FORKFLOW_BINFMT_DIR": str(empty)})
    line = next(line for line in missing.stdout.splitlines() if "emulation linux/arm64" in line)
    assert line.startswith("FAIL") and "qemu-aarch64 not registered in binfmt_misc" in line, missing.stdout
    assert "update-binfmts --enable qemu-aarch64" in missing.stdout
    assert "emulation linux/amd64" not in missing.stdout, "the machine's own platform needs none"
    (empty / "qemu-aarch64").write_text("enabled\n")
    there = run_doit(config, "doctor", env={"FORKFLOW_BINFMT_DIR": str(empty)})
    assert any(line.startswith("ok") and "emulation linux/arm64" in line for line in there.stdout.splitlines()), \
        there.stdout
