"""The pins ship with the release: `<project>-pins==<core version>` on a real pypiserver, installed by pip and
uv with the documented command into fresh environments, the verified versions and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.core.errors import ForkflowError
from tasks.pipeline.release_pins import checking_python
from tasks.pipeline.settings import load_settings
from tests.helpers import DEMO_VERSIONS, run_doit
from tests.test_publish import commit_core_fix, git, index_packages, index_url, publish, publish_report, state

CORE = DEMO_VERSIONS["orbit"]
PINS_WHEEL = f"orbit_pins-{CORE}-py3-none-any.whl"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def verified_installs(config: Path) -> dict[str, str]:
    """What verify installed next to the core on this Python."""
    result = json.loads((state(config) / "verify" / "orbit.json").read_text())
    installed: dict[str, str] = result["pythons"][PYTHON]["installed"]
    return installed


def user_env(venv: Path) -> dict[str, str]:
    """A user's shell with the environment activated and none of this machine's pip settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))}
    return {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
            "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1", "PIP_NO_CACHE_DIR": "1"}


def installed_versions(venv: Path) -> dict[str, str]:
    listing = subprocess.run(["uv", "pip", "list", "--format", "json", "--python", str(venv / "bin" / "python")],
                             check=True, capture_output=True, text=True).stdout
    return {entry["name"]: entry["version"] for entry in json.loads(listing)}


