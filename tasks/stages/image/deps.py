"""The images' dependency wheelhouse: third-party wheels resolved and downloaded per Python x platform.

`image-deps:<python>` (see tasks.stages.image.stage) calls `make`. What is resolved: the
project wheels of every image of that Python (packages and each flavor's
extras), passed to `uv pip compile` as file paths, so the fork's packages come
from its own wheels and never from an index. The pins are downloaded with
`pip download` into `<state>/wheelhouse/<python>-<machine>/`. The stamp there
records the requirement set (tasks.core.wheelhouse.requirement_key) and the
files: while the key holds, nothing is resolved or downloaded again.
`[images] wheelhouse`, when set, is one more place both tools look.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tasks.adapters import wheelhouse as adapter
from tasks.adapters.build import sha256
from tasks.adapters.console import say, warn
from tasks.core import images as core
from tasks.core import wheelhouse as rules
from tasks.core.errors import ForkflowError
from tasks.pipeline.settings import read_json, write_json
from tasks.pipeline.workspace import constraint_files, constraints_text
from tasks.stages.image.setup import ImageSetup


@dataclass(frozen=True)
class Request:
    """What one wheelhouse is made from."""

    python: str
    machine: str
    folder: Path
    wheels: tuple[core.Wheel, ...]
    requires: dict[str, tuple[str, ...]]
    fork_names: tuple[str, ...]
    index: str | None
    extra: Path | None
    key: str
    constraints: tuple[Path, ...] = ()
    core_extras: tuple[str, ...] = ()  # the core's extras some flavor installs: their requirements are resolved too

    @property
    def name(self) -> str:
        return rules.folder_name(self.python, self.machine)


def machines(setup: ImageSetup) -> list[str]:
    """The machines wheelhouses are made for, one per configured platform's CPU, in the configured order."""
    return list(dict.fromkeys(core.machine_of(platform) for platform in setup.images.platforms))


def folder_for(setup: ImageSetup, python: str, machine: str | None = None) -> Path:
    """Where the wheelhouse of `python`'s images for `machine` (the first platform's when None) is kept."""
    return setup.settings.state_dir / "wheelhouse" / rules.folder_name(python, machine or machines(setup)[0])


def request(setup: ImageSetup, python: str, wheels: tuple[core.Wheel, ...], fork_names: tuple[str, ...],
            requires: dict[str, tuple[str, ...]], machine: str, core_extras: tuple[str, ...] = ()) -> Request:
    current, images = setup.settings, setup.images
    index = current.config.index.upstream if current.config.index else None
    extra = current.path(images.wheelhouse) if images.wheelhouse else None
    extra_names = [p.name for p in sorted(extra.glob("*.whl"))] if extra and extra.is_dir() else []
    constraints = tuple(constraint_files(current))
    pins = constraints_text(current)
    return Request(python, machine, folder_for(setup, python, machine), wheels,
                   requires, fork_names, index, extra,
                   rules.requirement_key(python, machine, index, requires, extra_names, pins, core_extras), constraints,
                   core_extras)


def read_stamp(folder: Path) -> dict[str, Any] | None:
    return read_json(folder / rules.STAMP)


def wheel_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.whl")) if folder.is_dir() else []


def is_current(req: Request) -> bool:
    return rules.stamp_is_current(read_stamp(req.folder), req.key, wheel_files(req.folder))


def current_files(req: Request) -> dict[str, str] | None:
    """wheel file name -> sha256, as the stamp recorded them; None when the folder is not made for `req`."""
    stamp = read_stamp(req.folder)
    if not rules.stamp_is_current(stamp, req.key, wheel_files(req.folder)):
        return None
    assert stamp is not None
    return dict(stamp["files"])


def current_pins(req: Request) -> tuple[str, ...]:
    """The `name==version` pins the stamp recorded; empty when the folder is not made for `req`."""
    stamp = read_stamp(req.folder)
    if not rules.stamp_is_current(stamp, req.key, wheel_files(req.folder)):
        return ()
    assert stamp is not None
    return tuple(stamp.get("pins") or ())


