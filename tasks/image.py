"""Stage `image`: a Docker image per Python version x flavor, rebuilt only when its inputs changed.

- `image-base:<python>` (and `image-base:conda`) makes sure each base image
  is in the engine: the configured one (`python:<v>-slim`) present or pulled,
  else one made from a local interpreter under its own name
  (`forkflow/python-local:<v>`, see tasks.core.base_image), as
  `[images] base_from` says.
- `image-deps:<python>` makes the dependency wheelhouse of that Python's
  images: their third-party requirements resolved and downloaded as wheels
  (tasks.image_deps), once per requirement set.
- `image:<python>-<flavor>` renders the flavor's Dockerfile from templates/,
  hashes its inputs (Dockerfile, wheel hashes, base image id, build args,
  dependency wheels),
  builds when that hash has no image yet, smoke-tests the image in a
  container, then tags and pushes it. doit keeps the input hash as the
  task's value (`doit info image:3.12-base` shows it); the task is up to
  date while the hash, the tags and the image are unchanged.
- `image:envs` builds the flows project's `[tool.prefect.envs.<name>]`
  environments with the same machinery, without pushing.
- `image:report` writes reports/image.json.

`--dry-run` (or FORKFLOW_DRY_RUN=1) prints every image, its tags and why it
would or would not be rebuilt, and changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tasks import credentials, image_deps
from tasks import image_inputs as inputs
from tasks.actions import dry_run_param, guarded, is_dry_run, missing_section_task
from tasks.adapters import docker as docker_adapter
from tasks.adapters import rootfs
from tasks.checks import Check, Cleaner, Stale
from tasks.context import Settings, read_report, settings, write_report
from tasks.core import base_image as base_rules
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.output import say

DOC = "Docker image per Python version x flavor: build when inputs changed, smoke-test, push"


# ---- task creators ------------------------------------------------------------------------------


def task_image_base() -> Iterator[dict[str, Any]]:
    """Make sure the base images are in the engine (made from a local interpreter when they cannot be pulled)."""
    current = settings()
    doc = "make sure each base image is in the Docker engine: present, pulled, or made from a local interpreter"
    images = current.config.images
    if images is None:
        yield missing_section_task("image-base", "images", doc)
        return
    yield {"basename": "image-base", "name": None, "doc": doc, "params": [dry_run_param()], "uptodate": [True]}
    for name in base_names(current):
        python = None if name == "conda" else name
        ref = images.conda_base_image if python is None else images.base_image.format(python=python)
        yield {
            "basename": "image-base",
            "name": name,
            "doc": f"make sure a base image is in the engine: {ref} {describe_base_source(images.base_from, python)}",
            "actions": [guarded(partial(base_action, name))],
            "uptodate": [Check(f"base image {ref} is in the engine", base_present, name)],
            "params": [dry_run_param()],
            "verbosity": 2,
        }


def task_image() -> Iterator[dict[str, Any]]:
    """Build, smoke-test and push a Docker image per Python version and flavor, only when its inputs changed."""
    current = settings()
    if current.config.images is None:
        yield missing_section_task("image", "images", DOC)
        return
    images = inputs.images_config(current)
    run_id = uuid.uuid4().hex
    target = inputs.repository(current)
    keys = inputs.image_keys(images)
    yield from deps_tasks(current)
    yield {"basename": "image", "name": None, "doc": DOC, "params": [dry_run_param()], "uptodate": [True]}
    for python in images.python:
        for flavor in images.flavors:
            key = core.image_key(python, flavor)
            yield {
                "name": key,
                "doc": f"build, smoke-test and {'push' if images.push else 'tag'} the {flavor} image for Python {python} "
                       f"({target})",
                "actions": [guarded(partial(image_action, key, run_id))],
                "task_dep": ["wheel", f"image-deps:{python}", f"image-base:{inputs.base_name(flavor, python)}",
                             *registry_deps(current)],
                "uptodate": [Check(f"image {key}: same inputs, tags and built image as its last build", image_is_current, key)],
                "file_dep": [str(path) for path in inputs.template_sources(current).values()],
                "params": [dry_run_param()],
                "clean": [Cleaner(f"remove image {key}'s local tags and its state", clean_image, key)],
                "verbosity": 2,
            }
    names = [f"image:{key}" for key in keys]
    if current.config.flows:
        yield {
            "name": "envs",
            "doc": "build the flows project's [tool.prefect.envs.<name>] Docker environments (no push)",
            "actions": [guarded(partial(envs_action, run_id))],
            "task_dep": ["checkout", *[f"image-base:{p}" for p in images.python]],
            "uptodate": [Check("the flows project's Docker environments are built from unchanged inputs", envs_current)],
            "params": [dry_run_param()],
            "verbosity": 2,
        }
        names.append("image:envs")
    yield {
        "name": "report",
        "doc": "write reports/image.json: every image's tags, id, pushed digests, built or up-to-date and why",
        "actions": [guarded(partial(report_action, run_id))],
        "task_dep": names,
        "uptodate": [Check("no image was built in this run, so image.json still holds", report_settled, run_id)],
        "params": [dry_run_param()],
        "verbosity": 2,
    }


def deps_tasks(current: Settings) -> Iterator[dict[str, Any]]:
    """`image-deps:<python>`: the third-party wheels of that Python's images, resolved and downloaded once
    per requirement set."""
    images = inputs.images_config(current)
    doc = "resolve the images' third-party requirements and download their wheels, per Python (once per requirement set)"
    yield {"basename": "image-deps", "name": None, "doc": doc, "params": [dry_run_param()], "uptodate": [True]}
    for python in images.python:
        yield {
            "basename": "image-deps",
            "name": python,
            "doc": f"the third-party wheels of the Python {python} images, for {images.platforms[0]}",
            "actions": [guarded(partial(deps_action, python))],
            "task_dep": ["wheel"],
            "uptodate": [Check(f"the Python {python} wheelhouse holds the current requirement set", deps_current, python)],
            "params": [dry_run_param()],
            "clean": [Cleaner(f"remove the Python {python} wheelhouse", clean_deps, python)],
            "verbosity": 2,
        }


def deps_action(python: str, dry_run: bool = False) -> dict[str, str]:
    current = settings()
    request = inputs.deps_request(current, python)
    outcome = image_deps.make(current, request, noop=dry(dry_run))
    say(f"image-deps:{python}: {request.folder}: {outcome}")
    return {"made": f"{request.name}: {outcome}"}


def deps_current(python: str, task: Any, values: Any) -> bool:
    """Up to date while the stamp names the current requirement set: no index is asked."""
    if dry(False):
        return False
    try:
        return image_deps.is_current(inputs.deps_request(settings(), python))
    except Exception:
        return False


def clean_deps(python: str) -> None:
    """`doit clean image-deps`: remove the downloaded wheels (the next run resolves again)."""
    current = settings()
    folder = inputs.deps_folder(current, python)
    shutil.rmtree(folder, ignore_errors=True)
    say(f"image-deps:{python}: removed {folder}")


def base_names(current: Settings) -> list[str]:
    images = inputs.images_config(current)
    names = [p for p in images.python if any(f != "conda" for f in images.flavors)]
    return names + (["conda"] if "conda" in images.flavors else [])


def describe_base_source(base_from: str, python: str | None) -> str:
    if python is None or base_from == "pull":
        return "(pulled when missing)"
    local = base_rules.local_base_name(python)
    if base_from == "local":
        return f"when present, else {local} made from a local Python {python}"
    return f"when present or pullable, else {local} made from a local Python {python}"


def registry_deps(current: Settings) -> list[str]:
    """The local registry service, when the images go there."""
    images = inputs.images_config(current)
    return ["services:registry"] if images.push and is_local_registry(current) and not dry(False) else []


def is_local_registry(current: Settings) -> bool:
    services = current.config.services
    images = current.config.images
    if services is None or images is None:
        return False
    port = services.registry.port
    return images.registry.rstrip("/") in (f"127.0.0.1:{port}", f"localhost:{port}")


def dry(param: bool) -> bool:
    """Dry run from the task's own --dry-run, FORKFLOW_DRY_RUN, or `doit image --dry-run` on the group."""
    return is_dry_run(param) or "--dry-run" in sys.argv[1:]


