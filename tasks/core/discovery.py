"""Find Prefect flows in Python source without importing it.

A flow is a function (sync or async) decorated with Prefect's `flow`, in any
of the spellings people use: `@flow`, `@flow(...)`, `@prefect.flow`,
`@prefect.flow(...)`, or an alias (`from prefect import flow as pf_flow`,
`import prefect as pf`). Names and options are read statically: literals,
module-level constants, f-strings of constants and `+` (see static_values).
Files named `*_flow.py` may also carry a module-level `FLOW_SPEC`: a dict
with deployment defaults for a flow in it, or a Pocket-style
`FlowSpec(flow=..., deployments=[FlowDeployment(name=..., ...)])` call, whose
deployments are read keyword by keyword.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.core.modules import imported_module, package_of
from tasks.core.pysource import TooDeep, parse_python
from tasks.core.static_values import NotStatic, module_constants, static_value

if TYPE_CHECKING:
    from tasks.core.local_modules import LocalModules

PREFECT_MODULES = ("prefect", "prefect.flows")
SPEC_NAME = "FLOW_SPEC"
SPEC_SUFFIX = "_flow.py"


@dataclass(frozen=True)
class Parameter:
    name: str
    required: bool
    default: Any = None
    annotation: str | None = None


@dataclass(frozen=True)
class FlowInfo:
    """One flow found in a file; `file` is relative to the flows folder, in POSIX form."""

    name: str
    function: str
    file: str
    line: int
    is_async: bool
    description: str | None
    parameters: tuple[Parameter, ...]
    accepts_any_parameter: bool
    spec: dict[str, Any] = field(default_factory=dict)
    spec_deployments: tuple[dict[str, Any], ...] = ()
    project: str = ""
    project_name: str = ""
    project_prefix: bool = False

    @property
    def entrypoint(self) -> str:
        return f"{self.file}:{self.function}"

    def accepts(self, parameter: str) -> bool:
        return self.accepts_any_parameter or any(p.name == parameter for p in self.parameters)


@dataclass(frozen=True)
class DiscoveryError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        """`file:line: message`; a whole-file problem (line 0) is `file: message`, its file named once."""
        if self.line == 0:
            return f"{self.file}: {self.message.removeprefix(f'{self.file}: ')}"
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Aliases:
    """Names that mean Prefect's `flow` decorator, and names bound to the prefect module."""

    flow_names: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)


PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def discover_source(text: str, file: str, local: LocalModules | None = None) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """The flows defined in one file's source, and the problems found in it; `local` is what the project's own
    modules offer it (names that mean Prefect's flow, constants), see tasks.core.local_modules."""
    try:
        tree = parse_python(text, file)
    except TooDeep as err:
        return [], [DiscoveryError(file, err.line, f"{err}; the file is not read (split the expression)")]
    except SyntaxError as err:
        return [], [DiscoveryError(file, err.lineno or 0, f"syntax error: {err.msg} (read as Python {PYTHON}; "
                                                          "a file written for a newer Python needs forkflow run on it)")]
    package = package_of(file)
    aliases = prefect_aliases(tree, local.flows if local else {}, package)
    constants = module_constants(tree, local.imported_constants(tree, package) if local else {})
    flows: list[FlowInfo] = []
    errors: list[DiscoveryError] = []
    for node, decorator in decorated_functions(tree, aliases):
        try:
            flows.append(flow_info(node, decorator, file, constants))
        except NotStatic as err:
            errors.append(DiscoveryError(file, node.lineno, f"flow {node.name}: {err}; its name cannot be known "
                                                           "without running the file (use a literal or a module-level constant)"))
    if file.endswith(SPEC_SUFFIX):
        flows, problems = attach_spec(tree, flows, file, constants)
        errors += problems
    return flows, errors


def prefect_aliases(tree: ast.Module, local: dict[str, set[str]] | None = None, package: str = "") -> Aliases:
    """Names in this module that mean Prefect's flow: imported from prefect, or from a project module that
    offers one (`local`: module -> names, e.g. a `flow` of its own that returns prefect's with its defaults)."""
    found = Aliases()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in PREFECT_MODULES and node.level == 0:
            for alias in node.names:
                if alias.name == "flow":
                    found.flow_names.add(alias.asname or "flow")
                elif alias.name == "*":
                    found.flow_names.add("flow")
        elif isinstance(node, ast.ImportFrom) and local:
            offered = local.get(imported_module(node, package), set())
            found.flow_names.update(alias.asname or alias.name for alias in node.names if alias.name in offered)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in PREFECT_MODULES:
                    found.modules.add(alias.asname or alias.name)
    return found


def is_flow_reference(node: ast.expr, aliases: Aliases) -> bool:
    """`flow` (an alias) or `prefect.flow`: the decorator itself, not a call of it."""
    if isinstance(node, ast.Name):
        return node.id in aliases.flow_names
    return isinstance(node, ast.Attribute) and node.attr == "flow" and dotted_name(node.value) in aliases.modules


