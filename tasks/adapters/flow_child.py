"""The child process that runs a flows project's code for forkflow: parameter schemas and deploy-time steps.

Run as `python -P flow_child.py` (so this file's folder is not on the path), with the project's folder as
the working directory and first on `sys.path`, and forkflow's own checkouts taken off it: a project's own
`tasks` package (or any other name forkflow uses) is the one its code imports. This file imports nothing
of forkflow. The request comes as JSON on stdin, the answer goes as JSON to the stdout the process was
started with; whatever the project's code prints goes to stderr instead.

Request: {"path": folder, "schemas": [{"file", "function"}], "runs": [{"steps", "folder", "source", "upstream"}],
"server": {"api_url", "api_key", "auth_string", "tls_insecure", "ca_file"} or null}.
Answer: {"schemas": [{"schema"} or {"error"}], "outputs": [outputs...]} or {"error", "source"} when a step
failed (the later runs are not started).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

MARKER = Path("tasks") / "adapters" / "flow_child.py"  # a forkflow checkout on sys.path (an editable install)


def project_path(folder: str) -> list[str]:
    """sys.path with the project's folder first and every forkflow checkout left out."""
    kept = [entry for entry in sys.path if not (Path(entry or ".").resolve() / MARKER).is_file()]
    return [folder, *[entry for entry in kept if entry != folder]]


def schema_of(file: str, function: str) -> dict[str, Any]:
    """Prefect's parameter schema of the flow, read from its source (its imports resolved from the project)."""
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    try:
        found: dict[str, Any] = parameter_schema_from_entrypoint(f"{file}:{function}").model_dump(exclude_unset=True)
    except Exception as err:  # noqa: BLE001 - any failure of the project's code is reported, not raised
        return {"error": f"{type(err).__name__}: {err}"}
    return {"schema": found}


def server_settings(server: dict[str, Any] | None) -> Any:
    """Prefect's settings for a client of the environment's server only; no server: no credential at all."""
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_KEY,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        PREFECT_API_URL,
        temporary_settings,
    )

    server = server or {}
    given = {PREFECT_API_URL: server.get("api_url"), PREFECT_API_KEY: server.get("api_key"),
             PREFECT_API_AUTH_STRING: server.get("auth_string"), PREFECT_API_SSL_CERT_FILE: server.get("ca_file")}
    updates: dict[Any, Any] = {setting: value for setting, value in given.items() if value}
    updates[PREFECT_API_TLS_INSECURE_SKIP_VERIFY] = bool(server.get("tls_insecure"))
    return temporary_settings(updates=updates, restore_defaults=[s for s, value in given.items() if not value])


def step_error(err: BaseException) -> str:
    """The step's message and, when Prefect wraps it, the step's own error."""
    cause = err.__cause__
    text = str(err)
    if cause is not None and str(cause) not in text:
        text += f": {type(cause).__name__}: {cause}"
    return text


def run_all(runs: list[dict[str, Any]], server: dict[str, Any] | None) -> dict[str, Any]:
    """Each deployment's steps with Prefect's own step runner, in its folder, one after the other."""
    from prefect.deployments.steps.core import run_steps

    outputs = []
    with server_settings(server):
        for run in runs:
            os.chdir(run["folder"])
            os.environ["PWD"] = run["folder"]
            try:
                outputs.append(asyncio.run(run_steps(run["steps"], dict(run.get("upstream") or {}),
                                                      print_function=lambda *_: None)))
            except Exception as err:  # noqa: BLE001 - the step's failure goes back to forkflow as its message
                return {"error": step_error(err), "source": run["source"]}
    return {"outputs": outputs}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    folder = request["path"]
    sys.path[:] = project_path(folder)
    os.chdir(folder)
    schemas = [schema_of(item["file"], item["function"]) for item in request.get("schemas", [])]
    done = run_all(request.get("runs", []), request.get("server")) if request.get("runs") else {"outputs": []}
    return {"schemas": schemas, **done}


def main() -> None:
    request = json.loads(sys.stdin.read())
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the project's prints (and its subprocesses') go to stderr, the answer alone to stdout
    sys.stdout = sys.stderr
    found = answer(request)
    result.write(json.dumps(found, default=str))
    result.close()


if __name__ == "__main__":
    main()
