"""What should be deployed: flows.json and the deployment configs, resolved per environment."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.console import warn
from tasks.core.deploydefs import Planned, desired_from, name_collisions
from tasks.core.deployment import (
    Context,
    Desired,
    EnvironmentSettings,
)
from tasks.core.discovery import flow_from_entry
from tasks.core.errors import ConfigError, ForkflowError
from tasks.pipeline.credentials import environment_connection, read_prefect_settings
from tasks.pipeline.prefect_rules import RULES_FILE, PrefectRules, refuse_names_prefect_refuses
from tasks.pipeline.settings import Settings, read_report


def flows_listing(current: Settings) -> dict[str, Any]:
    """flows.json from the `flows` task; refuses to go on when discovery found problems."""
    listing = read_report("flows", current)
    if listing is None:
        raise ForkflowError("no flows.json yet", where=str(current.reports_dir / "flows.json"), fix="run `doit flows` first")
    if listing.get("errors"):
        problems = "\n".join(f"  - {error}" for error in listing["errors"])
        raise ForkflowError(f"flow discovery found problems, so nothing is deployed:\n{problems}",
                            where=listing.get("flows_dir"),
                            fix="fix the files named above and run again (or leave a file out with [flows] exclude)")
    return listing


def load_desired(current: Settings, listing: dict[str, Any], environments: list[str],
                 dry_run: bool = True, build_images: bool = True, offline: bool = False) -> list[Desired]:
    """Validate the whole deployment config, then build every desired deployment for `environments`
    (running a prefect.yaml's deploy-time steps and building its Docker images unless `dry_run`; with
    `build_images` false, Docker build steps stay for the caller's image; `offline`: not even the registry
    is asked whether an image built before is still there)."""
    from tasks.pipeline.deployments import read_config
    from tasks.pipeline.docker_steps import ImageBuilds, with_built_images
    from tasks.pipeline.flow_code import partial_project, with_prefect_facts, with_step_outputs

    flows = [flow_from_entry(entry) for entry in listing["flows"]]
    root = Path(listing["flows_dir"])
    with connections_read_meanwhile(current):
        config = with_prefect_facts(read_config(current, root, flows), root, current)
    if config.file is None:
        warn(f"no deployment config in {listing['flows_dir']} (prefect.yaml, acme static config or deployments.yaml): "
             "only FlowSpec deployments are deployed")
    ctx = context_of(current, listing)
    desired = []
    with ImageBuilds(current, dry_run, offline) as builds:
        for env in environments:
            built = with_built_images(config, root, current, env, builds) if build_images else config
            ready = with_step_outputs(built, root, dry_run, partial(environment_connection, current, env),
                                      partial_project(current), current.config.environments[env].variables)
            settings_of = environment_settings(current, env)
            desired += every_desired(ready.planned, partial(one_desired, current, listing, settings_of, ctx))
    name_collisions(desired)
    refuse_names_prefect_refuses(desired, PrefectRules(current.state_dir / RULES_FILE))
    return desired


@contextlib.contextmanager
def connections_read_meanwhile(current: Settings) -> Iterator[None]:
    """Prefect's settings, which every environment's connection starts from, are read (a child process that imports
    Prefect, on a first run) while the block works out the parameter schemas and version info: the two take a
    second each. A problem is left for the real read that follows, which reports it."""
    def read() -> None:
        with contextlib.suppress(Exception):
            read_prefect_settings(current)

    reader = threading.Thread(target=read, name="forkflow-prefect-settings", daemon=True)
    reader.start()
    try:
        yield
    finally:
        reader.join()


def one_desired(current: Settings, listing: dict[str, Any], env: EnvironmentSettings, ctx: Context,
                planned: Planned) -> Desired:
    return desired_from(planned, with_working_directory(current, listing, env, planned), ctx, ctx.name_pattern)


def every_desired(planned: tuple[Planned, ...], make: Callable[[Planned], Desired]) -> list[Desired]:
    """Each deployment's desired state; every deployment's problem (an unset `{{ $NAME }}`, no work pool) is named
    in one refusal, not one per run."""
    found, problems = [], []
    for item in planned:
        try:
            found.append(make(item))
        except ConfigError as err:
            problems.append(err)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigError(f"{len(problems)} deployments cannot be deployed:\n" + "\n".join(f"  - {p.what}" for p in problems),
                          where=problems[0].where, fix=problems[0].fix)
    return found


def with_working_directory(current: Settings, listing: dict[str, Any], env: EnvironmentSettings,
                           planned: Planned) -> EnvironmentSettings:
    """`{{ $PWD }}` in a prefect.yaml is the folder prefect deploy runs in: the file's folder (or [flows] path),
    as workers see it, not the folder doit was started in; the environment's own `variables` may still set it."""
    assert current.config.flows is not None
    if not planned.native or "PWD" in current.config.environments[env.name].variables:
        return env
    folder = str(planned.extra.get("folder") or "")
    directory = flows_dir_for_workers(current, listing).rstrip("/") + (f"/{folder}" if folder else "")
    return dataclasses.replace(env, variables={**env.variables, "PWD": directory})


def context_of(current: Settings, listing: dict[str, Any]) -> Context:
    assert current.config.flows is not None
    return Context(project=current.config.project.name, branch=listing["branch"], commit=listing["commit"],
                   version=listing["version"], name_pattern=current.config.flows.name_pattern)


def environment_settings(current: Settings, name: str) -> EnvironmentSettings:
    env = current.config.environments[name]
    connection = environment_connection(current, name)
    return EnvironmentSettings(name=name, api_url=env.prefect_api_url or connection.api_url, work_pool=env.work_pool,
                               variables={**os.environ, **env.variables}, work_queue=env.work_queue,
                               schedules=env.schedules, default_work_pool=connection.default_work_pool)


def flows_dir_for_workers(current: Settings, listing: dict[str, Any]) -> str:
    assert current.config.flows is not None
    worker_path = current.config.flows.worker_path
    return worker_path if worker_path else str(listing["flows_dir"])
