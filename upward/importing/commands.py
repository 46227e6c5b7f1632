"""``upward import participants FILE.csv --program ID``: join a cohort from an HR export.

Exit codes: 0 every row joined or was already there; 1 some rows were invalid, refused or
differ from what the program holds (all reported, the others imported); 2 the input cannot
be read (file, header, mapping); 3 the matching service cannot be reached, failed, or has
no such program.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from upward.importing.importer import (
    ImportResult,
    RowOutcome,
    RowStatus,
    UnknownProgram,
    import_rows,
    invalid_outcomes,
)
from upward.importing.mapping import MappingError, load_mapping
from upward.importing.matching_api import (
    DEFAULT_MATCHING_URL,
    MATCHING_URL_ENV,
    MatchingApi,
    MatchingUnavailable,
)
from upward.importing.rows import CsvFileError, ParsedExport, read_export

app = typer.Typer(
    name="import",
    help="Import data from other systems (an HR export) into Upward.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

FileArg = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, show_default=False,
                   help="The HR export (CSV, UTF-8, a header line)."),
]  # fmt: skip
ProgramOpt = Annotated[str, typer.Option("--program", "-p", help="Program id to join.")]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", "-m", exists=True, dir_okay=False, readable=True,
                 show_default=False, help="Column mapping (TOML or JSON); see docs/operations.md."),
]  # fmt: skip
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Validate the file only; contact no service.")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", dir_okay=False, show_default=False,
                 help="Write every row not joined (line, participant, status, reason) as CSV."),
]  # fmt: skip
UrlOpt = Annotated[
    str, typer.Option("--matching-url", envvar=MATCHING_URL_ENV, help="Matching service URL.")
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, max=64, help="Joins in flight at once.")
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0,
                 help="Seconds to wait for the joins to be applied (a re-run then skips them)."),
]  # fmt: skip


@app.command("participants")
def participants(
    file: FileArg,
    program: ProgramOpt,
    mapping: MappingOpt = None,
    dry_run: DryRunOpt = False,
    report: ReportOpt = None,
    matching_url: UrlOpt = DEFAULT_MATCHING_URL,
    concurrency: ConcurrencyOpt = 8,
    wait: WaitOpt = 30.0,
) -> None:
    """Join the people of FILE.csv to a program, skipping those already in it."""
    parsed = _read(file, mapping, program)
    if dry_run:
        _finish(ImportResult(invalid_outcomes(parsed), applied=True), parsed, report, dry_run=True)
        return
    try:
        result = asyncio.run(_run(parsed, program, matching_url, concurrency, wait))
    except (MatchingUnavailable, UnknownProgram) as error:
        err.print(f"[bold red]import failed:[/bold red] {error}", highlight=False)
        raise typer.Exit(3) from error
    _finish(result, parsed, report, dry_run=False)


def _read(file: Path, mapping_path: Path | None, program: str) -> ParsedExport:
    try:
        return read_export(file, mapping=load_mapping(mapping_path), program_id=program)
    except (CsvFileError, MappingError) as error:
        err.print(f"[bold red]cannot import:[/bold red] {error}", highlight=False)
        raise typer.Exit(2) from error


async def _run(
    parsed: ParsedExport, program: str, url: str, concurrency: int, wait: float
) -> ImportResult:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    async with MatchingApi(url, concurrency=concurrency) as api:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(f"Joining {program}", total=len(parsed.joins))

            def advance(_: RowOutcome) -> None:
                progress.advance(task)

            return await import_rows(
                api,
                parsed,
                program_id=program,
                concurrency=concurrency,
                wait_s=wait,
                on_row=advance,
            )


def _finish(
    result: ImportResult, parsed: ParsedExport, report: Path | None, *, dry_run: bool
) -> None:
    out.print(_summary(result, parsed, dry_run=dry_run))
    flagged = [o for o in result.outcomes if o.status is not RowStatus.JOINED]
    if flagged:
        out.print(_rows_table(flagged))
    if report is not None:
        write_report(report, flagged)
        out.print(f"Report written to {report}", highlight=False)
    if not result.applied:
        err.print("[yellow]some joins were not applied yet; wait before re-running[/yellow]")
    if result.has_problems:
        raise typer.Exit(1)


def _summary(result: ImportResult, parsed: ParsedExport, *, dry_run: bool) -> Table:
    table = Table(title="Dry run: nothing imported" if dry_run else "Import", show_header=False)
    if dry_run:
        table.add_row("valid rows (would join)", str(len(parsed.joins)))
    else:
        for status in (RowStatus.JOINED, RowStatus.ALREADY_IMPORTED, RowStatus.DIFFERS,
                       RowStatus.LEFT, RowStatus.REFUSED):  # fmt: skip
            table.add_row(status.value.replace("_", " "), str(result.count(status)))
    table.add_row("invalid rows", str(result.count(RowStatus.INVALID)))
    table.add_row("not joining (no role)", str(parsed.not_joining))
    return table


def _rows_table(outcomes: list[RowOutcome]) -> Table:
    table = Table(title="Rows not joined")
    for column in ("line", "participant", "status", "reason"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        table.add_row(str(o.line), Text(o.participant_id), o.status.value, Text(o.reason))
    return table


def write_report(path: Path, outcomes: list[RowOutcome]) -> None:
    """Write the rows not joined as CSV: line, participant_id, status, reason."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["line", "participant_id", "status", "reason"])
        writer.writerows([o.line, o.participant_id, o.status.value, o.reason] for o in outcomes)
