"""`python -m tasks.sync summary`, as sync-upstream workflows rendered before `tasks.stages.sync` call it."""

import runpy

if __name__ == "__main__":
    runpy.run_module("tasks.stages.sync", run_name="__main__")
