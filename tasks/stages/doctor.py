"""Task `doctor`: is everything the config needs reachable, and what to do when it is not.

Checks the Docker engine and BuildKit, the package index, the OCI registry,
each environment's Prefect server and its credentials, and the fork's remotes,
all at once with short timeouts; it changes nothing and creates no file.
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.adapters.console import say
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import guarded
from tasks.pipeline.settings import Settings, settings

if TYPE_CHECKING:
    from tasks.core.config_images import Images

TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def task_doctor() -> dict[str, Any]:
    """Check the engine, BuildKit, index, registry, Prefect servers and the fork's remotes."""
    return {
        "basename": "doctor",
        "doc": "check what the config needs (engine, BuildKit, index, registry, Prefect servers and auth, the fork's "
               "remotes), each with what to do when missing; changes nothing",
        "actions": [guarded(doctor_action)],
        "uptodate": [False],
        "verbosity": 2,
    }


def doctor_action() -> dict[str, str]:
    current = settings()
    checks = planned_checks(current)
    with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
        findings = list(pool.map(lambda check: check(), checks))
    for finding in findings:
        say(f"{'ok  ' if finding.ok else 'FAIL'}  {finding.name:<22} {finding.detail}")
        if not finding.ok and finding.fix:
            say(f"      {'':<22} fix: {finding.fix}")
    failed = [f.name for f in findings if not f.ok]
    if failed:
        raise ForkflowError(f"doctor: {len(failed)} of {len(findings)} checks failed: {', '.join(failed)}",
                            fix="follow the fix lines above, then run `doit doctor` again")
    return {"made": f"{len(findings)} checks passed"}


def planned_checks(current: Settings) -> list[Any]:
    config = current.config
    checks: list[Any] = []
    if config.images is not None or config.flows is not None:
        checks += [engine, lambda: buildkit(config.images)]
    if config.index is not None:
        checks.append(lambda: index(current))
    if config.images is not None:
        checks.append(lambda: registry(current))
        checks += [lambda platform=p: emulation(platform) for p in config.images.platforms if foreign(p)]
    for name in config.environments:
        checks.append(lambda name=name: prefect_server(current, name))
    if config.fork is not None:
        checks += [lambda: remote(current, "upstream"), lambda: remote(current, "origin")]
    return checks


def engine() -> Finding:
    from tasks.adapters.docker import engine_status

    found = engine_status()
    return Finding("docker engine", found.reachable, found.detail,
                   "start the engine (`./scripts/setup` installs and starts dockerd here) or set DOCKER_HOST")


def buildkit(images: Images | None = None) -> Finding:
    """The builder, and what `[images] provenance` makes with it (why none, when none)."""
    from tasks.adapters.buildkit import NO_BUILDKIT, PROVENANCE_FIX, find_builder
    from tasks.core import provenance

    try:
        found = find_builder()
    except ForkflowError as err:  # the engine does not answer the CLI's questions
        return Finding("buildkit", False, err.what, err.fix or "")
    if found is not None:
        setting = images.provenance if images is not None else "auto"
        joined = images is not None and (len(images.platforms) > 1 or any(foreign(p) for p in images.platforms))
        facts = provenance.BuilderFacts(found.buildx, found.containerd_store, joined)
        ok = not provenance.decide(setting, facts).refused
        store = "; the engine uses the containerd image store" if found.containerd_store else ""
        return Finding("buildkit", ok, f"{found.name}{store}; {provenance.summary(setting, facts)}",
                       "" if ok else PROVENANCE_FIX)
    return Finding("buildkit", False, "no buildx plugin and no docker CLI with BuildKit", NO_BUILDKIT)


def foreign(platform: str) -> bool:
    """A platform whose CPU is not this machine's (its images build and run under emulation)."""
    from tasks.adapters.emulation import host_machine
    from tasks.core.image_tags import cpu

    return cpu(platform)[1] != cpu(f"linux/{host_machine()}")[1]


def emulation(platform: str) -> Finding:
    from tasks.adapters import emulation as qemu
    from tasks.core.image_tags import cpu

    machine = cpu(platform)[1]
    found = qemu.registered(machine)
    detail = f"qemu-{machine} {'registered' if found else 'not registered'} in binfmt_misc"
    return Finding(f"emulation {platform}", found, detail, qemu.how_to_enable(machine))


def index(current: Settings) -> Finding:
    from tasks.pipeline.credentials import index_credentials, is_local_index

    assert current.config.index is not None
    url = current.config.index.url.rstrip("/")
    hint = "start it: `doit services:index`" if is_local_index(current) else "check [index] url and the network"
    answer = get(url + "/simple/")
    if isinstance(answer, str):
        return Finding("package index", False, f"{url}: {answer}", hint)
    if is_local_index(current) and not local_file(current, "index"):
        return Finding("package index", False, f"{url}: HTTP {answer}, but not a service `doit services` started", hint)
    if index_credentials(current) is None:
        return Finding("package index", False, f"{url}: HTTP {answer}; no upload credentials",
                       "set TWINE_USERNAME and TWINE_PASSWORD to an account that may upload")
    return Finding("package index", answer < 500, f"{url}: HTTP {answer}; upload credentials set", hint)


