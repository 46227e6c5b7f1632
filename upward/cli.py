"""The ``upward`` command-line tool (entry point ``upward = "upward.cli:app"``)."""

from __future__ import annotations

import typer

from upward.deploy import app as deploy_app
from upward.events.commands import dlq_app, events_app
from upward.importing.commands import app as import_app
from upward.match.commands import app as match_app
from upward.programs.commands import app as program_app
from upward.stack.commands import app as stack_app

app = typer.Typer(
    name="upward",
    help="Upward: event-driven reverse, traditional and mutual mentoring programs.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")
app.add_typer(match_app, name="match")
app.add_typer(deploy_app, name="deploy")
app.add_typer(program_app, name="program")
app.add_typer(import_app, name="import")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")


if __name__ == "__main__":  # pragma: no cover
    app()
