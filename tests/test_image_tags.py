"""Release tags are immutable, floating tags only move forward: against the real Docker engine and registry."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_config, write_wheel_set
from tests.test_image import SESSION, block_of, copy_wheels, ok, printed, report, session_images

__all__ = ["session_images"]  # the images these tests built are deleted when they are done

pytestmark = [pytest.mark.docker]

FLOATING = ("1.0-python3.12", "1-python3.12", "1-latest")


def packages_at(version: str) -> list[TinyPackage]:
    return [TinyPackage("orbit", version, "core", f'SESSION = "{SESSION}"'),
            TinyPackage("orbit-aws", "0.2.0", "integration", f'SESSION = "{SESSION}"', ["orbit>=1.0.0"])]


def test_a_floating_tag_on_a_newer_version_stays_while_the_full_tag_is_pushed(tmp_path: Path, registry: Registry,
                                                                            base_images: list[str]) -> None:
    repo = f"t{SESSION}/floating"
    text = image_config_text(registry.address, repo, python=("3.12",), flavors=("base",))
    newer = write_config(tmp_path / "newer", text)
    write_wheel_set(tmp_path / "newer" / ".forkflow", packages_at("1.0.2"))
    ok(run_doit(newer, "image", env=registry.env))
    on_newer = {tag: registry.digest(repo, tag) for tag in FLOATING}
    assert all(on_newer.values()) and len(set(on_newer.values())) == 1

    older = write_config(tmp_path / "older", text)  # a rebuild of 1.0.1 after 1.0.2 was released
    write_wheel_set(tmp_path / "older" / ".forkflow", packages_at("1.0.1"))
    ok(run_doit(older, "image-deps", env=registry.env))  # a dry run needs the wheelhouse to know the inputs
    dry = run_doit(older, "image", "--dry-run", env=registry.env)
    ok(dry)
    planned = block_of(dry.stdout, "image:3.12-base")
    assert all(f"would keep {tag} on 1.0.2 (newer than 1.0.1)" in planned for tag in FLOATING), planned
    assert "would push 1 tags" in planned and registry.digest(repo, "1.0.1-python3.12") is None

    result = run_doit(older, "image", env=registry.env)
    ok(result)
    cell = report(older)["3.12-base"]
    assert cell["status"] == "built" and cell["kept"] == dict.fromkeys(FLOATING, "1.0.2"), cell
    assert set(cell["pushed"]) == {"1.0.1-python3.12"}
    assert registry.digest(repo, "1.0.1-python3.12") == cell["digest"]
    assert {tag: registry.digest(repo, tag) for tag in FLOATING} == on_newer, "the floating tags did not move back"
    assert "image:3.12-base: 1.0-python3.12 stays on 1.0.2 in the registry (newer than 1.0.1)" in result.stdout

    fresh = write_config(tmp_path / "fresh", text)  # another runner, the same 1.0.1 inputs: nothing to do
    copy_wheels(tmp_path / "older" / ".forkflow", tmp_path / "fresh" / ".forkflow")
    again = run_doit(fresh, "image", env=registry.env)
    ok(again)
    cell = report(fresh)["3.12-base"]
    assert cell["status"] == "up-to-date" and "the registry has every tag" in cell["reason"], cell
    assert cell["kept"] == dict.fromkeys(FLOATING, "1.0.2") and set(cell["pushed"]) == {"1.0.1-python3.12"}
    assert ": building " not in again.stdout


def test_a_release_tag_is_never_overwritten_with_other_content(demo_config: Path, registry: Registry,
                                                               base_images: list[str]) -> None:
    """On the demo fork with clean tag versions (scheme tag): push a cell, commit a change to one integration
    (its version stays, so the image's does), run again. Under the default scheme the commit gives both new
    versions: the season test covers that."""
    repo = f"t{SESSION}/release"
    text = demo_config.read_text().replace('python = ["3.11", "3.12"]', 'python = ["3.12"]')
    text = text.replace("allow_prerelease = false", 'allow_prerelease = false\nscheme = "tag"')
    text = text.replace('flavors = ["base", "kubernetes"]', 'flavors = ["base"]')
    text = text.replace('extra_packages = { kubernetes = ["orbit-aws"] }', 'extra_packages = { base = ["orbit-aws"] }')
    text = re.sub(r'\[images\]\nregistry = "[^"]*"\n', f'[images]\nregistry = "{registry.address}"\nrepository = "{repo}"\n',
                  text)
    demo_config.write_text(text)
    ok(run_doit(demo_config, "image:3.12-base", env=registry.env))
    first = report(demo_config)["3.12-base"]
    assert first["status"] in ("built", "up-to-date") and first["smoke"] == "passed" and first["pushed"], first
    before = {tag: registry.digest(repo, tag) for tag in first["tags"]}
    full = first["tags"][0]
    assert before[full] == first["digest"]

    fork = demo_config.parent / ".forkflow" / "demo" / "fork"
    module = fork / "src" / "integrations" / "orbit-aws" / "orbit_aws" / "__init__.py"
    module.write_text(module.read_text() + "\n\nREGION = 'eu-west-1'\n")
    git = ["git", "-C", str(fork), "-c", "user.name=Tests", "-c", "user.email=tests@example.com"]
    subprocess.run([*git, "commit", "-qam", "orbit-aws: a default region"], check=True)

    dry = run_doit(demo_config, "image:3.12-base", "--dry-run", env=registry.env)
    ok(dry)
    assert f"would refuse: {full} is in the registry on other content" in block_of(dry.stdout, "image:3.12-base")

    result = run_doit(demo_config, "image:3.12-base", env=registry.env)
    assert result.returncode != 0
    wheels = {p["name"]: p for p in json.loads((demo_config.parent / ".forkflow" / "reports" / "wheel.json")
                                               .read_text())["packages"]}
    aws = next(p for p in first["packages"] if p["name"] == "orbit-aws")
    assert wheels["orbit-aws"]["version"] == aws["version"], "the change kept its version (the case refused here)"
    said = printed(result)
    assert "image:3.12-base: refused, nothing pushed: the registry already has" in said, said[-3000:]
    assert f"{registry.address}/{repo}:{full}: registry digest {first['digest']}, version {first['version']}, " \
           f"input hash {first['input_hash']}" in said
    failed = report(demo_config)["3.12-base"]
    assert f"this build: version {first['version']}, input hash {failed['input_hash']}" in said
    assert failed["input_hash"] != first["input_hash"]
    assert "new version" in said and "delete the tag from the registry" in said
    assert ": building " not in result.stdout, "refused before building"
    assert failed["status"] == "failed" and failed["pushed"] == {} and full in failed["refused"]
    assert {tag: registry.digest(repo, tag) for tag in first["tags"]} == before, "no tag moved, not even floating ones"
