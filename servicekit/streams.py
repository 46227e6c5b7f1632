"""Stream tables and timers with faust-streaming, beside the kit's consumer loop.

The consumer loop (:mod:`servicekit.consumer`) applies events to PostgreSQL
exactly once in effect: that is where a service keeps its figures of record.
Some views are better kept as live stream aggregates — counts per program,
rates for dashboards — and faust does that well: tables backed by changelog
topics, windows, timers. A service declares them in a :data:`StreamsSetup`
function; the runtime creates the faust app, calls the setup, and runs a faust
worker in the same process and event loop, stopped with the service.

faust runs with ``processing_guarantee="at_least_once"`` (its ``exactly_once``
is known to be unreliable on rebalance): a stream table is a live view that a
redelivery may over-count after a crash, never the record of an effect.
Agents read raw bytes and decode with :func:`decoded_events`; a record that
does not decode is skipped there, because the service's consumer dead-letters it.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import faust
from prometheus_client import Counter

from schemas.codec import DecodedEvent, EventDecodeError, decode
from servicekit.kafka import kafka_client_options
from servicekit.settings import ServiceSettings

StreamsSetup = Callable[[Any, ServiceSettings], Any]
"""Declares agents, tables and timers on the faust app; returns what routes need (the views)."""

STREAM_SKIPPED = Counter(
    "upward_stream_skipped_total", "Records a stream agent skipped (dead-lettered elsewhere)",
    ["topic", "reason"],
)  # fmt: skip


def faust_broker_url(bootstrap_servers: str) -> str:
    """``h1:9092,h2:9092`` -> ``kafka://h1:9092;h2:9092``."""
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    return "kafka://" + ";".join(servers)


def faust_credentials(settings: ServiceSettings) -> Any:
    """faust's ``broker_credentials`` from the kit's Kafka security settings (or ``None``)."""
    options = kafka_client_options(settings)
    context = options.get("ssl_context")
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def streams_data_dir(settings: ServiceSettings) -> Path:
    """Where faust keeps its local state: under the temporary directory (an ``emptyDir``
    in the chart), never the working directory, which is read-only in a pod. The parent
    directory is created here: faust creates only the last level, and a fresh temporary
    directory (a new pod, a cleaned ``/tmp``) has no ``upward-streams`` yet."""
    path = Path(tempfile.gettempdir()) / "upward-streams" / settings.group_id
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def create_stream_app(
    settings: ServiceSettings, *, partitions: int = 3, replication_factor: int = 1
) -> Any:
    """The faust app of a service, configured the kit's way."""
    return faust.App(
        f"{settings.group_id}-streams",
        broker=faust_broker_url(settings.kafka_bootstrap_servers),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=streams_data_dir(settings),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=replication_factor,
        processing_guarantee="at_least_once",
        web_enabled=False,
    )


def source_topic(app: Any, settings: ServiceSettings, logical_topic: str) -> Any:
    """A faust topic over a catalogue topic, read as raw bytes."""
    return app.topic(
        settings.physical_topic(logical_topic), key_serializer="raw", value_serializer="raw"
    )


async def decoded_events(stream: Any, *, max_bytes: int) -> AsyncIterator[DecodedEvent]:
    """The valid events of a faust stream; undecodable records are counted and skipped."""
    async for event in stream.events():
        message = event.message
        try:
            yield decode(message.value, key=message.key, max_bytes=max_bytes)
        except EventDecodeError as exc:
            STREAM_SKIPPED.labels(message.topic, str(exc.reason)).inc()


class _EmbeddedWorker(faust.Worker):
    """A faust worker that leaves signals to the service runtime and draws no spinner."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(app, **options)
        self.spinner = None

    def install_signal_handlers(self) -> None:
        return None


class StreamWorker:
    """Runs a faust app's agents, tables and timers inside the service's loop."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, stop: asyncio.Event) -> None:
        """Start a faust worker, run until ``stop`` is set, then stop it."""
        worker = _EmbeddedWorker(
            self.app,
            quiet=True,
            loglevel="warn",
            override_logging=False,
            redirect_stdouts=False,
            daemon=False,
        )
        await worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop()