def decorated_functions(tree: ast.Module, aliases: Aliases) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.expr]]:
    """Module-level functions whose decorator is Prefect's flow (entrypoints name module-level objects)."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if is_flow_decorator(decorator, aliases):
                found.append((node, decorator))
                break
    return sorted(found, key=lambda pair: pair[0].lineno)


def is_flow_decorator(decorator: ast.expr, aliases: Aliases) -> bool:
    return is_flow_reference(decorator.func if isinstance(decorator, ast.Call) else decorator, aliases)


def dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""


def flow_info(node: ast.FunctionDef | ast.AsyncFunctionDef, decorator: ast.expr, file: str,
              constants: dict[str, Any]) -> FlowInfo:
    options = decorator_options(decorator, constants)
    name = options.get("name") if isinstance(options.get("name"), str) else None
    description = options.get("description") if isinstance(options.get("description"), str) else None
    parameters, accepts_any = signature(node.args)
    return FlowInfo(
        name=name or default_flow_name(node.name),
        function=node.name,
        file=file,
        line=node.lineno,
        is_async=isinstance(node, ast.AsyncFunctionDef),
        description=description or ast.get_docstring(node),
        parameters=parameters,
        accepts_any_parameter=accepts_any,
    )


def default_flow_name(function: str) -> str:
    """Prefect's own default: the function name with underscores as hyphens."""
    return function.replace("_", "-")


def decorator_options(decorator: ast.expr, constants: dict[str, Any]) -> dict[str, Any]:
    """Static keyword arguments of `@flow(...)`; other values are left out, except `name`, which must be static."""
    if not isinstance(decorator, ast.Call):
        return {}
    options = {}
    for keyword in decorator.keywords:
        if keyword.arg is None:
            continue
        try:
            options[keyword.arg] = static_value(keyword.value, constants)
        except NotStatic:
            if keyword.arg == "name":
                raise
    return options


def signature(args: ast.arguments) -> tuple[tuple[Parameter, ...], bool]:
    """The flow's parameters (name, required, literal default, annotation) and whether it takes **kwargs."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    parameters = tuple(
        Parameter(
            name=arg.arg,
            required=default is None,
            default=literal_or_none(default),
            annotation=ast.unparse(arg.annotation) if arg.annotation is not None else None,
        )
        for arg, default in pairs
    )
    return parameters, args.kwarg is not None


def literal_or_none(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def attach_spec(tree: ast.Module, flows: list[FlowInfo], file: str,
                constants: dict[str, Any]) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """Attach `FLOW_SPEC` to the flow it names (or the file's only flow)."""
    node = spec_assignment(tree)
    if node is None:
        return flows, []
    if isinstance(node.value, ast.Call) and call_name(node.value) == "FlowSpec":
        return attach_flow_spec_call(node.value, flows, file, constants)
    try:
        spec = static_value(node.value, constants)
    except NotStatic as err:
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} must be a dict of literals or a FlowSpec(...) call: {err}")]
    if not isinstance(spec, dict):
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} must be a dict, got {type(spec).__name__}")]
    wanted = spec.get("name")
    matches = [f for f in flows if f.name == wanted] if wanted else flows
    if len(matches) != 1:
        names = ", ".join(f.name for f in flows) or "none"
        reason = f"names flow {wanted!r}" if wanted else "has no 'name' and the file has several flows"
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} {reason}; flows in this file: {names}")]
    rest = {key: value for key, value in spec.items() if key != "name"}
    return replaced(flows, matches[0], spec=rest), []


def replaced(flows: list[FlowInfo], target: FlowInfo, **changes: Any) -> list[FlowInfo]:
    updated = dataclasses.replace(target, **changes)
    return [updated if f is target else f for f in flows]


def call_name(node: ast.Call) -> str:
    return dotted_name(node.func).rsplit(".", 1)[-1]


FLOW_SPEC_KEYS = ("flow", "docker_env", "deployments", "is_agent")
FLOW_DEPLOYMENT_KEYS = {
    "name": "name", "deployment_name": "name", "cron": "cron", "timezone": "timezone",
    "parameters": "parameters", "description": "description", "tags": "tags", "version": "version",
    "enforce_parameter_schema": "enforce_parameter_schema", "work_pool_name": "work_pool",
    "work_queue_name": "work_queue", "job_variables": "job_variables",
}