# ---- base images --------------------------------------------------------------------------------


def base_present(name: str, task: Any, values: Any) -> bool:
    if dry(False):
        return False
    try:
        return chosen_base(settings(), engine(), name) is not None
    except Exception:
        return False


def base_reference(current: Settings, name: str) -> str:
    """The configured base image (`python:<v>-slim`, or the conda one)."""
    images = inputs.images_config(current)
    return images.conda_base_image if name == "conda" else images.base_image.format(python=name)


def labels_of(client: Any, ref: str) -> dict[str, str] | None:
    """The image's labels ({} when it has none), or None when the engine has no such image."""
    attrs = docker_adapter.image_attrs(client, ref)
    return None if attrs is None else dict((attrs.get("Config") or {}).get("Labels") or {})


BASES: dict[tuple[int, str], str] = {}


def chosen_base(current: Settings, client: Any, name: str) -> str | None:
    """The base image an image of `name` is built on now, remembered for this process once found
    (`base_action` forgets it, since it may make another)."""
    key = (os.getpid(), name)
    if key not in BASES:
        found = find_base(current, client, name)
        if found is None:
            return None
        BASES[key] = found
    return BASES[key]


def find_base(current: Settings, client: Any, name: str) -> str | None:
    """The base image an image of `name` (a Python version, or conda) is built on now: the configured one
    when it is present and not made here, else a current local base; None when neither is in the engine."""
    images = inputs.images_config(current)
    official = base_reference(current, name)
    if name == "conda":
        return official if docker_adapter.image_id(client, official) else None
    local = base_rules.local_base_name(name)
    choice = base_rules.choose_base(labels_of(client, official), labels_of(client, local), images.base_from)
    return {"official": official, "local": local}.get(choice or "")


