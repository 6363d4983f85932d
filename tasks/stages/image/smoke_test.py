"""The smoke test of a built image: run in containers without network, as the image's own user."""

from __future__ import annotations

from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters.console import say
from tasks.core import image_tags, sbom, smoke
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.stages.image import dashboard, inputs
from tasks.stages.image.setup import ImageSetup


def smoke_test(setup: ImageSetup, client: Any, planned: inputs.Planned, image: str,
               platform: str | None = None) -> tuple[Any, list[tuple[str, str]]]:
    """The packages import and report the expected versions, as the image's non-root user; then any configured
    smoke command; then the dashboard (tasks.stages.image.dashboard). Returns the dashboard's answer and the
    distributions the package check found installed (name, version), for the SBOM. A failure raises."""
    spec = planned.spec
    arch = image_tags.arch_suffix(platform)
    log = setup.logs_dir / f"image-{spec.key}{arch}-smoke.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    commands = [["python", "-c", smoke.smoke_script(spec.python, planned.modules)]]
    if planned.version_command:
        commands.append(list(planned.version_command))
    extra = setup.images.smoke_command
    if extra and list(extra) not in commands:
        commands.append(list(extra))
    outputs = []
    imported = ""
    installed: list[tuple[str, str]] = []
    for command in commands:
        code, output = docker_adapter.run_container(client, image, command, platform=platform)
        outputs.append(f"$ {' '.join(command) if command is not commands[0] else 'python -c <package check>'}\n{output}")
        log.write_text("\n".join(outputs), encoding="utf-8")
        what = "package check" if command is commands[0] else "smoke command " + " ".join(command)
        problem = f"exit {code}" if code != 0 else None
        if problem is None and planned.version_command and command == list(planned.version_command):
            problem = smoke.version_mismatch(output, core.core_version(spec.packages))
        if problem:
            shown = "\n".join("    " + line for line in output.strip().splitlines()[-20:])
            on = f" on {platform}" if platform else ""
            raise ForkflowError(f"image:{spec.key}: smoke test failed{on} ({what}: {problem}); not pushed\n{shown}",
                                where=str(log), fix="fix the package or the image, then run `doit image` again")
        if command is commands[0]:
            imported = next((line for line in output.splitlines() if line.startswith("imported ")), "")
            installed = sbom.installed_from_output(output)
    checked = f", `{' '.join(planned.version_command)}` reports {core.core_version(spec.packages)}" if planned.version_command else ""
    answer = dashboard.check(setup, client, planned, image, platform, log, outputs)
    on = f" on {platform}" if platform else ""
    say(f"image:{spec.key}: smoke test passed{on} ({len(planned.modules)} packages, {imported or 'imports checked'}, "
        f"Python {spec.python}, non-root{checked}{dashboard.said(answer)})")
    return answer, installed
