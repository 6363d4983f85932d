"""UI bundles: Prefect's layout detected, configured bundles, input hashes, node versions, the wheel check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks.core.config import parse_config
from tasks.core.errors import ConfigError
from tasks.core.ui import (
    Bundle,
    bundle_hash,
    configured_bundles,
    detected_bundles,
    is_dirty,
    lock_id,
    missing_in_wheel,
    node_mismatch,
)

PREFECT = ["ui/package.json", "ui/package-lock.json", "ui/src/main.ts", "ui-v2/package.json", "docs/package.json",
           "src/prefect/server/__init__.py", "src/prefect/__init__.py", "pyproject.toml"]


def test_prefects_layout_is_detected() -> None:
    assert detected_bundles(".", "prefect", PREFECT) == [
        Bundle("ui", "ui", "src/prefect/server/ui"), Bundle("ui-v2", "ui-v2", "src/prefect/server/ui-v2")]
    assert detected_bundles(".", "prefect", [f for f in PREFECT if "server" not in f]) == [], "no server, no dashboard"
    assert detected_bundles("core", "orbit", ["core/ui/package.json", "core/src/orbit/server/app.py"]) == [
        Bundle("ui", "core/ui", "src/orbit/server/ui")]


def test_configured_bundles_and_their_names() -> None:
    entries = [SimpleNamespace(source="web/dashboard", target="src/x/static", name=None)]
    assert configured_bundles(".", entries) == [Bundle("dashboard", "web/dashboard", "src/x/static")]
    with pytest.raises(ConfigError, match="two UI bundles are named ui"):
        configured_bundles(".", [SimpleNamespace(source="ui", target="a", name=None),
                                 SimpleNamespace(source="b/ui", target="b", name=None)])
    config = parse_config({"project": {"name": "x"}, "packages": {"ui": [{"source": "ui", "target": "src/x/ui"}]}}, "p.toml")
    assert config.packages.ui is not None and config.packages.ui[0].target == "src/x/ui"
    with pytest.raises(ConfigError, match="packages.ui"):
        parse_config({"project": {"name": "x"}, "packages": {"ui": [{"source": "ui"}]}}, "p.toml")


def test_the_hash_covers_the_bundles_files_only() -> None:
    bundle = Bundle("ui", "ui", "src/prefect/server/ui")
    entries = {"ui/package.json": "a1", "ui/package-lock.json": "b2", "src/prefect/flows.py": "c3"}
    before = bundle_hash(bundle, entries)
    assert bundle_hash(bundle, {**entries, "src/prefect/flows.py": "c4"}) == before, "a Python change is not the UI's"
    assert bundle_hash(bundle, {**entries, "ui/src/App.vue": "d5"}) != before
    assert bundle_hash(Bundle("ui", "ui", "elsewhere"), entries) != before
    assert lock_id(bundle, entries) == "b2"
    assert not is_dirty(bundle, entries) and is_dirty(bundle, {**entries, "ui/x.ts": "sha256:00"})


def test_node_versions_and_the_wheel_check() -> None:
    assert node_mismatch("24.19.0\n", "v24.1.0") is None
    assert "node 24.19.0" in str(node_mismatch("24.19.0", "v20.20.2"))
    assert node_mismatch("lts/*", "v20.20.2") is None
    bundles = [Bundle("ui", "ui", "src/prefect/server/ui"), Bundle("ui-v2", "ui-v2", "src/prefect/server/ui-v2")]
    names = ["prefect/__init__.py", "prefect/server/ui/index.html"]
    assert missing_in_wheel(names, bundles) == [bundles[1]]