def chosen_bases(current: Settings, client: Any | None) -> dict[str, str]:
    """base name -> the image reference builds use now (the configured ones when the engine is unknown)."""
    if client is None:
        return {}
    found = {}
    for name in base_names(current):
        ref = chosen_base(current, client, name)
        if ref:
            found[name] = ref
    return found


def base_action(name: str, dry_run: bool = False) -> dict[str, str]:
    current = settings()
    noop = dry(dry_run)
    ref, outcome = ensure_base(current, name, noop=noop)
    BASES.pop((os.getpid(), name), None)
    say(f"base image {ref}: {outcome}")
    return {"made": f"{ref} ({outcome})"}


def ensure_base(current: Settings, name: str, *, noop: bool = False) -> tuple[str, str]:
    """The base image for `name` in the engine: (its reference, 'present' | 'pulled' | 'made from ...').

    The configured image when present; else, as base_from says, pulled (pull), made from a local interpreter
    under its own name (local), or pulled and made locally when the pull fails (auto)."""
    images = inputs.images_config(current)
    official = base_reference(current, name)
    try:
        client = engine()
    except ForkflowError:
        if noop:
            return official, "unknown (Docker engine not reachable)"
        raise
    present = chosen_base(current, client, name)
    if present:
        return present, "present"
    if name == "conda" or images.base_from == "pull":
        where = "[images] conda_base_image" if name == "conda" else "[images] base_image (base_from = 'pull')"
        docker_adapter.pull(client, official, where=where, noop=noop)
        return official, "would pull" if noop else "pulled"
    if images.base_from == "auto" and not made_locally(client, official):
        try:
            docker_adapter.pull(client, official, where="[images] base_image", noop=noop)
            return official, "would pull (else make it from a local interpreter)" if noop else "pulled"
        except ForkflowError as err:
            say(f"{err.what.splitlines()[0]}; making a base image from a local interpreter instead")
    local = base_rules.local_base_name(name)
    root = current.path(images.interpreters) if images.interpreters else rootfs.default_interpreters_root()
    interpreter = rootfs.find_interpreter(root, name)
    if interpreter is None:
        raise ForkflowError(f"no base image for Python {name}: {official} is not in the engine and cannot be pulled, "
                            f"and no local Python {name} was found under {root} to make {local} from",
                            where="[images] interpreters",
                            fix=f"install Python {name} there (e.g. `pyenv install {name}`), or make {official} "
                                "pullable (a reachable registry) or present (`docker load`)")
    return local, make_local_base(current, client, interpreter, name, local, noop=noop)


def made_locally(client: Any, ref: str) -> bool:
    """An image under the official name that an older forkflow made here (it is remade under its own name)."""
    return base_rules.is_made_locally(labels_of(client, ref))


def make_local_base(current: Settings, client: Any, interpreter: Path, python: str, ref: str, *, noop: bool) -> str:
    if noop:
        say(f"would make {ref} from {interpreter} (docker import)")
        return "would make from a local interpreter"
    folder = current.state_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"base-{python}.{os.getpid()}.tar"
    try:
        start = time.monotonic()
        made = rootfs.write_rootfs(interpreter, python, tarball)
        docker_adapter.import_rootfs(client, tarball, ref, base_rules.import_changes(made.full_version))
    finally:
        tarball.unlink(missing_ok=True)
    say(f"made {ref} from {interpreter}: {made.files} files, {made.bytes / 1e6:.0f} MB, shell {made.shell}, "
        f"{len(made.libraries)} shared libraries, {time.monotonic() - start:.1f}s")
    return f"made from {interpreter}"


# ---- one image ----------------------------------------------------------------------------------


