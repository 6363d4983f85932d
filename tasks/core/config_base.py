"""What every pipeline.toml section shares: immutable models that refuse unknown keys, and common patterns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
PYTHON_PATTERN = r"^3\.\d{1,2}$"


class Section(BaseModel):
    """Base for every section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
