"""verify on the demo: every wheel installed into a fresh venv per Python and imported; failures block publish."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_doit


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_every_wheel_installs_and_imports_on_each_python(built_demo: Path) -> None:
    result = run_doit(built_demo, "-n", "2", "verify")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((state(built_demo) / "reports" / "verify.json").read_text())
    packages = {p["name"]: p for p in report["packages"]}
    assert set(packages) == {"orbit", "orbit-client", "orbit-aws", "orbit-gcp", "orbit-slack", "orbit-flows"}
    for package in packages.values():
        assert package["ok"] and set(package["pythons"]) == {"3.11", "3.12"}, package
        assert all(r["status"] == "passed" for r in package["pythons"].values()), package
    core = packages["orbit"]["pythons"]["3.12"]
    assert core["version_command"] == "orbit version"
    assert core["dashboard"]["status"] == 200 and "text/html" in core["dashboard"]["content_type"], \
        "the installed `orbit server start` serves the dashboard packaged in the wheel"
    assert core["imported"] >= 6, "subpackages are imported, not only the top level"
    aws = packages["orbit-aws"]["pythons"]["3.11"]
    assert aws["imported"] == 2, "orbit_aws and orbit_aws.workers"
    again = run_doit(built_demo, "--reporter", "json", "verify")
    assert again.returncode == 0, again.stderr
    results = {t["name"]: t["result"] for t in json.loads(again.stdout)["tasks"] if t["name"].startswith("verify:")}
    assert results and set(results.values()) == {"up-to-date"}, results


@pytest.mark.services  # publish starts the local package index first
def test_a_package_that_does_not_import_is_never_published(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    fork = state(demo_config) / "demo" / "fork"
    module = fork / "src" / "integrations" / "orbit-slack" / "orbit_slack" / "__init__.py"
    module.write_text(module.read_text() + "\nfrom orbit_slack import _not_shipped  # noqa\n")
    git(fork, "commit", "-q", "-am", "fix(slack): import a helper that is not there")
    try:
        result = run_doit(demo_config, "publish")
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "orbit-slack failed verification" in output and "orbit_slack" in output
        assert "Traceback" not in output.split("failed verification")[0]
        packages = state(demo_config) / "services" / "index" / "packages"
        assert not packages.exists() or list(packages.iterdir()) == [], "nothing is uploaded"
        saved = json.loads((state(demo_config) / "verify" / "orbit-slack.json").read_text())
        assert saved["ok"] is False and saved["pythons"]["3.12"]["status"] == "failed"
    finally:
        run_doit(demo_config, "services-stop")


def with_packages_keys(config: Path, lines: str) -> None:
    """Add keys to the config's [packages] section."""
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[packages]\n", f"[packages]\n{lines}", 1), encoding="utf-8")


def installed_pydantic(config: Path) -> set[str]:
    saved = json.loads((state(config) / "verify" / "orbit.json").read_text())
    return {result["installed"]["pydantic"] for result in saved["pythons"].values()}


