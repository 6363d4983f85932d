"""Resolve and download third-party wheels for another Python and platform: `uv pip compile`, `pip download`.

Both take the index from the environment when one is given (UV_DEFAULT_INDEX /
UV_INDEX_URL, PIP_INDEX_URL), never from argv, so credentials in an index URL
stay off command lines; without one each tool uses its own configuration
(uv.toml / pip.conf, else PyPI).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tasks.adapters.run import run
from tasks.core import wheelhouse as rules
from tasks.core.errors import CommandError
from tasks.core.secrets import mask


def index_env(index: str | None) -> dict[str, str]:
    if not index:
        return {}
    return {"UV_DEFAULT_INDEX": index, "UV_INDEX_URL": index, "PIP_INDEX_URL": index}


def resolve(requirements: Sequence[str], python: str, machine: str, index: str | None, find_links: Path | None,
            workdir: Path, constraints: Sequence[Path] = ()) -> str:
    """`uv pip compile` of `requirements` (project wheels as paths) for CPython `python` on manylinux `machine`,
    wheels only; returns the pinned requirements it printed."""
    workdir.mkdir(parents=True, exist_ok=True)
    infile = workdir / "requirements.in"
    infile.write_text("".join(line + "\n" for line in requirements), encoding="utf-8")
    argv: list[str | Path] = ["uv", "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                              "--python-version", python, "--python-platform", rules.uv_platform(machine),
                              "--only-binary", ":all:", infile]
    if find_links:
        argv += ["--find-links", find_links]
    for file in constraints:
        argv += ["--constraint", file]
    proc = run(argv, env=index_env(index), check=False, fix="install uv (`pip install uv`)")
    if proc.returncode != 0:
        raise failure("uv pip compile", proc.stdout + proc.stderr, python, machine, index)
    return proc.stdout


def download(pins: Sequence[rules.Pin], python: str, machine: str, index: str | None, find_links: Path | None,
             folder: Path) -> None:
    """`pip download` exactly `pins` as wheels for CPython `python` on manylinux `machine` into `folder`."""
    if not pins:
        return
    folder.mkdir(parents=True, exist_ok=True)
    argv: list[str | Path] = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                              "--python-version", python, "--implementation", "cp", "--dest", folder]
    argv += [f"--platform={tag}" for tag in rules.pip_platforms(machine)]
    if find_links:
        argv += ["--find-links", find_links]
    argv += [str(pin) for pin in pins]
    proc = run(argv, env=index_env(index), check=False)
    if proc.returncode != 0:
        raise failure("pip download", proc.stdout + proc.stderr, python, machine, index)


def failure(tool: str, output: str, python: str, machine: str, index: str | None) -> CommandError:
    """A missing wheel names the package, the Python and the platform; anything else shows the tool's words."""
    shown = mask(output, [index] if index else [])
    tail = "\n".join("    " + line for line in shown.strip().splitlines()[-15:])
    names = rules.packages_without_wheels(shown)
    if names:
        err = rules.missing_wheels_error(names, python, machine, tail)
        return CommandError(err.what, where=err.where, fix=err.fix)
    return CommandError(f"{tool} failed for Python {python} on {rules.uv_platform(machine)}:\n{tail}",
                        where="[index] upstream" if index else "the machine's index configuration (pip.conf, uv.toml)",
                        fix="check that the index is reachable and holds the packages")
