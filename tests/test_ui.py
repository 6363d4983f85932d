"""The core's dashboard (UI bundles) on the demo: built with real npm, only when its files change, packaged
into the core wheel, served by the installed server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.helpers import have_program, need, run_doit


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def checkout(config: Path) -> Path:
    return state(config) / "demo" / "fork"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def core_wheel(config: Path, name: str = "orbit") -> Path:
    stamp = json.loads((state(config) / "dist" / name / "build.json").read_text())
    return next(Path(f["path"]) for f in stamp["files"] if f["name"].endswith(".whl"))


def run_json(config: Path, *targets: str) -> tuple[dict[str, str], str]:
    """doit with the JSON reporter: task name -> result, and every task's output."""
    result = run_doit(config, "--reporter", "json", *targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    return {t["name"]: t["result"] for t in data["tasks"]}, "".join(t.get("out", "") for t in data["tasks"])


def rebuilt(results: dict[str, str]) -> set[str]:
    return {name for name, status in results.items()
            if name.startswith(("wheel:", "ui:")) and name != "wheel:report" and status == "success"}


def test_the_dashboard_is_built_with_npm_into_the_core_wheel_only(built_demo: Path) -> None:
    names = zipfile.ZipFile(core_wheel(built_demo)).namelist()
    assert "orbit/server/ui/index.html" in names and "orbit/server/ui/assets/app.js" in names
    assert not any("/ui/" in n for n in zipfile.ZipFile(core_wheel(built_demo, "orbit-client")).namelist())
    stamp = json.loads((state(built_demo) / "ui" / "ui" / "build.json").read_text())
    assert stamp["target"] == "src/orbit/server/ui" and (state(built_demo) / "ui" / "ui" / "dist" / "index.html").is_file()
    assert (state(built_demo) / "ui" / "ui" / "work" / "node_modules").is_dir(), "node_modules stays in the state folder"
    assert git(checkout(built_demo), "status", "--porcelain", "--ignored") == "", "npm never runs in the checkout"
    listed = run_doit(built_demo, "list", "--all")
    assert "ui:ui" in listed.stdout, listed.stdout


def test_only_a_ui_change_rebuilds_the_ui_and_node_modules_is_reused(demo_config: Path) -> None:
    need(have_program("npm"), "npm")
    first = run_doit(demo_config, "-n", "2", "wheel")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "ui:ui: npm ci" in first.stdout
    fork = checkout(demo_config)
    greeting = fork / "src" / "orbit" / "greeting.py"
    greeting.write_text(greeting.read_text() + "\n# a Python-only change\n")
    git(fork, "commit", "-q", "-am", "fix(core): python only")
    results, _ = run_json(demo_config, "wheel")
    assert results["ui:ui"] == "up-to-date", results
    assert rebuilt(results) == {"wheel:orbit", "wheel:orbit-client"}, results
    view = fork / "ui" / "src" / "view.js"
    view.write_text(view.read_text().replace("Orbit dashboard on", "Orbit fork dashboard on"))
    git(fork, "commit", "-q", "-am", "feat(ui): the fork's dashboard title")
    results, output = run_json(demo_config, "wheel")
    assert rebuilt(results) == {"ui:ui", "wheel:orbit", "wheel:orbit-client"}, results
    assert all(results[name] == "up-to-date" for name in ("wheel:orbit-aws", "wheel:orbit-gcp", "wheel:orbit-slack"))
    assert "npm ci skipped: package-lock.json unchanged, reusing node_modules" in output, output
    built = zipfile.ZipFile(core_wheel(demo_config)).read("orbit/server/ui/assets/app.js").decode()
    assert "Orbit fork dashboard on" in built
    stamp = json.loads((state(demo_config) / "ui" / "ui" / "build.json").read_text())
    assert stamp["commit"] == git(fork, "rev-parse", "HEAD"), "built from the commit the core's wheel is built from"
    results, _ = run_json(demo_config, "wheel")
    assert rebuilt(results) == set(), results


def test_missing_npm_is_named_with_the_install_command(demo_config: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git", "uv"):
        found = shutil.which(program)
        if found:
            (bin_dir / program).symlink_to(found)
    result = run_doit(demo_config, "wheel:orbit", env={"PATH": str(bin_dir)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ui:ui needs node and npm, which are not on PATH" in output, output
    assert "./scripts/setup" in output and "apt-get install nodejs npm" in output
    assert not (state(demo_config) / "ui" / "ui" / "work").exists(), "nothing ran before the check"
    assert not (state(demo_config) / "dist" / "orbit" / "build.json").exists()


def test_a_core_wheel_without_its_bundles_is_refused(demo_config: Path) -> None:
    need(have_program("npm"), "npm")
    assert run_doit(demo_config, "version").returncode == 0
    pyproject = checkout(demo_config) / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(', "src/orbit/server/ui"]', "]"))
    result = run_doit(demo_config, "wheel:orbit")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "lacks its UI bundles: orbit/server/ui/index.html (ui:ui, target src/orbit/server/ui)" in output, output
    assert "artifacts" in output, "the fix is named"
    assert not (state(demo_config) / "dist" / "orbit" / "build.json").exists()