def image_action(key: str, run_id: str, dry_run: bool = False) -> dict[str, Any]:
    current = settings()
    if dry(dry_run):
        try:
            client = engine()
        except ForkflowError:
            client = None
        planned = inputs.load_plan(current, revision(current), chosen_bases(current, client)).item(key)
        return describe_plan(current, planned)
    client = engine()
    plan = inputs.load_plan(current, revision(current), chosen_bases(current, client))
    planned = plan.item(key)
    check_platforms(client, inputs.images_config(current).platforms)
    if not planned.deps_ready:
        raise ForkflowError(f"image:{key}: the dependency wheelhouse {planned.deps.folder} is not made for these "
                            "packages", fix=f"run `doit image-deps:{planned.spec.python}` (`doit image` runs it)")
    record = base_record(planned, run_id)
    try:
        return build_test_push(current, plan, planned, client, record)
    except ForkflowError as err:
        record.update(status="failed", reason=err.what.splitlines()[0])
        update_report(current, plan.keys, images=[record])
        raise


def build_test_push(current: Settings, plan: inputs.Plan, planned: inputs.Planned, client: Any,
                    record: dict[str, Any]) -> dict[str, Any]:
    images = inputs.images_config(current)
    spec = planned.spec
    auth = registry_auth(current) if images.push else None
    if auth:
        docker_adapter.login(client, images.registry, auth["username"], auth["password"])
    built_inputs, digest_of_inputs = current_inputs(client, planned)
    previous = read_state(current, spec.key)
    reasons = core.rebuild_reasons(previous.get("inputs") if previous else None, built_inputs)
    record.update(input_hash=digest_of_inputs, base_image_id=built_inputs["base_image_id"])
    image, how = find_or_build(current, plan, planned, client, digest_of_inputs, record)
    record.update(image_id=image, status="built" if how == "built" else "up-to-date",
                  reason="; ".join(reasons) if how == "built" and reasons else how)
    started = time.monotonic()
    smoke_test(current, client, planned, image)
    record.update(smoke="passed", smoke_seconds=round(time.monotonic() - started, 2))
    for tag in spec.tags:
        docker_adapter.tag_image(client, image, spec.repository, tag)
    if auth:
        started = time.monotonic()
        record["pushed"] = {tag: docker_adapter.push(client, spec.repository, tag, auth) for tag in spec.tags}
        record.update(digest=next(iter(record["pushed"].values()), None), push_seconds=round(time.monotonic() - started, 2))
    target = core.push_target(spec, images.push)
    save_state(current, spec.key, {"inputs": built_inputs, "input_hash": digest_of_inputs, "image_id": image,
                                   "target": target, "pushed": record.get("pushed", {}), "build_tag": record.get("build_tag")})
    update_report(current, plan.keys, images=[record])
    pushed = f", pushed {len(record.get('pushed', {}))} tags ({core.short(record.get('digest'))})" if auth else ""
    say(f"image:{spec.key}: {record['status']} {image[:19]}{pushed}")
    return {"made": f"{record['status']} {spec.tags[0]}{pushed}", "input_hash": digest_of_inputs, "image_id": image,
            "target": core.input_hash(target)}


def base_record(planned: inputs.Planned, run_id: str) -> dict[str, Any]:
    spec = planned.spec
    return {
        "name": spec.key, "python": spec.python, "flavor": spec.flavor, "version": spec.version,
        "tags": list(spec.tags), "references": spec.references(), "repository": spec.repository,
        "status": "failed", "digest": None, "image_id": None, "reason": "", "pushed": {},
        "base_image": spec.base_image,
        "packages": [{"name": w.name, "version": w.version, "file": w.file, "sha256": w.sha256} for w in spec.wheels],
        "run": run_id,
    }


def current_inputs(client: Any, planned: inputs.Planned) -> tuple[dict[str, Any], str]:
    spec = planned.spec
    base_id = docker_adapter.image_id(client, spec.base_image) if client is not None else None
    if base_id is None:
        raise ForkflowError(f"base image {spec.base_image} is not in the engine",
                            fix=f"run `doit image-base:{inputs.base_name(spec.flavor, spec.python)}`")
    built_inputs = core.build_inputs(spec, planned.dockerfile, base_id)
    return built_inputs, core.input_hash(built_inputs)


