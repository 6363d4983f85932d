"""The `image` stage's inputs, read from disk: wheel.json, the wheels, the templates, the flows project.

`load_plan` turns them into one `Planned` per image (its spec and rendered
Dockerfile), checking everything a build needs before anything is built.
The base image each one is built on is given to it (the stage asks the
engine which one is there); the third-party wheels come from the dependency
wheelhouse of its Python (tasks.stages.image.deps). Nothing here talks to Docker or doit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.adapters.build import wheel_info
from tasks.core import dockerfiles, image_tags, smoke
from tasks.core import images as core
from tasks.core import wheelhouse as wheelhouse_rules
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.values import parse_toml, sha256_hex
from tasks.core.versions import Change, fork_version, newest
from tasks.pipeline.settings import Settings, read_json, read_report, write_json
from tasks.stages.image import deps as image_deps
from tasks.stages.image.setup import ImageSetup, base_name, template_files, template_sources


@dataclass(frozen=True)
class Planned:
    spec: core.ImageSpec
    dockerfile: str
    modules: tuple[tuple[str, str, tuple[str, ...]], ...]
    deps: tuple[image_deps.Request, ...]  # one wheelhouse per platform's CPU
    deps_ready: bool
    version_command: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass(frozen=True)
class Plan:
    images: tuple[Planned, ...]
    revision: str
    source: str

    def item(self, key: str) -> Planned:
        for planned in self.images:
            if planned.key == key:
                return planned
        raise ForkflowError(f"no image {key} in the plan", fix="see `doit list image` for the images configured")

    @property
    def keys(self) -> list[str]:
        return [planned.key for planned in self.images]


def wheel_report_file(current: Settings) -> Path:
    return current.reports_dir / "wheel.json"


def load_plan(setup: ImageSetup, revision: str, bases: dict[str, str] | None = None) -> Plan:
    """Every configured image with its spec and Dockerfile; a ForkflowError for bad input.

    `bases` maps a base name (`3.12`, `conda`) to the image reference to build on; missing ones are the
    configured `base_image`."""
    current, images = setup.settings, setup.images
    report = wheel_report_file(current)
    folders = [current.path(images.wheelhouse)] if images.wheelhouse else []
    stamps = [image_deps.folder_for(setup, python, machine) / wheelhouse_rules.STAMP
              for python in images.python for machine in image_deps.machines(setup)]
    fingerprint = (str(current.config_file), revision, tuple(sorted((bases or {}).items())),
                   *(stat_key(p) for p in (report, current.config_file, *template_files(setup), *folders, *stamps)))
    if fingerprint not in PLANS:
        PLANS.clear()
        PLANS[fingerprint] = make_plan(setup, revision, bases or {})
    return PLANS[fingerprint]


PLANS: dict[tuple[Any, ...], Plan] = {}


def deps_folders(setup: ImageSetup, python: str) -> list[Path]:
    return [image_deps.folder_for(setup, python, machine) for machine in image_deps.machines(setup)]


@dataclass(frozen=True)
class Selection:
    """The project wheels of the images: in every image, and per flavor."""

    fork: tuple[core.Wheel, ...]
    packages: tuple[core.Wheel, ...]
    extras: dict[str, tuple[core.Wheel, ...]]
    core_extras: dict[str, tuple[str, ...]]  # flavor -> the core's extras it installs

    @property
    def all_core_extras(self) -> tuple[str, ...]:
        """Every flavor's core extras: the wheelhouse holds what any of them needs."""
        return tuple(sorted({name for names in self.core_extras.values() for name in names}))

    @property
    def in_images(self) -> tuple[core.Wheel, ...]:
        found = list(self.packages)
        for extras in self.extras.values():
            found += [w for w in extras if w not in found]
        return tuple(found)

    @property
    def fork_names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.fork)


