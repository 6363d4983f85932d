"""Values checked as the Prefect server checks them, importing Prefect only for a schema it has not seen.

Before a write, a deployment's job variables are checked against its work
pool's template and (where the schema is enforced) its parameters against the
flow's schema, with Prefect's own validator (prefect.utilities.schema_tools
.validation.validate). That validator is a jsonschema Draft 2020-12 validator
over a schema Prefect first rewrites (`preprocess_schema`, then every
`required` removed); the rest is jsonschema's own, with an empty registry. The
rewriting is Prefect's and needs all of prefect imported (about a second), so
its result is remembered in the state folder per Prefect version and schema:
a deploy that changes a deployment's values, not its flow or pool, checks them
with jsonschema alone. Values a prepared schema accepted are remembered by
their shape (tasks/core/schema_shape.py): new values of the same types (a
changed parameter) are accepted without importing jsonschema either.
tests/test_prefect_values.py holds this to Prefect's own `validate`.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tasks.pipeline.settings import read_json, write_json

SCHEMAS_FILE = "prefect-value-schemas.json"  # not flow_code's prefect-schemas.json: each writes its own whole


class PrefectSchemas:
    """Schemas as Prefect's validator uses them, remembered by content (and Prefect version) in `file`."""

    def __init__(self, file: Path | None):
        self.file = file
        self.version = version("prefect")
        saved = (read_json(file) or {}) if file is not None else {}
        same = saved.get("prefect") == self.version
        self.prepared: dict[str, Any] = saved.get("schemas", {}) if same else {}
        self.accepted: dict[str, str] = saved.get("accepted", {}) if same else {}
        self.added = False

    def prepare(self, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The key of `schema` and its prepared form."""
        key = digest_of(schema)
        if key not in self.prepared:
            self.prepared[key] = prefect_prepared(schema)
            self.added = True
        found: dict[str, Any] = self.prepared[key]
        return key, found

    def problems(self, value: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str]]:
        """(key path, Prefect's message) for each way `value` breaks `schema`, as Prefect's `validate(...,
        ignore_required=True)` finds them; none, without a validator, for a value of a shape it accepted before."""
        from tasks.core.schema_shape import shape

        key, prepared = self.prepare(schema)
        seen = digest_of([key, shape(value, prepared)])
        if seen in self.accepted:
            return []
        found = self.validated(value, schema, prepared)
        if not found:
            self.accepted.pop(seen, None)
            self.accepted[seen] = ""  # the newest last: the oldest go first past KEPT_SHAPES
            self.added = True
        return found

    def validated(self, value: dict[str, Any], schema: dict[str, Any], prepared: dict[str, Any]) -> list[tuple[str, str]]:
        from jsonschema.validators import Draft202012Validator
        from referencing import Registry

        validator = Draft202012Validator(prepared, format_checker=Draft202012Validator.FORMAT_CHECKER, registry=Registry())
        try:
            errors = list(validator.iter_errors(value))
        except RecursionError:
            return prefect_problems(value, schema)  # Prefect's own error for a circular schema
        return [(path_of(error), str(error.message)) for error in errors]

    def save(self) -> None:
        if self.added and self.file is not None:
            kept = dict(list(self.accepted.items())[-KEPT_SHAPES:])
            write_json(self.file, {"prefect": self.version, "schemas": self.prepared, "accepted": kept}, compact=True)
            self.added = False


KEPT_SHAPES = 20000  # remembered accepted shapes (every deployment's values, recent changes)


def digest_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def prefect_prepared(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema Prefect's validate checks against: its preprocessing, then no `required` anywhere."""
    from prefect.utilities.collections import remove_nested_keys
    from prefect.utilities.schema_tools.validation import preprocess_schema

    prepared: dict[str, Any] = remove_nested_keys(["required"], preprocess_schema(schema))
    return prepared


def prefect_problems(value: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str]]:
    from prefect.utilities.schema_tools.validation import validate

    return [(path_of(error), str(error.message)) for error in validate(value, schema, ignore_required=True)]


def path_of(error: Any) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(all)"
