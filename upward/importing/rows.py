"""Read an HR CSV export and validate each row into a join body, keeping line numbers.

Every row of the file is part of the directory (reporting lines are resolved through it);
a row with an empty role column is someone not joining and is not imported. A row that
joins is validated with the event contract (ParticipantJoined); a row that cannot be is a
:class:`RowProblem` naming its line, the column and the reason. Nothing here does I/O
beyond reading the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.participants import ParticipantJoined
from upward.importing.mapping import ColumnMapping


class CsvFileError(ValueError):
    """The file cannot be read as a CSV export with the required columns."""


@dataclass(frozen=True, slots=True)
class RowJoin:
    """A valid row: its line in the file and the join body it becomes."""

    line: int
    body: ParticipantJoined


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that cannot be imported: its line, whom it is about (if known) and why."""

    line: int
    participant_id: str
    reason: str


@dataclass(slots=True)
class ParsedExport:
    """The rows that join, the rows refused, and how many rows are not joining."""

    joins: list[RowJoin] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    not_joining: int = 0


class _CellError(ValueError):
    """One cell cannot be read (the message names the column)."""


def read_export(path: Path, *, mapping: ColumnMapping, program_id: str) -> ParsedExport:
    """Read and validate the whole export at ``path`` for ``program_id``."""
    rows = list(_numbered_rows(path, mapping))
    directory = _directory(rows, mapping)
    parsed = ParsedExport()
    first_line: dict[str, int] = {}
    for line, row in rows:
        _add_row(parsed, line, row, mapping, program_id, directory, first_line)
    return parsed


def _add_row(
    parsed: ParsedExport,
    line: int,
    row: Mapping[str, str],
    mapping: ColumnMapping,
    program_id: str,
    directory: Mapping[str, str],
    first_line: dict[str, int],
) -> None:
    if not _cell(row, mapping, "role"):
        parsed.not_joining += 1
        return
    person = _cell(row, mapping, "participant_id")
    seen = first_line.setdefault(person, line) if person else line
    if seen != line:
        reason = f"{mapping.column('participant_id')}: {person!r} already on line {seen}"
        parsed.problems.append(RowProblem(line, person, reason))
        return
    outcome = validate_row(row, mapping=mapping, program_id=program_id, directory=directory)
    if isinstance(outcome, ParticipantJoined):
        parsed.joins.append(RowJoin(line, outcome))
    else:
        parsed.problems.append(RowProblem(line, person, outcome))


def _numbered_rows(path: Path, mapping: ColumnMapping) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line of the record, row) for every non-empty record; checks the header."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream)
            header = [name.strip() for name in next(reader, [])]
            _check_header(path, header, mapping)
            ended = reader.line_num
            for record in reader:
                start, ended = ended + 1, reader.line_num
                if any(cell.strip() for cell in record):
                    yield start, dict(zip(header, record, strict=False))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CsvFileError(f"{path.name}: cannot read the CSV file: {error}") from error


def _check_header(path: Path, header: list[str], mapping: ColumnMapping) -> None:
    if not header:
        raise CsvFileError(f"{path.name}: the file is empty (no header line)")
    missing = mapping.missing_columns(header)
    if missing:
        raise CsvFileError(f"{path.name}: missing required columns: {', '.join(missing)}")


def _directory(rows: list[tuple[int, dict[str, str]]], mapping: ColumnMapping) -> dict[str, str]:
    """Employee id -> manager id, over every row of the file."""
    found: dict[str, str] = {}
    for _, row in rows:
        person, manager = _cell(row, mapping, "participant_id"), _cell(row, mapping, "manager_id")
        if person and manager:
            found.setdefault(person, manager)
    return found


def validate_row(
    row: Mapping[str, str],
    *,
    mapping: ColumnMapping,
    program_id: str,
    directory: Mapping[str, str],
) -> ParticipantJoined | str:
    """The join body of ``row``, or the reason it is refused (columns named)."""
    try:
        data = _join_data(row, mapping, program_id, directory)
    except _CellError as error:
        return str(error)
    try:
        return ParticipantJoined.model_validate(data)
    except ValidationError as error:
        return "; ".join(_problem(mapping, problem) for problem in error.errors())


def _join_data(
    row: Mapping[str, str], mapping: ColumnMapping, program_id: str, directory: Mapping[str, str]
) -> dict[str, Any]:
    simple = ("participant_id", "display_name", "email", "role", "grade", "department",
              "region", "timezone")  # fmt: skip
    data: dict[str, Any] = {name: _cell(row, mapping, name) for name in simple}
    data |= {
        "program_id": program_id,
        "capacity": _cell(row, mapping, "capacity") or 1,
        "languages": _list(row, mapping, "languages"),
        "manager_chain": _chain(row, mapping, directory),
        "offers": _levels(row, mapping, "offers"),
        "wants": _levels(row, mapping, "wants"),
        "background": _background(row, mapping),
        "preferences": {"prefer": _list(row, mapping, "prefer"),
                        "avoid": _list(row, mapping, "avoid")},
    }  # fmt: skip
    return data


def _cell(row: Mapping[str, str], mapping: ColumnMapping, name: str) -> str:
    return (row.get(mapping.column(name)) or "").strip()


def _list(row: Mapping[str, str], mapping: ColumnMapping, name: str) -> list[str]:
    text = _cell(row, mapping, name)
    parts = text.split(mapping.format.list_separator) if text else []
    return [part.strip() for part in parts if part.strip()]


def _levels(row: Mapping[str, str], mapping: ColumnMapping, name: str) -> dict[str, int]:
    """``python:4;sql:3`` -> ``{"python": 4, "sql": 3}``; a bare topic counts as level 3."""
    levels: dict[str, int] = {}
    for item in _list(row, mapping, name):
        topic, separator, level = item.partition(mapping.format.level_separator)
        if separator and not level.strip().isdigit():
            raise _CellError(f"{mapping.column(name)}: {item!r} is not topic{separator}level")
        levels[topic.strip()] = int(level) if separator else 3
    return levels


def _chain(
    row: Mapping[str, str], mapping: ColumnMapping, directory: Mapping[str, str]
) -> list[str]:
    """The explicit chain column, else the manager_id line walked up through the file."""
    explicit = _list(row, mapping, "manager_chain")
    if explicit:
        return explicit
    chain: list[str] = []
    manager = _cell(row, mapping, "manager_id")
    person = _cell(row, mapping, "participant_id")
    while manager:
        if manager == person or manager in chain:
            raise _CellError(f"{mapping.column('manager_id')}: the reporting line loops")
        chain.append(manager)
        manager = directory.get(manager, "")
    return chain


def _background(row: Mapping[str, str], mapping: ColumnMapping) -> dict[str, str]:
    values = {name: (row.get(column) or "").strip() for name, column in mapping.background.items()}
    return {name: value for name, value in values.items() if value}


def _problem(mapping: ColumnMapping, problem: Mapping[str, Any]) -> str:
    """``column: message`` for a pydantic error on a join field."""
    location = [str(part) for part in problem["loc"]]
    head = location[0] if location else ""
    if head == "preferences" and len(location) > 1:
        head = location[1]
    if head == "background" and len(location) > 1:
        column = mapping.background.get(location[1])
    else:
        column = mapping.columns.get(head)
    return f"{column or head}: {problem['msg']}"
