"""``upward events tail|census`` and ``upward dlq list|show|replay``: typer entry points.

The commands only parse options, call :mod:`upward.events` and render with rich. A broker
that does not answer, or a name that is not in the catalogue, ends the command with one
clear line on stderr and exit code 1 (no traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.json import JSON
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from upward.events.broker import BrokerUnreachable
from upward.events.catalogue import UnknownName, resolve_topics, resolve_types
from upward.events.census import Census, topic_census
from upward.events.dead_letters import (
    REASONS,
    DeadLetter,
    DeadLetterTopic,
    ReplayPlan,
    find_dead_letter,
    plan_replay,
    read_dead_letters,
    replay,
)
from upward.events.records import SeenRecord
from upward.events.settings import EventToolSettings
from upward.events.tail import TailRequest, tail

T = TypeVar("T")

events_app = typer.Typer(
    name="events",
    help="Watch the event topics: tail them decoded, or count what is on them (census). "
    "Reads UPWARD_KAFKA_BOOTSTRAP_SERVERS and UPWARD_TOPIC_PREFIX; joins no consumer group.",
    no_args_is_help=True,
)
dlq_app = typer.Typer(
    name="dlq",
    help="Dead letters (<topic>.dlq): list them, show one, replay them to their original "
    "topic once the cause is fixed.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

TopicsOpt = Annotated[
    list[str] | None,
    typer.Option("--topic", "-t", show_default=False,
                 help="A catalogue topic, e.g. upward.pairs or pairs (repeatable). Default: all."),
]  # fmt: skip


def _settings() -> EventToolSettings:
    return EventToolSettings()


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a broker error or an unknown name becomes one line and exit 1."""
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its connection errors become ours, in one line
    try:
        return asyncio.run(work)
    except (BrokerUnreachable, UnknownName) as error:
        err.print(f"[bold red]error:[/bold red] {error}", soft_wrap=True)
        raise typer.Exit(1) from None
    except KafkaError as error:  # e.g. a replay fenced by a newer one, or refused by ACLs
        err.print(f"[bold red]Kafka error:[/bold red] {error!r}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        client_log.setLevel(level)


def _names(call: Any, names: list[str] | None) -> Any:
    """Resolve topic or type ``names`` with ``call``; an unknown one ends the command."""
    try:
        return call(names)
    except UnknownName as error:
        err.print(f"[bold red]error:[/bold red] {error}", soft_wrap=True)
        raise typer.Exit(1) from None


# ------------------------------------------------------------------------------ events


@events_app.command("tail")
def tail_command(
    topics: TopicsOpt = None,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            show_default=False,
            help="Only this event type, e.g. PairFormed (repeatable). Default: all.",
        ),
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest records, not the end.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, show_default=False, help="Stop after N records."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow",
            help="Keep waiting for new records (until Ctrl-C), or stop at the end.",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document per line instead of a pretty line.")
    ] = False,
) -> None:
    """Print the events of the catalogue topics as they arrive, decoded with the codec.

    Undecodable records are shown with their decode error.
    Joins no consumer group: the services' offsets are never touched.
    """
    request = TailRequest(
        topics=_names(resolve_topics, topics),
        types=_names(resolve_types, types),
        from_beginning=from_beginning,
        follow=follow,
        limit=limit,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow quietly
        _run(_print_tail(request, as_json=as_json))


async def _print_tail(request: TailRequest, *, as_json: bool) -> None:
    settings = _settings()
    records = tail(
        settings.kafka_bootstrap_servers,
        settings.topic_prefix,
        request,
        notice=lambda line: err.print(f"[yellow]{line}[/yellow]"),
    )
    async for seen in records:
        if as_json:
            out.print(json.dumps(seen.as_json(), ensure_ascii=False), markup=False, soft_wrap=True)
        else:
            out.print(tail_line(seen), soft_wrap=True)


def tail_line(seen: SeenRecord) -> Text:
    """One pretty line: time, topic, type, subject, short id and key fields (or the error)."""
    line = Text()
    where = f"{seen.topic} {seen.partition}:{seen.offset}"
    if seen.event is None:
        reason = seen.error.reason.value if seen.error else "unknown"
        detail = seen.error.detail if seen.error else ""
        line.append(f"{seen.timestamp:%Y-%m-%d %H:%M:%S} ", style="dim")
        line.append(where, style="cyan")
        line.append(" UNDECODABLE ", style="bold red")
        line.append(f"{reason}: {detail[:200]}", style="red")
        return line
    envelope = seen.event.envelope
    line.append(f"{envelope.time:%Y-%m-%d %H:%M:%S} ", style="dim")
    line.append(where, style="cyan")
    line.append(f" {envelope.event_name}", style="bold")
    line.append(f" {envelope.subject}", style="green")
    line.append(f" id={envelope.id[:8]}", style="dim")
    for name, value in seen.key_fields().items():
        line.append(f" {name}={value}")
    return line


@events_app.command("census")
def census_command() -> None:
    """Count what every catalogue topic and its .dlq twin hold now.

    Events per type, duplicate event ids, undecodable records, dead letters.
    Reads each topic from the beginning to its current end; joins no group.
    """
    settings = _settings()
    census = _run(
        topic_census(bootstrap=settings.kafka_bootstrap_servers, prefix=settings.topic_prefix)
    )
    for table in census_tables(census):
        out.print(table)


def census_tables(census: Census) -> tuple[Table, Table]:
    """The census as two tables: events per (topic, type), then each topic's problems."""
    events = Table(title="Events per topic and type")
    events.add_column("topic", no_wrap=True)
    events.add_column("event type", no_wrap=True)
    events.add_column("events", justify="right")
    problems = Table(title="Duplicates, undecodable records and dead letters")
    problems.add_column("topic", no_wrap=True)
    problems.add_column("duplicate ids", justify="right")
    problems.add_column("undecodable")
    problems.add_column("dead letters")
    for topic in census.events:
        kinds = sorted(kind for (name, kind) in census.counts if name == topic)
        for kind in kinds:
            events.add_row(topic, kind, str(census.counts[(topic, kind)]))
        total = sum(census.counts[(topic, kind)] for kind in kinds)
        events.add_row(topic, Text("all", style="bold"), str(total), end_section=True)
        problems.add_row(topic, *_problems(census, topic))
    return events, problems


def _problems(census: Census, topic: str) -> tuple[str, str, str]:
    """Duplicate ids, undecodable (by reason) and dead letters (by reason) of ``topic``."""
    return (
        str(len(census.duplicates[topic])),
        _with_reasons(census.undecodable[topic], census.undecodable_reasons[topic]),
        _with_reasons(census.dead_letters[topic], census.dead_letter_reasons[topic]),
    )


def _with_reasons(total: int, reasons: dict[str, int]) -> str:
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"{total} ({detail})" if detail else str(total)


# --------------------------------------------------------------------------------- dlq


@dlq_app.command("list")
def list_command(topics: TopicsOpt = None) -> None:
    """Count and list the dead letters of each topic, with their reasons.

    Per dead letter: its .dlq position, reason, original topic:partition:offset,
    when it failed, the consumer group that gave up, replayed or not, the detail.
    """
    settings = _settings()
    chosen = _names(resolve_topics, topics)
    found = _run(read_dead_letters(settings.kafka_bootstrap_servers, settings.topic_prefix, chosen))
    for dead in found:
        _print_dead_letter_topic(dead, prefix=settings.topic_prefix)


def _print_dead_letter_topic(dead: DeadLetterTopic, *, prefix: str) -> None:
    count = len(dead.letters)
    replayed = sum(1 for letter in dead.letters if letter.replayed)
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(dead.reasons().items()))
    missing = "" if dead.exists else " (topic does not exist yet)"
    out.print(
        f"[bold]{dead.dlq_topic}[/bold]: {count} dead letter{'s' * (count != 1)}"
        + (f", {replayed} replayed" if replayed else "")
        + (f" — {reasons}" if reasons else "")
        + missing,
        soft_wrap=True,
    )
    if dead.letters:
        out.print(dead_letter_table(dead.letters, prefix=prefix))


