"""`python -m tasks.plan`: what merging this branch would do, checked without changing anything.

It runs, one after another, the read-only steps the pull-request workflow
asks for: the config check (`doit list`), `doit check-version`,
`doit sync --dry-run`, `doit flows` and `doit deploy --validate-only`, and
`doit deploy --dry-run` for each environment the target branch deploys to.
Every step runs as the target branch would (FORKFLOW_BRANCH is the base), so
the deployment names are the ones the merge would write. It writes
reports/plan.md (the job summary and pull-request comment) and plan.json,
prints the Markdown, and exits 1 when a check failed: a problem that would
fail the pipeline after the merge.

    python -m tasks.plan --base main [--head feature/x]

It sits beside dodo.py: it runs doit, one command at a time (each holds the
state lock while it runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from tasks.core.deploynames import environments_for_branch
from tasks.core.errors import ForkflowError
from tasks.core.plan import Plan, Step, markdown
from tasks.core.secrets import mask_urls
from tasks.pipeline.settings import REPO_ROOT, Settings, read_report, settings, write_report

STEP_TIMEOUT = 1800.0


def doit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "doit", "-f", str(REPO_ROOT / "dodo.py"), "-d", str(REPO_ROOT), *args]
    try:
        return subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False,
                              timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer within {STEP_TIMEOUT:.0f} s: {err}")


def step(name: str, args: list[str], env: dict[str, str]) -> Step:
    done = doit(*args, env=env)
    command = "doit " + " ".join(args)
    if done.returncode == 0:
        return Step(name, command, "passed")
    return Step(name, command, "failed", mask_urls(without_progress(done.stdout + done.stderr)[-4000:]))


def without_progress(output: str) -> str:
    """doit's output without its progress lines (`.  task`, `-- task`) and the summary table: the messages."""
    kept = []
    for line in output.strip().splitlines():
        if line.strip() == "summary:":
            break
        if not line.startswith((".  ", "-- ", "TaskFailed - ", "TaskError - ")):
            kept.append(line)
    return "\n".join(kept).strip() or output.strip()


def has_credentials(current: Settings, environment: str) -> bool:
    """Whether this run holds a credential for the environment (a pull request from a fork gets no secrets)."""
    env = current.config.environments[environment]
    names = (env.api_key_env or "PREFECT_API_KEY", env.auth_string_env or "PREFECT_API_AUTH_STRING")
    return any(os.environ.get(name) for name in names)


def deploy_plan(current: Settings, environment: str, env: dict[str, str]) -> tuple[Step, dict[str, Any] | None]:
    found = step(f"deploy plan: {environment}", ["deploy", "--dry-run"], {**env, "FORKFLOW_ENVIRONMENT": environment})
    refused = any(code in found.detail for code in ("401", "403", "Unauthorized", "Forbidden"))
    if found.status == "failed" and refused and not has_credentials(current, environment):
        return Step(found.name, found.command, "skipped", f"no credentials for {environment} in this run (a pull "
                    "request from a fork gets no secrets); first lines: " + found.detail[:300]), None
    return found, (read_report("deploy", current) if found.status == "passed" else None)


def target_environments(current: Settings, base: str) -> list[str]:
    chosen = os.environ.get("FORKFLOW_ENVIRONMENT", "")
    if chosen:
        return [name.strip() for name in chosen.split(",") if name.strip()]
    patterns = {name: env.branch for name, env in current.config.environments.items()}
    return environments_for_branch(patterns, base)


def run_plan(current: Settings, base: str, head: str) -> Plan:
    env = {"FORKFLOW_BRANCH": base}
    steps = [step("config", ["list"], env)]
    if steps[0].status == "failed":
        return Plan(head, base, steps)
    sync = ""
    if current.config.fork is not None:
        steps.append(step("versions", ["check-version"], env))
        steps.append(step("sync plan", ["sync", "--dry-run"], env))
        sync = sync_markdown(current)
    deploys: dict[str, dict[str, Any]] = {}
    if current.config.flows is not None:
        steps.append(step("flows", ["flows"], env))
        steps.append(step("deploy check", ["deploy", "--validate-only"], env))
        for environment in target_environments(current, base):
            found, report = deploy_plan(current, environment, env)
            steps.append(found)
            if report is not None:
                deploys[environment] = report
    return Plan(head, base, steps, deploys, sync)


def sync_markdown(current: Settings) -> str:
    from tasks.core.sync import summary_markdown

    report = read_report("sync", current)
    return summary_markdown(report) if report and report.get("dry_run") else ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=os.environ.get("GITHUB_BASE_REF", ""),
                        help="the branch the change merges into (default: $GITHUB_BASE_REF)")
    parser.add_argument("--head", default=os.environ.get("GITHUB_HEAD_REF", "") or "this checkout",
                        help="the branch being merged (default: $GITHUB_HEAD_REF)")
    options = parser.parse_args(argv)
    if not options.base:
        print("forkflow plan: no target branch\n  where: --base / GITHUB_BASE_REF\n"
              "  fix:   pass --base <branch the change merges into>", file=sys.stderr)
        return 2
    try:
        current = settings()
    except ForkflowError as err:
        print(f"forkflow plan: {mask_urls(str(err))}", file=sys.stderr)
        return err.exit_code
    plan = run_plan(current, options.base, options.head)
    text = markdown(plan)
    (current.reports_dir / "plan.md").parent.mkdir(parents=True, exist_ok=True)
    (current.reports_dir / "plan.md").write_text(text, encoding="utf-8")
    write_report("plan", {"head": plan.head, "base": plan.base, "steps": [asdict(s) for s in plan.steps],
                          "environments": list(plan.deploys), "failed": [s.name for s in plan.failed]}, current)
    print(text, end="")
    return 1 if plan.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