def install_as_documented(config: Path, installer: str, folder: Path) -> Path:
    venv = folder / f"venv-{installer}"
    if installer == "pip":
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        command = ["pip", "install", "-q", "--index-url", f"{index_url(config)}/simple/"]
    else:
        subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        command = ["uv", "pip", "install", "-q", "--index", f"{index_url(config)}/simple/"]
    done = subprocess.run([*command, f"orbit-pins=={CORE}", f"orbit=={CORE}"], env=user_env(venv), cwd=folder,
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def test_the_pins_ship_and_the_documented_command_installs_exactly_them(index: Path, tmp_path: Path) -> None:
    first = publish(index)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (index_packages(index) / PINS_WHEEL).is_file(), "the pins wheel is on the index beside the core's"
    pins = json.loads((state(index) / "reports" / "pins.json").read_text())
    assert pins["version"] == CORE and pins["pythons"][PYTHON] == {
        name.lower(): version for name, version in verified_installs(index).items() if name != "orbit"}

    checked = {c["package"]: c for c in publish_report(index)["install_check"]}
    command = checked["orbit"]["command"]
    assert command.startswith(f"uv pip install --index {index_url(index)}/simple/ orbit-pins=={CORE} orbit=={CORE}")
    assert "--constraint" not in command and " -c " not in command and ".forkflow" not in command
    assert ".whl" not in command and str(state(index)) not in command
    assert checked["orbit-pins"]["ok"] and checked["orbit"]["problems"] == []
    assert checked["orbit"]["python"] in pins["pythons"], "the install check ran where the pins were verified"

    pinned = verified_installs(index)["pydantic"]
    for installer in ("pip", "uv"):
        venv = install_as_documented(index, installer, tmp_path)
        got = installed_versions(venv)
        assert got["pydantic"] == pinned, f"{installer} installed the verified pydantic"
        assert {k.lower(): v for k, v in got.items() if k not in ("orbit", "orbit-pins", "pip", "setuptools")} == \
            pins["pythons"][PYTHON], f"{installer}: exactly the verified set"
        version = subprocess.run([str(venv / "bin" / "orbit"), "version"], check=True, capture_output=True, text=True)
        assert f"Version: {CORE}" in version.stdout, version.stdout

    on_index = (index_packages(index) / PINS_WHEEL).read_bytes()
    run_doit(index, "forget", "pins")
    again = publish(index)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 uploaded, 13 already there" in again.stdout, "the same pins are the same bytes"
    assert (index_packages(index) / PINS_WHEEL).read_bytes() == on_index


def test_changed_pins_ship_only_under_a_new_core_version(index: Path) -> None:
    assert publish(index).returncode == 0
    before = {p.name: p.read_bytes() for p in index_packages(index).iterdir()}
    pinned = verified_installs(index)["pydantic"]
    older = "2.11.7" if pinned != "2.11.7" else "2.10.6"
    (index.parent / "constraints.txt").write_text(f"pydantic=={older}\n")
    config = index.parent / "pipeline-constrained.toml"
    config.write_text(index.read_text().replace("[packages]\n", '[packages]\nconstraints = "constraints.txt"\n'))
    fork = state(index) / "demo" / "fork"
    head = git(fork, "rev-parse", "HEAD")
    try:
        refused = publish(config)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert f"orbit-pins {CORE} is on the index with other pins" in output
        assert f"- pydantic=={pinned}" in output and f"+ pydantic=={older}" in output
        assert "[packages] constraints" in output and "new core version" in output
        assert {p.name: p.read_bytes() for p in index_packages(index).iterdir()} == before, "nothing uploaded"

        commit_core_fix(fork, "fix(core): ship with the older pydantic")
        shipped = publish(config)
        assert shipped.returncode == 0, shipped.stdout[-3000:] + shipped.stderr[-3000:]
        version = json.loads((state(index) / "reports" / "pins.json").read_text())["version"]
        assert version != CORE and version.startswith("1.0.1+orbit.")
        new_pins = index_packages(index) / f"orbit_pins-{version}-py3-none-any.whl"
        assert new_pins.is_file() and f"pydantic=={older}".encode() in new_pins.read_bytes()
        assert all((index_packages(index) / name).read_bytes() == data for name, data in before.items())
    finally:
        git(fork, "reset", "-q", "--hard", head)
        config.unlink()
        (index.parent / "constraints.txt").unlink()


def test_the_install_check_runs_on_a_python_the_pins_were_verified_on(tmp_path: Path) -> None:
    """On a Python the pins were not verified on, their markers leave nothing to check: the install check takes the
    running Python when the pins cover it, else the first covered one with an interpreter, else says which to
    install."""
    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n', encoding="utf-8")
    current = load_settings(config)
    assert checking_python(current, {"pythons": {PYTHON: {}, "3.99": {}}}) == (PYTHON, Path(sys.executable))
    assert checking_python(current, {}) == (PYTHON, Path(sys.executable))  # no pins: nothing to cover
    other = "3.12" if PYTHON != "3.12" else "3.13"
    version, interpreter = checking_python(current, {"pythons": {other: {}, "3.99": {}}})
    assert version == other and interpreter.name == f"python{other}" and interpreter.is_file()
    ran = subprocess.run([str(interpreter), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                         text=True, check=True).stdout
    assert ran.strip() == str(tuple(int(part) for part in other.split(".")))
    with pytest.raises(ForkflowError, match=r"(?s)no interpreter for Python 3.98, 3.99: the release's pins were verified "
                                            r"there.*pyenv install 3.98"):
        checking_python(current, {"pythons": {"3.99": {}, "3.98": {}}})


def test_the_pins_check_sees_a_changed_verification_and_a_missing_wheel(built_demo: Path) -> None:
    """The pins are up to date while what they are made from is byte for byte the same and their wheel is there;
    a changed verification result or a deleted wheel makes them again."""
    first = run_doit(built_demo, "pins")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "-- pins" in run_doit(built_demo, "pins").stdout, "nothing changed: up to date"
    pins = json.loads((state(built_demo) / "reports" / "pins.json").read_text())
    wheel = Path(pins["files"][0]["path"])
    kept = wheel.read_bytes()
    wheel.unlink()
    again = run_doit(built_demo, "pins")
    assert again.returncode == 0 and "-- pins" not in again.stdout, again.stdout[-2000:]
    assert wheel.read_bytes() == kept, "made again, the same bytes"
    result = state(built_demo) / "verify" / "orbit.json"
    verified = result.read_bytes()
    changed = json.loads(verified)
    changed["pythons"][PYTHON]["installed"]["pydantic"] = "2.0.0"
    try:
        result.write_text(json.dumps(changed))
        moved = run_doit(built_demo, "pins")
        assert moved.returncode == 0, moved.stdout[-2000:]
        assert json.loads((state(built_demo) / "reports" / "pins.json").read_text())["pythons"][PYTHON]["pydantic"] == "2.0.0"
    finally:
        result.write_bytes(verified)
    assert run_doit(built_demo, "pins").returncode == 0
    assert wheel.read_bytes() == kept, "the verification as it was: the pins as they were"
