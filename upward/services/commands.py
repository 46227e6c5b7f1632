"""``upward services up|down|status|logs``: the four services as local processes."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from upward.services.manager import (
    DEFAULT_MAIL_PORT,
    DEFAULT_PORTS,
    MAIL_SINK,
    Infrastructure,
    ServiceOptions,
    ServicesError,
    ServiceSupervisor,
    log_file,
)
from upward.stack import SERVICES, LocalStack, StackInfo, StackSettings

app = typer.Typer(
    name="services",
    help=(
        "Run the four services (matching, sessions, feedback, notifications) as local "
        "processes against the local stack or the Kafka and PostgreSQL named by "
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS / UPWARD_DATABASE_URL."
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

RunDirOpt = Annotated[
    Path | None,
    typer.Option("--run-dir", show_default=False,
                 help="Pid files and logs (default $UPWARD_STACK_HOME/services)."),
]  # fmt: skip


def default_run_dir() -> Path:
    """``<stack home>/services``."""
    return StackSettings().home / "services"


def running_stack() -> StackInfo:
    """The local stack's addresses (or the external ones); exit 1 when it is not running."""
    info = LocalStack(StackSettings()).info()
    if not info.kafka_external and info.kafka_pid is None:
        err.print("[red]Kafka is not running[/red]: start the stack with `upward stack up` "
                  "(or set UPWARD_KAFKA_BOOTSTRAP_SERVERS).")  # fmt: skip
        raise typer.Exit(1)
    if not info.postgres_external and info.postgres_pid is None:
        err.print("[red]PostgreSQL is not running[/red]: start the stack with "
                  "`upward stack up` (or set UPWARD_DATABASE_URL).")  # fmt: skip
        raise typer.Exit(1)
    return info


def stack_infrastructure() -> Infrastructure:
    """Kafka and the service databases of the running stack, or the configured external ones."""
    info = running_stack()
    return Infrastructure(info.bootstrap_servers, dict(info.database_urls))


def fail(exc: ServicesError) -> typer.Exit:
    """Print *exc* with its log's tail; return Exit(1) to raise."""
    err.print(f"[bold red]error:[/bold red] {exc.message}", highlight=False)
    if exc.log_path is not None:
        err.print(f"[dim]log: {exc.log_path}[/dim]", highlight=False)
    if exc.log_tail:
        err.print(exc.log_tail, highlight=False, markup=False)
    return typer.Exit(1)


@app.command()
def up(
    run_dir: RunDirOpt = None,
    base_port: Annotated[
        int, typer.Option(help="Port of matching; sessions, feedback, notifications follow.")
    ] = DEFAULT_PORTS["matching"],
    mail_port: Annotated[int, typer.Option(help="Port of the local SMTP sink.")] = (
        DEFAULT_MAIL_PORT
    ),
    manual_clock: Annotated[
        str | None,
        typer.Option(
            help="Run on a manual clock starting at this ISO time, with the demo's short "
            "intervals (demo, tests)."
        ),
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="Prefix of every topic.")] = "",
    timeout: Annotated[float, typer.Option(help="Seconds each service has to be ready.")] = 120,
) -> None:
    """Start the services (and an SMTP sink) and wait until each answers /readyz."""
    ports = {name: base_port + i for i, name in enumerate(SERVICES)}
    clock = datetime.fromisoformat(manual_clock) if manual_clock else None
    options = ServiceOptions(
        run_dir=run_dir or default_run_dir(),
        ports=ports,
        mail_port=mail_port,
        topic_prefix=topic_prefix,
        clock_start=clock,
        fast=clock is not None,
    )
    supervisor = ServiceSupervisor(options)
    try:
        with out.status("starting services") as spinner:
            supervisor.up(stack_infrastructure(), timeout_s=timeout, notify=spinner.update)
    except ServicesError as exc:
        raise fail(exc) from exc
    print_status(supervisor)


@app.command()
def down(run_dir: RunDirOpt = None) -> None:
    """Stop the services and the SMTP sink (SIGTERM, then SIGKILL after 20 s)."""
    supervisor = ServiceSupervisor.from_run_dir(run_dir or default_run_dir())
    stopped = supervisor.down(notify=lambda line: out.print(line, highlight=False))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(run_dir: RunDirOpt = None) -> None:
    """A table of the services: pid, port, ready, API docs and metrics URLs."""
    print_status(ServiceSupervisor.from_run_dir(run_dir or default_run_dir()))


def print_status(supervisor: ServiceSupervisor) -> None:
    """Print the status table of *supervisor*'s processes."""
    table = Table(title="Upward services", caption="API docs at URL/docs, metrics at URL/metrics")
    for column in ("service", "pid", "port", "ready", "URL"):
        table.add_column(column, no_wrap=True)
    for row in supervisor.status():
        ready = "[green]yes[/green]" if row.ready else "[red]no[/red]"
        url = "" if row.name == MAIL_SINK else row.url
        pid = str(row.pid) if row.pid else "-"
        table.add_row(row.name, pid, str(row.port), ready, url)
    out.print(table)


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="matching, sessions, feedback, notifications "
                                                "or mailsink.")],
    run_dir: RunDirOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    lines: Annotated[int, typer.Option(help="Lines to show first.")] = 50,
) -> None:  # fmt: skip
    """Print (or follow) a service's log."""
    if service not in (*SERVICES, MAIL_SINK):
        err.print(f"[red]unknown service {service!r}[/red]: one of {', '.join(SERVICES)}")
        raise typer.Exit(2)
    path = log_file(run_dir or default_run_dir(), service)
    if not path.exists():
        err.print(f"[red]no log at {path}[/red] (was `upward services up` run?)")
        raise typer.Exit(1)
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log.readlines()[-lines:]:
            typer.echo(line, nl=False)
        while follow:
            line = log.readline()
            if line:
                typer.echo(line, nl=False)
            else:
                time.sleep(0.3)
