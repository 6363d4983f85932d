"""Load forkflow's tasks as `doit list` would and pickle each one as multiprocessing's spawn and forkserver start
methods do (the standard pickle), and load it back; print the ones that do not pickle. Run in its own process: loading dodo.py
reads the command line and the config."""

from __future__ import annotations

import pickle
import sys
from multiprocessing.reduction import ForkingPickler

from doit.cmd_base import DodoTaskLoader


class Running:
    execute_tasks = True


if __name__ == "__main__":
    sys.argv = ["doit", "list"]
    loader = DodoTaskLoader()
    loader.setup({"dodoFile": "dodo.py", "cwdPath": None, "seek_file": False})
    loader.load_doit_config()
    tasks = loader.load_tasks(cmd=Running(), pos_args=[])
    for task in tasks:
        try:
            pickle.loads(ForkingPickler.dumps(task))
        except Exception as err:  # noqa: BLE001 - every failure is reported
            print(f"{task.name}: {type(err).__name__}: {err}")
    print(f"{len(tasks)} tasks")
