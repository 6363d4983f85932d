"""`gh run list` and `gh run download` as the workflows call them, over the earlier workflow runs' artifacts
(WORKFLOW_RUNNER_ARTIFACTS: workflow name -> artifacts folder), and `gh api` against GITHUB_API_URL (a local
stand-in for GitHub's API). Anything else is refused."""

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
    if argv[:1] == ["api"]:
        return api(argv[1:])
    print(f"gh stand-in: `gh {' '.join(argv)}` is not supported here", file=sys.stderr)
    return 1


def api(argv: list[str]) -> int:
    """`gh api <path> [-X METHOD] [-F body=@file] [--paginate] [--jq expr]`: one request, its JSON, through jq."""
    import subprocess
    import urllib.request

    path = next(arg for arg in argv if not arg.startswith("-") and argv[argv.index(arg) - 1] not in ("-X", "-F", "--jq"))
    fields = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-F"]
    body = {}
    for field in fields:
        key, _, value = field.partition("=")
        body[key] = Path(value[1:]).read_text() if value.startswith("@") else value
    method = option(argv, "-X") or ("POST" if body else "GET")
    request = urllib.request.Request(os.environ["GITHUB_API_URL"].rstrip("/") + "/" + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {os.environ.get('GH_TOKEN', '')}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local stand-in's URL
        text = response.read().decode()
    if "--jq" in argv:
        done = subprocess.run(["jq", "-r", option(argv, "--jq")], input=text, capture_output=True, text=True, check=False)
        sys.stdout.write(done.stdout)
        return done.returncode
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
