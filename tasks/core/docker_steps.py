"""A prefect.yaml's Docker steps (prefect-docker's `build_docker_image` and `push_docker_image`) as forkflow builds
them: what each build is, where its image goes, and the key that says whether it must be built again.

prefect deploy runs these steps with docker-py; forkflow builds the same Dockerfile, context, build args, target
and platform with BuildKit, once per distinct build in a run, pushes the image to the environment's registry
(its repository path kept, its registry host replaced) when a push step pushes it, and fills the step's outputs
(`image` pinned by digest when pushed, `image_name`, `tag`, `image_id`, `additional_tags`). Without a `tag`,
the tag is the build's key (prefect-docker would take the time, so every deploy would differ).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tasks.core.errors import ConfigError

BUILD_STEP = "prefect_docker.deployments.steps.build_docker_image"
PUSH_STEP = "prefect_docker.deployments.steps.push_docker_image"
BUILD_KEYS = ("id", "requires", "image_name", "tag", "dockerfile", "path", "buildargs", "platform", "target", "labels",
              "additional_tags", "pull", "ignore_cache", "build_backend", "persist_dockerfile", "dockerfile_output_path")
PUSH_KEYS = ("id", "requires", "image_name", "tag", "additional_tags", "credentials")
OUTPUT = "{{{{ {step}.{output} }}}}"


@dataclass(frozen=True)
class ImageBuild:
    """One `build_docker_image` step: paths are relative to the prefect.yaml's folder (prefect deploy's cwd)."""

    step_id: str
    image_name: str
    tag: str | None = None
    dockerfile: str = "Dockerfile"
    context: str = "."
    buildargs: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    platform: str | None = None
    target: str | None = None
    additional_tags: tuple[str, ...] = ()
    pull: bool = False
    push: bool = False

    def repository(self, registry: str) -> str:
        """The image's repository in `registry`: its path as written, under the registry instead of any host."""
        parts = self.image_name.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            parts = parts[1:]
        return f"{registry.rstrip('/')}/{'/'.join(parts)}"

    def key(self, registry: str, dockerfile_text: str, context_digest: str) -> str:
        """What makes two builds the same image: the spec, the Dockerfile and every file of the context."""
        spec = {"repository": self.repository(registry), "dockerfile": dockerfile_text, "context": context_digest,
                "buildargs": self.buildargs, "labels": self.labels, "platform": self.platform, "target": self.target,
                "tag": self.tag, "additional_tags": self.additional_tags, "push": self.push}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def image_builds(steps: list[dict[str, Any]], where: str) -> list[ImageBuild]:
    """The build steps among `steps` (a deployment's build and push steps, `{{ $NAME }}` already filled), each
    marked pushed when a push step pushes it; every problem is listed at once."""
    builds: list[ImageBuild] = []
    problems: list[str] = []
    pushes = []
    for index, step in enumerate(steps):
        for name, options in step.items():
            at = f"{where}: steps.{index}({name.rsplit('.', 1)[-1]})"
            if name == BUILD_STEP:
                built = one_build(options if isinstance(options, dict) else {}, at, problems)
                builds += [built] if built else []
            elif name == PUSH_STEP:
                problems += unknown_keys(options if isinstance(options, dict) else {}, PUSH_KEYS, at)
                pushes.append((at, options if isinstance(options, dict) else {}))
    pushed = set()
    for at, options in pushes:
        target = pushed_build(options, builds)
        if target is None:
            problems.append(f"{at}: pushes {options.get('image_name')!r}, which no build step of this deployment makes; "
                            "name it as `{{ <build step id>.image_name }}` (or the build's image_name)")
        else:
            pushed.add(target.step_id)
    if problems:
        raise ConfigError(f"{where}: Docker steps forkflow cannot build\n" + "\n".join(f"  - {p}" for p in problems),
                          where=where, fix="correct the steps listed above; nothing was built or deployed")
    return [ImageBuild(**{**b.__dict__, "push": b.step_id in pushed}) for b in builds]


def one_build(options: dict[str, Any], at: str, problems: list[str]) -> ImageBuild | None:
    found = unknown_keys(options, BUILD_KEYS, at)
    if not options.get("id"):
        found.append(f"{at}: needs an `id`, so the deployment can name its image (`{{{{ <id>.image }}}}`)")
    if not isinstance(options.get("image_name"), str) or not options.get("image_name"):
        found.append(f"{at}.image_name: required, e.g. team/flows")
    if options.get("dockerfile") == "auto":
        found.append(f"{at}.dockerfile: `auto` (a Dockerfile prefect-docker writes) is not built by forkflow; write "
                     "the Dockerfile into the project and name it")
    if options.get("build_backend", "docker-py") not in ("docker-py", "buildx"):
        found.append(f"{at}.build_backend: {options['build_backend']!r}; allowed: docker-py, buildx (forkflow builds "
                     "with BuildKit either way)")
    found += [f"{at}: {text}" for text in templated(options)]
    problems += found
    if found:
        return None
    platform = options.get("platform")
    return ImageBuild(
        step_id=str(options["id"]), image_name=str(options["image_name"]),
        tag=str(options["tag"]) if options.get("tag") else None, dockerfile=str(options.get("dockerfile") or "Dockerfile"),
        context=str(options.get("path") or "."), buildargs=pairs(options.get("buildargs")), labels=pairs(options.get("labels")),
        platform=(platform if "/" in str(platform) else f"linux/{platform}") if platform else None,
        target=str(options["target"]) if options.get("target") else None,
        additional_tags=tuple(str(t) for t in options.get("additional_tags") or ()), pull=bool(options.get("pull", False)))


def unknown_keys(options: dict[str, Any], allowed: tuple[str, ...], at: str) -> list[str]:
    return [f"{at}.{key}: unknown key; allowed: {', '.join(allowed)}" for key in sorted(set(options) - set(allowed))]


def templated(options: dict[str, Any]) -> list[str]:
    """Values forkflow cannot know when it builds (before deploy-time steps run, without a server)."""
    return [f"{key}: {value!r} is filled only at deploy time; forkflow builds images first: give the value, or a "
            "`{{ $VAR }}`" for key, value in options.items()
            if key not in ("requires", "credentials") and "{{" in json.dumps(value)]


def pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items())) if isinstance(value, dict) else ()


def pushed_build(options: dict[str, Any], builds: list[ImageBuild]) -> ImageBuild | None:
    """The build a push step pushes: the one whose outputs (or image_name) it names."""
    name = str(options.get("image_name") or "")
    for build in builds:
        if name in (OUTPUT.format(step=build.step_id, output="image_name"), build.image_name) or \
                name.replace(" ", "") == f"{{{{{build.step_id}.image_name}}}}":
            return build
    return None


def build_outputs(build: ImageBuild, repository: str, tag: str, image_id: str, digest: str | None) -> dict[str, Any]:
    """What prefect-docker's step returns, for the image forkflow built: `image` by digest once pushed."""
    return {"image_name": repository, "tag": tag, "image": f"{repository}@{digest}" if digest else f"{repository}:{tag}",
            "image_id": image_id, "additional_tags": list(build.additional_tags)}
