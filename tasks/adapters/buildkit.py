"""BuildKit builds: `docker buildx build --load` when a docker CLI has the plugin, else a docker CLI older
than 23 with the engine's built-in BuildKit (DOCKER_BUILDKIT=1); its plain progress read step by step.

One platform per build (`--platform`); registry credentials a build needs for its base images go in a
docker config folder made for that build (DOCKER_CONFIG), never in argv.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasks.adapters.console import say
from tasks.adapters.docker import Engine, image_id
from tasks.adapters.processes import kill_with_parent
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.provenance import BuilderFacts, unsupported_reason


@dataclass(frozen=True)
class BuildRequest:
    """One image to build: the context folder, the tag it gets, and what the build is given."""

    context: Path
    tag: str
    dockerfile: str = "Dockerfile"
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None  # `linux/arm64`: the base is then resolved for that platform
    target: str | None = None  # the Dockerfile stage to build (`--target`); default: the last
    pull: bool = False  # resolve base images from their registry, not the engine's store
    auths: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # registry host -> credentials it pulls with
    cache_images: tuple[str, ...] = ()  # earlier images in a registry whose layers the build may reuse (inline cache)
    cache_ref: str | None = None  # where a builder with registry cache export keeps this build's cache
    provenance: str = "off"  # BuildKit's provenance attestation: off, min, max


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    steps: int
    cached_steps: int
    seconds: float


NO_BUILDKIT = ("install the buildx plugin (docker-buildx), or Debian's docker.io: its docker 20.10 CLI at "
               "/usr/bin/docker builds with BuildKit when DOCKER_BUILDKIT=1 (`./scripts/setup` installs it)")


@dataclass(frozen=True)
class Builder:
    """How this machine builds with BuildKit: the command the build's arguments follow, and its environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    name: str
    registry_cache: bool = False  # exports its cache to a registry (`--cache-to type=registry`)
    attestations: bool = False  # --load keeps a provenance attestation (buildx, engine with the containerd image store)
    containerd_store: bool = False  # the engine stores images in containerd (`docker info` DriverStatus)

    @property
    def buildx(self) -> bool:
        return self.argv[1:2] == ("buildx",)


@functools.cache
def find_builder() -> Builder | None:
    """`docker buildx build` when a docker CLI has the buildx plugin, else a docker CLI older than 23 with the
    engine's built-in BuildKit (DOCKER_BUILDKIT=1); None when there is neither."""
    clis = list(dict.fromkeys(c for c in (shutil.which("docker"), "/usr/bin/docker") if c and Path(c).exists()))
    for cli in clis:
        if ask_cli(cli, "buildx", "version").returncode == 0:
            driver = buildx_driver(ask_cli(cli, "buildx", "inspect").stdout)
            store = containerd_store(ask_cli(cli, "info", "--format", "{{json .DriverStatus}}").stdout)
            return Builder((cli, "buildx", "build", "--load"), {}, f"docker buildx ({driver or 'unknown'} driver)",
                           registry_cache=driver in CACHE_EXPORT_DRIVERS, attestations=store, containerd_store=store)
    for cli in clis:
        found = ask_cli(cli, "version", "--format", "{{.Client.Version}}").stdout.strip()
        if found.split(".")[0].isdigit() and int(found.split(".")[0]) < 23:
            return Builder((cli, "build"), {"DOCKER_BUILDKIT": "1"}, f"{cli} {found} with DOCKER_BUILDKIT=1")
    return None


CACHE_EXPORT_DRIVERS = ("docker-container", "kubernetes", "remote")  # the docker driver exports inline cache only


