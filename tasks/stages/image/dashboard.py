"""The image smoke test's dashboard check: a core with UI bundles must serve its dashboard from inside the image.

The same condition and command as `verify:<core>`: when the core package has UI bundles, its
`<core> server start --host 127.0.0.1 --port <p>` is started inside the image, as the image's own user,
by a small Python script that asks `GET /` over loopback (the container has no network) and stops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.core import smoke
from tasks.core.errors import ForkflowError
from tasks.pipeline.settings import Settings
from tasks.pipeline.ui import core_bundles
from tasks.pipeline.workspace import packages_if_cloned
from tasks.stages.image import inputs
from tasks.stages.image.setup import ImageSetup

TIMEOUT = 60  # seconds the server has to answer `GET /`
FIX = ("build the core's wheel with its UI bundles (`doit ui` runs before `doit wheel`; see docs/packages.md, "
       "\"Dashboard (UI bundles)\") or fix the server, then run `doit image` again")


def has_bundles(current: Settings) -> bool:
    """verify's condition: the checkout's core package has UI bundles (`[[packages.ui]]`, else detected); without a
    checkout (wheels brought from another run), the bundles `[[packages.ui]]` lists."""
    core = next((p for p in packages_if_cloned(current) if p.kind == "core"), None)
    if core is not None:
        return bool(core_bundles(current, core))
    return bool(current.config.packages.ui)


def server_command(setup: ImageSetup, planned: inputs.Planned) -> list[str] | None:
    """`<core> server start ...` (`{port}` left in) for an image holding a core package with UI bundles, else None."""
    if inputs.core_name(planned.spec.packages) is None or not has_bundles(setup.settings):
        return None
    return smoke.server_command(list(planned.version_command or ()))


def check(setup: ImageSetup, client: Any, planned: inputs.Planned, image: str, platform: str | None, log: Path,
          outputs: list[str]) -> dict[str, Any] | None:
    """Start the server in the image and ask for `/`: the answer ({status, content_type, seconds}), None when the
    image has no dashboard to check; raises when `/` does not answer 200 HTML, so the image is not pushed."""
    command = server_command(setup, planned)
    if command is None:
        return None
    shown = " ".join(command).replace("{port}", "<port>")
    code, output = docker_adapter.run_container(client, image, ["python", "-c", smoke.dashboard_script(command, TIMEOUT)],
                                                timeout=TIMEOUT + 60, platform=platform)
    outputs.append(f"$ python -c <dashboard check: {shown}, GET />\n{output}")
    log.write_text("\n".join(outputs), encoding="utf-8")
    answer, server_log = smoke.dashboard_answer(output)
    problem = (smoke.dashboard_problem(int(answer["status"]), str(answer["content_type"]), server_log) if answer else
               f"the check printed no answer (exit {code}): {' | '.join(output.strip().splitlines()[-5:])}")
    if problem or answer is None:
        on = f" on {platform}" if platform else ""
        raise ForkflowError(f"image:{planned.key}: smoke test failed{on} (dashboard: `{shown}`: {problem}); not pushed",
                            where=str(log), fix=FIX)
    return {"status": answer["status"], "content_type": answer["content_type"], "seconds": answer["seconds"]}


def said(answer: dict[str, Any] | None) -> str:
    """The smoke line's words for the dashboard check."""
    return f", dashboard GET / {answer['status']} {answer['content_type']} in {answer['seconds']}s" if answer else ""


def keep(record: dict[str, Any], platform: str, answer: dict[str, Any] | None) -> None:
    """The cell's `dashboard` entry in image.json: the answer (for several platforms, each one under `platforms`,
    and the slowest time)."""
    if answer is None:
        return
    if not platform:
        record["dashboard"] = answer
        return
    entry = record.setdefault("dashboard", {**answer, "platforms": {}})
    entry["platforms"][platform] = answer
    entry["seconds"] = max(entry["seconds"], answer["seconds"])