def attach_flow_spec_call(call: ast.Call, flows: list[FlowInfo], file: str,
                          constants: dict[str, Any]) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """`FlowSpec(flow=<function>, deployments=[FlowDeployment(...), ...])`, read without running it."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    target_node = keywords.get("flow")
    function = target_node.id if isinstance(target_node, ast.Name) else None
    matches = [f for f in flows if f.function == function]
    if len(matches) != 1:
        names = ", ".join(f.function for f in flows) or "none"
        return flows, [DiscoveryError(file, call.lineno, f"FlowSpec(flow=...) must name a flow function defined in this "
                                                         f"file; functions decorated with @flow here: {names}")]
    try:
        if keywords.get("is_agent") is not None and static_value(keywords["is_agent"], constants):
            return flows, []
        deployments = flow_deployments(keywords.get("deployments"), constants)
    except NotStatic as err:
        return flows, [DiscoveryError(file, call.lineno, f"FlowSpec: {err}")]
    except ValueError as err:
        return flows, [DiscoveryError(file, call.lineno, f"FlowSpec: {err}")]
    return replaced(flows, matches[0], spec_deployments=tuple(deployments), project_prefix=True), []


def flow_deployments(node: ast.expr | None, constants: dict[str, Any]) -> list[dict[str, Any]]:
    if node is None:
        return []
    if not isinstance(node, ast.List | ast.Tuple):
        raise NotStatic("deployments must be a list of FlowDeployment(...) calls")
    return [flow_deployment(item, constants) for item in node.elts]


def flow_deployment(node: ast.expr, constants: dict[str, Any]) -> dict[str, Any]:
    """One `FlowDeployment(...)` as a deployment layer (keys as in deployments.yaml, plus name and version)."""
    if not isinstance(node, ast.Call) or call_name(node) != "FlowDeployment":
        raise NotStatic(f"{ast.unparse(node)} is not a FlowDeployment(...) call")
    given: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg not in FLOW_DEPLOYMENT_KEYS:
            raise ValueError(f"FlowDeployment keyword {keyword.arg!r} (line {keyword.value.lineno}) is not supported; "
                             f"supported: {', '.join(FLOW_DEPLOYMENT_KEYS)}")
        try:
            given[FLOW_DEPLOYMENT_KEYS[keyword.arg]] = static_value(keyword.value, constants)
        except NotStatic as err:
            raise NotStatic(f"FlowDeployment {keyword.arg}= (line {keyword.value.lineno}): {err}") from None
    if not isinstance(given.get("name"), str) or not given["name"]:
        raise ValueError(f"FlowDeployment on line {node.lineno} has no name")
    cron, timezone = given.pop("cron", None), given.pop("timezone", None)
    if cron:
        given["schedules"] = [{"cron": cron, "timezone": timezone or "UTC"}]
    return given


def spec_assignment(tree: ast.Module) -> ast.Assign | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == SPEC_NAME for t in node.targets):
            return node
    return None


def duplicate_names(flows: list[FlowInfo]) -> list[DiscoveryError]:
    """Two flows with one name in one sub-project cannot both be deployed: report every second one.

    Names that differ only in case or `_` vs `-` count as one: they give the same deployment name.
    """
    seen: dict[tuple[str, str], FlowInfo] = {}
    errors = []
    for flow in flows:
        first = seen.setdefault((flow.project, normalized(flow.name)), flow)
        if first is flow:
            continue
        same = "is already used by" if first.name == flow.name else f"gives the same deployment name as {first.name!r} in"
        errors.append(DiscoveryError(flow.file, flow.line, f"flow name {flow.name!r} {same} {first.file}:{first.line}"))
    return errors


def normalized(name: str) -> str:
    """What two names share when they map to one deployment name: case and `_`/`-`/space do not count."""
    return "".join("-" if c in "_ " else c for c in name.lower())


SIMPLE_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "list": "array", "dict": "object", "tuple": "array"}


def parameter_schema(flow: FlowInfo) -> dict[str, Any]:
    """An OpenAPI schema for the flow's parameters, close to the one Prefect derives by importing."""
    properties: dict[str, Any] = {}
    for position, parameter in enumerate(flow.parameters):
        prop: dict[str, Any] = {"title": parameter.name, "position": position}
        kind = SIMPLE_TYPES.get((parameter.annotation or "").split("[")[0])
        if kind:
            prop["type"] = kind
        if not parameter.required and is_json_value(parameter.default):
            prop["default"] = as_json(parameter.default)
        properties[parameter.name] = prop
    required = [p.name for p in flow.parameters if p.required]
    schema: dict[str, Any] = {"title": "Parameters", "type": "object", "properties": properties, "definitions": {}}
    if required:
        schema["required"] = required
    return schema


def is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json_value(item) for key, item in value.items())
    return False


def as_json(value: Any) -> Any:
    """Tuples as lists, the way the value reads back from the API."""
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


def flow_entry(flow: FlowInfo) -> dict[str, Any]:
    """The flow as JSON-ready data (its fields one by one: `asdict` copies every value deeply, which thousands of
    flows per run notice; the entry is only ever written out)."""
    entry = {field.name: getattr(flow, field.name) for field in dataclasses.fields(flow)}
    entry["parameters"] = [asdict(p) for p in flow.parameters]
    entry["spec_deployments"] = list(flow.spec_deployments)
    entry["entrypoint"] = flow.entrypoint
    return entry


def flow_from_entry(entry: dict[str, Any]) -> FlowInfo:
    """Rebuild a FlowInfo from its flows.json entry."""
    return FlowInfo(
        name=entry["name"], function=entry["function"], file=entry["file"], line=entry["line"],
        is_async=entry["is_async"], description=entry.get("description"),
        parameters=tuple(Parameter(**p) for p in entry["parameters"]),
        accepts_any_parameter=entry["accepts_any_parameter"], spec=entry.get("spec") or {},
        spec_deployments=tuple(entry.get("spec_deployments") or ()), project=entry.get("project", ""),
        project_name=entry.get("project_name", ""), project_prefix=bool(entry.get("project_prefix")),
    )