def find_or_build(current: Settings, plan: inputs.Plan, planned: inputs.Planned, client: Any, digest_of_inputs: str,
                  record: dict[str, Any]) -> tuple[str, str]:
    """An image with exactly these inputs if the engine has one, else a new build."""
    existing = docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest_of_inputs)
    if existing:
        return existing[0], f"an image with these inputs is already built (input hash {digest_of_inputs[:12]})"
    spec = planned.spec
    build_tag = f"{spec.repository.split('/', 1)[-1]}:build-{spec.key}-{digest_of_inputs[:12]}"
    labels = core.image_labels(spec, digest_of_inputs, plan.source, plan.revision,
                               datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    context = assemble_context(current, plan, planned, labels)
    say(f"image:{spec.key}: building {build_tag}")
    result = docker_adapter.build_image(client, context, build_tag, buildargs=spec.build_args,
                                        log_file=current.logs_dir / f"image-{spec.key}.log", progress=f"image:{spec.key}")
    assert result is not None
    record.update(build_tag=build_tag, steps=result.steps, cached_steps=result.cached_steps,
                  build_seconds=round(result.seconds, 2))
    say(f"image:{spec.key}: built in {result.seconds:.1f}s, {result.cached_steps} of {result.steps} steps from cache")
    drop_previous_build_tag(current, client, spec.key, build_tag)
    return result.image_id, "built"


def drop_previous_build_tag(current: Settings, client: Any, key: str, new_tag: str) -> None:
    previous = (read_state(current, key) or {}).get("build_tag")
    if previous and previous != new_tag:
        docker_adapter.untag(client, previous)


def assemble_context(current: Settings, plan: inputs.Plan, planned: inputs.Planned, labels: dict[str, str]) -> Path:
    """<state>/images/<key>/context: the Dockerfile (labels last) and only the wheels this image installs."""
    spec = planned.spec
    context = state_folder(current) / spec.key / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(planned.dockerfile + "\n" + core.label_instruction(labels), encoding="utf-8")
    for folder, wheels in (("wheels", spec.packages), ("extras", spec.extras)):
        (context / folder).mkdir()
        for wheel in wheels:
            check_sha256(wheel)
            place(Path(wheel.path), context / folder / wheel.file)
    (context / "deps").mkdir()
    for name, _ in spec.wheelhouse:
        place(planned.deps.folder / name, context / "deps" / name)
    return context


def check_sha256(wheel: core.Wheel) -> None:
    stat = Path(wheel.path).stat()
    found = inputs.file_sha256(wheel.path, stat.st_mtime_ns, stat.st_size)
    if found != wheel.sha256:
        raise ForkflowError(f"{wheel.path} does not match wheel.json (sha256 {found[:12]}, listed {wheel.sha256[:12]})",
                            fix="run `doit wheel` again so wheel.json describes the files on disk")


def place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def smoke_test(current: Settings, client: Any, planned: inputs.Planned, image: str) -> None:
    """The packages import and report the expected versions, as the image's non-root user; then any
    configured smoke command. A failure raises, so the image is not pushed."""
    spec = planned.spec
    log = current.logs_dir / f"image-{spec.key}-smoke.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    commands = [["python", "-c", core.smoke_script(spec.python, planned.modules)]]
    if planned.version_command:
        commands.append(list(planned.version_command))
    extra = inputs.images_config(current).smoke_command
    if extra and list(extra) not in commands:
        commands.append(list(extra))
    outputs = []
    imported = ""
    for command in commands:
        code, output = docker_adapter.run_container(client, image, command)
        outputs.append(f"$ {' '.join(command) if command is not commands[0] else 'python -c <package check>'}\n{output}")
        log.write_text("\n".join(outputs), encoding="utf-8")
        what = "package check" if command is commands[0] else "smoke command " + " ".join(command)
        problem = f"exit {code}" if code != 0 else None
        if problem is None and planned.version_command and command == list(planned.version_command):
            problem = core.version_mismatch(output, spec.version)
        if problem:
            shown = "\n".join("    " + line for line in output.strip().splitlines()[-20:])
            raise ForkflowError(f"image:{spec.key}: smoke test failed ({what}: {problem}); not pushed\n{shown}",
                                where=str(log), fix="fix the package or the image, then run `doit image` again")
        if command is commands[0]:
            imported = next((line for line in output.splitlines() if line.startswith("imported ")), "")
    checked = f", `{' '.join(planned.version_command)}` reports {spec.version}" if planned.version_command else ""
    say(f"image:{spec.key}: smoke test passed ({len(planned.modules)} packages, {imported or 'imports checked'}, "
        f"Python {spec.python}, non-root{checked})")


def check_platforms(client: Any, platforms: tuple[str, ...]) -> None:
    native = docker_adapter.engine_platform(client)
    foreign = [p for p in platforms if p != native]
    if not foreign:
        return
    buildx = "installed, but forkflow builds through the engine's API" if docker_adapter.buildx_available() \
        else "not installed"
    raise ForkflowError(
        f"cannot build {', '.join(foreign)} here: this engine builds {native} only, and docker buildx is {buildx}",
        where="[images] platforms",
        fix=f"keep [images] platforms = [\"{native}\"] here, and build the others on an engine of that platform",
    )


def registry_auth(current: Settings) -> dict[str, str]:
    """Credentials from the environment, else the local registry service's own."""
    found = credentials.from_environment("registry")
    if found is None and is_local_registry(current):
        file = current.services_dir / "registry" / "credentials.json"
        if file.exists():
            found = credentials.local_credentials(file.parent, "registry")
    if found is None:
        images = inputs.images_config(current)
        raise ForkflowError(f"no credentials for the registry {images.registry}",
                            where="environment", fix=f"set {docker_adapter.REGISTRY_CREDENTIALS}, "
                            "or start the local registry with `doit services:registry`")
    return {"username": found.username, "password": found.password}


def image_is_current(key: str, task: Any, values: Any) -> bool | Stale:
    """Up to date while the input hash, the tags and the built image are unchanged."""
    if dry(False):
        return Stale("dry run")
    if not values or "input_hash" not in values:
        return Stale("first build (no build recorded)")
    try:
        current = settings()
        client = engine()
        planned = inputs.load_plan(current, revision(current), chosen_bases(current, client)).item(key)
        if not planned.deps_ready:
            return Stale("its wheels or wheelhouse are not ready yet")
        _, digest_of_inputs = current_inputs(client, planned)
        target = core.input_hash(core.push_target(planned.spec, inputs.images_config(current).push))
        present = read_state(current, key) is not None and docker_adapter.image_id(client, values.get("image_id", ""))
    except Exception as err:  # the task itself reports the problem properly
        return Stale(f"cannot check: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    if values.get("input_hash") != digest_of_inputs:
        return Stale("its inputs changed (wheels, base image, Dockerfile or build settings)")
    if values.get("target") != target:
        return Stale("its tags or push target changed")
    if not present:
        return Stale("the built image is no longer in the engine")
    return True


def describe_plan(current: Settings, planned: inputs.Planned) -> dict[str, Any]:
    """The dry run of one image: its tags and why it would (or would not) be rebuilt and pushed."""
    spec = planned.spec
    images = inputs.images_config(current)
    previous = read_state(current, spec.key)
    lines = [f"image:{spec.key}  {spec.repository}  tags: {', '.join(spec.tags)}"]
    try:
        client = engine()
        if not planned.deps_ready:
            raise ForkflowError(f"its dependency wheelhouse is not made yet (`doit image-deps:{spec.python}` would make it)")
        built_inputs, digest_of_inputs = current_inputs(client, planned)
        reasons = core.rebuild_reasons(previous.get("inputs") if previous else None, built_inputs)
        exists = bool(docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest_of_inputs))
    except ForkflowError as err:
        lines.append(f"  cannot tell whether it would rebuild: {err.what.splitlines()[0]}")
        for line in lines:
            say(line)
        return {"made": "dry run: " + lines[1].strip(), **saved_values(previous)}
    if reasons and not exists:
        lines.append("  would rebuild: " + "; ".join(reasons))
    else:
        lines.append(f"  would not rebuild: inputs unchanged (input hash {digest_of_inputs[:12]})")
    target = core.push_target(spec, images.push)
    why_push = core.push_reasons(previous.get("target") if previous else None, target)
    if not images.push:
        lines.append("  would not push: [images] push = false")
    elif reasons or why_push or not previous:
        lines.append(f"  would push {len(spec.tags)} tags" + (": " + "; ".join(why_push) if why_push else ""))
    else:
        lines.append("  would not push: already pushed with these tags")
    for line in lines:
        say(line)
    return {"made": "dry run: " + lines[1].strip(), **saved_values(previous)}


def saved_values(state: dict[str, Any] | None) -> dict[str, Any]:
    """The values of the last real run, kept by a dry run so it does not make the next run redo the push."""
    if not state:
        return {}
    return {"input_hash": state.get("input_hash"), "image_id": state.get("image_id"),
            "target": core.input_hash(state.get("target", {}))}


# ---- per-project environments -------------------------------------------------------------------


def envs_action(run_id: str, dry_run: bool = False) -> dict[str, Any]:
    current = settings()
    pyproject = inputs.flows_pyproject(current)
    assert pyproject is not None
    envs = inputs.read_flow_envs(pyproject)
    if not envs:
        say(f"no [tool.prefect.envs.*] tables in {pyproject}")
        return {"made": "no environments", "envs": {}}
    noop = dry(dry_run)
    records = [build_env(current, env, run_id, noop=noop) for env in envs]
    if noop:
        earlier = (read_report("image", current) or {}).get("environments", [])
        return {"made": f"dry run: {len(envs)} environments", **env_values(earlier)}
    update_report(current, None, environments=records)
    return {"made": ", ".join(f"{r['name']} {r['status']}" for r in records), **env_values(records)}


def env_values(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What envs_current compares next time: each environment's input hash and the image built from it."""
    return {"envs": {r["name"]: r.get("input_hash") for r in records},
            "env_images": {r["name"]: r.get("image_id") for r in records}}


def env_repository(current: Settings, name: str) -> str:
    images = inputs.images_config(current)
    return f"{images.repository.format(project=current.config.project.name)}-{name}"


def env_inputs(current: Settings, client: Any, env: inputs.FlowEnv) -> tuple[dict[str, Any], str]:
    base = (chosen_base(current, client, env.python) if client else None) or base_reference(current, env.python)
    base_id = docker_adapter.image_id(client, base) if client else None
    found = {"context": inputs.context_digest(env.context, env.dockerfile), "base_image": base, "base_image_id": base_id,
             "build_args": {"BASE_IMAGE": base, "PYTHON_VERSION": env.python}}
    return found, core.input_hash(found)


def build_env(current: Settings, env: inputs.FlowEnv, run_id: str, *, noop: bool) -> dict[str, Any]:
    """Build one per-project environment when its inputs have no image yet; check its Python runs."""
    repo = env_repository(current, env.name)
    if noop:
        try:
            client = engine()
        except ForkflowError:
            client = None
        _, digest = env_inputs(current, client, env)
        exists = bool(client and docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest))
        say(f"image:envs {env.name}: {repo}:python{env.python} from {env.dockerfile}: "
            + ("would not rebuild: inputs unchanged" if exists else "would build (inputs changed or never built)"))
        return {"name": env.name}
    client = engine()
    ensure_base(current, env.python)
    found, digest = env_inputs(current, client, env)
    tag = f"python{env.python}-{digest[:12]}"
    record: dict[str, Any] = {"name": env.name, "python": env.python, "repository": repo, "tags": [tag, f"python{env.python}"],
              "dockerfile": str(env.dockerfile), "context": str(env.context), "input_hash": digest, "run": run_id,
              "pushed": {}, "status": "up-to-date", "reason": "an image with these inputs is already built"}
    existing = docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest)
    if existing:
        image = existing[0]
    else:
        labels = {core.INPUT_HASH_LABEL: digest, "org.opencontainers.image.created":
                  datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), f"{core.LABEL_PREFIX}.flows-env": env.name}
        result = docker_adapter.build_image(client, env.context, f"{repo}:{tag}", dockerfile=str(env.dockerfile),
                                            buildargs=found["build_args"], labels=labels,
                                            log_file=current.logs_dir / f"image-env-{env.name}.log",
                                            progress=f"image:envs {env.name}")
        assert result is not None
        image = result.image_id
        record.update(status="built", reason="inputs changed or never built", cached_steps=result.cached_steps,
                      steps=result.steps)
    for each in record["tags"]:
        docker_adapter.tag_image(client, image, repo, each)
    check = "import sys; print('%d.%d' % sys.version_info[:2])"
    code, output = docker_adapter.run_container(client, image, ["python", "-c", check])
    if code != 0 or output.strip() != env.python:
        raise ForkflowError(f"environment {env.name}: python in {repo}:{tag} reports {output.strip()!r}, "
                            f"expected {env.python} (exit {code})", where=str(env.dockerfile),
                            fix="check the Dockerfile's base image")
    record["image_id"] = image
    say(f"image:envs {env.name}: {record['status']} {repo}:{tag} ({image[:19]})")
    return record