def ask_cli(cli: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A docker CLI command that may ask the engine (`buildx inspect`, `version`), bounded by [timeouts] engine:
    a CLI waits for an engine that accepts and never answers for ever."""
    from tasks.adapters import limits
    from tasks.adapters.run import run
    from tasks.core.errors import CommandTimedOut

    seconds = limits.limits().engine
    try:
        return run([cli, *args], check=False, timeout=seconds)
    except CommandTimedOut:
        host = os.environ.get("DOCKER_HOST") or "the local socket"
        raise limits.no_answer(f"the Docker engine at {host} (docker {' '.join(args[:2])})", "engine", seconds,
                               where="DOCKER_HOST") from None


def buildx_driver(inspect_output: str) -> str:
    """The driver of the current buildx builder, from `docker buildx inspect`."""
    return next((line.split(":", 1)[1].strip() for line in inspect_output.splitlines()
                 if line.strip().startswith("Driver:")), "")


def containerd_store(driver_status: str) -> bool:
    """Whether the engine keeps its images in the containerd image store, from `docker info --format
    '{{json .DriverStatus}}'` (the pair `driver-type`, `io.containerd.snapshotter.v1`), as buildx decides."""
    import json

    try:
        pairs = json.loads(driver_status or "null") or []
    except ValueError:
        return False
    return any(isinstance(p, list) and p[:2] == ["driver-type", "io.containerd.snapshotter.v1"] for p in pairs)


def builder() -> Builder:
    found = find_builder()
    if found is None:
        raise ForkflowError("cannot build images: no docker CLI here builds with BuildKit (no buildx plugin, and "
                            "the docker CLI is 23 or newer, which needs buildx for BuildKit)", fix=NO_BUILDKIT)
    return found


def build_argv(found: Builder, request: BuildRequest, iidfile: Path) -> list[str]:
    dockerfile = Path(request.dockerfile)
    argv = [*found.argv, "--progress=plain", "--iidfile", str(iidfile), "--tag", request.tag,
            "--file", str(dockerfile if dockerfile.is_absolute() else request.context / dockerfile)]
    if request.platform:
        argv += ["--platform", request.platform]
    if request.target:
        argv += ["--target", request.target]
    if request.pull:
        argv.append("--pull")
    argv += cache_args(found, request)
    argv += provenance_args(found, request)
    for name, value in sorted(request.buildargs.items()):
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in sorted(request.labels.items()):
        argv += ["--label", f"{name}={value}"]
    return [*argv, str(request.context)]


STEP_LINE = re.compile(r"^#(\d+) \[(?:[\w.-]+ )?(\d+)/(\d+)\] (.*)$")
CACHED_LINE = re.compile(r"^#(\d+) CACHED$")


@dataclass
class BuildProgress:
    """What BuildKit's plain output has said so far: its steps (`#7 [3/6] RUN ...`) and which came from cache."""

    steps: dict[str, str] = field(default_factory=dict)  # vertex -> "step 3/6 RUN ..."
    cached: set[str] = field(default_factory=set)

    def read(self, line: str) -> str | None:
        """Take one output line; the step's line when it is a step seen for the first time."""
        step = STEP_LINE.match(line)
        if step and step.group(1) not in self.steps:
            vertex, number, total, instruction = step.groups()
            text = f"step {number}/{total} {' '.join(instruction.split())}"
            self.steps[vertex] = text if len(text) <= 100 else text[:97] + "..."
            return self.steps[vertex]
        cached = CACHED_LINE.match(line)
        if cached and cached.group(1) in self.steps:
            self.cached.add(cached.group(1))
        return None


def build_image(engine: Engine, request: BuildRequest, *, log_file: Path, progress: str | None = None) -> BuildResult:
    """Build with BuildKit, streaming its output to `log_file`; with `progress`, a line per build step as it
    starts (`<progress>: step 3/9 RUN pip install ...`)."""
    import subprocess

    found = builder()
    start = time.monotonic()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    iidfile = log_file.with_suffix(".iid")
    iidfile.unlink(missing_ok=True)
    seen = BuildProgress()
    with tempfile.TemporaryDirectory(prefix="forkflow-docker-") as folder:  # the credentials live for the build only
        config = docker_config(Path(folder), request.auths) if request.auths else None
        with log_file.open("w", encoding="utf-8") as log, subprocess.Popen(
                build_argv(found, request, iidfile), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=build_env(found, request, config), preexec_fn=kill_with_parent) as proc:  # noqa: PLW1509
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                step = seen.read(line.rstrip("\n"))
                if step and progress:
                    say(f"{progress}: {step}")
    if proc.returncode != 0:
        raise build_failed(request.tag, build_error(log_file) or f"{found.name} exited with {proc.returncode}", log_file)
    built = iidfile.read_text(encoding="utf-8").strip() if iidfile.exists() else image_id(engine, request.tag) or ""
    iidfile.unlink(missing_ok=True)
    if not built:
        raise build_failed(request.tag, "the build reported no image id", log_file)
    return BuildResult(built, len(seen.steps), len(seen.cached), time.monotonic() - start)


def cache_args(found: Builder, request: BuildRequest) -> list[str]:
    """Reuse layers from the registry: its own cache ref where the builder exports one (`mode=max`: every
    stage), and always the earlier images, whose inline cache this build carries on."""
    argv = []
    if found.registry_cache and request.cache_ref:
        argv += ["--cache-from", f"type=registry,ref={request.cache_ref}",
                 "--cache-to", f"type=registry,ref={request.cache_ref},mode=max,ignore-error=true"]
    for ref in request.cache_images:
        argv += ["--cache-from", ref]
    if request.cache_images:
        argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    return argv


def provenance_args(found: Builder, request: BuildRequest) -> list[str]:
    """`--provenance` for buildx: false unless a mode is asked for (tasks.core.provenance decides `auto`); the
    engine's built-in BuildKit (docker 20.10) has no such option and makes none. A mode the builder cannot
    make, or whose image `--load` cannot keep, is refused here too."""
    if request.provenance == "off":
        return ["--provenance=false"] if found.buildx else []
    if not found.attestations:
        raise ForkflowError(f"cannot make a provenance attestation with {found.name}: "
                            f"{unsupported_reason(BuilderFacts(found.buildx, found.containerd_store))}",
                            where="[images] provenance", fix=PROVENANCE_FIX)
    return [f"--provenance=mode={request.provenance}"]


PROVENANCE_FIX = ("build with buildx on an engine with the containerd image store (dockerd's \"features\": "
                  "{\"containerd-snapshotter\": true}), or set [images] provenance = \"auto\" or \"off\" (the "
                  "release workflow attests each pushed digest with actions/attest-build-provenance)")


def build_env(found: Builder, request: BuildRequest, config: Path | None) -> dict[str, str]:
    env = {**os.environ, **found.env}
    if config:
        env["DOCKER_CONFIG"] = str(config)
    return env


def docker_config(folder: Path, auths: Mapping[str, Mapping[str, str]]) -> Path:
    """A docker config folder for a build's pulls: the user's own config (its credential helpers stay) with
    `auths` (registry host -> username/password) added; readable by the owner only. Returns the folder."""
    import base64
    import json

    home = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        data = json.loads((home / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if auths:
        data.pop("credsStore", None)  # a store would be asked instead of the credentials given here
    for host, auth in auths.items():
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        data.setdefault("auths", {})[host] = {"auth": token}
        data.get("credHelpers", {}).pop(host, None)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    file = folder / "config.json"
    file.touch(mode=0o600)
    file.chmod(0o600)
    file.write_text(json.dumps(data), encoding="utf-8")
    for name in ("cli-plugins", "buildx", "contexts"):  # the user's plugins, buildx builders and contexts stay
        if (home / name).is_dir() and not (folder / name).exists():
            (folder / name).symlink_to(home / name)
    return folder


def build_error(log_file: Path) -> str:
    """BuildKit's own error line (`ERROR: ...` or `error: ...`), the last one, if any."""
    lines = log_file.read_text(encoding="utf-8").splitlines() if log_file.exists() else []
    return next((line.strip() for line in reversed(lines) if line.lstrip().lower().startswith(("error:", "error "))), "")


def build_failed(tag: str, message: str, log_file: Path) -> CommandError:
    tail = "\n".join("    " + line for line in log_file.read_text(encoding="utf-8").splitlines()[-25:]) if log_file.exists() else ""
    return CommandError(f"docker build of {tag} failed: {message.strip()}\n{tail}", where=str(log_file),
                        fix="read the build log; fix the template, the wheels or the base image")
