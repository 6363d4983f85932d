"""A validated config as plain objects, so a start with a remembered config does not import pydantic.

`plain_tree` turns a validated `Config` (pydantic models) into JSON-ready data that says which values are
sections, tuples and mappings; `from_tree` turns that data back into `Plain` sections with the same attributes,
the same `model_dump`, `model_dump_json`, `model_copy`, equality and repr as the models they came from. Only
values a full validation produced are ever turned back: `tasks.pipeline.config_cache` decides when that is.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from tasks.core.values import is_local_path

if TYPE_CHECKING:
    from tasks.core.config import Config

WORKFLOW_NAMES = ("sync-upstream", "release", "deploy", "promote", "pull-request")


def config_patterns_of(config: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """[flows] config as a tuple of files and globs (none: search the flows folder)."""
    return (config,) if isinstance(config, str) else config or ()


class Plain:
    """One section of a validated config without pydantic: its fields as read-only attributes."""

    __slots__ = ("__dict__", "_kind")
    _kind: str

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)  # the model's class name, as in its repr
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{self._kind} is frozen: {name} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{self._kind} is frozen: {name} cannot be deleted")

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """As pydantic's model_dump: sections as dicts; tuples stay tuples, or become lists in "json" mode."""
        return {name: dumped(value, mode) for name, value in self.__dict__.items()}

    def model_dump_json(self) -> str:
        """As pydantic's model_dump_json(), fields in order."""
        return compact_json(self.model_dump(mode="json"))

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Plain:
        """A copy with some fields replaced, not validated again (as pydantic's model_copy)."""
        return plain_section(self._kind, {**self.__dict__, **(update or {})})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plain):
            return NotImplemented
        return self._kind == other._kind and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((self._kind, *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{self._kind}({', '.join(f'{name}={value!r}' for name, value in self.__dict__.items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (plain_section, (self._kind, dict(self.__dict__)))


class PlainFlows(Plain):
    """[flows], with the property the model has."""

    __slots__ = ()

    @property
    def config_patterns(self) -> tuple[str, ...]:
        return config_patterns_of(self.__dict__["config"])


def section_kind(value: object) -> str | None:
    """The model name of a plain section ("Config" for a whole config); None for anything else."""
    return value._kind if isinstance(value, Plain) else None  # noqa: SLF001


def plain_section(kind: str, fields: dict[str, Any]) -> Plain:
    return PlainFlows(kind, fields) if kind == "Flows" else Plain(kind, fields)


def dumped(value: Any, mode: str) -> Any:
    if isinstance(value, Plain):
        return value.model_dump(mode=mode)
    if isinstance(value, tuple):
        items = [dumped(item, mode) for item in value]
        return items if mode == "json" else tuple(items)
    if isinstance(value, dict):
        return {key: dumped(item, mode) for key, item in value.items()}
    return value


def compact_json(value: Any) -> str:
    """JSON as pydantic's model_dump_json writes it: no spaces, text not escaped to ASCII, floats as 1e-7 (not
    1e-07), inf and nan as null."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{compact_json(str(key))}:{compact_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(compact_json(item) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    if isinstance(value, float):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    return json.dumps(value, ensure_ascii=False)


SCALARS = (str, int, float, bool, type(None))


def plain_tree(value: Any) -> Any:
    """A validated value as JSON-ready data that keeps its shape: {"section": name, "fields": {...}} for a
    model, {"tuple": [...]}, {"dict": {...}}; ValueError for anything else (such a config is not remembered)."""
    fields = getattr(type(value), "model_fields", None)
    if fields is not None:
        return {"section": type(value).__name__, "fields": {name: plain_tree(getattr(value, name)) for name in fields}}
    if isinstance(value, tuple):
        return {"tuple": [plain_tree(item) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: plain_tree(item) for key, item in value.items()}}
    if isinstance(value, SCALARS):
        return value
    raise ValueError(f"a {type(value).__name__} has no plain form")


def from_tree(tree: Any) -> Any:
    """The value `plain_tree` described, with `Plain` sections; ValueError when the data is not such a tree."""
    if isinstance(tree, dict):
        if set(tree) == {"section", "fields"} and isinstance(tree["fields"], dict):
            return plain_section(str(tree["section"]), {name: from_tree(item) for name, item in tree["fields"].items()})
        if set(tree) == {"tuple"} and isinstance(tree["tuple"], list):
            return tuple(from_tree(item) for item in tree["tuple"])
        if set(tree) == {"dict"} and isinstance(tree["dict"], dict):
            return {key: from_tree(item) for key, item in tree["dict"].items()}
    if isinstance(tree, SCALARS):
        return tree
    raise ValueError("not a remembered config")


def declared_paths(config: Config) -> dict[str, str]:
    """Key path -> path value for every key that names a local file or folder."""
    paths: dict[str, str] = {}
    if config.fork:
        paths["fork.path"] = config.fork.path
        for key in ("upstream", "origin"):
            value = getattr(config.fork, key)
            if is_local_path(value):
                paths[f"fork.{key}"] = value
    if config.flows:
        paths["flows.path"] = config.flows.path
        from tasks.core.pathglob import is_glob

        listed = isinstance(config.flows.config, tuple)
        for index, value in enumerate(config.flows.config_patterns):
            if not is_glob(value):
                paths[f"flows.config[{index}]" if listed else "flows.config"] = value
    if config.demo:
        paths["demo.source"] = config.demo.source
    if config.packages.constraints:
        paths["packages.constraints"] = config.packages.constraints
    if config.images:
        for key in ("wheelhouse", "templates"):
            value = getattr(config.images, key)
            if value:
                paths[f"images.{key}"] = value
    return paths


