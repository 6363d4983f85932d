"""The flows project's own code, run in a child process, never in forkflow's interpreter.

One child per project (and, for deploy-time steps, per environment): it starts with the project's folder
as its working directory and first on its path (tasks/adapters/flow_child.py), so the project's modules
are the ones imported, whatever their names (a project's own `tasks` package is not forkflow's). Its
environment is forkflow's minus every credential forkflow holds (index, registry, Prefect servers, tokens);
a child that runs deploy-time steps gets the one environment's server and credential, nothing else.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.adapters.run import OnlyEnv, run
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.secrets import SECRET_ENV_VARS, mask, secret_values

if TYPE_CHECKING:
    from tasks.adapters.prefect_settings import Connection

CHILD = Path(__file__).with_name("flow_child.py")
FORKFLOW_CREDENTIALS = (*SECRET_ENV_VARS, "TWINE_USERNAME", "FORKFLOW_REGISTRY_USERNAME", "FORKFLOW_PREFECT_USERNAME",
                        "FORKFLOW_PREFECT_PASSWORD", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_URL")


@dataclass(frozen=True)
class StepRun:
    """One deployment's deploy-time steps, to run in `folder`; `source` names the deployment in messages."""

    steps: list[dict[str, Any]]
    folder: Path
    source: str
    upstream: dict[str, Any] = field(default_factory=dict)  # outputs of steps run before (the Docker builds')


@dataclass(frozen=True)
class Project:
    """A flows project as its child sees it: the folder it runs in, the environment it gets."""

    folder: Path
    environ: Mapping[str, str] = field(repr=False)
    hidden: tuple[str, ...] = ()  # more variables holding credentials (each environment's api_key_env, ...)


NO_PREFECT_CREDENTIAL = {"PREFECT_API_KEY": "", "PREFECT_API_AUTH_STRING": ""}  # set empty: a profile's do not apply


def child_environment(project: Project, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The project's environment without any credential forkflow holds, plus `extra`. Prefect's credential
    settings are set empty unless `extra` gives them, so a Prefect profile's credential does not apply either
    (in the child, nor in the commands its steps run)."""
    dropped = {*FORKFLOW_CREDENTIALS, *project.hidden}
    kept = {k: v for k, v in project.environ.items() if k not in dropped}
    return {**kept, **NO_PREFECT_CREDENTIAL, **(extra or {})}


def server_request(server: Connection) -> tuple[dict[str, Any], dict[str, str]]:
    """The server as the child's Prefect client takes it, and the same as variables for the steps' own commands."""
    scheme, _, credential = server.headers.get("Authorization", "").partition(" ")
    request: dict[str, Any] = {"api_url": server.api_url, "tls_insecure": server.verify is False,
                               "ca_file": server.verify if isinstance(server.verify, str) else None}
    variables = {"PREFECT_API_URL": server.api_url}
    if scheme == "Bearer":
        request["api_key"] = variables["PREFECT_API_KEY"] = credential
    elif scheme == "Basic":
        request["auth_string"] = variables["PREFECT_API_AUTH_STRING"] = base64.b64decode(credential).decode()
    return request, variables


def ask_child(project: Project, request: dict[str, Any], extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the child in the project's folder with `request`; its answer."""
    request = {**request, "path": str(project.folder)}
    try:
        done = run([sys.executable, "-P", CHILD], cwd=project.folder, env=OnlyEnv(child_environment(project, extra)),
                   input_text=json.dumps(request),
                   fix="the project's code failed in its own process (output above); fix it, or run it with "
                       "`python -c 'import <module>'` in that folder to see the same error")
    except CommandError as err:
        raise ForkflowError(f"the flows project in {project.folder} could not be read: {err.what}", where=err.where,
                            fix=err.fix) from None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def parameter_schemas(project: Project, flows: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Prefect's parameter schema of each (file relative to the project's folder, function), in one child."""
    wanted = list(flows)
    if not wanted:
        return []
    answer = ask_child(project, {"schemas": [{"file": str(project.folder / file), "function": function}
                                             for file, function in wanted]})
    schemas = []
    for (file, function), found in zip(wanted, answer["schemas"], strict=True):
        if "error" in found:
            raise ForkflowError(f"{project.folder / file}: Prefect cannot derive the parameter schema of {function}: "
                                f"{found['error']}", where=f"{file}:{function}",
                                fix="fix the flow's module so that `prefect deploy` can read it")
        schemas.append(found["schema"])
    return schemas


def step_outputs(project: Project, runs: list[StepRun], server: Connection,
                 variables: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each run's step outputs, the runs in one child that sees `server` and its credential only; `variables`
    (the environment's, for `{{ $NAME }}`) over the process environment."""
    if not runs:
        return []
    request, server_variables = server_request(server)
    answer = ask_child(project, {"server": request, "runs": [
        {"steps": run.steps, "folder": str(run.folder), "source": run.source, "upstream": run.upstream} for run in runs]},
        extra={**variables, **server_variables})
    if "error" in answer:
        secrets = secret_values({**child_environment(project, {**variables, **server_variables})})
        raise ForkflowError(f"{answer['source']}: a deploy-time step failed: {mask(answer['error'], secrets)}",
                            where=answer["source"],
                            fix="fix the step (it ran with Prefect's step runner in the file's folder); nothing was deployed")
    outputs: list[dict[str, Any]] = answer["outputs"]
    return outputs
