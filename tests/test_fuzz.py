"""Fuzz pass over pipeline.toml and every deployments format (forkflow's, prefect.yaml, acme's static config).

Each valid base file is mutated key by key: a wrong type, an empty value, a
number out of range, the key given twice, an unknown neighbour key, the key
left out, and (where one is listed) another valid value. Every mutated file is
run through doit as a user would (`doit list` for pipeline.toml; `doit flows`,
then `doit list`, for a deployments file). Whatever the file, doit exits 0 or 2,
never prints a traceback and never ends with doit's own rc 3, within memory,
CPU and wall-clock bounds (MEMORY_MB, CPU_SECONDS, WALL_SECONDS); mutations known
to be valid must be accepted, those known to be wrong must be refused, and a
refusal names the key (or, for a key given twice, its line). Hostile
repositories (alias bombs, deep nesting, huge expressions, names with control
characters) are refused naming the limit, or read with their names escaped.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.flows_repo import flows_repo
from tests.helpers import REPO

VALID, INVALID, EITHER = "valid", "invalid", "either"
# every case runs within these bounds (see fuzz_runner); past one it ends with a signal and the test fails
MEMORY_MB = 1536  # address space each case may add to what the runner holds (the old alias bomb took 3.9 GB)
CPU_SECONDS = 120
WALL_SECONDS = 300  # a case that hangs (the old alias bomb did, at the memory bound) ends with SIGALRM


@dataclass(frozen=True)
class Mutation:
    name: str
    text: str
    expect: str
    key: str  # the key a refusal must name


# ---------------------------------------------------------------- the base files

PIPELINE: dict[str, Any] = {
    "state_dir": ".forkflow",
    "project": {"name": "orbit"},
    "demo": {"source": str(REPO / "examples" / "demo"), "workspace": ".forkflow/demo"},
    "fork": {"path": ".forkflow/demo/fork", "upstream": "https://example.com/up.git", "origin": "https://example.com/fork.git",
             "main": "main", "release": "release", "upstream_main": "main", "keep_backups": 3, "push_backups": True},
    "packages": {"core": ".", "client": "client", "client_recipe": "auto", "client_script": "client/build_client.sh",
                 "client_remove": ["cli", "server"], "client_keep": ["server/api"], "integrations": "src/integrations/*",
                 "verify_python": ["3.11"]},
    "versions": {"core_tag": "{version}", "package_tag": "{name}-{version}", "allow_prerelease": False,
                 "fallback": "0.0.0", "fork_label": "acme"},
    "index": {"url": "http://127.0.0.1:8081", "upstream": "https://pypi.org/simple/"},
    "images": {"registry": "127.0.0.1:5001", "python": ["3.11", "3.12"], "flavors": ["base", "kubernetes"],
               "base_image": "python:{python}-slim", "platforms": ["linux/amd64"], "default_python": "3.12",
               "repository": "{project}", "base_from": "auto", "push": True, "smoke_command": ["prefect", "version"],
               "build_args": {"PIP_NO_CACHE_DIR": "1"}, "extra_packages": {"kubernetes": ["orbit-aws"]},
               "tags": {"always": ["{version}-python{python}{flavor}"], "dev": ["sha-{sha7}-python{python}{flavor}"]}},
    "flows": {"path": "repo/flows", "config": "repo/flows/deployments.yaml", "include": ["*.py"],
              "exclude": ["tests/*"], "concurrency": 4, "verify_after": 600},
    "environments": {
        "dev": {"prefect_api_url": "http://127.0.0.1:4201/api", "work_pool": "orbit-dev", "branch": "*",
                "work_queue": "default", "variables": {"TEAM": "data"}},
        "prod": {"prefect_api_url": "http://127.0.0.1:4201/api", "work_pool": "orbit-prod", "branch": "main",
                 "schedules": True, "api_key_env": "PROD_PREFECT_KEY"},
    },
    "services": {"index": {"port": 8081}, "registry": {"port": 5001}, "prefect": {"port": 4201}},
    "github": {"workflows": ["sync-upstream", "release"], "python": "3.11", "runner": "ubuntu-latest"},
}
PIPELINE_ALTERNATIVES: dict[str, list[Any]] = {
    "fork.keep_backups": [0, 10], "fork.push_backups": [False], "fork.upstream_main": ["trunk"],
    "versions.allow_prerelease": [True], "images.python": [["3.12"]], "images.flavors": [["base"]],
    "images.base_from": ["local", "pull"], "images.push": [False], "images.platforms": [["linux/amd64", "linux/arm64"]],
    "flows.concurrency": [1, 32], "environments.prod.schedules": [False], "environments.dev.branch": ["feature/*"],
    "services.index.port": [18081], "packages.client_recipe": ["paths", "script"], "github.workflows": [["deploy"]],
    "index.url": ["https://pypi.example.com/simple/"], "project.name": ["acme-data"],
}
PIPELINE_OPEN = ("environments.dev.variables", "images.build_args", "images.extra_packages")

DEPLOYMENTS: dict[str, Any] = {
    "defaults": {"tags": ["orbit"], "environments": {"dev": {"schedules_active": False}, "prod": {"schedules_active": True}}},
    "flows": {
        "hello": {"description": "Say hello.", "parameters": {"name": "orbit"}, "work_queue": "default",
                  "environments": {"prod": {"parameters": {"name": "production"}}}},
        "extract-orders": {"parameters": {"limit": 10}, "paused": False, "version": "1.0",
                           "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/Berlin"}, {"interval": 3600}]},
        "daily-report": {"concurrency_limit": {"limit": 1, "collision_strategy": "CANCEL_NEW"},
                         "enforce_parameter_schema": True},
    },
}
DEPLOYMENTS_ALTERNATIVES: dict[str, list[Any]] = {
    "flows.extract-orders.schedules.0.cron": ["*/5 * * * *", "0 0 * * SUN#2"],
    "flows.extract-orders.schedules.1.interval": [60, 0.5], "flows.extract-orders.paused": [True],
    "flows.daily-report.concurrency_limit.limit": [5], "flows.daily-report.concurrency_limit.collision_strategy": ["ENQUEUE"],
    "defaults.tags": [["a", "b"]], "flows.hello.parameters.name": ["someone"],
}
DEPLOYMENTS_OPEN = ("flows.hello.environments.prod.parameters", "flows.hello.parameters", "flows.extract-orders.parameters")

PREFECT_YAML: dict[str, Any] = {
    "name": "orbit-flows",
    "prefect-version": "3.8.0",
    "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/flows"}}],
    "deployments": [
        {"name": "hello-nightly", "entrypoint": "orbit_flows/hello.py:hello", "description": "Nightly hello.",
         "version": "2.0", "tags": ["etl"], "parameters": {"name": "night"},
         "work_pool": {"name": "orbit-dev", "work_queue_name": "default", "job_variables": {"env": {"TEAM": "data"}}},
         "schedules": [{"cron": "0 6 * * 1-5", "timezone": "Europe/Berlin"},
                       {"interval": 3600, "anchor_date": "2026-01-01T00:30:00+00:00", "active": False}],
         "concurrency_limit": {"limit": 2, "collision_strategy": "CANCEL_NEW"}, "enforce_parameter_schema": False,
         "triggers": [{"type": "event", "enabled": True, "expect": ["orbit.export.finished"]}]},
        {"name": "extract", "entrypoint": "orbit_flows/etl/extract.py:extract", "paused": True,
         "schedule": {"rrule": "FREQ=WEEKLY;BYDAY=SA", "timezone": "UTC"}},
    ],
}
PREFECT_YAML_ALTERNATIVES: dict[str, list[Any]] = {
    "deployments.0.schedules.0.cron": ["0 0 * * SUN#2"], "deployments.0.concurrency_limit.limit": [9],
    "deployments.1.paused": [False], "deployments.0.tags": [["etl", "nightly"]], "deployments.0.version": ["3.0"],
}
PREFECT_YAML_OPEN = ("deployments.0.parameters", "deployments.0.work_pool.job_variables", "deployments.0.triggers",
                     "pull", "prefect-version", "deployments.1.parameters")

ACME: dict[str, Any] = {
    "hello": {"name": "hello", "import_path": "orbit_flows.hello:hello", "cron": "0 12 * * 1-5",
              "description": "Hello", "work_pool_name": "orbit-dev", "parameters": {"name": "acme"}},
    "extract-orders": {"name": "extract-orders", "import_path": "orbit_flows.etl.extract:extract", "paused": True,
                       "concurrency_limit": 3,
                       "triggers": {"DeploymentEventTrigger": {"enabled": True, "expect": ["acme.table.updated"]}}},
}
ACME_ALTERNATIVES: dict[str, list[Any]] = {
    "hello.cron": ["*/10 * * * *"], "extract-orders.concurrency_limit": [1], "extract-orders.paused": [False],
    "hello.description": ["Greets"],
}
ACME_OPEN = ("hello.parameters", "extract-orders.triggers")


# ---------------------------------------------------------------- mutations


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every key path and its value: mappings are walked, and lists of mappings by index."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*path, key), value
            yield from leaves(value, (*path, key))
    elif isinstance(doc, list) and all(isinstance(item, dict) for item in doc):
        for index, item in enumerate(doc):
            yield from leaves(item, (*path, index))


def dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def key_named(path: tuple[Any, ...]) -> str:
    return str(next(part for part in reversed(path) if isinstance(part, str)))


def replaced(doc: Any, path: tuple[Any, ...], value: Any = None, *, remove: bool = False, sibling: str = "") -> Any:
    new = copy.deepcopy(doc)
    parent = new
    for part in path[:-1]:
        parent = parent[part]
    if remove:
        del parent[path[-1]]
    elif sibling:
        parent[sibling] = copy.deepcopy(parent[path[-1]])
    else:
        parent[path[-1]] = value
    return new


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "lots"
    if isinstance(value, str):
        return {"nested": [1, 2]}
    return 7 if isinstance(value, list) else "text"


def empty(value: Any) -> Any:
    empties: dict[type, Any] = {list: [], dict: {}}
    return empties.get(type(value), "" if isinstance(value, str) else 0)


def is_open(path: tuple[Any, ...], open_paths: tuple[str, ...]) -> bool:
    name = dotted(path)
    return any(name == p or name.startswith(p + ".") for p in open_paths)


def mutations(doc: dict[str, Any], render: Any, alternatives: dict[str, list[Any]],
              open_paths: tuple[str, ...], ignores_unknown: bool = False) -> list[Mutation]:
    """Each leaf made wrong in several ways. With `ignores_unknown` (a prefect.yaml) an unknown key is what prefect
    deploy ignores (a warning), except inside a schedule, which it rejects."""
    found = []
    for path, value in leaves(doc):
        name, key, loose = dotted(path), key_named(path), is_open(path, open_paths)
        strict = EITHER if loose else INVALID
        found.append(Mutation(f"{name}:wrong-type", render(replaced(doc, path, wrong_type(value))), strict, key))
        found.append(Mutation(f"{name}:empty", render(replaced(doc, path, empty(value))), EITHER, key))
        found.append(Mutation(f"{name}:missing", render(replaced(doc, path, remove=True)), EITHER, key))
        if isinstance(path[-1], str):
            neighbour = f"{path[-1]}_extra"
            rejected = not (loose or is_open(path[:-1], open_paths)) and (
                not ignores_unknown or any(str(part).startswith("schedule") for part in path[:-1]))
            found.append(Mutation(f"{name}:unknown-neighbour", render(replaced(doc, path, sibling=neighbour)),
                                  INVALID if rejected else EITHER, neighbour))
        if isinstance(value, int | float) and not isinstance(value, bool):
            for number in (-1, 10**9):
                found.append(Mutation(f"{name}:out-of-range-{number}", render(replaced(doc, path, number)), EITHER, key))
        for index, other in enumerate(alternatives.get(name, [])):
            found.append(Mutation(f"{name}:valid-{index}", render(replaced(doc, path, other)), VALID, key))
    return found


def duplicated_lines(text: str, pattern: str) -> list[Mutation]:
    """The file with one `key = value` (or `key: value`) line given twice."""
    lines = text.splitlines(keepends=True)
    found = []
    for index, line in enumerate(lines):
        match = re.match(pattern, line)
        if match:
            twice = "".join(lines[:index + 1] + [line] + lines[index + 1:])
            found.append(Mutation(f"line {index + 1}:duplicate", twice, INVALID, "line"))
    return found


# ---------------------------------------------------------------- rendering


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_text(doc: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items() if not isinstance(v, dict)]
    text = (f"[{prefix}]\n" if prefix else "") + "".join(scalars)
    for key, value in doc.items():
        if isinstance(value, dict):
            text += "\n" + toml_text(value, f"{prefix}.{toml_key(key)}" if prefix else toml_key(key))
    return text


def yaml_text(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


# ---------------------------------------------------------------- running


def run_all(jobs: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    bounds = {"memory_mb": MEMORY_MB, "cpu_seconds": CPU_SECONDS, "wall_seconds": WALL_SECONDS}
    (folder / "jobs.json").write_text(json.dumps([bounds | job for job in jobs]))
    subprocess.run([sys.executable, str(REPO / "tests" / "fuzz_runner.py"), str(folder / "jobs.json"),
                    str(folder / "results.json")], check=True, timeout=1800)
    results: list[dict[str, Any]] = json.loads((folder / "results.json").read_text())
    return results


def problems_of(mutation: Mutation, result: dict[str, Any]) -> list[str]:
    rc, output = result["rc"], result["output"]
    found = []
    if rc not in (0, 2):
        found.append(f"exit code {rc}")
    if "Traceback" in output:
        found.append("a traceback")
    if mutation.expect == VALID and rc != 0:
        found.append("a valid file was refused")
    if mutation.expect == INVALID and rc != 2:
        found.append("a wrong file was accepted")
    if rc == 2 and mutation.key not in output:
        found.append(f"the refusal does not name {mutation.key!r}")
    return [f"{mutation.name} ({mutation.expect}): {', '.join(found)}\n{output[-1500:]}"] if found else []


def pipeline_mutations() -> list[Mutation]:
    text = toml_text(PIPELINE)
    found = mutations(PIPELINE, toml_text, PIPELINE_ALTERNATIVES, PIPELINE_OPEN)
    return found + [Mutation("base", text, VALID, "")] + duplicated_lines(text, r"^[A-Za-z_]+ = ")


@pytest.mark.slow
def test_pipeline_toml_mutations(tmp_path: Path) -> None:
    flows_repo(tmp_path)
    found = pipeline_mutations()
    jobs = []
    for index, mutation in enumerate(found):
        folder = tmp_path / f"m{index}"
        folder.mkdir()
        (folder / "repo").symlink_to(tmp_path / "repo")
        (folder / "pipeline.toml").write_text(mutation.text)
        jobs.append({"config": str(folder / "pipeline.toml"), "args": ["list"]})
    results = run_all(jobs, tmp_path)
    problems = [line for mutation, result in zip(found, results, strict=True) for line in problems_of(mutation, result)]
    valid = sum(1 for result in results if result["rc"] == 0)
    assert not problems, f"{len(problems)} of {len(found)} files:\n" + "\n\n".join(problems[:15])
    assert len(found) >= 200 and valid >= 40, (len(found), valid)


FORMATS = {
    "deployments.yaml": ("deployments.yaml", DEPLOYMENTS, DEPLOYMENTS_ALTERNATIVES, DEPLOYMENTS_OPEN),
    "prefect.yaml": ("prefect.yaml", PREFECT_YAML, PREFECT_YAML_ALTERNATIVES, PREFECT_YAML_OPEN),
    "acme": (".acme_portal_sdk/static_flow_deploy_config.yaml", ACME, ACME_ALTERNATIVES, ACME_OPEN),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FORMATS))
def test_deployment_file_mutations(tmp_path: Path, kind: str) -> None:
    filename, doc, alternatives, open_paths = FORMATS[kind]
    flows = flows_repo(tmp_path)
    (flows / "deployments.yaml").unlink()
    found = mutations(doc, yaml_text, alternatives, open_paths, ignores_unknown=filename.startswith("prefect"))
    found += [Mutation("base", yaml_text(doc), VALID, "")] + duplicated_lines(yaml_text(doc), r"^\s*[A-Za-z_-]+: \S")
    jobs = []
    for index, mutation in enumerate(found):
        folder = tmp_path / f"m{index}"
        shutil.copytree(flows.parent, folder / "repo", symlinks=True)
        target = folder / "repo" / "flows" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(mutation.text)
        (folder / "pipeline.toml").write_text(flows_config(folder / "repo" / "flows", target, folder))
        jobs.append({"config": str(folder / "pipeline.toml"), "args": ["flows"]})
    results = run_all(jobs, tmp_path)
    accepted: list[dict[str, Any]] = [job | {"args": ["list"]} for job, result in zip(jobs, results, strict=True) if result["rc"] == 0]
    listings = iter(run_all(accepted, tmp_path))
    problems = []
    for mutation, flows_run in zip(found, results, strict=True):
        problems += problems_of(mutation, flows_run)
        listing: dict[str, Any] = next(listings) if flows_run["rc"] == 0 else {"rc": 0, "output": ""}
        if listing["rc"] != 0 or "Traceback" in listing["output"]:
            problems.append(f"{mutation.name}: `doit list` after `doit flows` exits {listing['rc']}\n{listing['output'][-800:]}")
    valid = sum(1 for result in results if result["rc"] == 0)
    assert not problems, f"{len(problems)} of {len(found)} files:\n" + "\n\n".join(problems[:15])
    assert valid >= 10 and len(found) - valid >= 10, (len(found), valid)


def flows_config(flows: Path, deployments: Path, folder: Path) -> str:
    return f'''state_dir = "{folder / '.forkflow'}"

[project]
name = "orbit"

[flows]
path = "{flows}"
config = "{deployments}"

[environments.dev]
prefect_api_url = "http://127.0.0.1:9/api"
work_pool = "orbit-dev"
branch = "*"

[environments.prod]
prefect_api_url = "http://127.0.0.1:9/api"
work_pool = "orbit-prod"
branch = "main"
'''


# ---------------------------------------------------------------- hostile repositories

ESCAPE = "\x1b"


def alias_bomb(indent: str) -> str:
    """Nine levels of nine aliases: a few hundred bytes standing for 387 million values."""
    lines = [f"{indent}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{indent}{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    return "\n".join(lines) + "\n"


def hostile_prefect_yaml(parameters: str = "", name: str = "hello-nightly") -> str:
    return (f"name: orbit-flows\ndeployments:\n  - name: \"{name}\"\n    entrypoint: orbit_flows/hello.py:hello\n"
            + parameters)


EVIL = "evil\\x1b[31mred\\nfix: run this\\x07"
HOSTILE_FLOW = f'from prefect import flow\n\n\n@flow(name="{EVIL}")\ndef evil():\n    pass\n'
HUGE_SUM = "X = " + " + ".join(["1"] * 100_000) + "\n"
HUGE_NEGATION = "Y = " + "-" * 100_000 + "1\n"

# (name, deployment file name, its text, extra files in the flows folder, expected outcome, what a refusal names)
HOSTILE: list[tuple[str, str, str, dict[str, str], str, str]] = [
    ("prefect.yaml alias bomb in parameters", "prefect.yaml",
     hostile_prefect_yaml("    parameters:\n" + alias_bomb("      ")), {}, INVALID, "250,000 values"),
    ("deployments.yaml alias bomb", "deployments.yaml", "flows:\n  hello:\n    parameters:\n" + alias_bomb("      "),
     {}, INVALID, "250,000 values"),
    ("acme alias bomb", ".acme_portal_sdk/static_flow_deploy_config.yaml",
     "hello:\n  name: hello\n  import_path: orbit_flows.hello:hello\n  parameters:\n" + alias_bomb("    "), {}, INVALID,
     "250,000 values"),
    ("a value that contains itself", "prefect.yaml", hostile_prefect_yaml("    parameters: &p\n      me: *p\n"), {},
     INVALID, "inside its own anchor"),
    ("100,000 nested lists", "prefect.yaml",
     hostile_prefect_yaml("    parameters:\n      deep: " + "[" * 100_000 + "]" * 100_000 + "\n"), {}, INVALID, "levels deep"),
    ("200 nested mappings", "deployments.yaml",
     "flows:\n  hello:\n    parameters:\n" + "".join("  " * (level + 3) + f"k{level}:\n" for level in range(200)), {},
     INVALID, "levels deep"),
    ("a list as a mapping key", "prefect.yaml", hostile_prefect_yaml("    parameters:\n      ? [a, b]\n      : 1\n"), {},
     INVALID, "prefect.yaml:6: a mapping key is a list"),
    ("a file of 5 MB", "prefect.yaml", hostile_prefect_yaml("    description: \"" + "a" * 5_000_000 + "\"\n"), {},
     INVALID, "at most 4,194,304"),
    ("a 100,000-term sum in a flow file", "prefect.yaml", hostile_prefect_yaml(), {"orbit_flows/huge.py": HUGE_SUM},
     VALID, ""),
    ("a 100,000-fold negation in a flow file", "prefect.yaml", hostile_prefect_yaml(),
     {"orbit_flows/negation.py": HUGE_NEGATION}, VALID, ""),
    ("a flow name with control characters", "deployments.yaml", "every_flow: true\n",
     {"orbit_flows/evil.py": HOSTILE_FLOW}, EITHER, "evil"),
    ("a deployment name with control characters", "prefect.yaml", hostile_prefect_yaml(name=EVIL), {}, EITHER, "evil"),
]


@pytest.mark.slow
def test_hostile_repositories_are_refused_or_read_within_bounds(tmp_path: Path) -> None:
    flows = flows_repo(tmp_path)
    (flows / "deployments.yaml").unlink()
    jobs = []
    for index, (_, filename, text, extra, _, _) in enumerate(HOSTILE):
        folder = tmp_path / f"h{index}"
        shutil.copytree(flows.parent, folder / "repo", symlinks=True)
        for name, content in {filename: text, **extra}.items():
            target = folder / "repo" / "flows" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        (folder / "pipeline.toml").write_text(flows_config(folder / "repo" / "flows", folder / "repo" / "flows" / filename, folder))
        jobs.append({"config": str(folder / "pipeline.toml"), "args": ["flows"]})
    results = run_all(jobs, tmp_path)
    problems = []
    for (name, _, _, _, expect, key), result in zip(HOSTILE, results, strict=True):
        problems += problems_of(Mutation(name, "", expect, key), result)
        if ESCAPE in result["output"]:
            problems.append(f"{name}: a raw escape character reached the output")
    assert not problems, f"{len(problems)} of {len(HOSTILE)} cases:\n" + "\n\n".join(problems)


# names Prefect's own patterns refuse, as flow and deployment names: `deploy --validate-only` refuses them (exit 2)
REFUSED_NAMES: list[tuple[str, str, str, dict[str, str]]] = [
    ("a flow name with a slash", "deployments.yaml", "every_flow: true\n",
     {"orbit_flows/slash.py": 'from prefect import flow\n\n\n@flow(name="reports/daily")\ndef slash():\n    pass\n'}),
    ("a deployment name with a percent sign", "prefect.yaml", hostile_prefect_yaml(name="50%"), {}),
    ("a deployment name with a control character and a slash", "prefect.yaml", hostile_prefect_yaml(name=EVIL + "/x"),
     {}),
]


@pytest.mark.slow
def test_names_prefect_refuses_are_refused_by_validation_within_bounds(tmp_path: Path) -> None:
    flows = flows_repo(tmp_path)
    (flows / "deployments.yaml").unlink()
    jobs = []
    for index, (_, filename, text, extra) in enumerate(REFUSED_NAMES):
        folder = tmp_path / f"n{index}"
        shutil.copytree(flows.parent, folder / "repo", symlinks=True)
        for name, content in {filename: text, **extra}.items():
            (folder / "repo" / "flows" / name).write_text(content)
        (folder / "pipeline.toml").write_text(flows_config(folder / "repo" / "flows", folder / "repo" / "flows" / filename, folder))
        jobs.append({"config": str(folder / "pipeline.toml"), "args": ["deploy", "--validate-only"]})
    results = run_all(jobs, tmp_path)
    problems = []
    for (name, *_), result in zip(REFUSED_NAMES, results, strict=True):
        problems += problems_of(Mutation(name, "", INVALID, "Prefect refuses names"), result)
        if ESCAPE in result["output"]:
            problems.append(f"{name}: a raw escape character reached the output")
    assert not problems, f"{len(problems)} of {len(REFUSED_NAMES)} cases:\n" + "\n\n".join(problems)