def select(setup: ImageSetup) -> Selection:
    images = setup.images
    wheels = read_wheels(setup.settings)
    source = str(wheel_report_file(setup.settings))
    packages = core.select_wheels(wheels, images.packages, "[images] packages", source)
    extras: dict[str, tuple[core.Wheel, ...]] = {}
    for flavor in images.flavors:
        named = core.flavor_packages(wheels, flavor, images.extra_packages)
        chosen = core.select_wheels(wheels, named, f"[images] extra_packages.{flavor}", source)
        extras[flavor] = tuple(w for w in chosen if w not in packages)
        core.check_flavor_differs(flavor, extras[flavor], images.core_extras.get(flavor, ()),
                                  images.core_extras.get("base", ()), core_name(packages))
    return Selection(tuple(wheels), packages, extras, {f: tuple(images.core_extras.get(f, ())) for f in images.flavors})


def deps_requests(setup: ImageSetup, python: str, selection: Selection | None = None) -> tuple[image_deps.Request, ...]:
    """The dependency wheelhouses the images of `python` need, one per platform's CPU (reads wheel.json and
    the wheels' METADATA)."""
    chosen = selection or select(setup)
    wheels = chosen.in_images
    requires = {w.name: tuple(requires_of(w)) for w in wheels}
    return tuple(image_deps.request(setup, python, wheels, chosen.fork_names, requires, machine,
                                    chosen.all_core_extras) for machine in image_deps.machines(setup))


@dataclass(frozen=True)
class Shared:
    """What every cell of one plan shares: the stage's options, the wheels, the templates, the revision."""

    setup: ImageSetup
    selection: Selection
    templates: dict[str, str]
    revision: str
    versions: dict[str, Any]  # version.json: how each package's version was made


def make_plan(setup: ImageSetup, revision: str, bases: dict[str, str]) -> Plan:
    check_python_choice(setup)
    shared = Shared(setup, select(setup), read_templates(setup), revision, read_report("version", setup.settings) or {})
    planned = []
    for python in setup.images.python:
        deps = deps_requests(setup, python, shared.selection)
        for flavor in setup.images.flavors:
            name = base_name(flavor, python)
            planned.append(plan_one(shared, python, flavor, deps, bases.get(name) or setup.base_reference(name)))
    return Plan(tuple(planned), revision, source_url(setup.settings))


def plan_one(shared: Shared, python: str, flavor: str, deps: tuple[image_deps.Request, ...], base: str) -> Planned:
    setup, selection, revision = shared.setup, shared.selection, shared.revision
    current, images = setup.settings, setup.images
    packages, extras = selection.packages, selection.extras.get(flavor, ())
    chosen_extras = selection.core_extras.get(flavor, ())
    dependencies: tuple[str, ...] = ()
    files: dict[str, str] | None = {}
    for request in deps:  # what applies on any platform (pip skips a marker that does not hold on its own)
        applying = needed(request, packages, selection, chosen_extras), needed(request, extras, selection)
        dependencies = tuple(dict.fromkeys(dependencies + applying[0]))
        found = image_deps.current_files(request)
        if found is not None:
            check_wheelhouse(applying[0] + applying[1], found, request, flavor)
        files = None if found is None or files is None else {**files, **found}
    version = image_version(shared, packages + extras)
    rules = image_tags.TagRules(images.tags.always, images.tags.release, images.tags.release_default_python, images.tags.dev)
    scheme = image_tags.tag_scheme(rules, version, python, flavor, images.default_python, revision)
    spec = core.ImageSpec(
        python=python, flavor=flavor, base_image=base, version=version,
        packages=packages, extras=extras, dependencies=dependencies,
        tags=tuple(scheme), floating=tuple(tag for tag, floats in scheme.items() if floats),
        repository=setup.repository,
        build_args={"BASE_IMAGE": base, "PYTHON_VERSION": python, **images.build_args},
        wheelhouse=tuple(sorted((files or {}).items())),
        pins=tuple(wheelhouse_rules.constraint_lines({r.machine: image_deps.current_pins(r) for r in deps})),
        core_extras=chosen_extras,
    )
    context = dockerfiles.dockerfile_context(spec, current.config.project.name, bool(files))
    dockerfile = rendered_dockerfile(current, shared.templates, flavor, context, spec.key)
    modules = tuple((w.name, w.version, tuple(modules_of(w))) for w in packages + extras)
    command = current.config.packages.version_command or smoke.version_command(core_name(packages), console_scripts(packages))
    return Planned(spec, dockerfile, modules, deps, files is not None, tuple(command) if command else None)


