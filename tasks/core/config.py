"""pipeline.toml as frozen, validated models.

`parse_config` turns the parsed TOML mapping into a `Config` or raises a
`ConfigError` naming the file, the key path, the value and what is allowed.
Reading the file and checking paths on disk happen in `tasks.pipeline.settings`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationError, field_validator, model_validator

from tasks.core.config_base import NAME_PATTERN, PYTHON_PATTERN, Section
from tasks.core.config_images import Images
from tasks.core.config_plain import config_patterns_of
from tasks.core.errors import ConfigError, validation_problem
from tasks.core.values import branch_name, http_url, parse_toml


class Project(Section):
    name: str = Field(pattern=NAME_PATTERN, description="project name, lowercase (used in deployment names)")


class Fork(Section):
    path: str = Field(description="working clone of the fork, cloned by `sync` when missing")
    upstream: str = Field(description="upstream repository: URL or local path")
    origin: str = Field(description="the fork's repository: URL or local path")
    main: str = "main"
    release: str = "release"
    upstream_main: str = "main"
    keep_backups: StrictInt = Field(default=5, ge=0, description="backup branches kept after a sync (in the clone and on origin)")
    push_backups: StrictBool = Field(default=True, description="push a sync's backup branch to origin with the rewritten release")
    protected: StrictBool = Field(default=False, description="origin's release branch is protected: sync pushes "
                                                             "`sync/<release>-<date>` for a pull request instead")

    @field_validator("main", "release", "upstream_main")
    @classmethod
    def _branch(cls, value: str) -> str:
        return branch_name(value)

    @model_validator(mode="after")
    def _two_branches(self) -> Fork:
        if self.main == self.release:
            raise ValueError(f"main and release are both {self.main!r}: sync rebases release onto main, "
                             "so they must be two branches")
        return self


class UiBundle(Section):
    """A dashboard of the core package: an npm project built into the core's tree (`[[packages.ui]]`)."""

    source: str = Field(description="the npm project's folder, relative to the core folder (e.g. ui)")
    target: str = Field(description="where its dist/ goes, relative to the core folder (e.g. src/prefect/server/ui)")
    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="task ui:<name>; default: source's name")


class Packages(Section):
    core: str = "."
    ui: tuple[UiBundle, ...] | None = Field(
        default=None, description="UI bundles of the core package, built with npm before its wheel; default: "
                                  "each ui*/ folder with a package.json beside src/<core>/server/ (Prefect's layout)")
    client: str | None = "client"
    client_recipe: Literal["auto", "script", "paths"] = Field(
        default="auto", description="how the client tree is made: the fork's own script (script), "
                                    "client_remove/client_keep (paths), or the script when it exists (auto)")
    client_script: str = Field(default="client/build_client.sh",
                               description="the fork's client recipe, run with TMPDIR set to the folder it fills")
    client_remove: tuple[str, ...] = ("cli", "server", "testing")
    client_keep: tuple[str, ...] = Field(default=(), description="paths kept inside client_remove folders")
    integrations: str = "src/integrations/*"
    skip: tuple[str, ...] = Field(
        default=(), description="integrations (or the client) the fork does not ship: never built, verified, "
                                "published or put in images; a shipped package may not depend on one")
    verify_python: tuple[str, ...] | None = Field(
        default=None, description="Pythons each wheel is installed and imported on before publishing; "
                                  "default: [images] python, else the Python running forkflow")
    constraints: str | None = Field(
        default=None, description="pip constraints file (pins) for third-party dependencies wherever the wheels are "
                                  "installed: verification, the install check, the image wheelhouse")
    constraints_lock: str | None = Field(
        default=None, pattern=r"(^|/)uv\.lock$",
        description="the fork's uv.lock (a path in the checkout): its pins, exported with `uv export --no-dev`, "
                    "are constraints too; a pin in [packages] constraints wins over the lock's")
    pins_name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        description="name of the pins package published with each core release (the third-party versions the core "
                    "was verified with, version = the core's); default: `<project name>-pins`")
    version_command: tuple[str, ...] | None = Field(
        default=None, description="command run after installing the core package, which must print its version; "
                                  "default: `<core script> version` when the core package has a script of its own name")

    @field_validator("verify_python")
    @classmethod
    def _verify_pythons(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        bad = [v for v in value if not re.match(PYTHON_PATTERN, v)]
        if bad or not value:
            raise ValueError(f"a non-empty list of versions like '3.12'; got {list(value)}")
        return value


class Versions(Section):
    core_tag: str = "{version}"
    package_tag: str = "{name}-{version}"
    allow_prerelease: StrictBool = False
    fallback: str = "0.0.0"
    scheme: Literal["commit", "tag"] = Field(
        default="commit",
        description="commit: a package changed since its tag gets X.Y.Z+<label>.<distance>.g<commit> (a version "
                    "per content); tag: the tag's clean version X.Y.Z for every build (ship only on tags)")
    fork_label: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9]*$",
        description="the label in fork versions (X.Y.Z+<label>.<distance>.g<commit>); default: the project name")

    @field_validator("core_tag", "package_tag")
    @classmethod
    def _has_version_field(cls, value: str) -> str:
        if "{version}" not in value:
            raise ValueError("must contain {version}, e.g. '{version}' or '{name}-{version}'")
        return value


