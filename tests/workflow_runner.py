"""Run rendered GitHub workflows here, job by job, as a GitHub runner would: for the tests of the workflows.

Each job gets a fresh checkout (a copy of the repository's files committed
as one commit dated as the source's newest, as `actions/checkout` gives one
commit to every job of a run), its steps run with bash as GitHub runs them
(`bash --noprofile --norc -eo pipefail`), with the workflow's, job's and
step's `env:`, `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_STEP_SUMMARY`.
Artifacts are handed from job to job as files, as upload/download-artifact
do. `${{ }}` expressions are evaluated (contexts github, inputs, secrets,
vars, env, matrix, needs, steps; the operators and the functions the
templates use). Only what cannot run here is stood in for, and each stand-in
is named: `nox` runs the session of the checkout's noxfile.py without making a
virtualenv and `python -m pip install` installs nothing (forkflow is already
installed), setup-python and the caches do
nothing, `gh run list/download` list the earlier workflow runs (newest
first, with their event and conclusion) and read their artifacts, and attest-build-provenance (which needs GitHub's OIDC token) only
checks that its subjects exist. An action the runner does not know fails the job, so a new
step in a template cannot pass unnoticed.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------ expressions

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>\|\||&&|==|!=|<=|>=|[!()<>,\[\]])"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))")


def tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read expression at {text[position:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


class Expression:
    """A GitHub Actions expression over a dict of contexts (a recursive-descent reader of its grammar)."""

    def __init__(self, text: str, contexts: dict[str, Any]) -> None:
        self.items = tokens(text)
        self.position = 0
        self.contexts = contexts

    def value(self) -> Any:
        result = self.either()
        if self.position != len(self.items):
            raise ValueError(f"unexpected {self.items[self.position][1]!r}")
        return result

    def peek(self) -> str:
        return self.items[self.position][1] if self.position < len(self.items) else ""

    def take(self) -> tuple[str, str]:
        self.position += 1
        return self.items[self.position - 1]

    def either(self) -> Any:
        left = self.both()
        while self.peek() == "||":
            self.take()
            right = self.both()
            left = left if truthy(left) else right
        return left

    def both(self) -> Any:
        left = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            left = right if truthy(left) else left
        return left

    def compare(self) -> Any:
        left = self.unary()
        while self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            left = compare(op, left, right)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            inner = self.either()
            self.take()
            return inner
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            return self.call(text)
        found = self.lookup(text)
        while self.peek() == "[":
            self.take()
            key = self.either()
            self.take()
            found = found.get(key) if isinstance(found, dict) else None
        return found

    def call(self, name: str) -> Any:
        self.take()
        args = []
        while self.peek() != ")":
            args.append(self.either())
            if self.peek() == ",":
                self.take()
        self.take()
        return call(name, args, self.contexts)

    def lookup(self, dotted: str) -> Any:
        found: Any = self.contexts
        for part in dotted.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return found


def compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    table = {"==": left == right, "!=": left != right}
    if op in table:
        return bool(table[op])
    return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])


def call(name: str, args: list[Any], contexts: dict[str, Any]) -> Any:
    status = contexts.get("__status__", "success")
    functions: dict[str, Any] = {
        "always": lambda: True,
        "success": lambda: status == "success",
        "failure": lambda: status == "failure",
        "cancelled": lambda: False,
        "fromJSON": json.loads,
        "toJSON": lambda value: json.dumps(value, indent=2),
        "contains": lambda haystack, needle: (needle in haystack if isinstance(haystack, list | dict)
                                              else str(needle).lower() in str(haystack).lower()),
        "startsWith": lambda text, start: str(text).lower().startswith(str(start).lower()),
        "endsWith": lambda text, end: str(text).lower().endswith(str(end).lower()),
        "format": lambda text, *values: re.sub(r"\{(\d+)\}", lambda m: str(values[int(m.group(1))]), text),
        "join": lambda values, sep=",": sep.join(map(str, values)),
    }
    if name not in functions:
        raise ValueError(f"the workflow runner does not know the function {name}()")
    return functions[name](*args)


EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def evaluate(value: Any, contexts: dict[str, Any]) -> Any:
    """`value` with every `${{ }}` replaced; a string that is one whole expression keeps the expression's type."""
    if isinstance(value, dict):
        return {key: evaluate(item, contexts) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, contexts) for item in value]
    if not isinstance(value, str) or "${{" not in value:
        return value
    whole = EMBEDDED.fullmatch(value.strip())
    if whole:
        return Expression(whole.group(1), contexts).value()
    return EMBEDDED.sub(lambda m: text_of(Expression(m.group(1), contexts).value()), value)


