"""The shape of a value under a JSON schema: one schema verdict for every value alike.

Where a schema constrains nothing but JSON types (a flow's `x: int`
parameter, a deployment's tags or description, a pool's free-form job
variables), every value of the same types gets the same verdict. A value's
shape keeps what the schema checks as written and stands in for the rest with
values of the same types (and lengths, keys, integer-ness), so the schema
accepts the shape exactly when it accepts the value: a verdict remembered by
shape answers a deployment whose parameters changed without importing a
validator. Parts a schema says more about (formats, patterns, bounds, enums,
several object branches) stay as written.
"""

from __future__ import annotations

from typing import Any

# keywords that validate nothing (JSON Schema annotations, and the `position` Prefect adds to parameters)
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "example", "position", "deprecated",
                         "readOnly", "writeOnly", "$comment"})
TYPE_ONLY_KEYS = ANNOTATIONS | {"type", "additionalProperties", "items", "anyOf"}
OBJECT_KEYS = ANNOTATIONS | {"type", "properties", "required", "additionalProperties"}


def shape(value: Any, schema: dict[str, Any]) -> Any:
    """`value` with every part whose schema constrains nothing but JSON types (parameters, job variables, tags,
    descriptions...) replaced by a stand-in of the same type: the schema accepts the shape exactly when it accepts
    the value, so one schema check (or a remembered one) answers every entry of that shape. Parts whose schema
    says more (schedules, formats, $refs it cannot follow plainly) stay as written."""
    places = {place: schema[place] for place in DEFINITIONS if isinstance(schema.get(place), dict)}
    defs = {f"#/{place}/{name}": found for place, kept in places.items() for name, found in kept.items()}
    return shaped(value, {key: item for key, item in schema.items() if key not in DEFINITIONS}, defs)


DEFINITIONS = ("$defs", "definitions")  # where a schema keeps what its local `$ref`s name


def shaped(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    schema = resolved(schema, defs)
    if type_only(schema, defs):
        return stand_in(value)
    if set(schema) <= ANNOTATIONS | {"anyOf"} and "anyOf" in schema:
        matching = [branch for branch in schema["anyOf"] if admits(resolved(branch, defs), value)]
        return shaped(value, matching[0], defs) if len(matching) == 1 else value
    if set(schema) <= OBJECT_KEYS and isinstance(value, dict) and isinstance(schema.get("additionalProperties", True), bool):
        known = schema.get("properties", {})
        return {key: shaped(item, known[key], defs) if key in known else item for key, item in value.items()}
    return value


def resolved(schema: Any, defs: dict[str, Any]) -> Any:
    """A local `$ref` (with nothing but annotations beside it) as the definition it names."""
    if isinstance(schema, dict) and set(schema) <= ANNOTATIONS | {"$ref"} and "$ref" in schema:
        return defs.get(str(schema["$ref"]), schema)
    return schema


def type_only(schema: Any, defs: dict[str, Any]) -> bool:
    """Whether the schema says nothing about a value but JSON types (of it, its items and its properties' values)."""
    if not isinstance(schema, dict) or not set(schema) <= TYPE_ONLY_KEYS:
        return False
    parts = [schema[key] for key in ("additionalProperties", "items") if not isinstance(schema.get(key, True), bool)]
    return all(type_only(part, defs) for part in [*parts, *schema.get("anyOf", [])])


JSON_TYPES: tuple[tuple[type, str], ...] = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                                            (dict, "object"), (list, "array"), (type(None), "null"))


def json_types(value: Any) -> set[str]:
    """The JSON schema types `value` is an instance of (1.0 is an integer too, as jsonschema says)."""
    found = next((name for kind, name in JSON_TYPES if isinstance(value, kind)), None)
    if found == "integer":
        return {"integer", "number"}
    if found == "number":
        return {"number", "integer"} if float(value).is_integer() else {"number"}
    return {found} if found else set()


def admits(schema: Any, value: Any) -> bool:
    """Whether a branch may accept `value` by its declared type (a branch without one may accept anything)."""
    if not isinstance(schema, dict) or "type" not in schema:
        return True
    declared = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return bool(json_types(value) & set(declared)) or not json_types(value)


def stand_in(value: Any) -> Any:
    """A value of the same JSON type (and, for numbers, the same integer-ness); containers keep their keys and
    lengths. A value YAML made of another type (a date) stays as it is."""
    if isinstance(value, dict):
        return {key: stand_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stand_in(item) for item in value]
    if isinstance(value, float):
        return 0.0 if value.is_integer() else 0.5
    return STAND_INS.get(type(value), value)


STAND_INS: dict[type, Any] = {bool: False, int: 0, str: ""}
