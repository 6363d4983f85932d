"""image:envs: the flows projects' own images (a Dockerfile per project), built when their inputs change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters.console import say
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import is_dry_run
from tasks.pipeline.checks import Stale
from tasks.pipeline.settings import read_report
from tasks.stages.image import inputs, look
from tasks.stages.image.base import chosen_base, ensure_base, labels_of
from tasks.stages.image.setup import ImageSetup, image_setup
from tasks.stages.image.state import engine, update_report


def envs_action(run_id: str, dry_run: bool = False) -> dict[str, Any]:
    setup = image_setup(dry_run)
    pyproject = inputs.flows_pyproject(setup.settings)
    assert pyproject is not None
    envs = inputs.read_flow_envs(pyproject)
    if not envs:
        say(f"no [tool.prefect.envs.*] tables in {pyproject}" if pyproject.is_file()
            else f"no flows project ({pyproject.name}) in {pyproject.parent}: no flow environments to build")
        return {"made": "no environments", "envs": {}}
    records = [build_env(setup, env, run_id) for env in envs]
    if setup.dry_run:
        earlier = (read_report("image", setup.settings) or {}).get("environments", [])
        return {"made": f"dry run: {len(envs)} environments", **env_values(earlier)}
    update_report(setup, None, environments=records)
    return {"made": ", ".join(f"{r['name']} {r['status']}" for r in records), **env_values(records)}


def env_values(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What envs_current compares next time: each environment's input hash and the image built from it."""
    return {"envs": {r["name"]: r.get("input_hash") for r in records},
            "env_images": {r["name"]: r.get("image_id") for r in records}}


def env_repository(setup: ImageSetup, name: str) -> str:
    return f"{setup.image_name}-{name}"


def env_inputs(setup: ImageSetup, client: Any, env: inputs.FlowEnv) -> tuple[dict[str, Any], str]:
    base = (chosen_base(setup, client, env.python) if client else None) or setup.base_reference(env.python)
    base_content = look.base_content(setup, client, base) if client else None
    found = {"context": inputs.context_digest(env.context, env.dockerfile), "base_image": base,
             "base_image_content": base_content,
             "build_args": {"BASE_IMAGE": base, "PYTHON_VERSION": env.python}}
    return found, core.input_hash(found)


def build_env(setup: ImageSetup, env: inputs.FlowEnv, run_id: str) -> dict[str, Any]:
    """Build one per-project environment when its inputs have no image yet; check its Python runs."""
    repo = env_repository(setup, env.name)
    if setup.dry_run:
        try:
            client = engine()
        except ForkflowError:
            client = None
        _, digest = env_inputs(setup, client, env)
        exists = bool(client and docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest))
        say(f"image:envs {env.name}: {repo}:python{env.python} from {env.dockerfile}: "
            + ("would not rebuild: inputs unchanged" if exists else "would build (inputs changed or never built)"))
        return {"name": env.name}
    client = engine()
    ensure_base(setup, env.python)
    found, digest = env_inputs(setup, client, env)
    tag = f"python{env.python}-{digest[:12]}"
    record: dict[str, Any] = {"name": env.name, "python": env.python, "repository": repo, "tags": [tag, f"python{env.python}"],
              "dockerfile": str(env.dockerfile), "context": str(env.context), "input_hash": digest, "run": run_id,
              "pushed": {}, "status": "up-to-date", "reason": "an image with these inputs is already built"}
    existing = docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest)
    if existing:
        image = existing[0]
    else:
        from tasks.adapters import buildkit  # a build only: the up-to-date check does not load it

        labels = {core.INPUT_HASH_LABEL: digest, "org.opencontainers.image.created":
                  datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), f"{core.LABEL_PREFIX}.flows-env": env.name}
        request = buildkit.BuildRequest(env.context, f"{repo}:{tag}", dockerfile=str(env.dockerfile),
                                              buildargs=found["build_args"], labels=labels)
        result = buildkit.build_image(client, request, log_file=setup.logs_dir / f"image-env-{env.name}.log",
                                            progress=f"image:envs {env.name}")
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
    if is_dry_run(False):
        return Stale("dry run")
    if not values or "envs" not in values:
        return Stale("first build (no build recorded)")
    try:
        setup = image_setup()
        pyproject = inputs.flows_pyproject(setup.settings)
        if pyproject is None:
            return Stale("the flows project has no pyproject.toml")
        envs = inputs.read_flow_envs(pyproject)
        listed = all(env.python in setup.base_names for env in envs)  # their bases are in the engine's listing
        client = look.engine_view(setup) if listed else engine()
        now = {env.name: env_inputs(setup, client, env)[1] for env in envs}
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