def condition(text: Any, contexts: dict[str, Any]) -> bool:
    """A job's or step's `if:` (with or without `${{ }}`)."""
    if text is None:
        return bool(call("success", [], contexts))
    if isinstance(text, bool):
        return text
    inner = EMBEDDED.fullmatch(str(text).strip())
    expression = inner.group(1) if inner else str(text)
    uses_status = re.search(r"\b(always|success|failure|cancelled)\(", expression)
    ok = truthy(Expression(expression, contexts).value())
    return ok if uses_status else ok and contexts.get("__status__", "success") == "success"


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# ------------------------------------------------------------------ running


@dataclass
class JobResult:
    name: str
    result: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    summary: str = ""
    workspace: Path | None = None
    attested: list[str] = field(default_factory=list)


@dataclass
class Runner:
    """Runs workflows of `source` (a repository's files) under `root`, artifacts kept per workflow run."""

    source: Path
    root: Path
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    stand_ins: list[str] = field(default_factory=list)
    runs: dict[str, Path] = field(default_factory=dict)  # workflow name -> its newest run's artifacts folder
    count: int = 0  # workflow runs so far
    history: list[dict[str, Any]] = field(default_factory=list)  # the finished runs, oldest first, as `gh run list` sees them

    def run(self, file: Path, event: str, inputs: dict[str, Any] | None = None, ref: str = "main",
            extra_env: dict[str, str] | None = None, github_extra: dict[str, Any] | None = None,
            ) -> dict[str, list[JobResult]]:
        import yaml

        workflow = yaml.safe_load(file.read_text(encoding="utf-8"))
        name = str(workflow["name"])
        self.count += 1
        artifacts = self.root / f"{name}-{self.count}-artifacts"
        artifacts.mkdir(parents=True)
        self.runs[name] = artifacts
        github = {"event_name": event, "ref_name": ref, "ref": f"refs/heads/{ref}", "repository": "acme/flows",
                  "token": "local-token", "workspace": "", "sha": "0" * 40, **(github_extra or {})}
        base = {"github": github, "inputs": inputs or {}, "secrets": self.secrets, "vars": self.variables}
        done: dict[str, list[JobResult]] = {}
        for job_id in job_order(workflow["jobs"]):
            job = workflow["jobs"][job_id]
            needs = [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])
            contexts = {**base, "needs": {n: needs_context(done[n]) for n in needs}, "env": {},
                        "__status__": "success" if all(r.result == "success" for n in needs for r in done[n])
                        else "failure"}
            done[job_id] = self.run_job(workflow, job_id, job, contexts, artifacts, extra_env or {})
        failed = any(r.result == "failure" for results in done.values() for r in results)
        self.history.append({"databaseId": self.count, "workflow": file.name, "event": event, "headBranch": ref,
                             "conclusion": "failure" if failed else "success", "artifacts": str(artifacts)})
        return done

    def run_job(self, workflow: dict[str, Any], job_id: str, job: dict[str, Any], contexts: dict[str, Any],
                artifacts: Path, extra_env: dict[str, str]) -> list[JobResult]:
        if not condition(job.get("if"), contexts):
            return [JobResult(job_id, "skipped")]
        cells = matrix_cells(evaluate(job.get("strategy", {}).get("matrix"), contexts))
        results = []
        for number, cell in enumerate(cells):
            cell_contexts = {**contexts, "matrix": cell}
            workspace = self.root / f"{workflow['name']}-{self.count}-{job_id}-{number}"
            results.append(Job(self, workflow, job, cell_contexts, workspace, artifacts, extra_env).run(job_id))
        return results


def job_order(jobs: dict[str, Any]) -> list[str]:
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [j for j, job in jobs.items() if j not in order and all(
            n in order for n in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])))]
        if not ready:
            raise ValueError("the jobs' needs form a cycle")
        order += ready
    return order


