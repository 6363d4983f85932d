"""The release's pins as the stages share them: made by `pins`, checked and uploaded by `publish`.

The pins come from the core's verification result (`.forkflow/verify/<core>.json`,
`installed` per Python) for exactly the core wheel in `wheel.json`; see
tasks.core.release_pins for what the pins wheel holds and why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tasks.core.errors import ForkflowError
from tasks.core.release_pins import ReleasePins, default_name, pin_set, python_key, release_pins
from tasks.pipeline.settings import Settings, read_report
from tasks.pipeline.workspace import dist_dir, read_result


def pins_name(current: Settings) -> str:
    """[packages] pins_name, else `<project name>-pins`."""
    return current.config.packages.pins_name or default_name(current.config.project.name)


def core_package(current: Settings) -> dict[str, Any] | None:
    """The core's entry in wheel.json, with `wheel` (its wheel file's entry); None when none was built."""
    report = read_report("wheel", current) or {}
    for package in report.get("packages", []):
        wheel = next((f for f in package.get("files", []) if f["name"].endswith(".whl")), None)
        if package.get("kind") == "core" and wheel:
            return {**package, "wheel": wheel}
    return None


def fork_names(current: Settings) -> list[str]:
    report = read_report("wheel", current) or {}
    return [package["name"] for package in report.get("packages", [])] + [pins_name(current)]


def verified_installs(current: Settings, core: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Python -> name -> version installed by the core's passing verification of exactly this wheel."""
    result = read_result(current, core["name"]) or {}
    wheel = result.get("wheel") or {}
    if not result.get("ok") or wheel.get("sha256") != core["wheel"]["sha256"]:
        raise ForkflowError(f"no pins for {core['name']} {core['version']}: its wheel has not passed verification as built",
                            fix="run `doit verify` and fix what it reports; the pins are what it installed")
    installs = {python: dict(found["installed"]) for python, found in (result.get("pythons") or {}).items()
                if found.get("status") == "passed" and found.get("installed")}
    if not installs:
        raise ForkflowError(f"no pins for {core['name']} {core['version']}: its verification recorded no installed versions",
                            fix=f"verify it again: `doit forget verify:{core['name']}` then `doit verify`")
    return installs


def desired_pins(current: Settings) -> tuple[ReleasePins, dict[str, dict[str, str]]] | None:
    """The pins the release ships, from what verification installed; None when no core was built."""
    core = core_package(current)
    if core is None:
        return None
    pins = pin_set(verified_installs(current, core), fork_names(current))
    return release_pins(pins_name(current), core["name"], core["version"], pins), pins


def pins_file(current: Settings, release: ReleasePins) -> Path:
    return dist_dir(current, release.name) / release.filename


def checking_python(current: Settings, pins: Mapping[str, Any],
                    find: Callable[[str, Path | None], Path | None] | None = None) -> tuple[str, Path]:
    """The Python the install check installs with, as ("3.12", interpreter): one the core's verification recorded
    pins for, so that every pin is checked (on another Python the pins' markers leave none to check); the running
    one when it is among them, or when the release has no pins."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    verified = sorted(pins.get("pythons") or {}, key=python_key)
    if not verified or running in verified:
        return running, Path(sys.executable)
    from tasks.adapters.venv import find_python

    look = find or find_python
    images = current.config.images
    root = current.path(images.interpreters) if images and images.interpreters else None
    for python in verified:
        found = look(python, root)
        if found is not None:
            return python, found
    raise ForkflowError(f"no interpreter for Python {', '.join(verified)}: the release's pins were verified there, "
                        "so the install check cannot check them on another Python",
                        where="[packages] verify_python (or [images] python)",
                        fix=f"install Python {verified[0]} (e.g. `pyenv install {verified[0]}`), as verification had it")