def image_version(shared: Shared, wheels: tuple[core.Wheel, ...]) -> str:
    """The core's tag version marked with the newest change, since that tag, to any package the image holds
    (scheme commit): an image whose content changed never keeps the version of the one before."""
    report = shared.versions
    entries = {entry["name"]: entry for entry in report.get("packages", [])}
    core_entry = entries.get(core_name(wheels) or "")
    if report.get("scheme") != "commit" or core_entry is None or "base_version" not in core_entry:
        return core.core_version(wheels)
    changes = [Change(**entries[w.name]["since_core_tag"]) for w in wheels if (entries.get(w.name) or {}).get("since_core_tag")]
    return fork_version(core_entry["base_version"], str(report.get("label")), newest(changes))


def needed(request: image_deps.Request, wheels: tuple[core.Wheel, ...], selection: Selection,
           core_extras: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The third-party requirements of `wheels` that apply on the request's CPU (with the core's chosen extras)."""
    environment = core.marker_environment(request.python, request.machine)
    found = core.third_party_requirements({w.name: request.requires[w.name] for w in wheels}, selection.fork_names,
                                          environment)
    name = core_name(wheels) or ""
    for extra in core_extras if name else ():
        with_extra = core.third_party_requirements({name: request.requires[name]}, selection.fork_names,
                                                   {**environment, "extra": extra})
        found += tuple(core.without_marker(line) for line in with_extra if line not in found)
    return tuple(dict.fromkeys(found))


def core_name(packages: tuple[core.Wheel, ...]) -> str | None:
    return next((w.name for w in packages if w.kind == "core"), None)


def check_python_choice(setup: ImageSetup) -> None:
    current, images = setup.settings, setup.images
    if images.default_python and images.default_python not in images.python:
        raise ConfigError(
            f"{current.config_file}: images.default_python = {images.default_python!r} is not one of "
            f"images.python {list(images.python)}",
            where=str(current.config_file), fix="pick one of the listed versions, or add it to images.python",
        )


def read_wheels(current: Settings) -> list[core.Wheel]:
    file = wheel_report_file(current)
    report = read_json(file)
    if report is None:
        raise ForkflowError(f"no wheels to put in images: {file} does not exist",
                            fix="run `doit wheel` first (`doit image` runs it when the config has a [fork])")
    wheels = core.wheels_from_report(report, str(file))
    missing = [w.path for w in wheels if not Path(w.path).is_file()]
    if missing:
        raise ForkflowError(f"{file} lists wheels that are not on disk: {', '.join(missing)}", where=str(file),
                            fix="run `doit wheel` again")
    return wheels


def rendered_dockerfile(current: Settings, templates: dict[str, str], flavor: str, context: dict[str, Any],
                        cell: str) -> str:
    """The cell's Dockerfile: the last rendering when the templates and their values are the same
    (so a no-op run does not load jinja), else a new one, remembered per cell."""
    key = hashlib.sha256(json.dumps([sorted(templates.items()), flavor, context], sort_keys=True).encode()).hexdigest()
    file = current.state_dir / "cache" / "dockerfiles" / f"{cell}.json"
    last = read_json(file) or {}
    if last.get("key") == key and isinstance(last.get("text"), str):
        return str(last["text"])
    text = dockerfiles.render_dockerfile(templates, flavor, context)
    write_json(file, {"key": key, "text": text})
    return text


def read_templates(setup: ImageSetup) -> dict[str, str]:
    """The flavor templates, by name."""
    return {name: path.read_text(encoding="utf-8") for name, path in template_sources(setup).items()}


def requires_of(wheel: core.Wheel) -> list[str]:
    """Requires-Dist lines from a wheel's METADATA."""
    return list(wheel_info(Path(wheel.path)).requires)


def modules_of(wheel: core.Wheel) -> list[str]:
    with zipfile.ZipFile(wheel.path) as archive:
        return smoke.top_level_modules(archive.namelist())


def console_scripts(wheels: tuple[core.Wheel, ...]) -> list[str]:
    """Console script names declared by the wheels' entry_points.txt."""
    return [name for wheel in wheels for name in wheel_info(Path(wheel.path)).scripts]


