"""``upward program create``: create a program through the matching API and print its id.

The definition comes from ``--file program.json`` (a ProgramCreated data object) or from
options over a realistic default (:func:`upward.demo.enterprise.demo_program`). It is
validated locally first (every problem named), then ``POST /programs`` as the platform
admin. Exit codes: 0 created (the id is printed on stdout); 1 refused by the service (an
existing id, 4xx); 2 an invalid definition; 3 the service cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from schemas.programs import ProgramDefinition
from upward.demo.enterprise import demo_program
from upward.importing.matching_api import (
    DEFAULT_MATCHING_URL,
    MATCHING_URL_ENV,
    Answer,
    MatchingApi,
    MatchingUnavailable,
)

app = typer.Typer(
    name="program",
    help="Programs: create one through the matching service.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True, show_default=False,
                 help="PROGRAM.json: the whole definition (a ProgramCreated data object)."),
]  # fmt: skip
IdOpt = Annotated[
    str | None,
    typer.Option("--id", show_default=False,
                 help="Program id (default: the file's, or a random prg-...)."),
]  # fmt: skip
NameOpt = Annotated[str | None, typer.Option("--name", show_default=False, help="Program name.")]
KindOpt = Annotated[
    str, typer.Option("--kind", help="reverse, traditional or mutual (without --file).")
]
StartsOpt = Annotated[
    str | None,
    typer.Option("--starts-on", show_default=False, help="First day, YYYY-MM-DD (without --file)."),
]  # fmt: skip
AdminOpt = Annotated[
    list[str] | None,
    typer.Option("--admin", show_default=False, help="Program admin id (repeat; without --file)."),
]  # fmt: skip
ScreeningOpt = Annotated[
    bool,
    typer.Option("--screening/--no-screening", help="Mentors must be screened (without --file)."),
]  # fmt: skip
TrainingOpt = Annotated[
    bool,
    typer.Option("--training/--no-training", help="Mentors must be trained (without --file)."),
]  # fmt: skip
UrlOpt = Annotated[
    str, typer.Option("--matching-url", envvar=MATCHING_URL_ENV, help="Matching service URL.")
]


@app.command("create")
def create(
    file: FileOpt = None,
    program_id: IdOpt = None,
    name: NameOpt = None,
    kind: KindOpt = "reverse",
    starts_on: StartsOpt = None,
    admin: AdminOpt = None,
    screening: ScreeningOpt = True,
    training: TrainingOpt = True,
    matching_url: UrlOpt = DEFAULT_MATCHING_URL,
) -> None:
    """Create a program and print its id."""
    if file is not None:
        document = _read_file(file)
        if program_id:
            document["program_id"] = program_id
    else:
        document = _from_options(program_id, name, kind, starts_on, admin, screening, training)
    definition = _validated(document)
    try:
        answer = asyncio.run(_post(matching_url, definition))
    except MatchingUnavailable as error:
        err.print(f"[bold red]cannot create the program:[/bold red] {error}", highlight=False)
        raise typer.Exit(3) from error
    if not answer.ok:
        err.print(
            f"[bold red]refused ({answer.status}):[/bold red] {answer.reason}", highlight=False
        )
        raise typer.Exit(1)
    out.print(definition["program_id"], highlight=False)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid([f"{path.name}: not a readable JSON file: {error}"]) from error
    if not isinstance(document, dict):
        raise _invalid([f"{path.name}: the program must be a JSON object"])
    return document


def _from_options(
    program_id: str | None,
    name: str | None,
    kind: str,
    starts_on: str | None,
    admins: list[str] | None,
    screening: bool,
    training: bool,
) -> dict[str, Any]:
    try:
        first_day = date.fromisoformat(starts_on) if starts_on else date.today()
        return demo_program(
            program_id=program_id or f"prg-{uuid.uuid4().hex[:8]}",
            kind=kind,
            name=name,
            starts_on=first_day,
            requires_screening=screening,
            requires_training=training,
            **({"admin_ids": admins} if admins else {}),
        )
    except ValueError as error:
        raise _invalid([str(error)]) from error


def _validated(document: dict[str, Any]) -> dict[str, Any]:
    """The definition as JSON, after the contract's own validation."""
    try:
        return ProgramDefinition.model_validate(document).model_dump(mode="json")
    except ValidationError as error:
        raise _invalid(
            [
                f"{'.'.join(str(p) for p in e['loc']) or '(program)'}: {e['msg']}"
                for e in error.errors()
            ]
        ) from error


def _invalid(problems: list[str]) -> typer.Exit:
    err.print("[bold red]invalid program; nothing was created:[/bold red]")
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False)
    return typer.Exit(2)


async def _post(url: str, definition: dict[str, Any]) -> Answer:
    async with MatchingApi(url) as api:
        return await api.create_program(definition)
