"""The image build matrix for CI: one cell per Python version and flavor."""

from __future__ import annotations

from typing import Any

from tasks.core.config_images import Images


def image_matrix(images: Images | None) -> dict[str, list[dict[str, Any]]]:
    """`{"include": [{"python", "flavor", "task"}...]}`, ready for a workflow's `fromJSON`."""
    if images is None:
        return {"include": []}
    return {"include": [{"python": python, "flavor": flavor, "task": f"image:{python}-{flavor}"}
                        for python in images.python for flavor in images.flavors]}