class Index(Section):
    url: str = Field(description="package index URL (credentials: TWINE_USERNAME / TWINE_PASSWORD)")
    upstream: str | None = Field(default=None, description="index of third-party packages (simple API); "
                                                           "default: the machine's configured index, else PyPI")

    @field_validator("url", "upstream")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value)


class Flows(Section):
    path: str
    config: str | tuple[str, ...] | None = Field(
        default=None, description="deployment config: a prefect.yaml, an acme static config or a deployments.yaml; or "
                                  "several prefect.yaml files, as a list and/or globs (`repo/**/prefect.yaml`) matched "
                                  "under path; default: the first found in the flows folder")
    run_from: Literal["config", "path"] = Field(
        default="config", description="where a prefect.yaml's entrypoints start: its own folder (as `prefect deploy` "
                                      "run there), or path (as `prefect deploy --prefect-file <config>` run in path)")
    name_pattern: str | None = Field(default=None, description="deployment names; fields {project} {branch} {flow} {env} "
                                                               "{name}; default: per format (docs/deploy.md)")
    include: tuple[str, ...] = Field(default=("*.py",), description="globs of files searched for flows (relative to path)")
    exclude: tuple[str, ...] = Field(default=("tests/*", "*/tests/*"), description="globs of files never searched")
    subprojects: tuple[str, ...] | None = Field(
        default=None, description="folders that are sub-projects; default: every folder with its own pyproject.toml")
    concurrency: StrictInt = Field(default=8, ge=1, le=64, description="API writes in flight at once")
    worker_path: str | None = Field(default=None, description="the flows folder as process workers see it (default: path)")
    verify_after: StrictInt = Field(default=3600, ge=0, description="seconds between full reads of the server's deployments")
    strict: StrictBool = Field(default=False, description="refuse a prefect.yaml key prefect deploy ignores, instead of "
                                                          "warning about it")

    @field_validator("config")
    @classmethod
    def _config_files(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if isinstance(value, tuple) and not value:
            raise ValueError("an empty list names no config; leave the key out to use the one found in path")
        if isinstance(value, tuple) and len(set(value)) != len(value):
            raise ValueError(f"a file or glob is listed twice: {sorted(v for v in set(value) if value.count(v) > 1)}")
        return value

    @property
    def config_patterns(self) -> tuple[str, ...]:
        """The configured deployment config files and globs (none: search path)."""
        return config_patterns_of(self.config)

    @field_validator("name_pattern")
    @classmethod
    def _pattern_fields(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = set(re.findall(r"\{(\w*)\}", value))
        unknown = fields - {"project", "branch", "flow", "env", "name"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; allowed: {{project}} {{branch}} {{flow}} {{env}} {{name}}")
        if not fields & {"flow", "name"}:
            raise ValueError("must contain {flow} or {name} so every deployment gets its own name")
        if "/" in value or "%" in value:
            raise ValueError("Prefect deployment names cannot contain '/' or '%'")
        return value


class Environment(Section):
    prefect_api_url: str | None = Field(default=None,
                                        description="default: PREFECT_API_URL (environment, then the active Prefect profile)")
    work_pool: str | None = Field(default=None, min_length=1, description="work pool for deployments the config gives none")
    branch: str | None = Field(default=None, description="branch (or glob like '*') that deploys here; exact names win")
    schedules: StrictBool | None = Field(
        default=None, description="whether schedules run here; default: as a prefect.yaml says (active unless a "
                                  "schedule says `active: false`), off for forkflow's other formats")
    work_queue: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
                                    description="variable holding this environment's Prefect API key (default PREFECT_API_KEY)")
    auth_string_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
                                        description="variable holding this environment's user:password "
                                                    "(default PREFECT_API_AUTH_STRING)")
    variables: dict[str, str] = Field(default={}, description="values for {{ $NAME }} in a prefect.yaml, "
                                                              "over the process environment")
    registry: str | None = Field(default=None, description="where a prefect.yaml's Docker build steps push their images "
                                                           "(host[:port][/namespace]); default: [images] registry")

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        return value if value is None else Images._registry(value)

    @field_validator("prefect_api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("branch")
    @classmethod
    def _branch_pattern(cls, value: str | None) -> str | None:
        return value if value is None else branch_name(value, glob=True)


class Service(Section):
    port: StrictInt = Field(ge=1024, le=65535)


class Services(Section):
    index: Service = Service(port=8081)
    registry: Service = Service(port=5001)
    prefect: Service = Service(port=4201)

    @model_validator(mode="after")
    def _own_ports(self) -> Services:
        by_port: dict[int, list[str]] = {}
        for name in ("index", "registry", "prefect"):
            by_port.setdefault(getattr(self, name).port, []).append(f"services.{name}.port")
        for port, names in by_port.items():
            if len(names) > 1:
                raise ValueError(f"{' and '.join(names)} {'are both' if len(names) == 2 else 'are all'} {port}: "
                                 "each service needs a port of its own")
        return self


class Timeouts(Section):
    """Seconds a call to each kind of remote may take in all before it fails with what did not answer."""

    git: float = Field(default=300.0, gt=0, description="a git fetch, ls-remote, push or clone of a remote")
    index: float = Field(default=60.0, gt=0, description="a request to the package index")
    registry: float = Field(default=60.0, gt=0, description="a request to the image registry")
    prefect: float = Field(default=60.0, gt=0, description="a request to a Prefect API (retries included)")
    engine: float = Field(default=60.0, gt=0, description="a request to the Docker engine's API (not a build)")


class Demo(Section):
    source: str = "examples/demo"
    workspace: str = ".forkflow/demo"


LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CRON_PATTERN = r"^$|^[0-9*/,-]+( [0-9A-Za-z*/,-]+){4}$"
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class GitHub(Section):
    target: str | None = Field(default=None, description="repository folder whose .github/workflows/ gets the workflows; "
                                                         "default: the git repository holding the config file")
    workflows: tuple[Literal["sync-upstream", "release", "deploy", "promote", "pull-request"], ...] | None = Field(
        default=None, description="workflows to render; default: every one the config has the sections for")
    python: str = Field(default="3.11", pattern=PYTHON_PATTERN, description="Python the runners run nox with")
    runner: str = Field(default="ubuntu-latest", pattern=LABEL_PATTERN, description="runs-on label of every job")
    publish_environment: str = Field(default="package-index", pattern=LABEL_PATTERN,
                                     description="GitHub environment that gates the upload (holds TWINE_* secrets)")
    images_environment: str = Field(default="registry", pattern=LABEL_PATTERN,
                                    description="GitHub environment that gates the image push (holds FORKFLOW_REGISTRY_* secrets)")
    sync_schedule: str | None = Field(default="17 4 * * *", pattern=CRON_PATTERN,
                                      description="cron of the scheduled sync-upstream run (UTC); \"\" for none")
    release_schedule: str | None = Field(default="47 5 * * *", pattern=CRON_PATTERN,
                                         description="cron of the scheduled release build, which runs only when its "
                                                     "inputs changed (UTC); \"\" for none")
    repository: str | None = Field(default=None, pattern=REPOSITORY_PATTERN,
                                   description="owner/name of the fork on GitHub (its sync pull requests and releases); "
                                               "default: from [fork] origin, else $GITHUB_REPOSITORY")
    conflict_label: str = Field(default="forkflow-sync-conflict", pattern=LABEL_PATTERN,
                                description="label of the one open issue a sync conflict opens or updates")
    runners: dict[str, str] = Field(default={}, description="image platform -> the runs-on label of a runner of that "
                                                           "CPU, e.g. {\"linux/arm64\" = \"ubuntu-24.04-arm\"}; "
                                                           "other platforms build under QEMU on `runner`")
    attestations: StrictBool = Field(default=True, description="release: GitHub artifact attestations (build provenance) "
                                                               "of the wheels and pushed image digests")

    @field_validator("runners")
    @classmethod
    def _runners(cls, value: dict[str, str]) -> dict[str, str]:
        from tasks.core.images import MACHINES

        bad = [name for name in value if name not in MACHINES]
        if bad:
            raise ValueError(f"keys are image platforms ({', '.join(sorted(MACHINES))}); got {bad}")
        labels = [label for label in value.values() if not re.match(LABEL_PATTERN, label)]
        if labels:
            raise ValueError(f"runner labels are letters, digits, '.', '_' and '-'; got {labels}")
        return value


class Config(Section):
    state_dir: str = Field(default=".forkflow", description="folder of forkflow's state (doit.db, reports, services)")
    project: Project
    fork: Fork | None = None
    packages: Packages = Packages()
    versions: Versions = Versions()
    index: Index | None = None
    images: Images | None = None
    flows: Flows | None = None
    environments: dict[str, Environment] = {}
    services: Services | None = None
    demo: Demo | None = None
    github: GitHub | None = None
    timeouts: Timeouts = Timeouts()
    default_writes: tuple[Literal["sync", "publish", "image", "deploy"], ...] = Field(
        default=(), description="remote writes a bare `doit` makes on this config (push, upload, image push, deploy); "
                                "without [demo] the others are planned only, and made when the stage is named")

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        bad = [name for name in value if not re.match(NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"environment names are lowercase words like 'dev'; got {bad}")
        by_branch: dict[str, list[str]] = {}
        for name, environment in value.items():
            if environment.branch is not None:
                by_branch.setdefault(environment.branch, []).append(name)
        shared = {branch: names for branch, names in by_branch.items() if len(names) > 1}
        if shared:
            branch, names = next(iter(shared.items()))
            raise ValueError(f"environments {' and '.join(names)} both have branch = {branch!r}: a push to it would "
                             "deploy to both; give each its own branch (or glob)")
        return value

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, value: str) -> str:
        if PurePosixPath(value.strip() or ".") == PurePosixPath("."):
            raise ValueError("must name a folder of its own, e.g. '.forkflow' (not the config's folder itself)")
        return value


def parse_config_text(text: str, source: str) -> Config:
    """Parse TOML text into a Config, or raise ConfigError naming `source`."""
    return parse_config(parse_toml(text, source), source)


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate a parsed mapping into a Config, or raise ConfigError naming `source`."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise config_error(err, data, source) from None


def config_error(err: ValidationError, data: dict[str, Any], source: str) -> ConfigError:
    """One message for all validation errors, each with key path, value and what is allowed."""
    lines = [validation_problem(item, lambda loc: allowed_keys(tuple(loc[:-1])), data=data,
                                unknown="unknown key (value {value!r}); allowed keys here: {allowed}")
             for item in err.errors()]
    what = f"{source}: invalid configuration\n" + "\n".join(f"  - {line}" for line in lines)
    return ConfigError(what, where=source, fix="correct the keys listed above (see README, Configuration)")


def allowed_keys(loc: tuple[str, ...]) -> list[str]:
    """Field names of the section at a key path (environments.<name> resolves to Environment)."""
    model: type[BaseModel] = Config
    for part in loc:
        if model is Config and part == "environments":
            return list(Environment.model_fields) if len(loc) > 1 else []
        field = model.model_fields.get(part)
        if field is None:
            break
        nested = section_type(field.annotation)
        if nested is None:
            break
        model = nested
    return list(model.model_fields)


def section_type(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