def test_the_forks_uv_lock_pins_verification_and_a_new_release_that_breaks_it_is_named(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    fork = state(demo_config) / "demo" / "fork"
    # the fork's code works with pydantic 2.7 only: a newer release "breaks" it, as fastapi 0.151+ breaks Prefect 3.8
    (fork / "src" / "orbit" / "compat").mkdir()
    (fork / "src" / "orbit" / "compat" / "__init__.py").write_text(
        "import pydantic\n\nif not pydantic.VERSION.startswith('2.7.'):\n"
        "    raise ImportError(f'orbit.compat does not work with pydantic {pydantic.VERSION}')\n")
    subprocess.run(["uv", "lock", "-q", "--upgrade-package", "pydantic==2.7.0"], cwd=fork, check=True)
    git(fork, "add", "uv.lock", "src/orbit/compat")
    git(fork, "commit", "-q", "-m", "chore: lock the dependencies")
    with_packages_keys(demo_config, 'constraints_lock = "uv.lock"\n')

    first = run_doit(demo_config, "verify:orbit")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert installed_pydantic(demo_config) == {"2.7.0"}, "the lock's pin is what verification installs"
    exported = (state(demo_config) / "constraints" / "uv-lock.txt").read_text()
    assert "pydantic==2.7.0" in exported and "orbit" not in exported.split("\n", 1)[1], exported

    (demo_config.parent / "constraints.txt").write_text("pydantic==2.8.0\n")
    with_packages_keys(demo_config, 'constraints = "constraints.txt"\n')
    broken = run_doit(demo_config, "verify:orbit")
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0, output[-3000:]
    assert "orbit.compat does not work with pydantic 2.8.0" in output, output[-3000:]
    assert "changed since the last passing verification: pydantic 2.7.0 -> 2.8.0" in output, output[-3000:]
    assert "[packages] constraints" in output
    assert "Traceback" not in output.split("failed verification")[0]

    (demo_config.parent / "constraints.txt").write_text("# pydantic 2.8 breaks orbit.compat\npydantic==2.7.0\n")
    fixed = run_doit(demo_config, "verify:orbit")
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert installed_pydantic(demo_config) == {"2.7.0"}


def test_a_missing_lock_file_is_named_before_anything_is_installed(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    with_packages_keys(demo_config, 'constraints_lock = "nowhere/uv.lock"\n')
    result = run_doit(demo_config, "verify:orbit-client")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "nowhere/uv.lock: no such file" in output and "[packages] constraints_lock" in output, output[-2000:]
    assert "Traceback" not in output
    assert not (state(demo_config) / "verify" / "envs").exists() or not any((state(demo_config) / "verify" / "envs").iterdir())


def test_a_constraints_lock_that_is_not_uv_lock_is_refused(demo_config: Path) -> None:
    with_packages_keys(demo_config, 'constraints_lock = "poetry.lock"\n')
    result = run_doit(demo_config, "list")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "constraints_lock" in output and "Traceback" not in output, output[-2000:]


def test_the_verification_key_follows_pins_not_comments(tmp_path: Path) -> None:
    from tasks.pipeline.settings import load_settings
    from tasks.pipeline.workspace import constraints_text

    pins = tmp_path / "constraints.txt"
    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n[packages]\nconstraints = "constraints.txt"\n', encoding="utf-8")
    pins.write_text("# why: 2.8 breaks orbit\npydantic==2.7.0\n\n", encoding="utf-8")
    first = constraints_text(load_settings(config))
    pins.write_text("# pinned until orbit 1.1\n  # reviewed\npydantic==2.7.0\n", encoding="utf-8")
    assert constraints_text(load_settings(config)) == first == "pydantic==2.7.0\n"
    pins.write_text("pydantic==2.8.0\n", encoding="utf-8")
    assert constraints_text(load_settings(config)) == "pydantic==2.8.0\n"


def test_the_fork_closure_is_remembered_by_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verify check's closure of fork packages is worked out once per name and Requires-Dist lines, then read
    from the state folder; other lines work it out again."""
    from tasks.core import verify as rules
    from tasks.pipeline.settings import load_settings
    from tasks.stages import verify

    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "closure"\n', encoding="utf-8")
    current = load_settings(config)
    current.state_dir.mkdir(parents=True, exist_ok=True)
    requires = {"orbit": [], "orbit-aws": ["orbit>=1.0", "boto3"], "orbit-gcp": ["orbit-aws; extra == 'aws'"]}
    worked: list[str] = []
    real = rules.fork_closure

    def counted(name: str, lines: dict[str, list[str]]) -> list[str]:
        worked.append(name)
        return real(name, lines)

    monkeypatch.setattr(rules, "fork_closure", counted)
    assert verify.closure(current, "orbit-aws", requires) == ["orbit-aws", "orbit"]
    assert verify.closure(current, "orbit-aws", requires) == ["orbit-aws", "orbit"]
    assert verify.closure(current, "orbit-gcp", requires) == ["orbit-gcp"]
    assert worked == ["orbit-aws", "orbit-gcp"]
    changed = {**requires, "orbit-gcp": ["orbit-aws"]}
    assert verify.closure(current, "orbit-gcp", changed) == ["orbit-gcp", "orbit-aws", "orbit"]
    assert worked == ["orbit-aws", "orbit-gcp", "orbit-gcp"]
    (current.state_dir / verify.CLOSURES).write_text('{"torn', encoding="utf-8")
    assert verify.closure(current, "orbit-aws", requires) == ["orbit-aws", "orbit"]
