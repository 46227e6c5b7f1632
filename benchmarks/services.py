"""Per-service pipeline benchmarks against the raw Kafka ceiling, and cost growth.

In one run, on one broker, for each of the four services (the real service, its handler
table, store and outbox relay, run as its own process ``python -m services.<name>`` with
the environment :func:`upward.services.manager.service_environment` builds):

* **throughput**: the service is set up (program, people, pairs it needs), stopped, a
  backlog of the event it handles most is published, and the service is started again;
  events/s = backlog / (last inbox row seen committed - start of the first transaction);
  printed as a ratio of the raw aiokafka passthrough measured in the same round;
* **latency**: then, at a steady offered load (half the measured throughput), publish to
  effect committed: a deferred trigger records ``clock_timestamp()`` at each inbox row's
  commit, compared with the Kafka record's timestamp (both on this machine's clock);
* **cost growth**: throughput, peak RSS of the service process (``VmHWM``) and database
  size at 1x, 4x and 16x the event volume.

Figures are printed and written to docs/benchmarks.md (its services section).
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks import profiles
from benchmarks.measure import (
    RAW,
    Figure,
    Series,
    bench_raw,
    paired_ratios,
    preload,
    running_stack,
    short_version,
)
from benchmarks.report import REPORT, machine, write_section
from schemas.base import EventData
from schemas.codec import encode, new_event
from schemas.envelope import CloudEvent
from schemas.pairs import PairFormed
from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from schemas.sessions import SessionHeld, SessionScheduled
from servicekit.settings import ServiceSettings
from upward.identity import PLATFORM_ADMIN, auth_headers
from upward.services.manager import (
    DEFAULT_PORTS,
    Infrastructure,
    ServiceOptions,
    service_environment,
)
from upward.stack import StackInfo, database_url, free_ports

SERVICES = ("matching", "sessions", "feedback", "notifications")
DEFAULT_EVENTS = 4000
"""Backlog per service and round: long enough (a second or more) to be a sustained rate;
1,000 events drained in a quarter of a second and read low for the faster services."""
RAW_MIN_EVENTS = 10_000
"""The raw passthrough moves at least this many records per figure: 1,000 records are
under 100 ms of its work, too short for a steady ceiling."""
WARM_UP_SHARE = 3
"""Raw passthroughs of ``raw_min`` records run before the first round: a fresh broker's JVM
is still compiling its hot paths, and its raw rate rises from about 8,000 to 13,000/s over
the first 30,000 records here, which would flatter the first round's ratios."""
FACTORS = (1, 4, 16)
LOAD_SHARE = 0.5
"""Offered load of the latency run, as a share of the throughput just measured."""
LATENCY_SECONDS = 10.0
"""The latency run lasts about this long (fewer events when the backlog is smaller)."""
TARGET_RATIO = 0.25
POLL_S = 0.05

# --- workloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What one service run publishes: set-up events, then the benchmarked events."""

    setup: list[tuple[str, CloudEvent]]
    """(logical topic, event), published and applied before the clock starts."""
    topic: str
    """Logical topic of the benchmarked events."""
    events: list[CloudEvent]
    program: dict[str, Any] | None = None
    """A program created through the service's API first (matching owns programs)."""


def _event(data: EventData) -> CloudEvent:
    return new_event(data, source="/bench")


def _program(run: str) -> dict[str, Any]:
    """A reverse program starting today, batch and manual pairing (no continuous timer)."""
    template = ProgramCreated.example().model_dump(mode="json")
    return template | {
        "program_id": f"prg-{run}",
        "starts_on": date.today().isoformat(),
        "pairing_modes": ["batch", "manual"],
        "requires_screening": False,
        "requires_training": False,
    }


def _person(run: str, i: int) -> ParticipantJoined:
    template = ParticipantJoined.example().model_dump(mode="json")
    return ParticipantJoined.model_validate(
        template
        | {
            "participant_id": f"p{run}-{i}",
            "program_id": f"prg-{run}",
            "role": "mentor" if i % 2 == 0 else "mentee",
            "grade": 2 if i % 2 == 0 else 6,
            "display_name": f"Person {i}",
            "email": f"person{i}.{run}@example.com",
        }
    )


