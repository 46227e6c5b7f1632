"""The ``upward`` command-line tool (entry point ``upward = "upward.cli:main"``)."""

from __future__ import annotations

import typer

from servicekit.kafka import KafkaSecurityError
from upward.demo.commands import demo
from upward.deploy import app as deploy_app
from upward.events.commands import dlq_app, events_app
from upward.identity import CannotSignTokens
from upward.importing.commands import app as import_app
from upward.match.commands import app as match_app
from upward.programs.commands import app as program_app
from upward.services.commands import app as services_app
from upward.stack.commands import app as stack_app
from upward.tokens.commands import token

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
app.add_typer(services_app, name="services")
app.command(name="demo")(demo)
app.command(name="token")(token)


def main() -> None:
    """The console script: the app, with a missing token or Kafka credential said in one
    line."""
    try:
        app()
    except (CannotSignTokens, KafkaSecurityError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from error


if __name__ == "__main__":  # pragma: no cover
    main()
