"""Runtime-kit benchmarks on a real broker and database, against the raw ceiling.

Three figures, measured in one run on one broker:

* **codec**: CloudEvents encode + decode (validate, upcast) of ParticipantJoined, per second;
* **raw passthrough**: an aiokafka consume -> produce loop with no decoding and
  no database — the ceiling for Python on this machine;
* **kit pipeline**: the example welcome service (decode, inbox row, state change
  and outbox row in one transaction per event, relay publishing the emitted
  events), from a preloaded topic to the last effect committed and the last
  emitted event published; printed as a ratio of the raw ceiling.

Figures are printed and written to docs/benchmarks.md (its kit section) with the command
and the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from benchmarks.measure import (
    Figure,
    Series,
    bench_raw,
    paired_ratios,
    preload,
    running_stack,
    short_version,
)
from benchmarks.report import REPORT, machine, write_section
from examples import welcome_service
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.participants import ParticipantJoined
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from upward.stack import StackInfo, database_url, free_ports

CONCURRENCY = 3
"""``partition_concurrency`` of the extra kit row (the benchmark topic has 3 partitions)."""


def joined_events(count: int) -> list[CloudEvent]:
    """``count`` ParticipantJoined events with distinct participants."""
    template = ParticipantJoined.example().model_dump(mode="json")
    run = uuid.uuid4().hex[:6]
    return [
        new_event(
            ParticipantJoined.model_validate({**template, "participant_id": f"b{run}-{i}"}),
            source="/bench",
        )
        for i in range(count)
    ]


def bench_codec(events: list[CloudEvent]) -> Figure:
    """Encode then decode every event."""
    started = time.perf_counter()
    for event in events:
        decode(encode(event), key=event.subject.encode())
    return Figure("codec encode+decode", len(events), time.perf_counter() - started)


def _settings(bootstrap: str, db_url: str, prefix: str = "") -> ServiceSettings:
    return settings_for("welcome")(
        service_name="welcome",
        database_url=db_url,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        http_port=free_ports(1)[0],
        relay_poll_interval_s=0.2,
    )


async def _wait_until(conn: asyncpg.Connection, sql: str, target: int, limit_s: float) -> float:
    """Poll ``sql`` (a count) on one open connection until it reaches ``target``.

    One connection for the whole wait: a new one per poll would start a PostgreSQL
    backend every 50 ms, CPU taken from the service being measured.
    """
    deadline = time.perf_counter() + limit_s
    while int(await conn.fetchval(sql)) < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"benchmark did not reach {target} within {limit_s} s: {sql}")
        await asyncio.sleep(0.05)
    return time.perf_counter()


async def bench_kit(
    info: StackInfo,
    events: list[CloudEvent],
    *,
    with_streams: bool,
    partition_concurrency: int | None = None,
) -> tuple[Figure, Figure]:
    """The welcome service, warmed up, from publishing N events to effects and relay done.

    Without ``with_streams`` its faust stream table is left out, so the figure is the
    consumer pipeline's alone; with it, the same process also runs the faust worker.
    ``partition_concurrency`` overrides the setting's default.
    """
    db_name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(info.postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    db_url = database_url(info.postgres_admin_url, db_name)
    settings = _settings(info.bootstrap_servers, db_url, prefix=f"b{uuid.uuid4().hex[:8]}.")
    if partition_concurrency is not None:
        settings = settings.model_copy(update={"partition_concurrency": partition_concurrency})
    topic = settings.physical_topic("upward.participants")
    definition = welcome_service.DEFINITION
    if not with_streams:
        definition = replace(definition, streams=None, routers=lambda context: ())
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    poller = await asyncpg.connect(db_url)
    try:
        warm_up = joined_events(1)
        await preload(info.bootstrap_servers, topic, warm_up)  # group joined, pool warm
        await _wait_until(poller, "SELECT count(*) FROM welcomes", 1, 120)
        started = time.perf_counter()
        await preload(info.bootstrap_servers, topic, events)
        n = len(events) + 1
        handled = await _wait_until(poller, "SELECT count(*) FROM welcomes", n, 600)
        published = await _wait_until(
            poller, "SELECT count(*) FROM kit_outbox WHERE published_at IS NOT NULL", n, 600
        )
    finally:
        await poller.close()
        runtime.stop.set()
        await runtime.wait()
        admin = await asyncpg.connect(info.postgres_admin_url)
        await admin.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        await admin.close()
    suffix = " (+ faust stream table)" if with_streams else ""
    if partition_concurrency is not None:
        suffix += f" (partition_concurrency {partition_concurrency})"
    return (
        Figure(f"kit pipeline: effects committed{suffix}", len(events), handled - started),
        Figure(f"kit pipeline: emitted events published{suffix}", len(events), published - started),
    )


def report(all_series: list[Series], raw: Series, info: StackInfo, command: str) -> str:
    """The Markdown report written to docs/benchmarks.md."""
    rounds = len(raw.figures)
    lines = [
        "## Runtime kit pipeline",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` on {machine()};",
        f"Apache Kafka {info.kafka_version or '?'} (single node, KRaft),"
        f" {short_version(info.postgres_version)}, broker and database on the same machine.",
        f"Each figure was measured in {rounds} rounds; a round runs every benchmark once,",
        "so the ratio is taken per round (same machine state) and its median reported.",
        "",
        "| figure | events | median events/s | range over rounds | ratio to raw passthrough |",
        "|---|---:|---:|---:|---:|",
    ]
    for series in all_series:
        kit = "pipeline" in series.name
        lines.append(series.row(paired_ratios(series, raw) if kit or series is raw else None))
    defaults = ServiceSettings.model_fields
    lines += [
        "",
        "The raw passthrough is an aiokafka consume -> produce loop that decodes",
        "nothing and touches no database: the ceiling for Python here. The kit",
        "pipeline (the example welcome service, default settings) decodes and",
        "validates each event, then applies up to `transaction_batch_max`"
        f" ({defaults['transaction_batch_max'].default}) events of a partition in",
        "one PostgreSQL transaction: inbox rows claimed in one statement, the",
        "handler's state change (one statement per event), the emitted events",
        "written to the outbox with the relay's NOTIFY in one statement; the relay",
        f"publishes them in batches of up to {defaults['relay_batch_max'].default}."
        " The service is warmed up (consumer group joined) before the clock starts;",
        "the clock runs from the first publish of the N events (the publishing",
        "producer runs in the same process, inside the clock) to the last effect",
        "committed / emitted event published, polled every 50 ms on one connection.",
        f"The `partition_concurrency {CONCURRENCY}` row applies the three partitions'",
        "batches at the same time (each partition still in order; the default is 1).",
        "The last row runs the same service with its faust GlobalTable",
        "(participants joined per program) in the same process: a second consumer",
        "of the topic plus a changelog write per event. This machine is a shared VM:",
        "expect ±30 % between runs, which is why the ratio is paired per round.",
        "",
    ]
    return "\n".join(lines)


async def run(events_count: int, rounds: int, command: str) -> None:
    """Run every benchmark ``rounds`` times and write the report."""
    names = [
        "codec encode+decode",
        "raw aiokafka passthrough",
        "kit pipeline: effects committed",
        "kit pipeline: emitted events published",
        f"kit pipeline: effects committed (partition_concurrency {CONCURRENCY})",
        "kit pipeline: effects committed (+ faust stream table)",
    ]
    measured: dict[str, list[Figure]] = {name: [] for name in names}
    with running_stack() as info:
        for round_no in range(1, rounds + 1):
            events = joined_events(events_count)
            codec = bench_codec(events)
            raw = await bench_raw(info.bootstrap_servers, events)
            handled, published = await bench_kit(info, events, with_streams=False)
            concurrent, _ = await bench_kit(
                info, events, with_streams=False, partition_concurrency=CONCURRENCY
            )
            streamed, _ = await bench_kit(info, events, with_streams=True)
            for figure in (codec, raw, handled, published, concurrent, streamed):
                measured[figure.name].append(figure)
            print(
                f"round {round_no}/{rounds}: codec {codec.rate:,.0f}/s, raw {raw.rate:,.0f}/s,"
                f" kit {handled.rate:,.0f}/s (ratio {handled.rate / raw.rate:.2f}),"
                f" concurrent {concurrent.rate:,.0f}/s (ratio {concurrent.rate / raw.rate:.2f})",
                flush=True,
            )
    all_series = [Series(name, measured[name]) for name in names]
    raw_series = all_series[1]
    for series in all_series:
        print(f"{series.name:40s} median {series.median_rate:10,.0f} events/s")
    ratio = statistics.median(paired_ratios(all_series[2], raw_series))
    print(f"kit / raw ratio (median of paired rounds): {ratio:.2f}")
    write_section("kit", report(all_series, raw_series, info, command))
    print(f"written to {REPORT}")


def main(events: int = 5000, rounds: int = 3, command: str | None = None) -> None:
    """Run the kit suite (``python -m benchmarks --suite kit``)."""
    command = command or f"python -m benchmarks --suite kit --events {events} --rounds {rounds}"
    asyncio.run(run(events, rounds, command))
