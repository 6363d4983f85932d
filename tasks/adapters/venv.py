"""Thin adapter over uv (or venv + pip): fresh virtual environments, installs, checks run inside them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from tasks.adapters.run import OnlyEnv, run
from tasks.core.errors import ForkflowError

IMPORT_CHECK = Path(__file__).with_name("import_check.py")
TIMEOUT = 900
LOCK_EXPORT = ("export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", "--no-emit-workspace",
               "--all-packages", "--no-dev")


def find_python(version: str, interpreters: Path | None = None) -> Path | None:
    """An interpreter for `3.12`: the newest pyenv-style folder 3.12.N, else python3.12 on PATH (not a pyenv shim)."""
    from tasks.adapters.rootfs import default_interpreters_root, find_interpreter

    folder = find_interpreter(interpreters or default_interpreters_root(), version)
    if folder:
        return folder / "bin" / f"python{version}"
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if "/shims" not in d)
    on_path = shutil.which(f"python{version}", path=path)
    return Path(on_path) if on_path else None


def uv() -> str:
    found = shutil.which("uv")
    if not found:
        raise ForkflowError("uv is not installed; forkflow installs wheels into test environments with it",
                            fix="pip install uv (it is one of forkflow's dependencies)")
    return found


def make_venv(interpreter: Path, folder: Path) -> Path:
    """A fresh virtual environment at `folder`; returns its python."""
    shutil.rmtree(folder, ignore_errors=True)
    run([uv(), "venv", "-q", "--python", str(interpreter), str(folder)], fix="check the interpreter named above")
    return folder / "bin" / "python"


def install(python: Path, requirements: Sequence[str], *, index_url: str | None = None,
            extra_args: Sequence[str] = ()) -> None:
    """Install requirements (names, pins or wheel paths) with their dependencies into the environment."""
    argv = [uv(), "pip", "install", "-q", "--python", str(python)]
    if index_url:
        argv += ["--index-url", index_url]
    run([*argv, *extra_args, *requirements], timeout=TIMEOUT,
        fix="read the resolver's message above: a dependency is missing from the index, or the pins conflict")


def import_everything(python: Path, distribution: str) -> dict[str, object]:
    """Run import_check.py in the environment for one distribution; its JSON result."""
    out = run([str(python), "-I", str(IMPORT_CHECK), distribution], timeout=TIMEOUT,
              env={"PYTHONDONTWRITEBYTECODE": "1"}, fix=f"{distribution} does not import").stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def run_in(python: Path, command: Sequence[str], home: Path) -> tuple[int, str]:
    """Run a command with the environment's bin/ first on PATH and HOME in a scratch folder."""
    bin_dir = python.parent
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home), "VIRTUAL_ENV": str(bin_dir.parent),
           "PREFECT_HOME": str(home / ".prefect")}
    program = shutil.which(command[0], path=str(bin_dir)) or command[0]
    proc = run([program, *command[1:]], env=env, check=False, timeout=300)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def export_lock(project: Path) -> str:
    """The pins of `project`'s uv.lock as requirement lines, without workspace members, extras or the dev group.

    Extras are left out: a fork's root lock pins its extras' dependencies for the integrations' releases on
    the index (prefect[aws] -> prefect-aws from PyPI), which the fork's own integrations may exclude."""
    proc = run([uv(), *LOCK_EXPORT, "--project", str(project)], timeout=120,
               fix="check that the lock file is uv's and matches the project (`uv lock --check` in the fork)")
    return proc.stdout


def installed(python: Path) -> dict[str, str]:
    """Name -> version of every distribution in the environment."""
    proc = run([uv(), "pip", "list", "--format", "json", "--python", str(python)], timeout=120)
    return {entry["name"]: entry["version"] for entry in json.loads(proc.stdout or "[]")}


NETWORK_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "LANG", "LC_ALL", "TMPDIR")


def run_as_user(python: Path, command: Sequence[str], home: Path) -> None:
    """Run an install command as a user would in the activated environment of `python`, with none of
    this machine's installer settings: no pip or uv config files or variables (constraints, find-links,
    extra indexes), no caches, HOME in a scratch folder. Only the network settings pass through."""
    bin_dir = python.parent
    env = {name: os.environ[name] for name in NETWORK_ENV if name in os.environ}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
            "VIRTUAL_ENV": str(bin_dir.parent), "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1"}
    program = uv() if command[0] == "uv" else shutil.which(command[0], path=str(bin_dir)) or command[0]
    run([program, *command[1:]], env=OnlyEnv(env), timeout=TIMEOUT, cwd=home,
        fix="the documented install command failed: read the resolver's message above")