def envs_current(task: Any, values: Any) -> bool | Stale:
    """Up to date while each environment's inputs are unchanged and the image built from them is in the engine."""
    if dry(False):
        return Stale("dry run")
    if not values or "envs" not in values:
        return Stale("first build (no build recorded)")
    try:
        current = settings()
        pyproject = inputs.flows_pyproject(current)
        if pyproject is None:
            return Stale("the flows project has no pyproject.toml")
        client = engine()
        now = {env.name: env_inputs(current, client, env)[1] for env in inputs.read_flow_envs(pyproject)}
        if now != values["envs"]:
            return Stale("an environment's inputs changed (Dockerfile, build context or base image)")
        built = values.get("env_images") or {}
        missing = [name for name, digest in now.items() if not env_image_present(client, built.get(name), digest)]
    except (ForkflowError, OSError) as err:
        return Stale(f"cannot check: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    return Stale(f"no image in the engine for {', '.join(missing)}") if missing else True


def env_image_present(client: Any, image: str | None, digest: str) -> bool:
    """The image the last run built still carries these inputs (any image with them, when none is recorded)."""
    if image:
        return (labels_of(client, image) or {}).get(core.INPUT_HASH_LABEL) == digest
    return bool(docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest))


# ---- report and state ---------------------------------------------------------------------------


