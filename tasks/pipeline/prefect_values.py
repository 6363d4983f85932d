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
with jsonschema alone. tests/test_prefect_values.py holds this to Prefect's
own `validate`.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tasks.pipeline.settings import read_json, write_json

SCHEMAS_FILE = "prefect-schemas.json"


class PrefectSchemas:
    """Schemas as Prefect's validator uses them, remembered by content (and Prefect version) in `file`."""

    def __init__(self, file: Path | None):
        self.file = file
        self.version = version("prefect")
        saved = (read_json(file) or {}) if file is not None else {}
        self.prepared: dict[str, Any] = saved.get("schemas", {}) if saved.get("prefect") == self.version else {}
        self.added = False

    def prepare(self, schema: dict[str, Any]) -> dict[str, Any]:
        key = hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode()).hexdigest()
        if key not in self.prepared:
            self.prepared[key] = prefect_prepared(schema)
            self.added = True
        found: dict[str, Any] = self.prepared[key]
        return found

    def problems(self, value: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str]]:
        """(key path, Prefect's message) for each way `value` breaks `schema`, as Prefect's `validate(...,
        ignore_required=True)` finds them."""
        from jsonschema.validators import Draft202012Validator
        from referencing import Registry

        validator = Draft202012Validator(self.prepare(schema), format_checker=Draft202012Validator.FORMAT_CHECKER,
                                         registry=Registry())
        try:
            errors = list(validator.iter_errors(value))
        except RecursionError:
            return prefect_problems(value, schema)  # Prefect's own error for a circular schema
        return [(path_of(error), str(error.message)) for error in errors]

    def save(self) -> None:
        if self.added and self.file is not None:
            write_json(self.file, {"prefect": self.version, "schemas": self.prepared})
            self.added = False


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
