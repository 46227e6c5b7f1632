"""``upward match plan``: dry-run the matching engine on a cohort file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.matching.domain.engine import plan_matching
from services.matching.domain.model import MatchPlan, ProgramRules
from upward.match.dry_run import (
    DryRunInputError,
    candidate,
    check_programs,
    plan_document,
    read_cohort,
    read_program,
    reference_instant,
    write_atomically,
)

app = typer.Typer(
    name="match",
    help="Matching tools: plan a cohort offline with the matching engine (a dry run).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

InputOpt = Annotated[
    Path,
    typer.Option("--input", "-i", exists=True, dir_okay=False, readable=True,
                 help="COHORT.jsonl: one ParticipantJoined data object per line."),
]  # fmt: skip
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", dir_okay=False, help="PLAN.json to write.")
]
ProgramOpt = Annotated[
    Path | None,
    typer.Option("--program", "-p", exists=True, dir_okay=False, readable=True, show_default=False,
                 help="PROGRAM.json: a ProgramCreated data object. Default: the reference "
                 "program (reverse, grade gap 2, 6 h, default weights)."),
]  # fmt: skip
AssumeOpt = Annotated[
    bool,
    typer.Option("--assume-screened/--no-assume-screened",
                 help="Treat everyone in the file as screened and trained (a cohort file "
                 "carries no screening records)."),
]  # fmt: skip
AtOpt = Annotated[
    datetime | None,
    typer.Option("--at", show_default=False,
                 help="Instant at which time-zone gaps are taken (DST). Default: noon UTC "
                 "on the program's first day."),
]  # fmt: skip


@app.command("plan")
def plan(
    input_path: InputOpt,
    output: OutputOpt,
    program_path: ProgramOpt = None,
    assume_screened: AssumeOpt = True,
    at: AtOpt = None,
) -> None:
    """Plan COHORT.jsonl optimally and write PLAN.json (pairs, unmatched, totals)."""
    started = time.monotonic()
    with _progress() as step:
        step(f"Reading {input_path.name}")
        try:
            with input_path.open(encoding="utf-8") as lines:
                people = read_cohort(lines, source=input_path.name)
            program = read_program(
                program_path, cohort_program_id=people[0].program_id if people else None
            )
            check_programs(people, program.program_id, source=input_path.name)
        except DryRunInputError as exc:
            raise _invalid(exc) from exc
        rules = ProgramRules.from_definition(program)
        instant = reference_instant(program, at)
        candidates = [candidate(p, assume_screened=assume_screened) for p in people]
        step(f"Planning {len(candidates):,} participants ({rules.objective})")
        result = plan_matching(rules=rules, participants=candidates, excluded=set(), at=instant)
        step(f"Writing {output.name}")
        write_atomically(output, plan_document(result, rules=rules, at=instant))
    out.print(_summary(result, output, time.monotonic() - started))


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time; each ``step(text)`` starts a new line of progress."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        current: list[TaskID] = []

        def step(text: str) -> None:
            if current:
                progress.update(current[-1], completed=1, total=1)
            current.append(progress.add_task(text, total=None))

        yield step
        if current:
            progress.update(current[-1], completed=1, total=1)


def _invalid(exc: DryRunInputError) -> typer.Exit:
    err.print("[bold red]invalid input; nothing was written:[/bold red]")
    for problem in exc.problems:
        err.print(f"  {problem}", markup=False, highlight=False)
    return typer.Exit(1)


def _summary(plan: MatchPlan, output: Path, seconds: float) -> Table:
    totals = plan.totals
    table = Table(title=f"Plan written to {output}", show_header=False)
    for label, value in (
        ("pairs", f"{totals['matched']:,}"),
        ("mentors / mentees open", f"{totals['mentors']:,} / {totals['mentees']:,}"),
        ("unmatched people", f"{len(plan.unmatched):,}"),
        ("total score", f"{totals['total_score']:.3f}"),
        ("optimal (certified)", "yes" if totals["optimal"] else "no"),
        (
            "eligible arcs / solved on",
            f"{totals['eligible_arcs']:,} / {totals['candidate_arcs']:,}",
        ),
        ("time", f"{seconds:.2f} s"),
    ):
        table.add_row(label, value)
    return table
