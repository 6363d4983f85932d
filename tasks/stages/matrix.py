"""Task `matrix`: the image matrix as JSON, for a CI job's `strategy.matrix: ${{ fromJSON(...) }}`."""

from __future__ import annotations

import json
from typing import Any

from tasks.core.matrix import image_matrix
from tasks.pipeline.actions import guarded
from tasks.pipeline.settings import settings, write_report


def task_matrix() -> dict[str, Any]:
    """Print the image matrix (one cell per Python version and flavor) as JSON."""
    return {
        "doc": "print the image matrix as JSON (one cell per Python x flavor, per platform when there are several) and "
               "write reports/matrix.json",
        "actions": [guarded(matrix_action)],
        "uptodate": [False],
        "verbosity": 2,
    }


def matrix_action() -> dict[str, str]:
    current = settings()
    github = current.config.github
    matrix = image_matrix(current.config.images, github.runners if github else {},
                          github.runner if github else "ubuntu-latest")
    write_report("matrix", matrix, current)
    print(json.dumps(matrix, separators=(",", ":")))
    return {"made": f"{len(matrix['include'])} cells"}
