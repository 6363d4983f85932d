"""`gh run list` and `gh run download` as the deploy workflow calls them, over the earlier workflow runs' artifacts
(WORKFLOW_RUNNER_ARTIFACTS: workflow name -> artifacts folder). Anything else is refused."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else ""


def main(argv: list[str]) -> int:
    runs = {name: Path(folder) for name, folder in json.loads(os.environ.get("WORKFLOW_RUNNER_ARTIFACTS", "{}")).items()}
    if argv[:2] == ["run", "list"]:
        workflow = option(argv, "--workflow").removesuffix(".yml")
        if workflow in runs:
            print(list(runs).index(workflow) + 1)
        return 0
    if argv[:2] == ["run", "download"]:
        number = int(argv[2])
        source = list(runs.values())[number - 1] / option(argv, "--name")
        if not source.is_dir():
            print(f"gh stand-in: no artifact {option(argv, '--name')!r} in run {number}", file=sys.stderr)
            return 1
        shutil.copytree(source, Path(option(argv, "--dir")), dirs_exist_ok=True)
        return 0
    print(f"gh stand-in: `gh {' '.join(argv)}` is not supported here", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
