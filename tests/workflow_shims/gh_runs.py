"""`gh run list` and `gh run download` as the workflows call them, over the earlier workflow runs
(WORKFLOW_RUNNER_RUNS: each finished run with its databaseId, workflow file, event, conclusion and artifacts
folder), and `gh api` against GITHUB_API_URL (a local stand-in for GitHub's API). Anything else is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else ""


def through_jq(text: str, argv: list[str]) -> int:
    """The JSON answer, filtered by `--jq` as gh does (with jq), else printed as it is."""
    if "--jq" not in argv:
        sys.stdout.write(text)
        return 0
    done = subprocess.run(["jq", "-r", option(argv, "--jq")], input=text, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def run_list(runs: list[dict[str, Any]], argv: list[str]) -> int:
    """Newest first; `--workflow`, `--status` (a conclusion), `--limit` and `--json` fields as gh reads them."""
    chosen = [run for run in reversed(runs) if run["workflow"] == option(argv, "--workflow")
              and option(argv, "--status") in ("", run["conclusion"])][:int(option(argv, "--limit") or 20)]
    fields = [name for name in option(argv, "--json").split(",") if name]
    return through_jq(json.dumps([{name: run[name] for name in fields} for run in chosen]), argv)


def run_download(runs: list[dict[str, Any]], argv: list[str]) -> int:
    found = [run for run in runs if str(run["databaseId"]) == argv[2]]
    source = Path(found[0]["artifacts"]) / option(argv, "--name") if found else None
    if source is None or not source.is_dir():
        print(f"gh stand-in: no artifact {option(argv, '--name')!r} in run {argv[2]}", file=sys.stderr)
        return 1
    shutil.copytree(source, Path(option(argv, "--dir")), dirs_exist_ok=True)
    return 0


def main(argv: list[str]) -> int:
    runs = json.loads(os.environ.get("WORKFLOW_RUNNER_RUNS", "[]"))
    if argv[:2] == ["run", "list"]:
        return run_list(runs, argv)
    if argv[:2] == ["run", "download"]:
        return run_download(runs, argv)
    if argv[:1] == ["api"]:
        return api(argv[1:])
    print(f"gh stand-in: `gh {' '.join(argv)}` is not supported here", file=sys.stderr)
    return 1


def api(argv: list[str]) -> int:
    """`gh api <path> [-X METHOD] [-F body=@file] [--paginate] [--jq expr]`: one request, its JSON, through jq."""
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
    return through_jq(text, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