def needs_resolution(req: Request) -> bool:
    """False when every requirement that applies is on one of the fork's own packages, without extras:
    then there is nothing third-party to resolve, and no index is asked."""
    ours = {canonicalize_name(name) for name in req.fork_names}
    environments = [core.marker_environment(req.python, req.machine)]
    environments += [{**environments[0], "extra": extra} for extra in req.core_extras]
    for lines in req.requires.values():
        for line in lines:
            try:
                parsed = Requirement(line)
            except InvalidRequirement:
                return True
            if any(core.applies(parsed, env) for env in environments) and (
                    canonicalize_name(parsed.name) not in ours or parsed.extras):
                return True
    return False


def make(setup: ImageSetup, req: Request) -> str:
    """Resolve and download the wheelhouse unless it is current; returns what happened."""
    if is_current(req):
        return f"up to date ({len(wheel_files(req.folder))} wheels, requirement set {req.key[:12]})"
    if setup.dry_run:
        say(f"would resolve the third-party requirements of {len(req.wheels)} project wheels for Python {req.python} "
            f"on {rules.uv_platform(req.machine)} and download their wheels into {req.folder}")
        return "would resolve and download"
    resolving = needs_resolution(req)
    pins = resolve(setup, req) if resolving else []
    note = rules.prerelease_note(pins)
    if note:
        warn(f"image-deps:{req.python} ({req.machine}): {note}")
    present, missing, unwanted = rules.split_present(pins, wheel_files(req.folder))
    adapter.download(missing, req.python, req.machine, req.index, req.extra, req.folder)
    for name in unwanted:
        (req.folder / name).unlink()
    present, still_missing, _ = rules.split_present(pins, wheel_files(req.folder))
    if still_missing:
        raise rules.missing_wheels_error([p.name for p in still_missing], req.python, req.machine,
                                         "    pip download saved no wheel for them")
    files = {name: sha256(req.folder / name) for name in present.values()}
    write_stamp(req.folder, rules.stamp_data(req.key, req.python, req.machine, pins, files))
    if not resolving:
        return "nothing to resolve: the packages need no third-party requirement"
    return f"resolved {len(pins)} wheels, downloaded {len(missing)}, kept {len(pins) - len(missing)}"


def resolve(setup: ImageSetup, req: Request) -> list[rules.Pin]:
    """The third-party pins for the project wheels; a fork package pinned from an index is refused."""
    lines = [resolution_line(w, req.core_extras) for w in req.wheels]
    compiled = adapter.resolve(lines, req.python, req.machine, req.index, req.extra,
                               setup.settings.state_dir / "wheelhouse" / "work" / req.name, req.constraints)
    image_names = [w.name for w in req.wheels]
    pins = rules.parse_pins(compiled, image_names)
    fork = {canonicalize_name(name) for name in req.fork_names}
    from_index = [pin for pin in pins if pin.name in fork]
    if from_index:
        names = ", ".join(pin.name for pin in from_index)
        raise ForkflowError(
            f"the image's packages need {names}, a package of the fork that is not in the images: it would come "
            f"from an index instead of the fork's own wheel",
            where="[images] packages / [images] extra_packages",
            fix=f"add {names} to [images] packages (or to the flavor's extra_packages)",
        )
    return pins


def resolution_line(wheel: core.Wheel, core_extras: tuple[str, ...]) -> str:
    """A project wheel as uv reads it: its file path, or `name[extras] @ file://...` for the core with extras."""
    path = Path(wheel.path).resolve()
    if wheel.kind != "core" or not core_extras:
        return str(path)
    return f"{wheel.name}[{','.join(core_extras)}] @ {path.as_uri()}"


def write_stamp(folder: Path, data: dict[str, Any]) -> None:
    write_json(folder / rules.STAMP, data)


def forget(req: Request) -> None:
    shutil.rmtree(req.folder, ignore_errors=True)