def dead_letter_table(letters: tuple[DeadLetter, ...], *, prefix: str) -> Table:
    """A table row per dead letter with its ``dlq.*`` headers (topics without ``prefix``)."""
    table = Table()
    table.add_column("at", no_wrap=True, min_width=5)
    for column in ("reason", "original", "failed at", "group"):
        table.add_column(column, overflow="fold")
    table.add_column("replayed", no_wrap=True, min_width=3)
    table.add_column("detail", overflow="fold")
    for letter in letters:
        original = "{}:{}:{}".format(
            letter.header("original.topic").removeprefix(prefix),
            letter.header("original.partition"),
            letter.header("original.offset"),
        )
        table.add_row(
            letter.position,
            letter.reason,
            original,
            letter.header("failed.at")[:19].replace("T", " "),
            letter.header("consumer.group"),
            "yes" if letter.replayed else "",
            Text(letter.header("detail")[:300]),
        )
    return table


@dlq_app.command("show")
def show_command(
    topic: Annotated[str, typer.Argument(help="The catalogue topic, e.g. upward.pairs or pairs.")],
    partition: Annotated[int, typer.Argument(min=0, help="Partition on the .dlq topic.")],
    offset: Annotated[int, typer.Argument(min=0, help="Offset on the .dlq topic.")],
) -> None:
    """Show one dead letter: its headers, key and value (pretty JSON when it is JSON)."""
    settings = _settings()
    (logical,) = _names(resolve_topics, [topic])
    letter = _run(
        find_dead_letter(
            settings.kafka_bootstrap_servers, settings.topic_prefix, logical, partition, offset
        )
    )
    if letter is None:
        where = f"{partition}:{offset} of {settings.topic_prefix}{logical}.dlq"
        err.print(f"[bold red]error:[/bold red] no dead letter at {where} (see `upward dlq list`)")
        raise typer.Exit(1)
    _print_letter(letter)