def registry(current: Settings) -> Finding:
    from tasks.pipeline.credentials import is_local_registry, registry_auth

    assert current.config.images is not None
    host = current.config.images.registry.split("/")[0]
    local = is_local_registry(current)
    url = f"{'http' if local or host.startswith(('127.', 'localhost')) else 'https'}://{host}/v2/"
    hint = "start it: `doit services:registry`" if local else f"check [images] registry ({host}) and the network"
    try:
        auth = registry_auth(current)
    except ForkflowError:
        auth = {}
    headers = basic(auth["username"], auth["password"]) if auth else {}
    answer = get(url, headers)
    if isinstance(answer, str):
        return Finding("registry", False, f"{host}: {answer}", hint)
    if answer == 401:
        needed = bool(auth) or current.config.images.push
        return Finding("registry", not needed, f"{host}: HTTP 401" + (" with the credentials given" if auth else
                       ", and pushing needs credentials" if needed else "; [images] push = false needs none"),
                       hint if local and not auth else
                       "set FORKFLOW_REGISTRY_USERNAME and FORKFLOW_REGISTRY_PASSWORD to an account that may push")
    return Finding("registry", answer < 400, f"{host}: HTTP {answer}" + ("; credentials accepted" if auth else ""), hint)


def prefect_server(current: Settings, name: str) -> Finding:
    from tasks.pipeline.credentials import environment_connection

    connection = environment_connection(current, name)
    label = f"prefect ({name})"
    local = current.config.services and f":{current.config.services.prefect.port}/" in connection.api_url + "/"
    hint = "start it: `doit services:prefect`" if local else f"check [environments.{name}] prefect_api_url"
    health = get(connection.api_url.rstrip("/") + "/health", connection.headers, connection.verify)
    if isinstance(health, str):
        return Finding(label, False, f"{connection.api_url}: {health}", hint)
    pools = post(connection.api_url.rstrip("/") + "/work_pools/filter", connection.headers, connection.verify)
    env = current.config.environments[name]
    if pools in (401, 403):
        key = env.api_key_env or env.auth_string_env or "PREFECT_API_KEY"
        return Finding(label, False, f"{connection.api_url}: up, but HTTP {pools} for an authenticated read",
                       f"set {key} (or api_key_env / auth_string_env in [environments.{name}]) to a valid credential")
    ok = isinstance(pools, int) and pools < 400
    return Finding(label, ok, f"{connection.api_url}: healthy, authenticated read HTTP {pools}", hint)


def remote(current: Settings, which: str) -> Finding:
    from tasks.adapters.git import Git
    from tasks.adapters.limits import NoAnswer

    fork = current.config.fork
    assert fork is not None
    url = current.remote(getattr(fork, which))
    probe = Git(current.state_dir if current.state_dir.exists() else Path.cwd(),
                env={"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")})
    try:
        heads = probe.remote_heads(url, fork.main if which == "origin" else fork.upstream_main)
    except ForkflowError as err:
        lines = err.what.splitlines()  # a failed git command: its output after the first line; else the message
        reason = " ".join(line.strip() for line in lines[1:3]) or err.what
        access = ("check the address and your access: `git ls-remote <url>` must work (a token in FORK_SYNC_TOKEN "
                  "or an SSH key for CI)")
        return Finding(f"fork {which}", False, f"{url}: {reason}", (err.fix or access) if isinstance(err, NoAnswer) else access)
    branch = fork.main if which == "origin" else fork.upstream_main
    return Finding(f"fork {which}", branch in heads, f"{url}: " + (f"{branch} at {heads[branch][:10]}" if branch in heads
                   else f"answers, but has no branch {branch!r}"), f"check [fork] {'main' if which == 'origin' else 'upstream_main'}")


def local_file(current: Settings, service: str) -> bool:
    return (current.services_dir / service / "credentials.json").exists()


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def get(url: str, headers: dict[str, str] | None = None, verify: bool | str = True) -> int | str:
    return ask("GET", url, headers, verify)


def post(url: str, headers: dict[str, str] | None = None, verify: bool | str = True) -> int | str:
    return ask("POST", url, headers, verify)


def ask(method: str, url: str, headers: dict[str, str] | None, verify: bool | str) -> int | str:
    """The HTTP status, or why there was none."""
    import httpx

    try:
        with httpx.Client(timeout=TIMEOUT, verify=verify, trust_env=True) as client:
            return client.request(method, url, headers=headers or {}, json={} if method == "POST" else None).status_code
    except httpx.HTTPError as err:
        return f"not reachable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no answer'})"

