"""A prefect.yaml's Docker build and push steps, built by forkflow with BuildKit (tasks/core/docker_steps.py says
what each is): once per distinct build in a run, again only when its Dockerfile, context or spec changed, pushed
to the environment's registry and pinned by digest; the steps' outputs fill `{{ <id>.image }}` and the like."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from tasks.adapters.console import say
from tasks.core.deploydefs import DeploymentConfig
from tasks.core.docker_steps import ImageBuild, build_outputs, image_builds
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.prefect_templates import fill_environment
from tasks.pipeline.flow_code import project_folder, with_outputs
from tasks.pipeline.settings import Settings, read_json, write_json

STATE_FILE = "docker-steps.json"
SKIPPED = (".git", "__pycache__")


def context_digest(context: Path, skipped: tuple[Path, ...]) -> str:
    """Every file of the build context (its path, mode and content), without git's folder or forkflow's state."""
    digest = hashlib.sha256()
    for directory, folders, files in os.walk(context):
        here = Path(directory)
        folders[:] = sorted(f for f in folders if f not in SKIPPED and here / f not in skipped)
        for name in sorted(files):
            path = here / name
            if path.is_file():
                digest.update(f"{path.relative_to(context)}\0{path.stat().st_mode & 0o111}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class ImageBuilds:
    """The Docker builds of one run: each distinct build once; one built before (same key) whose image is still
    where it was left is not built again."""

    def __init__(self, current: Settings, dry_run: bool, offline: bool = False):
        self.current = current
        self.dry_run = dry_run
        self.offline = offline  # a dry run that asks no registry or engine (--validate-only)
        self.file = current.state_dir / STATE_FILE
        self.saved: dict[str, Any] = read_json(self.file) or {}
        self.done: dict[str, dict[str, Any]] = {}
        self.engine: Any = None

    def outputs(self, build: ImageBuild, folder: Path, registry: str | None, source: str) -> dict[str, Any]:
        context = (folder / build.context).resolve()
        dockerfile = context / build.dockerfile
        if not dockerfile.is_file():
            raise ForkflowError(f"{source}: the Dockerfile of step {build.step_id!r} is not there: {dockerfile}",
                                where=source, fix="correct `dockerfile` / `path` (relative to the prefect.yaml's folder)")
        repository = build.repository(registry) if registry else build.image_name
        key = build.key(registry or "", dockerfile.read_text(encoding="utf-8"), context_digest(context, (self.current.state_dir,)))
        if key not in self.done:
            tag = build.tag or key[:12]
            if self.dry_run:
                self.done[key] = self.kept_or_none(key, build, repository, tag) or self.would_build(build, repository, tag)
            else:
                self.done[key] = self.kept(key, build, repository, tag) or self.build(key, build, context, repository, tag)
        return self.done[key]

    def kept_or_none(self, key: str, build: ImageBuild, repository: str, tag: str) -> dict[str, Any] | None:
        """In a dry run: the image built before when it can be confirmed (reads only), else None."""
        if self.offline:
            return None
        try:
            return self.kept(key, build, repository, tag)
        except ForkflowError:
            return None

    def would_build(self, build: ImageBuild, repository: str, tag: str) -> dict[str, Any]:
        say(f"would build {repository}:{tag}" + (" and push it (the deployment would name it by digest)" if build.push else ""))
        return build_outputs(build, repository, tag, "", None)

    def kept(self, key: str, build: ImageBuild, repository: str, tag: str) -> dict[str, Any] | None:
        """The image built for this key before, when it is still there (in the registry, or in the engine)."""
        saved = self.saved.get(key)
        if not saved or saved.get("reference") != f"{repository}:{tag}":
            return None
        if build.push:
            from tasks.adapters.registry import tagged
            from tasks.pipeline.credentials import registry_auth

            host, _, path = repository.partition("/")
            found = tagged(host, path, [tag], registry_auth(self.current)).get(tag)
            still = found is not None and found.digest == saved.get("digest")
        else:
            from tasks.adapters.docker import image_id

            still = image_id(self.docker(), f"{repository}:{tag}") == saved.get("image_id")
        if not still:
            return None
        say(f"{repository}:{tag}: up-to-date (its Dockerfile, context and build spec are unchanged)")
        return build_outputs(build, repository, tag, saved["image_id"], saved.get("digest"))

    def build(self, key: str, build: ImageBuild, context: Path, repository: str, tag: str) -> dict[str, Any]:
        from tasks.adapters import docker
        from tasks.adapters.buildkit import BuildRequest, build_image
        from tasks.pipeline.credentials import registry_auth

        auth = registry_auth(self.current) if build.push else None
        request = BuildRequest(context=context, tag=f"{repository}:{tag}", dockerfile=str(context / build.dockerfile),
                               buildargs=dict(build.buildargs), labels=dict(build.labels), platform=build.platform,
                               target=build.target, pull=build.pull,
                               auths={repository.split("/", 1)[0]: auth} if auth else {})
        engine = self.docker()
        result = build_image(engine, request, log_file=self.current.logs_dir / "docker-steps" / f"{key[:16]}.log",
                             progress=f"{repository}:{tag}")
        for extra in build.additional_tags:
            docker.tag_image(engine, result.image_id, repository, extra)
        digest = None
        if auth is not None:
            digest = docker.push(engine, repository, tag, auth)
            for extra in build.additional_tags:
                docker.push(engine, repository, extra, auth)
        say(f"{repository}:{tag}: built" + (f" and pushed ({digest})" if digest else " (not pushed: no push step)"))
        self.saved[key] = {"reference": f"{repository}:{tag}", "image_id": result.image_id, "digest": digest}
        write_json(self.file, self.saved)
        return build_outputs(build, repository, tag, result.image_id, digest)

    def __enter__(self) -> ImageBuilds:
        return self

    def __exit__(self, *_: object) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def docker(self) -> Any:
        if self.engine is None:
            from tasks.adapters.docker import connect

            self.engine = connect()
        return self.engine


def environment_registry(current: Settings, env: str) -> str | None:
    configured = current.config.environments[env].registry
    return configured or (current.config.images.registry if current.config.images else None)


def with_built_images(config: DeploymentConfig, root: Path, current: Settings, env: str,
                      builds: ImageBuilds) -> DeploymentConfig:
    """Each prefect.yaml deployment with Docker build steps, its images built (or found built) for `env`, and the
    steps' outputs filled in; `built_image` (the first build's image and tag) is the image of its work pool."""
    if not any(item.extra.get("docker_steps") for item in config.planned):
        return config
    environ = {**os.environ, **current.config.environments[env].variables}
    planned = []
    for item in config.planned:
        steps = fill_environment(item.extra.get("docker_steps") or [], environ, item.source)
        found = image_builds(steps, item.source)
        if not found:
            planned.append(item)
            continue
        registry = environment_registry(current, env)
        if registry is None and any(build.push for build in found):
            raise ConfigError(f"{item.source}: a push_docker_image step pushes the image, and environment {env!r} has no "
                              "registry", where=f"[environments.{env}] registry",
                              fix=f"set [environments.{env}] registry (or [images] registry) to the registry it pushes to")
        outputs = {build.step_id: builds.outputs(build, project_folder(root, item), registry, item.source)
                   for build in found}
        first = outputs[found[0].step_id]
        layers = tuple((scope, with_outputs(layer, outputs)) for scope, layer in item.layers)
        extra = {**item.extra, "built_image": {"image": first["image"], "tag": first["tag"]}, "docker_outputs": outputs}
        planned.append(dataclasses.replace(item, layers=layers, extra=extra))
    return dataclasses.replace(config, planned=tuple(planned))
