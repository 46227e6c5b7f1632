"""``upward demo``: the four services on a synthetic cohort through simulated time.

The demo needs Kafka and PostgreSQL (``upward stack up``, or external ones through
``UPWARD_KAFKA_BOOTSTRAP_SERVERS`` / ``UPWARD_DATABASE_URL``). Each run gets fresh
databases (``upward_demo_<service>``) and its own topic prefix, starts the services on
manual clocks (``upward services``' run directory, so ``upward services status|logs|down``
see them), runs :class:`upward.demo.scenario.Scenario` and prints the summary.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from upward.demo.cohort import load_cohort
from upward.demo.platform import Platform, PlatformAddress, ScenarioError
from upward.demo.scenario import Scenario, ScenarioSettings
from upward.demo.summary import collect_summary, summary_tables
from upward.services.commands import default_run_dir, fail, running_stack
from upward.services.manager import Infrastructure, ServiceOptions, ServicesError, ServiceSupervisor
from upward.stack import SERVICES, database_url
from upward.stack import postgres as stack_postgres

out = Console()
err = Console(stderr=True)


def demo_infrastructure() -> Infrastructure:
    """Fresh ``upward_demo_<service>`` databases next to the stack's, and its broker."""
    info = running_stack()
    admin = info.postgres_admin_url
    names = {name: f"upward_demo_{name}" for name in SERVICES}

    async def recreate() -> None:
        for name in names.values():
            await stack_postgres.drop_database(admin, name)
        await stack_postgres.ensure_databases(admin, list(names.values()))

    asyncio.run(recreate())
    urls = {service: database_url(admin, name) for service, name in names.items()}
    return Infrastructure(info.bootstrap_servers, urls)


def demo(
    employees: Annotated[int, typer.Option(min=16, help="Employees in the enterprise.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the enterprise and of choices.")] = 7,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Program length in weeks.")] = 6,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the services up afterwards.")
    ] = False,
) -> None:  # fmt: skip
    """Run a reverse mentoring program on a synthetic enterprise through simulated time."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    settings = ScenarioSettings(weeks=weeks, seed=seed)
    run_dir = default_run_dir()
    previous = ServiceSupervisor.from_run_dir(run_dir).down()
    if previous:
        out.print(f"stopped the services already running ({', '.join(previous)})")
    infra = demo_infrastructure()
    options = ServiceOptions(
        run_dir=run_dir, topic_prefix=f"demo-{run_id}.", clock_start=settings.start
    )
    options.mail_file.unlink(missing_ok=True)  # the summary counts this run's mail only
    supervisor = ServiceSupervisor(options)
    try:
        with out.status("starting the services") as spinner:
            supervisor.up(infra, notify=spinner.update)
        out.print("[green]services ready[/green]: " + ", ".join(SERVICES))
        address = PlatformAddress(
            {name: options.url(name) for name in SERVICES},
            infra.database_urls,
            infra.bootstrap_servers,
            options.topic_prefix,
        )
        asyncio.run(_run(address, employees, settings, options))
    except ServicesError as exc:
        raise fail(exc) from exc
    except ScenarioError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        err.print(f"[dim]service logs: {run_dir}/<service>.log[/dim]")
        raise typer.Exit(1) from exc
    finally:
        if not keep_running:
            supervisor.down()
    out.print(f"demo completed in {time.monotonic() - started:.0f} s")
    if keep_running:
        out.print("services left running: `upward services status`, `upward services down`")
    else:
        out.print("services stopped; stop the stack with `upward stack down`")


async def _run(
    address: PlatformAddress, employees: int, settings: ScenarioSettings, options: ServiceOptions
) -> None:
    cohort = load_cohort(
        employees,
        seed=settings.seed,
        program_id=settings.program_id,
        starts_on=settings.start.date(),
        weeks=settings.weeks,
    )
    out.print(f"cohort: {len(cohort.members)} participants from {employees} employees")
    columns = (
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    async with Platform(address, wait_timeout_s=300) as platform:
        with Progress(*columns, console=out) as progress:
            task = progress.add_task("starting", total=1)

            def show(phase: str, done: int, total: int) -> None:
                progress.update(task, description=phase, completed=done, total=max(total, 1))

            tally = await Scenario(platform, cohort, settings, show).run()
        out.print(
            f"simulated {tally.days} days: {tally.joined} joined ({tally.late_joined} late), "
            f"{tally.accepted} proposals accepted, {tally.declined} declined, "
            f"{tally.held_recorded} sessions recorded held, {tally.answers} feedback answers"
        )
        summary = await collect_summary(platform, settings.program_id, mail_file=options.mail_file)
    for table in summary_tables(summary):
        out.print(table)
