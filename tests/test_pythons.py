"""forkflow on each Python it declares (3.11 to 3.13): installed from its own wheel into a fresh virtual
environment, then run on the demo with the spawn start method (the demo generated, versions read, a wheel built by a worker)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import demo_config_text
from tests.helpers import REPO, free_port, need

PYENV = Path("/root/.pyenv/versions")
SUPPORTED = ("3.11", "3.12", "3.13")


def interpreter(version: str) -> Path | None:
    found = sorted(PYENV.glob(f"{version}.*/bin/python3")) if PYENV.is_dir() else []
    return found[-1] if found else (Path(p) if (p := shutil.which(f"python{version}")) else None)


def test_the_declared_pythons_are_the_tested_ones() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'requires-python = ">=3.11"' in text
    assert [v for v in SUPPORTED if f'"Programming Language :: Python :: {v}"' in text] == list(SUPPORTED)


@pytest.mark.slow
@pytest.mark.parametrize("version", SUPPORTED)
def test_forkflow_installs_and_runs_on(version: str, tmp_path: Path) -> None:
    python = interpreter(version)
    need(python is not None and shutil.which("uv") is not None, f"Python {version} and uv")
    assert python is not None
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "-p", str(python), str(venv)], check=True, timeout=300)
    built = subprocess.run(["uv", "pip", "install", "-q", str(REPO)], env={**os.environ, "VIRTUAL_ENV": str(venv)},
                           capture_output=True, text=True, timeout=1200, check=False)
    assert built.returncode == 0, built.stderr[-3000:]  # forkflow's own wheel builds and installs
    config = tmp_path / "pipeline.toml"
    config.write_text(demo_config_text({name: free_port() for name in ("index", "registry", "prefect")}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORKFLOW_")}
    env["FORKFLOW_CONFIG"] = str(config)
    for args in (["list"], ["demo"], ["version"], ["-n", "2", "wheel:orbit-slack"]):  # -n 2: spawn workers
        done = subprocess.run([str(venv / "bin" / "python"), str(REPO / "tests" / "start_method.py"), "spawn",
                               "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args], env=env, capture_output=True,
                              text=True, timeout=900, check=False, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    assert list((tmp_path / ".forkflow" / "dist").glob("*/orbit_slack-*.whl"))