def _print_letter(letter: DeadLetter) -> None:
    replayed = " [green](replayed)[/green]" if letter.replayed else ""
    out.print(f"[bold]{letter.dlq_topic}[/bold] {letter.position}{replayed}")
    headers = Table("header", "value", show_edge=False)
    for name, value in letter.headers:
        headers.add_row(name, Text(value.decode("utf-8", errors="replace")))
    out.print(headers)
    key = "(none)" if letter.key is None else letter.key.decode("utf-8", errors="replace")
    out.print(Text(f"key: {key}"))
    out.print("value:")
    out.print(_pretty_value(letter.value), soft_wrap=True)


def _pretty_value(value: bytes | None) -> JSON | Text:
    """Pretty JSON when ``value`` is JSON, else the text (invalid UTF-8 replaced)."""
    if value is None:
        return Text("(null)")
    try:
        return JSON.from_data(json.loads(value))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Text(value.decode("utf-8", errors="replace"))


@dlq_app.command("replay")
def replay_command(
    topics: TopicsOpt = None,
    reasons: Annotated[
        list[str] | None,
        typer.Option(
            "--reason",
            "-r",
            show_default=False,
            help="Only dead letters with this dlq.reason (repeatable). Default: all.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be replayed; publish nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Publish dead letters back to their original topic, key and value byte for byte.

    Each one is marked as replayed on its .dlq topic in the same transaction:
    running replay again never publishes it twice.
    Truncated dead letters are skipped.
    """
    settings = _settings()
    chosen = _names(resolve_topics, topics)
    wanted = frozenset(reasons or ())
    if unknown := sorted(wanted - set(REASONS)):
        valid = ", ".join(REASONS)
        err.print(
            f"[bold red]error:[/bold red] unknown reason {unknown[0]!r}; valid reasons: {valid}"
        )
        raise typer.Exit(1)
    found = _run(read_dead_letters(settings.kafka_bootstrap_servers, settings.topic_prefix, chosen))
    plan = plan_replay(found, reasons=wanted)
    if dry_run or not plan.to_send:
        out.print(replay_summary(plan, replayed=0, dry_run=dry_run))
        return
    if not yes and not typer.confirm(f"Replay {len(plan.to_send)} dead letter(s)?"):
        raise typer.Exit(1)
    sent = _replay_with_progress(settings.kafka_bootstrap_servers, plan)
    out.print(replay_summary(plan, replayed=sent, dry_run=False))


def _replay_with_progress(bootstrap: str, plan: ReplayPlan) -> int:
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("replay", total=len(plan.to_send))
        return _run(replay(bootstrap, plan, on_sent=lambda n: progress.advance(task, n)))


def replay_summary(plan: ReplayPlan, *, replayed: int, dry_run: bool) -> Table:
    """Replayed (or to replay) per reason, and skipped per cause."""
    verb = "to replay" if dry_run else "replayed"
    count = len(plan.to_send) if dry_run else replayed
    table = Table(title=f"Dead letters: {count} {verb}, {sum(plan.skipped.values())} skipped")
    table.add_column("outcome")
    table.add_column("why", overflow="fold")
    table.add_column("count", justify="right")
    rows: Counter[tuple[str, str]] = Counter()
    for reason, n in plan.by_reason().items():
        rows[(verb, reason)] += n
    for cause, n in plan.skipped.items():
        rows[("skipped", cause)] += n
    for (outcome, why), n in sorted(rows.items()):
        table.add_row(outcome, why, str(n))
    return table
