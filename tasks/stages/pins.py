"""Stage `pins`: the pins wheel, `<project>-pins==<core version>`, from what verification installed.

The core's passing verification recorded each third-party version it installed, per
Python. Those become the `Requires-Dist: name==version` lines of a metadata-only wheel
that `publish` uploads beside the core's, so that one install command gets exactly the
verified set (tasks.core.release_pins). The wheel is written only when its content
changed, and the same pins always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.errors import ForkflowError
from tasks.core.values import sha256_hex
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, Stale, report_intact
from tasks.pipeline.settings import Settings, read_report, settings, write_report

if TYPE_CHECKING:
    from tasks.core.release_pins import ReleasePins

# the check and the action import the pins' rules (packaging) and the build tools when doit calls them

DOC = "the pins wheel (<project>-pins==<core version>): the third-party versions the core was verified with"


def task_pins() -> dict[str, Any]:
    """Make the pins wheel published with each core release."""
    current = settings()
    if current.config.fork is None:
        return missing_section_task("pins", "fork", DOC)
    return {
        "doc": DOC,
        "actions": [guarded(pins_action)],
        "task_dep": ["verify"],
        "uptodate": [Check("the pins wheel holds what the core's verification installed", pins_are_current),
                     report_intact("pins", "files")],
        "targets": [str(current.reports_dir / "pins.json")],
        "verbosity": 2,
    }


def pins_are_current(*_: Any) -> bool | Stale:
    current = settings()
    report = read_report("pins", current) or {}
    if made_from(current) == [pins_inputs(current), report_digest(current)] and wheel_intact(report):
        return True  # made from these very inputs, and still there: the pins' rules (packaging) are not needed
    from tasks.pipeline.release_pins import desired_pins

    try:
        wanted = desired_pins(current)
    except (ForkflowError, OSError, KeyError):
        return Stale("the core's verification changed or is missing")
    if wanted is None:
        return report.get("status") == "none"
    return same_as_report(current, wanted[0], report) or Stale("the verified versions or the core version changed")


def same_as_report(current: Settings, release: ReleasePins, report: dict[str, Any]) -> bool:
    from tasks.adapters.build import sha256
    from tasks.pipeline.release_pins import pins_file

    file = pins_file(current, release)
    entries = report.get("files") or [{}]
    return (report.get("version") == release.version and report.get("name") == release.name
            and tuple(report.get("requires") or ()) == release.requires and file.is_file()
            and entries[0].get("sha256") == sha256(file))


PINS_CODE = ("core/release_pins.py", "pipeline/release_pins.py", "stages/pins.py")


def pins_inputs(current: Settings) -> str:
    """What the pins are made from, as one digest: wheel.json, the core's verification result, the project and
    packages config (the pins' name) and the code that makes them."""
    import hashlib

    from tasks.pipeline.workspace import result_file

    digest = hashlib.sha256(f"{current.config.project!r}\0{current.config.packages!r}\0".encode())
    wheel = current.reports_dir / "wheel.json"
    cores = [p["name"] for p in (read_report("wheel", current) or {}).get("packages", []) if p.get("kind") == "core"]
    tasks_dir = Path(__file__).resolve().parent.parent
    for file in (wheel, *(result_file(current, name) for name in cores), *(tasks_dir / code for code in PINS_CODE)):
        try:
            digest.update(file.read_bytes() + b"\0")
        except FileNotFoundError:
            digest.update(b"missing\0")
    return digest.hexdigest()


INPUTS_FILE = "pins-inputs.json"  # beside pins.json, not in it: pins.json stays the pins alone (publish depends on it)


def made_from(current: Settings) -> list[Any] | None:
    """The inputs digest of the last pins run, and the pins.json it wrote."""
    from tasks.pipeline.settings import read_json

    kept = read_json(current.state_dir / INPUTS_FILE) or {}
    return [kept.get("inputs"), kept.get("report")] if kept.get("inputs") else None


def report_digest(current: Settings) -> str:
    try:
        return sha256_hex((current.reports_dir / "pins.json").read_bytes())
    except OSError:
        return ""


def remember_inputs(current: Settings, inputs: str) -> None:
    from tasks.pipeline.settings import write_json

    write_json(current.state_dir / INPUTS_FILE, {"inputs": inputs, "report": report_digest(current)})


def wheel_intact(report: dict[str, Any]) -> bool:
    """The pins wheel the report names is there with its bytes (or the report says there are no pins)."""
    if report.get("status") == "none":
        return True
    entries = report.get("files") or [{}]
    try:
        return bool(sha256_hex(Path(entries[0]["path"]).read_bytes()) == entries[0].get("sha256"))
    except (KeyError, OSError, TypeError):
        return False


def pins_action() -> dict[str, str]:
    from tasks.adapters.build import sha256, twine_check, write_reproducible_zip
    from tasks.core.release_pins import wheel_files
    from tasks.pipeline.release_pins import desired_pins, pins_file

    current = settings()
    inputs = pins_inputs(current)
    wanted = desired_pins(current)
    if wanted is None:
        write_report("pins", {"status": "none", "files": []}, current)
        remember_inputs(current, inputs)
        return {"made": "no core package built: no pins"}
    release, pins = wanted
    file = pins_file(current, release)
    for stale in file.parent.glob("*.whl"):
        if stale != file:
            stale.unlink()
    write_reproducible_zip(file, wheel_files(release))
    twine_check([file])
    write_report("pins", {"name": release.name, "version": release.version, "core": release.core,
                          "pythons": pins, "requires": list(release.requires), "status": "built",
                          "files": [{"name": file.name, "path": str(file), "sha256": sha256(file)}]}, current)
    remember_inputs(current, inputs)
    return {"made": f"{file.name} ({len(release.requires)} pins)"}
