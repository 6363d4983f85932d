"""An ECS worker stand-in."""

import json
from importlib.resources import files


def task_template() -> dict:
    return json.loads(files("orbit_aws").joinpath("templates/task.json").read_text(encoding="utf-8"))
