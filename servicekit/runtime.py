"""Wiring and running one service: its store, consumer, relay and HTTP API.

A service declares a :class:`ServiceDefinition` (its name, the topics it reads
and writes, its handler table, its migrations, its routers and, optionally, its
faust stream tables and timers); :class:`ServiceRuntime`
starts everything, runs until SIGTERM or SIGINT, and stops in order, committing
what was processed. The runtime owns the service's clock (``UPWARD_CLOCK``):
with a manual clock it also serves ``/ops/clock`` to move time forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI

from servicekit import db
from servicekit.clock import Clock, ManualClock, SystemClock, clock_from_settings
from servicekit.consumer import EventConsumer, RecordProcessor
from servicekit.http import Probe, create_http_app, health_router
from servicekit.kafka import check_kafka_login, ensure_topics, make_producer
from servicekit.logs import configure_logging, get_logger
from servicekit.outbox import OutboxRelay
from servicekit.retry import Backoff, retry_transient
from servicekit.settings import ServiceSettings
from servicekit.streams import StreamsSetup, StreamWorker, create_stream_app
from servicekit.timers import AnyTimer, TickOutcome, TimerRunner, clock_router
from servicekit.unit_of_work import HandlerTable

_log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ServiceContext:
    """What a service's HTTP routes and timers may use: pool, settings, views, clock."""

    pool: asyncpg.Pool
    settings: ServiceSettings
    views: Any = None
    clock: Clock = field(default_factory=SystemClock)


