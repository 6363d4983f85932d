"""The pure planners, as data in and decisions out: what to upload, which base, the CI matrix, an image cell's
steps, the demo history."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

import pytest

from tasks.core import base_image, images
from tasks.core.config_images import Images
from tasks.core.demo import parse_history
from tasks.core.errors import ConfigError
from tasks.core.matrix import image_matrix
from tasks.core.publish import LocalFile, conflict_message, decide

WHEEL = LocalFile("orbit-1.0.1-py3-none-any.whl", "/dist/orbit-1.0.1-py3-none-any.whl", "aa" * 32, "orbit", "1.0.1")


@pytest.mark.parametrize(("remote", "action"), [
    ({}, "upload"),
    ({WHEEL.name: "aa" * 32}, "skip"),
    ({WHEEL.name: None}, "skip"),  # the index lists the file without a hash: never uploaded twice
    ({WHEEL.name: "bb" * 32}, "conflict"),
    ({"other.whl": "aa" * 32}, "upload"),
])
def test_publish_decides_from_the_index_listing(remote: dict[str, str | None], action: str) -> None:
    assert decide(WHEEL, remote).action == action


def test_a_conflict_names_both_hashes() -> None:
    message = conflict_message([decide(WHEEL, {WHEEL.name: "bb" * 32}), decide(WHEEL, {})])
    assert f"{WHEEL.name}: index has sha256 {'bb' * 32}, local file has {'aa' * 32}" in message
    assert message.count("  - ") == 1, "only conflicts are listed"


LOCAL = {base_image.BASE_FROM_LABEL: "local-interpreter", base_image.RECIPE_LABEL: base_image.LOCAL_BASE_RECIPE}
OLD_LOCAL = {base_image.BASE_FROM_LABEL: "local-interpreter", base_image.RECIPE_LABEL: "0"}


@pytest.mark.parametrize(("official", "local", "base_from", "chosen"), [
    ({}, None, "auto", "official"),  # the configured image is present and was not made here
    ({}, LOCAL, "local", "official"),
    (LOCAL, LOCAL, "auto", "local"),  # an older forkflow made the official name locally: use the own name
    (None, LOCAL, "auto", "local"),
    (None, LOCAL, "pull", None),  # base_from = pull never uses a local base
    (None, OLD_LOCAL, "auto", None),  # an older recipe is made again
    (None, None, "auto", None),
])
def test_which_base_an_image_uses(official: dict[str, str] | None, local: dict[str, str] | None, base_from: str,
                                  chosen: str | None) -> None:
    assert base_image.choose_base(official, local, base_from) == chosen


def test_local_interpreters_and_their_files() -> None:
    assert base_image.pick_version(["3.12.1", "3.12.10", "3.12.9", "3.13.0", "3.12"], "3.12") == "3.12.10"
    assert base_image.pick_version(["3.11.7"], "3.12") is None
    assert base_image.rewrite_shebang("#!/root/.pyenv/versions/3.12.1/bin/python3.12\nprint(1)\n",
                                      "/root/.pyenv/versions/3.12.1") == "#!/usr/local/bin/python3.12\nprint(1)\n"
    assert base_image.keep_stdlib_file(PurePosixPath("json/__init__.py"))
    assert not base_image.keep_stdlib_file(PurePosixPath("test/test_json.py"))
    assert base_image.local_base_name("3.12") != "python:3.12-slim"


def test_host_libraries_of_the_host_architecture_only() -> None:
    output = ("\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"
              "\tlibz.so.1 (libc6) => /lib/i386-linux-gnu/libz.so.1\n"
              "\tlibssl.so.3 (libc6,AArch64) => /lib/aarch64-linux-gnu/libssl.so.3\n")
    assert base_image.host_libraries(output, "x86_64") == {"libz.so.1": "/lib/x86_64-linux-gnu/libz.so.1"}
    assert base_image.host_libraries(output, "aarch64") == {"libssl.so.3": "/lib/aarch64-linux-gnu/libssl.so.3"}


def test_the_ci_matrix_has_a_cell_per_python_and_flavor() -> None:
    assert image_matrix(None) == {"include": []}
    cells = image_matrix(Images(registry="r:5000", python=("3.11", "3.12"), flavors=("base", "kubernetes")))
    assert cells["include"][1] == {"python": "3.11", "flavor": "kubernetes", "task": "image:3.11-kubernetes",
                                   "name": "3.11-kubernetes", "platform": "", "runner": "ubuntu-latest",
                                   "emulated": False}
    assert [c["task"] for c in cells["include"]] == [
        "image:3.11-base", "image:3.11-kubernetes", "image:3.12-base", "image:3.12-kubernetes"]



def test_several_platforms_are_a_cell_each_natively_where_a_runner_is_named_else_emulated() -> None:
    two = Images(registry="r:5000", python=("3.12",), flavors=("base",), platforms=("linux/amd64", "linux/arm64"))
    cells = image_matrix(two, {}, "ubuntu-24.04")["include"]
    assert [(c["name"], c["platform"], c["runner"], c["emulated"]) for c in cells] == [
        ("3.12-base-amd64", "linux/amd64", "ubuntu-24.04", False), ("3.12-base-arm64", "linux/arm64", "ubuntu-24.04", True)]
    native = image_matrix(two, {"linux/arm64": "ubuntu-24.04-arm"}, "ubuntu-24.04")["include"][1]
    assert (native["runner"], native["emulated"], native["task"]) == ("ubuntu-24.04-arm", False, "image:3.12-base")


INPUTS = {"dockerfile_sha256": "d1", "wheels": {"orbit-1.0.1.whl": "w1"}, "base_image": "python:3.12-slim",
          "base_image_content": "sha256:b1", "build_args": {}, "dependencies": [], "wheelhouse": {}}
TARGET = {"repository": "r:5000/orbit", "tags": ["1.0.1-python3.12"], "push": True}


def recorded(inputs: Mapping[str, object] = INPUTS, target: Mapping[str, object] = TARGET) -> dict[str, str]:
    return {"input_hash": images.input_hash(inputs), "image_id": "sha256:i1", "target": images.input_hash(target)}


def test_an_image_cell_with_nothing_changed_is_up_to_date() -> None:
    steps = images.cell_steps(recorded(), {"inputs": INPUTS, "target": TARGET}, INPUTS, TARGET, built=True,
                              recorded_present=True)
    assert steps.stale is None and not steps.build and steps.push_reasons == ()


@pytest.mark.parametrize(("last", "present", "stale"), [
    (None, True, "first build (no build recorded)"),
    (recorded({**INPUTS, "dockerfile_sha256": "d0"}), True, "its inputs changed"),
    (recorded(target={**TARGET, "tags": ["old"]}), True, "its tags or push target changed"),
    (recorded(), False, "the built image is no longer in the engine"),
])
def test_why_an_image_cell_runs(last: dict[str, str] | None, present: bool, stale: str) -> None:
    steps = images.cell_steps(last, {"inputs": INPUTS, "target": TARGET}, INPUTS, TARGET, built=True,
                              recorded_present=present)
    assert steps.stale is not None and steps.stale.startswith(stale)


def test_a_cell_builds_only_when_no_image_has_its_inputs() -> None:
    changed = {**INPUTS, "wheels": {"orbit-1.0.2.whl": "w2"}}
    rebuilt = images.cell_steps(recorded(), {"inputs": INPUTS, "target": TARGET}, changed, TARGET, built=False,
                                recorded_present=True)
    assert rebuilt.build and rebuilt.rebuild_reasons and rebuilt.push
    reused = images.cell_steps(recorded(), {"inputs": INPUTS, "target": TARGET}, changed, TARGET, built=True,
                               recorded_present=True)
    assert not reused.build and reused.rebuild_reasons == () and reused.stale is not None, \
        "an image with these inputs exists (built before): tagged and pushed, not built again"
    unpushed = images.cell_steps(recorded(), None, INPUTS, {**TARGET, "push": False}, built=True, recorded_present=True)
    assert not unpushed.push


def test_a_new_tag_is_a_push_reason() -> None:
    steps = images.cell_steps(recorded(), {"inputs": INPUTS, "target": TARGET}, INPUTS,
                              {**TARGET, "tags": ["1.0.1-python3.12", "latest"]}, built=True, recorded_present=True)
    assert steps.push_reasons == ("new tags: latest",)


HISTORY = """
[author]
name = "Demo"
email = "demo@example.com"
start = "2024-01-01T00:00:00+00:00"

[[upstream]]
message = "first"

[[upstream]]
message = "second"

[fork]
main_at = {main_at}
"""


def test_the_demo_history_is_checked() -> None:
    plan = parse_history(HISTORY.format(main_at=1), "history.toml")
    assert [c.message for c in plan.upstream] == ["first", "second"] and plan.release == ()
    with pytest.raises(ConfigError, match="fork.main_at must be between 1 and 2"):
        parse_history(HISTORY.format(main_at=3), "history.toml")
    with pytest.raises(ConfigError, match="malformed demo history"):
        parse_history(HISTORY.format(main_at=1).replace('name = "Demo"\n', ""), "history.toml")
