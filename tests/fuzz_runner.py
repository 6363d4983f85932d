"""Run many doit commands quickly: import forkflow once, then fork a child per command.

`python3 tests/fuzz_runner.py JOBS RESULTS`: JOBS is a JSON list of
{"config": path, "args": [...]}; RESULTS gets a list of {"rc", "output"} in
the same order. Each child loads dodo.py afresh with FORKFLOW_CONFIG set, as
the `doit` command would, so what it prints and its exit code are what a user
would see; only the interpreter start and the imports are shared.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def preload() -> None:
    """Import what dodo.py imports, without reading any config."""
    sys.path.insert(0, str(REPO))
    import doit.doit_cmd  # noqa: F401

    import tasks.stages.checkout
    import tasks.stages.deploy.promote
    import tasks.stages.deploy.stage
    import tasks.stages.flows
    import tasks.stages.image.stage
    import tasks.stages.publish
    import tasks.stages.sync.stage
    import tasks.stages.wheel  # noqa: F401

    preload_prefect()


def preload_prefect() -> None:
    """What the deployment checks import from Prefect (its schedule, trigger and schema classes)."""
    import prefect.client.schemas.schedules
    import prefect.events
    import prefect.utilities.callables
    import prefect.utilities.schema_tools.validation
    import prefect.utilities.templating  # noqa: F401


def run_one(config: str, args: list[str]) -> dict[str, object]:
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            child(output.fileno(), config, args)
        _, status = os.waitpid(pid, 0)
        output.seek(0)
        return {"rc": os.waitstatus_to_exitcode(status), "output": output.read().decode(errors="replace")}


def child(fd: int, config: str, args: list[str]) -> None:
    code = 99
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ["FORKFLOW_CONFIG"] = config
        from doit.doit_cmd import DoitMain

        code = DoitMain().run(["-f", str(REPO / "dodo.py"), "-d", str(REPO), *args])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    preload()
    results = [run_one(job["config"], job["args"]) for job in jobs]
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