def _pair(run: str, i: int) -> PairFormed:
    return PairFormed.model_validate(
        PairFormed.example().model_dump(mode="json")
        | {
            "pair_id": f"pair-{run}-{i}",
            "program_id": f"prg-{run}",
            "mentor_id": f"p{run}-{2 * i}",
            "mentee_id": f"p{run}-{2 * i + 1}",
        }
    )


def _people(run: str, pairs: int) -> list[tuple[str, CloudEvent]]:
    created = _event(ProgramCreated.model_validate(_program(run)))
    joined = [_event(_person(run, i)) for i in range(2 * pairs)]
    return [("upward.programs", created)] + [("upward.participants", e) for e in joined]


def matching_workload(run: str, count: int) -> Workload:
    """ParticipantJoined into an existing program (created through the API)."""
    events = [_event(_person(run, i)) for i in range(count)]
    return Workload([], "upward.participants", events, program=_program(run))


def sessions_workload(run: str, count: int) -> Workload:
    """PairFormed of people already known: each pair's first sessions are scheduled."""
    events = [_event(_pair(run, i)) for i in range(count)]
    return Workload(_people(run, count), "upward.pairs", events)


def feedback_workload(run: str, count: int) -> Workload:
    """SessionHeld of known pairs: feedback requested from both people."""
    created = _event(ProgramCreated.model_validate(_program(run)))
    pairs = [_pair(run, i) for i in range(count)]
    setup = [("upward.programs", created)] + [("upward.pairs", _event(p)) for p in pairs]
    held_at = datetime.now(UTC) - timedelta(hours=1)
    events = [
        _event(
            SessionHeld.model_validate(
                SessionHeld.example().model_dump(mode="json")
                | {
                    "pair_id": p.pair_id,
                    "program_id": p.program_id,
                    "session_id": f"ses-{p.pair_id}-1",
                    "held_at": held_at.isoformat(),
                    "attendees": [p.mentor_id, p.mentee_id],
                }
            )
        )
        for p in pairs
    ]
    return Workload(setup, "upward.sessions", events)


def notifications_workload(run: str, count: int) -> Workload:
    """SessionScheduled of known people: an invite to each and two reminders each."""
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    events = []
    for i in range(count):
        pair = _pair(run, i)
        data = SessionScheduled.example().model_dump(mode="json") | {
            "pair_id": pair.pair_id,
            "program_id": pair.program_id,
            "session_id": f"ses-{pair.pair_id}-1",
            "mentor_id": pair.mentor_id,
            "mentee_id": pair.mentee_id,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(hours=1)).isoformat(),
        }
        events.append(_event(SessionScheduled.model_validate(data)))
    return Workload(_people(run, count), "upward.sessions", events)


@dataclass(frozen=True)
class Scenario:
    """One service and the event it is measured on."""

    service: str
    event: type[EventData]
    build: Callable[[str, int], Workload]

    @property
    def label(self) -> str:
        """``sessions <- PairFormed``."""
        return f"{self.service} <- {self.event.__name__}"


SCENARIOS = {
    "matching": Scenario("matching", ParticipantJoined, matching_workload),
    "sessions": Scenario("sessions", PairFormed, sessions_workload),
    "feedback": Scenario("feedback", SessionHeld, feedback_workload),
    "notifications": Scenario("notifications", SessionScheduled, notifications_workload),
}

# --- the service as a process ------------------------------------------------------------