def needs_context(results: list[JobResult]) -> dict[str, Any]:
    result = "success" if all(r.result == "success" for r in results) else (
        "skipped" if all(r.result == "skipped" for r in results) else "failure")
    outputs: dict[str, str] = {}
    for item in results:
        outputs.update(item.outputs)
    return {"result": result, "outputs": outputs}


def matrix_cells(matrix: Any) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    axes = {key: values for key, values in matrix.items() if key not in ("include", "exclude")}
    cells: list[dict[str, Any]] = ([dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
                                   if axes else [])
    excluded = matrix.get("exclude") or []
    cells = [c for c in cells if not any(all(c.get(k) == v for k, v in e.items()) for e in excluded)]
    for extra in matrix.get("include") or []:
        cells.append(dict(extra))
    return cells or [{}]


class Job:
    """One job (one matrix cell): a fresh checkout, its steps in order, its outputs."""

    def __init__(self, runner: Runner, workflow: dict[str, Any], job: dict[str, Any], contexts: dict[str, Any],
                 workspace: Path, artifacts: Path, extra_env: dict[str, str]) -> None:
        self.runner, self.workflow, self.job = runner, workflow, job
        self.contexts = {**contexts, "steps": {}}
        self.workspace, self.artifacts = workspace, artifacts
        self.env: dict[str, str] = {}
        self.extra_env = extra_env
        self.log: list[str] = []
        self.attested: list[str] = []
        self.summary = workspace.parent / f"{workspace.name}.summary.md"

    def run(self, job_id: str) -> JobResult:
        self.workspace.mkdir(parents=True)
        self.env = {**text_values(evaluate(self.workflow.get("env", {}), self.contexts)),
                    **text_values(evaluate(self.job.get("env", {}), self.contexts))}
        status = "success"
        for step in self.job["steps"]:
            contexts = {**self.contexts, "env": self.env, "__status__": status}
            if not condition(step.get("if"), contexts):
                continue
            if not self.step(step, contexts):
                status = "failure"
        outputs = text_values(evaluate(self.job.get("outputs", {}), {**self.contexts, "env": self.env}))
        summary = self.summary.read_text(encoding="utf-8") if self.summary.exists() else ""
        return JobResult(job_id, status, outputs, "\n".join(self.log), summary, self.workspace, self.attested)

    def step(self, step: dict[str, Any], contexts: dict[str, Any]) -> bool:
        if "uses" in step:
            return self.action(str(step["uses"]).split("@")[0], evaluate(step.get("with", {}), contexts))
        env = {**self.env, **text_values(evaluate(step.get("env", {}), contexts))}
        outputs = self.workspace.parent / f"{self.workspace.name}.output"
        outputs.write_text("")
        env_file = self.workspace.parent / f"{self.workspace.name}.env"
        env_file.write_text("")
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
                              cwd=self.workspace, env=self.process_env(env, outputs, env_file), capture_output=True,
                              text=True, timeout=3600, check=False)
        self.log.append(f"--- {step.get('name', step['run'][:60])} (exit {done.returncode})\n{done.stdout}{done.stderr}")
        if "id" in step:
            self.contexts["steps"][step["id"]] = {"outputs": key_values(outputs.read_text())}
        self.env.update(key_values(env_file.read_text()))
        return done.returncode == 0

    def process_env(self, env: dict[str, str], outputs: Path, env_file: Path) -> dict[str, str]:
        shims = Path(__file__).parent / "workflow_shims"
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("FORKFLOW_", "PREFECT_", "TWINE_", "GITHUB_"))}
        return {**keep, **self.extra_env, **env, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
                "GITHUB_OUTPUT": str(outputs), "GITHUB_ENV": str(env_file), "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_REPOSITORY": "acme/flows",
                "WORKFLOW_RUNNER_PYTHON": sys.executable,
                "WORKFLOW_RUNNER_RUNS": json.dumps(self.runner.history)}

    def action(self, name: str, given: dict[str, Any]) -> bool:
        actions = {"actions/checkout": self.checkout, "actions/setup-python": self.nothing,
                   "actions/upload-artifact": self.upload, "actions/download-artifact": self.download,
                   "actions/cache/restore": self.nothing, "actions/cache/save": self.nothing,
                   "actions/attest-build-provenance": self.attest}
        if name not in actions:
            self.log.append(f"--- {name}: the workflow runner does not know this action")
            return False
        return bool(actions[name](given))

    def nothing(self, given: dict[str, Any]) -> bool:
        return True

    def attest(self, given: dict[str, Any]) -> bool:
        """Stand-in: signing needs GitHub's OIDC token; what is checked here is that the subjects exist."""
        patterns = [line.strip() for line in str(given.get("subject-path", "")).splitlines() if line.strip()]
        subjects = [str(p.relative_to(self.workspace)) for pattern in patterns for p in sorted(self.workspace.glob(pattern))]
        checksums = self.workspace / str(given.get("subject-checksums", ""))
        if given.get("subject-checksums") and checksums.is_file():
            subjects += [line.split()[-1] + "@sha256:" + line.split()[0] for line in checksums.read_text().splitlines()
                         if line.strip()]
        self.log.append("--- attest-build-provenance (stand-in, nothing signed) for:\n" + "\n".join(subjects))
        self.attested.extend(subjects)
        return bool(subjects)

    def checkout(self, given: dict[str, Any]) -> bool:
        copy_checkout(self.runner.source, self.workspace)
        commit_checkout(self.workspace, commit_time(self.runner.source))
        return True

    def upload(self, given: dict[str, Any]) -> bool:
        paths = [line.strip() for line in str(given.get("path", "")).splitlines() if line.strip()]
        found = [p for pattern in paths for p in sorted(self.workspace.glob(pattern))]
        if not found:
            return str(given.get("if-no-files-found", "warn")) != "error"
        target = self.artifacts / str(given.get("name", "artifact"))
        # as upload-artifact: the root is the one path's folder (or the folder itself), else the paths' common parent
        single = found[0].parent if found[0].is_file() else found[0]
        root = single if len(found) == 1 else common_parent(found)
        for path in found:
            copy_path(path, target / path.relative_to(root))
        return True

    def download(self, given: dict[str, Any]) -> bool:
        into = self.workspace / str(given.get("path", "."))
        names = [str(given["name"])] if given.get("name") else sorted(p.name for p in self.artifacts.iterdir())
        for name in names:
            source = self.artifacts / name
            if not source.is_dir():
                self.log.append(f"--- download-artifact: no artifact {name}")
                return False
            copy_path(source, into if given.get("name") else into / name)
        return True


