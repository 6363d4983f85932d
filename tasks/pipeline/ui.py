"""The core's UI bundles as the `ui` and `wheel` stages (and verify) share them.

`ui:<name>` builds a bundle into `<state>/ui/<name>/dist` and records its input hash in
`<state>/ui/<name>/build.json`; the core's wheel build copies every bundle's dist into its
build tree, and its input hash carries the bundles' hashes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tasks.core.errors import ForkflowError
from tasks.core.packages import Package
from tasks.core.ui import Bundle, bundle_hash, configured_bundles, detected_bundles, missing_in_wheel
from tasks.pipeline.settings import Settings, read_json
from tasks.pipeline.workspace import checkout_entries, checkout_path

REQUIRE_BUNDLES_ENV = "PREFECT_REQUIRE_PACKAGED_UI_BUNDLES"


def core_bundles(current: Settings, package: Package) -> list[Bundle]:
    """The core package's bundles: `[[packages.ui]]`, else detected in Prefect's layout; none for other kinds."""
    if package.kind != "core":
        return []
    entries = checkout_entries(checkout_path(current))
    configured = current.config.packages.ui
    if configured is not None:
        return configured_bundles(package.path, configured)
    return detected_bundles(package.path, package.name, entries)


def ui_dir(current: Settings, name: str) -> Path:
    return current.state_dir / "ui" / name


def built_dist(current: Settings, name: str) -> Path:
    return ui_dir(current, name) / "dist"


def ui_stamp_file(current: Settings, name: str) -> Path:
    return ui_dir(current, name) / "build.json"


def read_ui_stamp(current: Settings, name: str) -> dict[str, Any] | None:
    return read_json(ui_stamp_file(current, name))


def current_bundle_hash(current: Settings, bundle: Bundle) -> str:
    return bundle_hash(bundle, checkout_entries(checkout_path(current)))


def bundle_extras(current: Settings, bundles: list[Bundle]) -> dict[str, str]:
    """What the bundles add to the core's input hash: a UI change rebuilds the core wheel."""
    return {f"ui:{bundle.name}": current_bundle_hash(current, bundle) for bundle in bundles}


def bundle_env(bundles: list[Bundle]) -> dict[str, str]:
    """Prefect's hatch_build.py then refuses a build without the bundles' index.html (harmless elsewhere)."""
    return {REQUIRE_BUNDLES_ENV: "1"} if bundles else {}


def place_bundles(current: Settings, bundles: list[Bundle], folder: Path) -> None:
    """Copy each built bundle into the core's build tree at its target, as `prefect dev build-ui` does."""
    for bundle in bundles:
        stamp = read_ui_stamp(current, bundle.name)
        dist = built_dist(current, bundle.name)
        if not stamp or stamp.get("input_hash") != current_bundle_hash(current, bundle) or not (dist / "index.html").is_file():
            raise ForkflowError(f"the UI bundle {bundle.name} is not built from the current sources",
                                where=str(dist), fix=f"run `doit ui:{bundle.name}` (the core's wheel task depends on it)")
        target = folder / bundle.target
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(dist, target)


def check_wheel_bundles(names: list[str], bundles: list[Bundle], wheel: str) -> None:
    """Refuse a core wheel that lacks a declared bundle: its server would answer `/` with 404."""
    missing = missing_in_wheel(names, bundles)
    if missing:
        listed = ", ".join(f"{b.index_in_wheel} (ui:{b.name}, target {b.target})" for b in missing)
        raise ForkflowError(
            f"{wheel} lacks its UI bundles: {listed}; its server would have no dashboard",
            fix="list the targets as build artifacts of the core package (hatch: [tool.hatch.build] artifacts = "
                "[\"src/<pkg>/server/ui\"], they are git-ignored), or correct [[packages.ui]] target")