class ServiceProcess:
    """``python -m services.<name>`` in its own process group, logging to a file."""

    def __init__(self, name: str, env: dict[str, str], log: Path, url: str) -> None:
        """Nothing starts yet."""
        self.name, self.env, self.log, self.url = name, env, log, url
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """The process id (started)."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    async def start(self, timeout_s: float = 120.0) -> None:
        """Start the process and wait until ``/readyz`` answers 200."""
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{self.name}",
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited during start:\n{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the service's log."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def peak_rss(self) -> int:
        """Peak resident set size of the process so far, in bytes (``VmHWM``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (graceful: offsets committed), SIGKILL after ``timeout_s``."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextmanager
def mail_sink(run_dir: Path) -> Iterator[int]:
    """The local SMTP sink the notifications service sends to, on a free port."""
    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "upward.services.mailsink"]
    argv += ["--port", str(port), "--out", str(run_dir / "mail.jsonl")]
    with (run_dir / "mailsink.log").open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Publish -> effect committed at a steady offered load."""

    offered_per_s: float
    events: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ServiceRun:
    """One service measured once at one volume."""

    scenario: Scenario
    throughput: Figure
    peak_rss: int
    store_bytes: int
    applied: int
    """Inbox rows of the benchmarked event after the drain (= the backlog: none lost)."""
    latency: Latency | None = None
    profile: list[profiles.Share] = field(default_factory=list)


_COMMIT_TIMES = """
CREATE TABLE IF NOT EXISTS bench_commit_times (
    event_id text PRIMARY KEY, committed_at timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION bench_commit_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_commit_times VALUES (NEW.event_id, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER bench_commit_time AFTER INSERT ON kit_inbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_commit_time();
"""
"""A deferred trigger fires at commit: ``clock_timestamp()`` there is the commit time of the
transaction that applied the event (the WAL flush that follows is not included)."""


async def _wait_count(
    conn: asyncpg.Connection, sql: str, args: Sequence[Any], target: int, limit_s: float
) -> float:
    """Poll ``sql`` until it counts ``target``; the wall-clock time it was first seen."""
    deadline = time.monotonic() + limit_s
    while True:
        found = int(await conn.fetchval(sql, *args))
        if found >= target:
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{found} of {target} events applied within {limit_s:.0f} s ({sql.strip()});"
                " the service log and its dead-letter topics say why"
            )
        await asyncio.sleep(POLL_S)


async def _publish_setup(bootstrap: str, prefix: str, setup: list[tuple[str, CloudEvent]]) -> None:
    """Publish the set-up events topic by topic, in order (programs, then people...)."""
    for topic in dict.fromkeys(t for t, _ in setup):
        await preload(bootstrap, prefix + topic, [e for t, e in setup if t == topic])


async def _paced(
    bootstrap: str, topic: str, events: Sequence[CloudEvent], rate: float
) -> dict[str, float]:
    """Publish ``events`` at ``rate`` per second; each id with its record timestamp (s)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        started, futures = time.perf_counter(), []
        for i, event in enumerate(events):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = event.subject.encode()
            futures.append(await producer.send(topic, value=encode(event), key=key))
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {e.id: m.timestamp / 1000 for e, m in zip(events, metadata, strict=True)}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure_latency(
    conn: asyncpg.Connection, bootstrap: str, topic: str, events: Sequence[CloudEvent], rate: float
) -> Latency:
    """Offer ``events`` at ``rate``; publish -> inbox row committed, p50 and p99."""
    await conn.execute(_COMMIT_TIMES)
    published = await _paced(bootstrap, topic, events, rate)
    limit = 60 + 2 * len(events) / rate
    await _wait_count(conn, "SELECT count(*) FROM bench_commit_times", (), len(events), limit)
    rows = await conn.fetch(
        "SELECT event_id, extract(epoch FROM committed_at)::float8 AS t FROM bench_commit_times"
    )
    committed = {r["event_id"]: float(r["t"]) for r in rows}
    delays = [(committed[i] - t) * 1000 for i, t in published.items()]
    return Latency(rate, len(delays), _percentile(delays, 0.5), _percentile(delays, 0.99))


@dataclass(frozen=True)
class Bench:
    """Where the services run: the broker and database server, a directory for logs."""

    info: StackInfo
    work_dir: Path
    profile: bool = False

    async def run(
        self, scenario: Scenario, count: int, *, latency: bool, step: Callable[[str], None]
    ) -> ServiceRun:
        """Set up, drain a backlog of ``count`` events, optionally offer a steady load."""
        run = uuid.uuid4().hex[:8]
        db_name = f"bench_{scenario.service}_{run}"
        admin = await asyncpg.connect(self.info.postgres_admin_url)
        await admin.execute(f'CREATE DATABASE "{db_name}"')
        db_url = database_url(self.info.postgres_admin_url, db_name)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{scenario.service}-", dir=self.work_dir))
        try:
            with self._mail(scenario, run_dir) as mail_port:
                return await self._measure(
                    scenario, count, latency=latency, step=step,
                    run=run, db_url=db_url, run_dir=run_dir, mail_port=mail_port,
                )  # fmt: skip
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await admin.close()

    def _mail(self, scenario: Scenario, run_dir: Path) -> AbstractContextManager[int]:
        if scenario.service == "notifications":
            return mail_sink(run_dir)
        return _no_mail()

    async def _measure(
        self, scenario: Scenario, count: int, *, latency: bool, step: Callable[[str], None],
        run: str, db_url: str, run_dir: Path, mail_port: int,
    ) -> ServiceRun:  # fmt: skip
        name, prefix = scenario.service, f"b{run}."
        port = free_ports(1)[0]
        options = ServiceOptions(
            run_dir=run_dir, ports=DEFAULT_PORTS | {name: port}, mail_port=mail_port,
            topic_prefix=prefix, fast=False,
        )  # fmt: skip
        infra = Infrastructure(self.info.bootstrap_servers, {name: db_url})
        # Its own temporary directory (faust's stream state goes under it; servicekit
        # creates only the last level of that path, so the parent is made here).
        env = service_environment(name, infra, options) | {"TMPDIR": str(run_dir)}
        (run_dir / "upward-streams").mkdir()
        log, url = run_dir / f"{name}.log", options.url(name)
        workload = scenario.build(run, 2 * count if latency else count)
        backlog, rest = workload.events[:count], workload.events[count:]
        bootstrap, topic = self.info.bootstrap_servers, prefix + workload.topic
        event_type = scenario.event.event_type

        step(f"{scenario.label}: setting up ({len(workload.setup)} events)")
        service = ServiceProcess(name, env, log, url)
        await service.start()
        try:
            if workload.program is not None:
                await _create_program(url, workload.program)
            await _publish_setup(bootstrap, prefix, workload.setup)
            conn = await asyncpg.connect(db_url)
            try:
                limit = 120 + len(workload.setup) / 20
                count_all = "SELECT count(*) FROM kit_inbox"
                await _wait_count(conn, count_all, (), len(workload.setup), limit)
            finally:
                await conn.close()
        finally:
            await service.stop()

        step(f"{scenario.label}: draining a backlog of {count}")
        await preload(bootstrap, topic, backlog)
        service = ServiceProcess(name, env, log, url)
        await service.start()
        conn = await asyncpg.connect(db_url)
        try:
            spy = profiles.start(service.pid, run_dir / "profile.txt") if self.profile else None
            sql = "SELECT count(*) FROM kit_inbox WHERE event_type = $1"
            done = await _wait_count(conn, sql, (event_type,), count, 120 + count / 10)
            shares = profiles.stop(spy) if spy is not None else []
            first = await conn.fetchval(
                "SELECT extract(epoch FROM min(processed_at))::float8 FROM kit_inbox"
                " WHERE event_type = $1",
                event_type,
            )
            figure = Figure(scenario.label, count, done - float(first))
            rss = service.peak_rss()
            applied = int(await conn.fetchval(sql, event_type))
            store = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
            measured = None
            if latency and rest:
                rate = LOAD_SHARE * figure.rate
                offered = rest[: max(20, min(len(rest), int(rate * LATENCY_SECONDS)))]
                step(f"{scenario.label}: {len(offered)} events at {rate:,.0f}/s for latency")
                measured = await measure_latency(conn, bootstrap, topic, offered, rate)
        finally:
            await conn.close()
            await service.stop()
        return ServiceRun(scenario, figure, rss, store, applied, measured, shares)


@contextmanager
def _no_mail() -> Iterator[int]:
    yield 0


async def _create_program(url: str, program: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=30.0) as client:
        answer = await client.post(
            f"{url}/programs", json=program, headers=auth_headers(PLATFORM_ADMIN)
        )
    if answer.status_code != 201:
        raise RuntimeError(f"creating the program failed: {answer.status_code} {answer.text}")


def raw_events(count: int) -> list[CloudEvent]:
    """Events for the raw passthrough (ParticipantJoined, like the kit suite)."""
    run = uuid.uuid4().hex[:8]
    return [_event(_person(run, i)) for i in range(count)]


# --- the suite ---------------------------------------------------------------------------


@dataclass
class Results:
    """Everything one run measured."""

    events: int
    rounds: int
    services: tuple[str, ...]
    raw: list[Figure] = field(default_factory=list)
    runs: dict[str, list[ServiceRun]] = field(default_factory=dict)
    growth_raw: dict[int, Figure] = field(default_factory=dict)
    growth: dict[tuple[str, int], ServiceRun] = field(default_factory=dict)

    def series(self, service: str) -> Series:
        """The service's throughput, one figure per round."""
        return Series(SCENARIOS[service].label, [r.throughput for r in self.runs[service]])

    def ratios(self, service: str) -> list[float]:
        """Per round, the service's throughput over the raw passthrough's."""
        return paired_ratios(self.series(service), Series(RAW, self.raw))


async def measure(
    info: StackInfo,
    *,
    events: int,
    rounds: int,
    services: Sequence[str] = SERVICES,
    factors: Sequence[int] = FACTORS,
    profile: bool = False,
    console: Console | None = None,
    raw_min: int = RAW_MIN_EVENTS,
) -> Results:
    """Run every round, then the cost-growth pass; return the figures (the raw passthrough
    moves at least ``raw_min`` records per figure)."""
    results = Results(events, rounds, tuple(services))
    steps = rounds * (1 + len(services)) + len(factors) * (1 + len(services))
    with (
        tempfile.TemporaryDirectory(prefix="upward-bench-services-") as work,
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress,
    ):  # fmt: skip
        # Profile the longest drain (the largest cost-growth volume), or the first round's
        # without cost growth: a 1,000-event drain lasts well under a second, too few samples.
        bench = Bench(info, Path(work), profile and not factors)
        task = progress.add_task("starting", total=steps)

        def step(text: str) -> None:
            progress.update(task, description=text)

        step(f"warming up the broker: a raw passthrough of {WARM_UP_SHARE * raw_min:,} records")
        for _ in range(WARM_UP_SHARE):
            await bench_raw(info.bootstrap_servers, raw_events(raw_min))
        for round_no in range(1, rounds + 1):
            raw_count = max(events, raw_min)
            step(f"round {round_no}/{rounds}: raw passthrough of {raw_count}")
            raw = await bench_raw(
                info.bootstrap_servers, raw_events(raw_count), from_first_record=True
            )
            results.raw.append(raw)
            progress.advance(task)
            for name in services:
                run = await bench.run(
                    SCENARIOS[name], events, latency=True,
                    step=_prefixed(step, f"round {round_no}/{rounds}: "),
                )  # fmt: skip
                results.runs.setdefault(name, []).append(run)
                progress.advance(task)
                progress.console.print(_round_line(round_no, run, raw))
            bench = Bench(info, Path(work))  # profile the first round only
        for factor in factors:
            bench = Bench(info, Path(work), profile and factor == max(factors))
            volume = events * factor
            raw_count = max(volume, raw_min)
            step(f"cost growth {factor}x: raw passthrough of {raw_count}")
            bootstrap = info.bootstrap_servers
            raw_events_ = raw_events(raw_count)
            results.growth_raw[factor] = await bench_raw(
                bootstrap, raw_events_, from_first_record=True
            )
            progress.advance(task)
            for name in services:
                run = await bench.run(
                    SCENARIOS[name], volume, latency=False,
                    step=_prefixed(step, f"cost growth {factor}x: "),
                )  # fmt: skip
                results.growth[(name, factor)] = run
                progress.advance(task)
                progress.console.print(_round_line(0, run, results.growth_raw[factor]))
    return results


def _prefixed(step: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    def prefixed(text: str) -> None:
        step(prefix + text)

    return prefixed


def _round_line(round_no: int, run: ServiceRun, raw: Figure) -> str:
    where = f"round {round_no}" if round_no else f"{run.throughput.events} events"
    latency = run.latency
    lat = f", p50 {latency.p50_ms:.0f} ms p99 {latency.p99_ms:.0f} ms" if latency else ""
    return (
        f"{where}: {run.scenario.label}: {run.throughput.rate:,.0f}/s"
        f" (raw {raw.rate:,.0f}/s, ratio {run.throughput.rate / raw.rate:.2f}){lat},"
        f" peak RSS {run.peak_rss / 2**20:.0f} MiB"
    )


# --- reporting ---------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def throughput_rows(results: Results) -> list[list[str]]:
    """Rows of the main table: raw first, then each service (medians over the rounds)."""
    raw = Series(RAW, results.raw)
    rates = [f.rate for f in results.raw]
    spread = f"{min(rates):,.0f} to {max(rates):,.0f}"
    moved = str(results.raw[0].events)
    rows = [[RAW, moved, f"{raw.median_rate:,.0f}", spread, "1.00", *["—"] * 5]]
    for name in results.services:
        runs, series = results.runs[name], results.series(name)
        rates = [f.rate for f in series.figures]
        lat = [r.latency for r in runs if r.latency is not None]
        ratio = statistics.median(results.ratios(name))
        met = "met" if ratio >= TARGET_RATIO else "missed"
        rows.append(
            [
                series.name,
                str(results.events),
                f"{series.median_rate:,.0f}",
                f"{min(rates):,.0f} to {max(rates):,.0f}",
                f"{ratio:.2f} ({met})",
                f"{statistics.median(x.offered_per_s for x in lat):,.0f}/s" if lat else "—",
                f"{statistics.median(x.p50_ms for x in lat):,.0f} ms" if lat else "—",
                f"{statistics.median(x.p99_ms for x in lat):,.0f} ms" if lat else "—",
                _mib(statistics.median(r.peak_rss for r in runs)),
                _mib(statistics.median(r.store_bytes for r in runs)),
            ]
        )
    return rows


THROUGHPUT_HEADER = [
    "figure", "events", "median events/s", "range over rounds", "ratio to raw (target 0.25)",
    "offered load", "p50 publish -> committed", "p99", "peak RSS", "store",
]  # fmt: skip


def growth_rows(results: Results) -> list[list[str]]:
    """Rows of the cost-growth table: events/s (ratio), peak RSS and store per volume."""
    factors = sorted(results.growth_raw)
    rows = [[RAW] + [f"{results.growth_raw[f].rate:,.0f}/s" for f in factors] + ["—", "—"]]
    for name in results.services:
        runs = [results.growth[(name, f)] for f in factors]
        cells = [
            f"{r.throughput.rate:,.0f}/s ({r.throughput.rate / results.growth_raw[f].rate:.2f})"
            for r, f in zip(runs, factors, strict=True)
        ]
        rss = " / ".join(_mib(r.peak_rss) for r in runs)
        store = " / ".join(_mib(r.store_bytes) for r in runs)
        rows.append([SCENARIOS[name].label, *cells, rss, store])
    return rows


def growth_header(results: Results) -> list[str]:
    """Columns of the cost-growth table."""
    volumes = [f"{f}x = {results.events * f:,} events" for f in sorted(results.growth_raw)]
    return ["figure", *volumes, "peak RSS", "store size"]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    aligned = ["---"] + ["---:"] * (len(header) - 1)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(aligned) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def print_tables(results: Results, console: Console) -> None:
    """The two tables on the terminal."""
    for title, header, rows in (
        ("Services against the raw passthrough", THROUGHPUT_HEADER, throughput_rows(results)),
        ("Cost growth", growth_header(results), growth_rows(results)),
    ):
        table = Table(title=title)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def report(results: Results, info: StackInfo, command: str) -> str:
    """The Markdown section written to docs/benchmarks.md."""
    lines = [
        "## Services against the raw Kafka ceiling",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` on {machine()};",
        f"Apache Kafka {info.kafka_version or '?'} (single node, KRaft),"
        f" {short_version(info.postgres_version)}, broker, database, load generator and the",
        "service under test on the same machine; the service runs as its own process.",
        f"{results.rounds} rounds; a round measures the raw passthrough and then each service",
        "once, so each ratio is taken per round and its median reported.",
        "",
        *markdown_table(THROUGHPUT_HEADER, throughput_rows(results)),
        "",
        "Cost growth (one run per volume, a fresh service process and database each time;",
        "events/s with the ratio to the raw passthrough of the same round in brackets;",
        "peak RSS and store size at 1x / 4x / 16x):",
        "",
        *markdown_table(growth_header(results), growth_rows(results)),
        "",
        *profile_lines(results),
        *METHOD,
    ]
    return "\n".join(lines)


_SHOWN_SETTINGS = (
    "poll_batch_max",
    "transaction_batch_max",
    "partition_concurrency",
    "commit_interval_s",
    "relay_batch_max",
    "relay_poll_interval_s",
    "db_pool_max",
)


def _shipped(name: str) -> object:
    """The default a service ships with for one of the kit's settings."""
    return ServiceSettings.model_fields[name].default


METHOD = [
    "How it is measured. Each service runs as its own process (`python -m services.<name>`",
    "with the environment `upward.services.manager.service_environment` builds, on the",
    "system clock), with the settings it ships with: "
    + ", ".join(f"`{name}` {_shipped(name)}" for name in _SHOWN_SETTINGS)
    + " (one transaction per batch of a partition: inbox rows in one statement, outbox",
    "rows in one statement), log level INFO;",
    "topics of 3 partitions. A fresh database and topic prefix per run. The workloads:",
    "matching <- ParticipantJoined into a program created through its API (pairing modes",
    "batch and manual, so no continuous-matching timer runs); sessions <- PairFormed of",
    "people already known (each pair's first sessions are scheduled and invites emitted);",
    "feedback <- SessionHeld of pairs already known (a feedback request to each person);",
    "notifications <- SessionScheduled of people already known (an invite to each person",
    "and two reminders each; e-mail goes to the local SMTP sink).",
    "",
    "* **Throughput**: the set-up events are applied, the service is stopped, the backlog",
    "  is published, and the service is started again. events/s = backlog / (the moment",
    "  the last inbox row of the backlog is seen committed, polled every 50 ms, minus the",
    "  start of the first transaction that applied one, `min(processed_at)`, which is",
    "  `now()` of that transaction). Start-up and the consumer-group join are left out.",
    "  The raw passthrough is timed from its first fetched records the same way, over at",
    f"  least {RAW_MIN_EVENTS:,} records (a shorter drain is too brief for a steady ceiling),",
    f"  after {WARM_UP_SHARE} such runs that warm the broker up (its JVM compiles its hot paths",
    "  during the first tens of thousands of records; the raw rate keeps rising slowly over",
    "  the whole run, which is why each ratio pairs a service with the raw run of its round).",
    "* **Latency**: then, in the same process, events are offered at a steady rate of",
    f"  {LOAD_SHARE:.0%} of the throughput just measured, for about {LATENCY_SECONDS:.0f} s"
    " (at most the",
    "  backlog's size). A deferred constraint trigger on `kit_inbox`, added for this run",
    "  only, records `clock_timestamp()` when the transaction that applied the event",
    "  commits; the latency is that time minus the Kafka record's timestamp (CreateTime,",
    "  set by the producer when it sent the record). Both clocks are this machine's.",
    "* **Cost growth**: throughput, peak RSS of the service process (`VmHWM` after the",
    "  drain, start-up included) and `pg_database_size` at 1x, 4x and 16x the backlog,",
    "  each in a fresh process and database.",
    "",
    "This is a shared 2-core VM: broker, database, the load generator and the service",
    "under test compete for the same cores, so expect ±30 % between runs.",
]


def profile_lines(results: Results) -> list[str]:
    """Each profiled service's top functions (when the run was profiled)."""
    profiled = [runs[0] for runs in results.runs.values() if runs and runs[0].profile]
    profiled += [run for run in results.growth.values() if run.profile]
    if not profiled:
        return []
    lines = ["Profiles of the longest drain of each service (py-spy, share of samples):", ""]
    for run in profiled:
        lines.append(
            f"* {run.scenario.label} ({run.throughput.events:,} events): "
            + profiles.describe(run.profile)
        )
    return [*lines, ""]


async def run(
    events: int,
    rounds: int,
    command: str,
    *,
    services: Sequence[str] = SERVICES,
    profile: bool = False,
) -> Results:
    """Start a throwaway stack, measure, print and write the report."""
    console = Console()
    with running_stack() as info:
        results = await measure(
            info, events=events, rounds=rounds, services=services, profile=profile,
            console=console,
        )  # fmt: skip
    print_tables(results, console)
    write_section("services", report(results, info, command))
    console.print(f"written to {REPORT}")
    return results


def main(
    events: int = DEFAULT_EVENTS,
    rounds: int = 3,
    command: str | None = None,
    *,
    services: Sequence[str] = SERVICES,
    profile: bool = False,
) -> None:
    """Run the services suite (``python -m benchmarks --suite services``)."""
    command = command or (
        f"python -m benchmarks --suite services --service-events {events} --rounds {rounds}"
    )
    asyncio.run(run(events, rounds, command, services=services, profile=profile))
