"""The image build matrix for CI: one cell per Python version and flavor, and per platform when there are several."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.core.config_images import Images

DEFAULT_RUNNER_CPU = "x86_64"  # GitHub's ubuntu-* runners


def image_matrix(images: Images | None, runners: Mapping[str, str] | None = None,
                 default_runner: str = "ubuntu-latest") -> dict[str, list[dict[str, Any]]]:
    """`{"include": [{"python", "flavor", "task", "name", "platform", "runner", "emulated"}...]}`, ready for a
    workflow's `fromJSON`. With one platform a cell builds it (`platform` ""); with several, each platform is a
    cell of its own: on the runner `runners` names for it (natively), else on the default runner, emulated when
    its CPU is not the runner's. A join puts each image's index together after them."""
    if images is None:
        return {"include": []}
    split = len(images.platforms) > 1
    cells = []
    for python in images.python:
        for flavor in images.flavors:
            key = f"{python}-{flavor}"
            for platform in images.platforms if split else ("",):
                cells.append({"python": python, "flavor": flavor, "task": f"image:{key}",
                              "name": key + (f"-{platform.split('/', 1)[1].replace('/', '')}" if platform else ""),
                              "platform": platform, **placement(platform, runners or {}, default_runner)})
    return {"include": cells}


def placement(platform: str, runners: Mapping[str, str], default_runner: str) -> dict[str, Any]:
    """The runner a platform's cell runs on, and whether it emulates that platform there (QEMU)."""
    from tasks.core.image_tags import cpu

    if platform in runners:
        return {"runner": runners[platform], "emulated": False}
    return {"runner": default_runner, "emulated": bool(platform) and cpu(platform)[1] != DEFAULT_RUNNER_CPU}
