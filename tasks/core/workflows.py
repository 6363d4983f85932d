"""GitHub workflows for the repository that runs forkflow: which ones a config feeds, what they are rendered from.

The templates (templates/github/*.yml.j2) are jinja2 with delimiters that
leave GitHub's `${{ ... }}` expressions alone: `[= value =]`, `[% block %]`,
`[# comment #]`. Everything a template needs comes from `workflow_context`;
the stage reads the templates and writes the files.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.core.config_plain import WORKFLOW_NAMES
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.names import split_names, unknown_names

if TYPE_CHECKING:
    import jinja2

    from tasks.core.config import Config, GitHub

TEMPLATE_SUFFIX = ".yml.j2"
WORKFLOWS_FOLDER = ".github/workflows"

# Full commit SHAs of the actions' release tags (the tag is in the comment).
ACTION_PINS = {
    "checkout": "actions/checkout@34e114876b0b11c390a56381ad16ebd13914f8d5  # v4.3.1",
    "setup_python": "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065  # v5.6.0",
    "upload_artifact": "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02  # v4.6.2",
    "download_artifact": "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093  # v4.3.0",
    "cache_restore": "actions/cache/restore@5a3ec84eff668545956fd18022155c47e93e2684  # v4.2.3",
    "cache_save": "actions/cache/save@5a3ec84eff668545956fd18022155c47e93e2684  # v4.2.3",
    # v3.2.0, read from the tag in a clone of github.com/actions/attest-build-provenance (v4 wraps actions/attest)
    "attest_build_provenance": "actions/attest-build-provenance@96278af6caaf10aea03fd8d33a09a777ca52d62f  # v3.2.0",
}

SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")
GLOB_PART = re.compile(r"\*+|\?|\[[^\]]*\]")


@dataclass(frozen=True)
class Rendered:
    """One workflow file: its name, path under the target, and the text it should have."""

    name: str
    path: str
    text: str


def github_section(config: Config) -> GitHub:
    if config.github:
        return config.github
    from tasks.core.config import GitHub

    return GitHub()


def unavailable_reason(config: Config, name: str) -> str | None:
    """Why the config cannot feed this workflow, or None when it can."""
    needs: dict[str, list[tuple[bool, str]]] = {
        "sync-upstream": [(config.fork is None, "the config has no [fork] section")],
        "release": [(config.fork is None, "the config has no [fork] section")],
        "deploy": [(config.flows is None, "the config has no [flows] section"),
                   (not any(env.branch for env in config.environments.values()),
                    "no [environments.<name>] has a `branch`")],
        "promote": [(config.flows is None, "the config has no [flows] section"),
                    (len(config.environments) < 2, "promoting needs at least two [environments.<name>]")],
        "pull-request": [(config.fork is None and config.flows is None,
                          "the config has neither [fork] nor [flows]: a pull request has nothing to plan")],
    }
    return next((reason for missing, reason in needs.get(name, []) if missing), None)


def parse_only(only: str) -> list[str]:
    """`--only sync-upstream,release` as a list; unknown names are an error."""
    names = split_names(only)
    unknown = unknown_names(names, WORKFLOW_NAMES)
    if unknown:
        raise ConfigError(f"workflows: unknown workflow(s) {unknown}", where="doit workflows --only",
                          fix=f"choose from: {', '.join(WORKFLOW_NAMES)}")
    return names


def choose_workflows(config: Config, only: list[str], source: str) -> tuple[list[str], dict[str, str]]:
    """The workflows to render and, for the others, why not.

    Asked for by `--only` or `[github] workflows`: rendered, or an error when the config cannot feed one.
    Otherwise every workflow the config has the sections for.
    """
    listed = github_section(config).workflows
    asked = only or (list(listed) if listed is not None else [])
    if asked:
        problems = [f"{name}: {reason}" for name in asked if (reason := unavailable_reason(config, name))]
        if problems:
            where = "doit workflows --only" if only else f"{source}: [github] workflows"
            raise ConfigError("workflows: cannot render " + "; ".join(problems), where=where,
                              fix="add the sections named, or leave those workflows out")
        chosen = [name for name in WORKFLOW_NAMES if name in asked]
        return chosen, {name: "not asked for" for name in WORKFLOW_NAMES if name not in asked}
    reasons = {name: unavailable_reason(config, name) for name in WORKFLOW_NAMES}
    return [n for n, r in reasons.items() if r is None], {n: r for n, r in reasons.items() if r is not None}


def check_relative_path(value: str, key: str, source: str) -> str:
    if not SAFE_PATH.match(value) or value.startswith("-"):
        raise ConfigError(f"{key} {value!r} cannot be written into a workflow safely", where=source,
                          fix="use a path of letters, digits, '.', '_', '-' and '/'")
    return value


def push_filter(pattern: str) -> str:
    """A GitHub `on.push.branches` pattern matching at least what fnmatch matches.

    fnmatch's `*` crosses '/', GitHub's does not, and GitHub's `?` means "optional
    previous character"; every glob part becomes `**`, and the route job applies
    the exact fnmatch rule.
    """
    return re.sub(r"(\*\*)+", "**", GLOB_PART.sub("**", pattern))


def check_branch(env: str, branch: str, source: str) -> None:
    if "${{" in branch or "\n" in branch or branch.startswith("!") or not branch.strip():
        raise ConfigError(f"environments.{env}.branch = {branch!r} cannot be used as a workflow branch filter",
                          where=source, fix="use a branch name or a glob like 'release/*' (no '${{', no leading '!')")


def branch_patterns(config: Config, source: str) -> dict[str, str]:
    patterns = {name: env.branch for name, env in config.environments.items() if env.branch}
    for name, branch in patterns.items():
        check_branch(name, branch, source)
    return patterns


def workflow_context(config: Config, config_path: str, state_dir: str, source: str) -> dict[str, Any]:
    """Everything the templates use, from the config and where the config and state are in the target."""
    github = github_section(config)
    patterns = branch_patterns(config, source)
    environments = list(config.environments)
    return {
        "project": config.project.name,
        "python": github.python,
        "runner": github.runner,
        "config_path": check_relative_path(config_path, "the config file's path in the target", source),
        "state_dir": check_relative_path(state_dir, "the state folder's path in the target", source),
        "actions": ACTION_PINS,
        "fork": config.fork,
        "has_index": config.index is not None,
        "has_images": config.images is not None,
        "emulated_platforms": emulated_platforms(config),
        "split_platforms": config.images is not None and len(config.images.platforms) > 1,
        "publish_environment": github.publish_environment,
        "images_environment": github.images_environment,
        "attestations": github.attestations,
        "trusted_publishing": trusted_publishing(config),
        "environments": environments,
        "branch_patterns": json.dumps(patterns, sort_keys=True),
        "push_branches": sorted({push_filter(p) for p in patterns.values()}),
        "promote_source": environments[0] if environments else "",
        "promote_target": environments[1] if len(environments) > 1 else "",
        "plan_credentials": plan_credentials(config),
        "sync_schedule": github.sync_schedule or "",
        "release_schedule": github.release_schedule or "",
        "protected": bool(config.fork and config.fork.protected),
        "conflict_label": github.conflict_label,
    }


def plan_credentials(config: Config) -> list[str]:
    """The variables holding the Prefect credentials of the environments a branch deploys to; the pull-request
    plan reads each from a PLAN_-prefixed secret holding a read-only credential."""
    names = set()
    for env in config.environments.values():
        if env.branch:
            names |= {env.api_key_env or "PREFECT_API_KEY", env.auth_string_env or "PREFECT_API_AUTH_STRING"}
    return sorted(names)


TRUSTED_PUBLISHING_HOSTS = ("upload.pypi.org", "test.pypi.org")


def trusted_publishing(config: Config) -> bool:
    """Whether `[index] url` is PyPI's (or TestPyPI's) upload URL, where twine publishes with the job's OIDC token
    (trusted publishing) when no TWINE_PASSWORD is set."""
    from urllib.parse import urlsplit

    return config.index is not None and urlsplit(config.index.url).hostname in TRUSTED_PUBLISHING_HOSTS


def emulated_platforms(config: Any) -> str:
    """The image platforms a GitHub-hosted amd64 runner builds under QEMU (no `[github] runners` entry names a
    runner of their own), as `linux/arm64, ...`; "" for none."""
    from tasks.core.image_tags import cpu

    platforms = config.images.platforms if config.images is not None else ()
    native = github_section(config).runners
    return ", ".join(p for p in platforms if cpu(p)[1] != "x86_64" and p not in native)


def quote(value: Any) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value))


def template_environment(templates: dict[str, str]) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader(templates),
        variable_start_string="[=", variable_end_string="=]",
        block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False,
    )
    env.filters["quote"] = quote
    return env


def render_workflows(templates: dict[str, str], names: list[str], context: dict[str, Any]) -> list[Rendered]:
    """Render each named workflow from `<name>.yml.j2` and check the result is YAML with jobs."""
    env = template_environment(templates)
    rendered = []
    for name in names:
        template = name + TEMPLATE_SUFFIX
        if template not in templates:
            raise ForkflowError(f"workflows: no template {template}", where="templates/github",
                                fix=f"restore templates/github/{template}")
        text = env.get_template(template).render(**context)
        check_workflow_text(text, template)
        rendered.append(Rendered(name, f"{WORKFLOWS_FOLDER}/{name}.yml", text))
    return rendered


def check_workflow_text(text: str, template: str) -> None:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ForkflowError(f"workflows: {template} rendered to invalid YAML: {err}", where=f"templates/github/{template}",
                            fix="fix the template") from None
    if not isinstance(data, dict) or "jobs" not in data:
        raise ForkflowError(f"workflows: {template} rendered to YAML without `jobs`", where=f"templates/github/{template}",
                            fix="fix the template")


def file_status(old: str | None, new: str) -> str:
    if old is None:
        return "created"
    return "unchanged" if old == new else "updated"


def unified_diff(old: str | None, new: str, path: str) -> str:
    """The change from `old` (None: no file yet) to `new` as a unified diff; empty when equal."""
    before = [] if old is None else old.splitlines(keepends=True)
    after = new.splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, fromfile="/dev/null" if old is None else f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