RouterFactory = Callable[[ServiceContext], Sequence[APIRouter]]
TimerFactory = Callable[[ServiceContext], Sequence[AnyTimer]]


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything that makes one service different from another."""

    name: str
    version: str
    subscribes: tuple[str, ...]
    publishes: tuple[str, ...]
    handlers: HandlerTable
    migrations: Path
    routers: RouterFactory = field(default=lambda context: ())
    streams: StreamsSetup | None = None
    timers: TimerFactory = field(default=lambda context: ())


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the runtime owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServiceRuntime:
    """One running service."""

    def __init__(
        self, definition: ServiceDefinition, settings: ServiceSettings, clock: Clock | None = None
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.clock = clock or clock_from_settings(settings.clock, settings.clock_start)
        self.timer_runner: TimerRunner | None = None
        self.stop = asyncio.Event()
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.views: Any = None

    async def start(self) -> None:
        """Open the store, apply migrations, create topics, start the loops and API.

        While the database or the broker is not reachable yet, start waits with
        backoff, up to ``startup_timeout_s``; then it raises.
        """
        s = self.settings
        self.pool = await self._when_reachable(
            "database",
            lambda: db.create_pool(
                s.database_url.get_secret_value(), min_size=s.db_pool_min, max_size=s.db_pool_max
            ),
        )
        await db.apply_migrations(self.pool, "servicekit", db.KIT_MIGRATIONS)
        await db.apply_migrations(self.pool, self.definition.name, self.definition.migrations)
        topics = sorted({*self.definition.subscribes, *self.definition.publishes})
        await self._when_reachable("kafka", lambda: check_kafka_login(s))
        await self._when_reachable(
            "kafka", lambda: ensure_topics(s, [s.physical_topic(t) for t in topics])
        )
        self.producer = make_producer(s)
        await self._when_reachable("kafka", self.producer.start)
        self._spawn("relay", OutboxRelay(pool=self.pool, producer=self.producer, settings=s).run)
        if self.definition.subscribes:
            self._spawn("consumer", self._consumer().run)
        if self.definition.streams is not None:
            app = create_stream_app(s)
            self.views = self.definition.streams(app, s)
            self._spawn("streams", StreamWorker(app).run)
        self._start_timers()
        self._spawn("http", self._serve_http)
        _log.info("service_started", topics=topics, group=s.group_id, port=s.http_port)

    async def _when_reachable(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        s = self.settings

        def log(exc: Exception) -> None:
            _log.warning("waiting_for_dependency", dependency=what, error=repr(exc))

        return await retry_transient(
            attempt,
            backoff=Backoff(s.retry_initial_backoff_s, s.retry_max_backoff_s),
            pause=asyncio.sleep,
            on_retry=log,
            deadline=time.monotonic() + s.startup_timeout_s,
        )

    def _consumer(self) -> EventConsumer:
        assert self.pool is not None and self.producer is not None
        processor = RecordProcessor(
            settings=self.settings,
            pool=self.pool,
            producer=self.producer,
            handlers=self.definition.handlers,
            stop=self.stop,
            clock=self.clock,
        )
        return EventConsumer(
            settings=self.settings, processor=processor, topics=list(self.definition.subscribes)
        )

    def _spawn(self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await loop(self.stop)
            except Exception:
                _log.exception("loop_crashed", loop=name)
                self.stop.set()
                raise

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    def context(self) -> ServiceContext:
        """What the service's routers and timers are built with."""
        assert self.pool is not None
        return ServiceContext(self.pool, self.settings, self.views, self.clock)

    def _start_timers(self) -> None:
        assert self.pool is not None
        timers = self.definition.timers(self.context())
        self.timer_runner = TimerRunner(
            pool=self.pool, settings=self.settings, clock=self.clock, timers=timers
        )
        if timers:
            self._spawn("timers", self.timer_runner.run)

    async def run_timers(self) -> dict[str, TickOutcome]:
        """Run every timer of the service once now (tests; the manual clock's route)."""
        assert self.timer_runner is not None, "start the runtime first"
        return await self.timer_runner.run_all()

    def http_app(self) -> FastAPI:
        """The FastAPI app of this service (routers plus operations routes)."""
        routers = list(self.definition.routers(self.context()))
        if isinstance(self.clock, ManualClock):
            routers.append(clock_router(self.clock, self.timer_runner))
        return create_http_app(
            title=f"Upward {self.definition.name}",
            version=self.definition.version,
            routers=routers,
            operations=health_router(liveness=self.alive, readiness=self._probes()),
        )

    async def _serve_http(self, stop: asyncio.Event) -> None:
        config = uvicorn.Config(
            self.http_app(),
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
        )
        server = _QuietServer(config)
        serving = asyncio.create_task(server.serve())
        await stop.wait()
        server.should_exit = True
        await serving

    @property
    def failed(self) -> bool:
        """True when a loop of the service crashed (the process should exit non-zero)."""
        return any(t.done() and not t.cancelled() and t.exception() for t in self._tasks)

    def alive(self) -> bool:
        """Liveness: no loop has died."""
        return not any(t.done() for t in self._tasks) and not self.stop.is_set()

    def _probes(self) -> dict[str, Probe]:
        async def database() -> bool:
            assert self.pool is not None
            return bool(await self.pool.fetchval("SELECT 1"))

        async def kafka() -> bool:
            assert self.producer is not None
            await self.producer.client.fetch_all_metadata()
            return True

        return {"database": database, "kafka": kafka}

    async def wait(self) -> None:
        """Run until asked to stop, then stop every loop in order."""
        await self.stop.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()
        _log.info("service_stopped")


async def run_service(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    """Start ``definition`` with ``settings`` and run it until SIGTERM or SIGINT."""
    configure_logging(service=definition.name, level=settings.log_level)
    runtime = ServiceRuntime(definition, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stop.set)
    await runtime.start()
    await runtime.wait()
    if runtime.failed:
        raise SystemExit(1)


GC_THRESHOLDS = (50_000, 20, 20)
"""The collector's generation thresholds in a service's process (CPython's: 700, 10, 10).

A consumer batch keeps its events and what its handlers build alive until it commits (tens
of thousands of objects). With the default, young collections run every 700 allocations,
find them all alive and promote them, so full collections of the whole heap (100 ms and
more) follow every few batches: up to a third of a service's CPU under a backlog, and the
long pauses at the top of its latency. At 50,000 a batch's objects are mostly freed by
reference counting before a collection runs; cycles are still collected."""


def tune_garbage_collector() -> None:
    """Freeze what start-up imported (never collected, never scanned again) and raise the
    collection thresholds to :data:`GC_THRESHOLDS`."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    """A service process's main: tune the collector, then :func:`run_service` until
    SIGTERM or SIGINT."""
    tune_garbage_collector()
    asyncio.run(run_service(definition, settings))