def check_wheelhouse(dependencies: tuple[str, ...], files: dict[str, str], deps: image_deps.Request, flavor: str) -> None:
    """Every third-party requirement that applies has a wheel in the dependency wheelhouse: the build has no network."""
    if not dependencies:
        return
    names = set(core.requirement_names(dependencies))
    available = {pin.name for pin in (wheelhouse_rules.wheel_pin(name) for name in files) if pin}
    missing = sorted(names - available)
    if missing:
        raise ForkflowError(
            f"the {flavor} images for Python {deps.python} need {', '.join(missing)}, but the dependency wheelhouse "
            f"{deps.folder} has no wheel of {'them' if len(missing) > 1 else 'it'}",
            where=str(deps.folder),
            fix=f"run `doit clean image-deps:{deps.python}` then `doit image-deps:{deps.python}` to resolve again",
        )


@functools.lru_cache(maxsize=64)
def file_sha256(path: str, mtime_ns: int, size: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_url(current: Settings) -> str:
    fork = current.config.fork
    if fork is None:
        return ""
    origin = fork.origin
    return origin if "://" in origin else current.remote(origin)


def stat_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (str(path), 0, 0)
    return (str(path), stat.st_mtime_ns, stat.st_size)


# ---- per-project Docker environments of the flows project ---------------------------------------


@dataclass(frozen=True)
class FlowEnv:
    """A `[tool.prefect.envs.<name>]` table: build `dockerfile` in `context` on Python `python`."""

    name: str
    python: str
    dockerfile: Path
    context: Path


def flows_pyproject(current: Settings) -> Path | None:
    flows = current.config.flows
    return current.path(flows.path) / "pyproject.toml" if flows else None


def read_flow_envs(pyproject: Path) -> list[FlowEnv]:
    """The per-project environments in a flows project's pyproject.toml, checked; a flows folder without one
    (a repository deployed by its prefect.yaml, say) has none."""
    if not pyproject.parent.is_dir():
        raise ForkflowError(f"no flows folder at {pyproject.parent}", where="[flows] path",
                            fix="run `doit checkout` to clone the fork, or correct [flows] path")
    if not pyproject.is_file():
        return []
    data = parse_toml(pyproject.read_bytes(), str(pyproject))
    tables = data.get("tool", {}).get("prefect", {}).get("envs", {})
    envs = []
    for name, table in sorted(tables.items()):
        envs.append(flow_env(pyproject, name, table))
    return envs


def flow_env(pyproject: Path, name: str, table: Any) -> FlowEnv:
    where = f"{pyproject} [tool.prefect.envs.{name}]"
    allowed = {"python_version", "dockerfile_path", "context"}
    if not isinstance(table, dict) or set(table) - allowed or "python_version" not in table:
        raise ConfigError(f"{where}: expected keys python_version (required), dockerfile_path, context; "
                          f"got {sorted(table) if isinstance(table, dict) else table!r}", where=where,
                          fix="correct the table")
    python = str(table["python_version"])
    if not python.count(".") == 1 or not all(part.isdigit() for part in python.split(".")):
        raise ConfigError(f"{where}: python_version = {python!r}: looks like '3.12'", where=where, fix="correct it")
    context = (pyproject.parent / str(table.get("context", "."))).resolve()
    dockerfile = (pyproject.parent / str(table.get("dockerfile_path", "Dockerfile"))).resolve()
    for label, path in (("context", context), ("dockerfile_path", dockerfile)):
        if not path.exists():
            raise ConfigError(f"{where}: {label} {path} does not exist", where=where,
                              fix="paths are relative to the pyproject.toml's folder")
    return FlowEnv(name, python, dockerfile, context)


def context_digest(folder: Path, dockerfile: Path) -> dict[str, Any]:
    """Content hashes of the build context (without __pycache__, .git, *.pyc) and the Dockerfile."""

    files = {}
    for current_dir, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
        for name in sorted(names):
            if name.endswith(".pyc"):
                continue
            path = Path(current_dir) / name
            files[path.relative_to(folder).as_posix()] = sha256_hex(path.read_bytes())
    return {"files": sha256_hex(repr(sorted(files.items()))), "dockerfile": sha256_hex(
        dockerfile.read_text(encoding="utf-8"))}