def report_settled(run_id: str, task: Any = None, *_: Any) -> bool | Stale:
    """Up to date when no image task ran in this run: the report still describes the last change."""
    if task is not None and (task.options or {}).get("dry_run") or dry(False):
        return Stale("dry run")
    data = read_report("image", settings()) or {}
    records = data.get("images", []) + data.get("environments", [])
    if not records:
        return Stale("no image.json yet")
    ran = [r.get("name") or r.get("key") or "?" for r in records if r.get("run") == run_id]
    return Stale(f"{len(ran)} image task(s) ran in this run") if ran else True


def report_action(run_id: str, dry_run: bool = False) -> dict[str, str]:
    """Images whose subtask did not run this time are up to date; say so, then summarise."""
    current = settings()
    if dry(dry_run):
        say("dry run: reports/image.json left as it is")
        return {"made": "dry run"}
    keys = inputs.image_keys(inputs.images_config(current))

    def mark_unchanged(data: dict[str, Any]) -> None:
        for record in data.get("images", []) + data.get("environments", []):
            if record.get("run") != run_id and record.get("status") != "failed":
                record["status"] = "up-to-date"
                record["reason"] = f"inputs unchanged (input hash {str(record.get('input_hash'))[:12]})"
                record["run"] = run_id

    data = update_report(current, keys, change=mark_unchanged)
    counts: dict[str, int] = {}
    for record in data.get("images", []):
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        say(f"{record['name']:<18} {record['status']:<10} {core.short(record.get('digest')):<12} "
            f"{', '.join(record.get('tags', []))}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return {"made": f"image.json ({summary})"}


@contextmanager
def report_lock(current: Settings) -> Iterator[None]:
    current.reports_dir.mkdir(parents=True, exist_ok=True)
    with (current.reports_dir / "image.json.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_report(current: Settings, keys: list[str] | None, *, images: list[dict[str, Any]] | None = None,
                  environments: list[dict[str, Any]] | None = None,
                  change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Merge records into reports/image.json under a lock (image subtasks may run in parallel)."""
    with report_lock(current):
        data = read_report("image", current) or {}
        merged = {r["name"]: r for r in data.get("images", [])}
        merged.update({r["name"]: r for r in images or []})
        order = keys if keys is not None else list(merged)
        data["images"] = [merged[k] for k in order if k in merged]
        if environments is not None:
            data["environments"] = environments
        if change:
            change(data)
        write_report("image", data, current)
    return data


def clean_image(key: str) -> None:
    """`doit clean image`: forget what was built (state and build context); images stay in the engine and registry."""
    current = settings()
    (state_folder(current) / f"{key}.json").unlink(missing_ok=True)
    shutil.rmtree(state_folder(current) / key, ignore_errors=True)
    say(f"image:{key}: removed its state and build context (images in the engine and registry are kept)")


def state_folder(current: Settings) -> Path:
    return current.state_dir / "images"


def read_state(current: Settings, key: str) -> dict[str, Any] | None:
    file = state_folder(current) / f"{key}.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None


def save_state(current: Settings, key: str, data: dict[str, Any]) -> None:
    folder = state_folder(current)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"{key}.json.{os.getpid()}.tmp"
    temp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(folder / f"{key}.json")


# ---- engine and revision, once per process ------------------------------------------------------

CLIENTS: dict[int, Any] = {}
REVISIONS: dict[tuple[int, str], str] = {}


def engine() -> Any:
    """A connected Docker client for this process (forked doit workers get their own)."""
    pid = os.getpid()
    if pid not in CLIENTS:
        CLIENTS[pid] = docker_adapter.connect()
    return CLIENTS[pid]


def revision(current: Settings) -> str:
    """The commit the images are built from: the fork checkout's HEAD, else $GITHUB_SHA, else unknown."""
    key = (os.getpid(), str(current.config_file))
    if key not in REVISIONS:
        REVISIONS[key] = read_revision(current)
    return REVISIONS[key]


def read_revision(current: Settings) -> str:
    from tasks.adapters.git import Git

    fork = current.fork_path
    if fork and (fork / ".git").exists():
        found = Git(fork).rev("HEAD")
        if found:
            return found
    return os.environ.get("GITHUB_SHA", "")
