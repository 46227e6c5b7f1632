"""How an HR export's columns map to a participant's join body.

The defaults fit the export of a typical HRIS report (and :func:`upward.demo.enterprise.
hr_export_rows`); a mapping file (TOML or JSON) renames columns and separators::

    [columns]
    participant_id = "Worker ID"
    offers = "Skills"

    [background]          # consented attributes: attribute name = column
    generation = "Generation"

    [format]
    list_separator = "|"
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_COLUMNS: Mapping[str, str] = {
    "participant_id": "employee_id",
    "display_name": "display_name",
    "email": "email",
    "role": "mentoring_role",
    "capacity": "mentor_capacity",
    "grade": "grade",
    "department": "department",
    "region": "region",
    "timezone": "timezone",
    "languages": "languages",
    "manager_id": "manager_id",
    "manager_chain": "manager_chain",
    "offers": "skills",
    "wants": "learning_goals",
    "prefer": "prefer",
    "avoid": "avoid",
}
"""Field -> default column name."""

REQUIRED_FIELDS: tuple[str, ...] = (
    "participant_id", "display_name", "email", "role", "grade", "department", "region",
    "timezone", "languages",
)  # fmt: skip
"""Fields whose column must be in the file's header."""

DEFAULT_BACKGROUND: Mapping[str, str] = {"generation": "generation", "community": "community"}


class MappingError(ValueError):
    """The mapping file cannot be read or names an unknown field."""


class ListFormat(BaseModel):
    """How lists and topic levels are written in a cell: ``python:4;sql:3``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    list_separator: str = Field(default=";", min_length=1)
    level_separator: str = Field(default=":", min_length=1)


class ColumnMapping(BaseModel):
    """Field -> column, consented background attributes -> column, and the list format."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    background: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_BACKGROUND))
    format: ListFormat = Field(default_factory=ListFormat)

    def column(self, field: str) -> str:
        """The column that feeds ``field``."""
        return self.columns[field]

    def missing_columns(self, header: list[str]) -> list[str]:
        """Required columns absent from ``header``."""
        return [self.columns[f] for f in REQUIRED_FIELDS if self.columns[f] not in header]


def load_mapping(path: Path | None) -> ColumnMapping:
    """The default mapping, overridden by the TOML or JSON file at ``path``."""
    if path is None:
        return ColumnMapping()
    document = _read_document(path)
    unknown = sorted(set(document.get("columns", {})) - set(DEFAULT_COLUMNS))
    if unknown:
        raise MappingError(f"{path.name}: unknown fields in [columns]: {', '.join(unknown)}")
    try:
        return ColumnMapping.model_validate(
            {
                "columns": dict(DEFAULT_COLUMNS) | document.get("columns", {}),
                "background": document.get("background", dict(DEFAULT_BACKGROUND)),
                "format": document.get("format", {}),
            }
        )
    except ValidationError as error:
        raise MappingError(f"{path.name}: {_first_problem(error)}") from error


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise MappingError(f"{path.name}: cannot read the mapping: {error}") from error
    if not isinstance(document, dict):
        raise MappingError(f"{path.name}: the mapping must be a table/object")
    return document


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
