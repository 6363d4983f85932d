"""Find Prefect flows in Python source without importing it.

A flow is a function (sync or async) decorated with Prefect's `flow`, in any
of the spellings people use: `@flow`, `@flow(...)`, `@prefect.flow`,
`@prefect.flow(...)`, or an alias (`from prefect import flow as pf_flow`,
`import prefect as pf`). Files named `*_flow.py` may also carry a
module-level `FLOW_SPEC` literal with deployment defaults for a flow in it.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Aliases:
    """Names that mean Prefect's `flow` decorator, and names bound to the prefect module."""

    flow_names: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)


def discover_source(text: str, file: str) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """The flows defined in one file's source, and the problems found in it."""
    try:
        tree = ast.parse(text, filename=file)
    except SyntaxError as err:
        return [], [DiscoveryError(file, err.lineno or 0, f"syntax error: {err.msg}")]
    aliases = prefect_aliases(tree)
    flows = [flow_info(node, decorator, file) for node, decorator in decorated_functions(tree, aliases)]
    errors: list[DiscoveryError] = []
    if file.endswith(SPEC_SUFFIX):
        flows, errors = attach_spec(tree, flows, file)
    return flows, errors


def prefect_aliases(tree: ast.Module) -> Aliases:
    found = Aliases()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in PREFECT_MODULES and node.level == 0:
            for alias in node.names:
                if alias.name == "flow":
                    found.flow_names.add(alias.asname or "flow")
                elif alias.name == "*":
                    found.flow_names.add("flow")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in PREFECT_MODULES:
                    found.modules.add(alias.asname or alias.name)
    return found


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
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id in aliases.flow_names
    if isinstance(target, ast.Attribute) and target.attr == "flow":
        return dotted_name(target.value) in aliases.modules
    return False


def dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""


def flow_info(node: ast.FunctionDef | ast.AsyncFunctionDef, decorator: ast.expr, file: str) -> FlowInfo:
    options = decorator_options(decorator)
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


def decorator_options(decorator: ast.expr) -> dict[str, Any]:
    """Literal keyword arguments of `@flow(...)`; non-literal values are left out."""
    if not isinstance(decorator, ast.Call):
        return {}
    options = {}
    for keyword in decorator.keywords:
        if keyword.arg is None:
            continue
        try:
            options[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, TypeError):
            continue
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


def attach_spec(tree: ast.Module, flows: list[FlowInfo], file: str) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """Attach a `FLOW_SPEC = {...}` literal to the flow it names (or the file's only flow)."""
    node = spec_assignment(tree)
    if node is None:
        return flows, []
    try:
        spec = ast.literal_eval(node.value)
    except (ValueError, SyntaxError, TypeError):
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} must be a literal dict (no names or calls)")]
    if not isinstance(spec, dict):
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} must be a dict, got {type(spec).__name__}")]
    wanted = spec.get("name")
    matches = [f for f in flows if f.name == wanted] if wanted else flows
    if len(matches) != 1:
        names = ", ".join(f.name for f in flows) or "none"
        reason = f"names flow {wanted!r}" if wanted else "has no 'name' and the file has several flows"
        return flows, [DiscoveryError(file, node.lineno, f"{SPEC_NAME} {reason}; flows in this file: {names}")]
    rest = {key: value for key, value in spec.items() if key != "name"}
    target = matches[0]
    updated = dataclasses.replace(target, spec=rest)
    return [updated if f is target else f for f in flows], []


def spec_assignment(tree: ast.Module) -> ast.Assign | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == SPEC_NAME for t in node.targets):
            return node
    return None


def duplicate_names(flows: list[FlowInfo]) -> list[DiscoveryError]:
    """Two flows with one name cannot both be deployed: report every second one."""
    seen: dict[str, FlowInfo] = {}
    errors = []
    for flow in flows:
        first = seen.setdefault(flow.name, flow)
        if first is not flow:
            errors.append(DiscoveryError(flow.file, flow.line,
                                         f"flow name {flow.name!r} is already used by {first.file}:{first.line}"))
    return errors


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