def text_values(values: dict[str, Any]) -> dict[str, str]:
    return {str(key): text_of(value) for key, value in values.items()}


def key_values(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delimiter = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delimiter:
                    break
                body.append(item)
            found[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            found[key] = value
    return found


def common_parent(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p) for p in paths]))


def copy_path(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def copy_checkout(source: Path, target: Path) -> None:
    """What actions/checkout gives: the repository's files (tracked and new, not ignored), no state of earlier runs."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (source / name).is_file() and not fnmatch.fnmatch(name, "*/__pycache__/*"):
            copy_path(source / name, target / name)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)


FIXED_COMMIT_TIME = "1767225600"  # 2026-01-01T00:00:00Z: the commit time of a source with no commits


def commit_time(source: Path) -> str:
    """The source's newest commit time (seconds since the epoch); a fixed time when it has none."""
    done = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=source, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else FIXED_COMMIT_TIME


def commit_checkout(target: Path, when: str) -> None:
    """What actions/checkout checks out is a commit: the copied files as one, dated `when`, with a fixed author,
    so every job of a run (as every job of a GitHub run, which checks out one sha) sees the same commit."""
    who = {"GIT_AUTHOR_NAME": "runner", "GIT_AUTHOR_EMAIL": "runner@localhost", "GIT_COMMITTER_NAME": "runner",
           "GIT_COMMITTER_EMAIL": "runner@localhost", "GIT_AUTHOR_DATE": f"@{when} +0000",
           "GIT_COMMITTER_DATE": f"@{when} +0000"}
    env = {**os.environ, **who}
    subprocess.run(["git", "add", "-A"], cwd=target, check=True, env=env)
    subprocess.run(["git", "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "--allow-empty", "-m", "checkout"],
                   cwd=target, check=True, env=env)
