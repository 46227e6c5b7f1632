"""ParticipantJoined -> PairFormed latency at a steady offered load of joiners.

The matching service runs as a separate process (``python -m services.matching``, its
environment from :func:`upward.services.manager.service_environment`) on its own topic
prefix and database. A driver, in this process, plays the HR feed and the participants:

* it publishes a compatible cohort (mentors and mentees who can pair: shared language,
  a topic the mentor offers and the mentee wants, the grade gap, no reporting line) to
  ``upward.participants`` at a steady rate, one ParticipantJoined per joiner, alternating
  mentors and mentees;
* it follows ``upward.pairs`` and accepts every PairProposed at once, publishing a
  PairAccepted for each side as an external system would; matching forms the pair
  (PairFormed) when both acceptances are applied.

Every time is a **Kafka record timestamp** (CreateTime, set by the producer when the
record is sent: the driver's for ParticipantJoined and PairAccepted, matching's outbox
relay for PairProposed and PairFormed), so a leg runs from one event's publish to
another's; the driver's own delay in reading them is not counted. Legs: Joined ->
Proposed and Joined -> Formed per joiner, Proposed -> Formed per pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.kit_pipeline import running_stack
from benchmarks.report import REPORT, machine, write_section
from schemas.codec import encode, new_event
from schemas.pairs import PairAccepted
from schemas.participants import ParticipantJoined
from schemas.primitives import PairSide, Role
from upward.demo.enterprise import TOPICS, demo_program
from upward.identity import PLATFORM_ADMIN, auth_headers
from upward.services.manager import Infrastructure, ServiceOptions, service_environment
from upward.stack import database_url, free_ports

RATE = 500.0
"""Joiners per second offered (the figure of the acceptance)."""
RATES = (RATE, 100.0)
"""Rates the suite measures by default: the target, and one below the consumer's ceiling
on a small machine, which shows the continuous mode's own latency."""
DURATION_S = 20.0
"""How long the load is offered."""
SETTLE_S = 120.0
"""How long after the last join the driver waits for the last pairs to form."""
BUDGET_S = 1.0
"""Acceptance: Joined -> Formed p99 under this."""
WARM_UP_PAIRS = 5
LEGS = ("Joined -> Proposed", "Proposed -> Formed", "Joined -> Formed")
HOT_TOPIC = TOPICS[0].key


# --- the cohort --------------------------------------------------------------------------


def joiner(index: int, *, program_id: str, run: str, rng: random.Random) -> ParticipantJoined:
    """Joiner ``index``: even a junior mentor, odd a senior mentee; any two of them can pair.

    Everyone speaks English and lives within three hours of the others; every mentor offers
    the hot topic and every mentee wants it (plus a few others each, so scores differ);
    grades 2-3 against 7-9 (a gap of at least 2); nobody manages anybody in the cohort.
    """
    is_mentor = index % 2 == 0
    others = rng.sample([t.key for t in TOPICS[1:]], 3)
    topics = {HOT_TOPIC: rng.randint(3, 5), **{t: rng.randint(1, 5) for t in others[:2]}}
    return ParticipantJoined(
        participant_id=f"j{run}-{index:06d}",
        program_id=program_id,
        role=Role.MENTOR if is_mentor else Role.MENTEE,
        display_name=f"Joiner {index}",
        email=f"joiner{index}@bench.example",
        grade=rng.randint(2, 3) if is_mentor else rng.randint(7, 9),
        department=rng.choice(("Marketing", "Finance", "IT", "Sales", "Risk", "Data")),
        region="emea",
        timezone=rng.choice(("Europe/London", "Europe/Paris", "Europe/Berlin")),
        languages=["en"],
        manager_chain=[f"boss{run}-{index:06d}"],
        offers=topics if is_mentor else {},
        wants={} if is_mentor else topics,
        capacity=1,
    )


def cohort(count: int, *, program_id: str, seed: int = 7) -> list[ParticipantJoined]:
    """``count`` joiners (rounded up to an even number: as many mentors as mentees)."""
    rng, run = random.Random(seed), uuid.uuid4().hex[:6]
    return [joiner(i, program_id=program_id, run=run, rng=rng) for i in range(count + count % 2)]


# --- what the driver saw -----------------------------------------------------------------


@dataclass
class Observed:
    """Record timestamps (seconds) the driver saw, per joiner and per pair."""

    joined: dict[str, float] = field(default_factory=dict)
    proposed: dict[str, float] = field(default_factory=dict)
    formed: dict[str, float] = field(default_factory=dict)
    pair_of: dict[str, str] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)
    """Pairs proposed by each continuous run (MatchRunCompleted)."""

    def done(self, participant_ids: Sequence[str]) -> bool:
        """Whether every one of ``participant_ids`` is in a formed pair."""
        return all(self.pair_of.get(p) in self.formed for p in participant_ids)


@dataclass(frozen=True)
class Leg:
    """One leg's latencies, in seconds."""

    name: str
    seconds: tuple[float, ...]

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0 when nothing was measured)."""
        return float(np.percentile(self.seconds, q)) if self.seconds else 0.0

    @property
    def worst(self) -> float:
        """The largest latency."""
        return max(self.seconds, default=0.0)


@dataclass(frozen=True)
class Result:
    """The figures of one run."""

    joiners: int
    offered_rate: float
    """Joiners published per second, first to last publish."""
    pairs_formed: int
    unaccounted: tuple[str, ...]
    """Joiners not in a formed pair by the end of the settle time."""
    legs: tuple[Leg, ...]
    runs: tuple[int, ...]
    planning_s: float
    """Mean planning time of a continuous run, from the service's metrics."""

    def leg(self, name: str) -> Leg:
        """The leg called ``name``."""
        return next(leg for leg in self.legs if leg.name == name)


def legs(observed: Observed, participant_ids: Sequence[str]) -> tuple[Leg, ...]:
    """The three legs for the joiners ``participant_ids`` and their pairs."""
    paired = [(p, observed.pair_of[p]) for p in participant_ids if p in observed.pair_of]
    to_proposed = [observed.proposed[pair] - observed.joined[p] for p, pair in paired]
    formed = [(p, pair) for p, pair in paired if pair in observed.formed]
    to_formed = [observed.formed[pair] - observed.joined[p] for p, pair in formed]
    pairs = sorted({pair for _, pair in formed})
    accepting = [observed.formed[pair] - observed.proposed[pair] for pair in pairs]
    values = (to_proposed, accepting, to_formed)
    return tuple(Leg(name, tuple(v)) for name, v in zip(LEGS, values, strict=True))


# --- the driver --------------------------------------------------------------------------


@dataclass
class Driver:
    """Publishes the joiners and accepts every proposal of one program."""

    producer: AIOKafkaProducer
    topics: dict[str, str]
    program_id: str
    observed: Observed = field(default_factory=Observed)
    formed_any: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a PairFormed of the program is seen."""

    async def publish_joiners(self, joiners: Sequence[ParticipantJoined], rate: float) -> float:
        """Publish ``joiners`` at ``rate`` per second; return the achieved rate."""
        payloads = [
            (j.participant_id, encode(new_event(j, source="/bench/hr-feed"))) for j in joiners
        ]
        topic, started = self.topics["upward.participants"], time.monotonic()
        sends = []
        for index, (participant_id, payload) in enumerate(payloads):
            delay = started + index / rate - time.monotonic()
            if delay > 0.002:
                await asyncio.sleep(delay)
            stamp = int(time.time() * 1000)
            self.observed.joined[participant_id] = stamp / 1000
            key = participant_id.encode()
            sends.append(await self.producer.send(topic, payload, key=key, timestamp_ms=stamp))
        await asyncio.gather(*sends)
        span = self.observed.joined[payloads[-1][0]] - self.observed.joined[payloads[0][0]]
        return (len(payloads) - 1) / span if span > 0 else float(len(payloads))

    async def follow_pairs(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Read ``upward.pairs`` until ``stop``: note proposals and formed pairs, accept."""
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            for records in batches.values():
                for record in records:
                    await self._saw(json.loads(record.value), record.timestamp / 1000)

    async def _saw(self, event: dict[str, Any], at: float) -> None:
        data = event["data"]
        if data.get("program_id") != self.program_id:
            return
        kind = event["type"].removeprefix("upward.")
        if kind == "PairProposed":
            pair_id = data["pair_id"]
            self.observed.proposed[pair_id] = at
            for side in (PairSide.MENTOR, PairSide.MENTEE):
                self.observed.pair_of[data[f"{side.value}_id"]] = pair_id
                await self._accept(pair_id, data[f"{side.value}_id"], side)
        elif kind == "PairFormed":
            self.observed.formed[data["pair_id"]] = at
            self.formed_any.set()
        elif kind == "MatchRunCompleted":
            self.observed.runs.append(int(data["pairs_proposed"]))

    async def _accept(self, pair_id: str, participant_id: str, side: PairSide) -> None:
        accepted = PairAccepted(
            pair_id=pair_id, program_id=self.program_id, participant_id=participant_id, side=side
        )
        event = new_event(accepted, source="/bench/participants")
        topic = self.topics["upward.pairs"]
        await self.producer.send(topic, encode(event), key=pair_id.encode())


async def wait_for(driver: Driver, participant_ids: Sequence[str], limit_s: float) -> None:
    """Until every one of ``participant_ids`` is in a formed pair, or ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not driver.observed.done(participant_ids):
        driver.formed_any.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(driver.formed_any.wait(), 1.0)
        if time.monotonic() > deadline:
            return


# --- the matching service as a process ---------------------------------------------------


@dataclass(frozen=True)
class MatchingProcess:
    """The matching service in its own process, and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    prefix: str
    log: Path

    def topic(self, logical: str) -> str:
        """The physical name of ``logical``."""
        return self.prefix + logical


@contextmanager
def matching_process(
    bootstrap: str, db_url: str, work_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[MatchingProcess]:
    """``python -m services.matching`` on its own topic prefix, stopped on leaving."""
    port = free_ports(1)[0]
    prefix = f"bj{uuid.uuid4().hex[:8]}."
    options = ServiceOptions(
        run_dir=work_dir,
        ports={"matching": port},
        topic_prefix=prefix,
        fast=False,
        extra_env=extra_env or {},
    )
    env = service_environment("matching", Infrastructure(bootstrap, {"matching": db_url}), options)
    log = work_dir / "matching.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.matching"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).parents[1],
        )
    try:
        yield MatchingProcess(process, f"http://127.0.0.1:{port}", prefix, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def wait_ready(service: MatchingProcess, limit_s: float = 120.0) -> None:
    """Until ``/readyz`` answers 200; the process's log tail if it exits or times out."""
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                break
            try:
                if (await client.get(f"{service.url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
    tail = "\n".join(service.log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the matching service did not get ready:\n{tail}")


async def create_program(service: MatchingProcess, program_id: str) -> None:
    """A reverse program that pairs continuously, no screening or training required."""
    body = demo_program(
        program_id=program_id,
        pairing_modes=("continuous",),
        requires_screening=False,
        requires_training=False,
    )
    async with httpx.AsyncClient(timeout=30.0) as client:
        answer = await client.post(
            f"{service.url}/programs", json=body, headers=auth_headers(PLATFORM_ADMIN)
        )
    if answer.status_code != 201:
        raise RuntimeError(f"creating the program: {answer.status_code} {answer.text}")


async def mean_planning_s(service: MatchingProcess) -> float:
    """Mean of ``upward_match_run_seconds`` (every run of the service)."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        text = (await client.get(f"{service.url}/metrics")).text
    total = re.search(r"^upward_match_run_seconds_sum (\S+)$", text, re.M)
    count = re.search(r"^upward_match_run_seconds_count (\S+)$", text, re.M)
    if total is None or count is None or float(count.group(1)) == 0:
        return 0.0
    return float(total.group(1)) / float(count.group(1))


# --- one measurement ---------------------------------------------------------------------


async def measure(
    bootstrap: str,
    db_url: str,
    *,
    rate: float = RATE,
    duration_s: float = DURATION_S,
    settle_s: float = SETTLE_S,
    work_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Result:
    """Offer ``rate`` joiners/s for ``duration_s`` to a fresh matching process."""
    with matching_process(bootstrap, db_url, work_dir, extra_env) as service:
        await wait_ready(service)
        program_id = f"prg-bench-{uuid.uuid4().hex[:8]}"
        await create_program(service, program_id)
        topics = {t: service.topic(t) for t in ("upward.participants", "upward.pairs")}
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        consumer = AIOKafkaConsumer(
            topics["upward.pairs"], bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await producer.start()
        await consumer.start()
        stop = asyncio.Event()
        driver = Driver(producer, topics, program_id)
        following = asyncio.create_task(driver.follow_pairs(consumer, stop))
        try:
            return await _drive(driver, service, rate, duration_s, settle_s)
        finally:
            stop.set()
            await following
            await consumer.stop()
            await producer.stop()


async def _drive(
    driver: Driver, service: MatchingProcess, rate: float, duration_s: float, settle_s: float
) -> Result:
    warm = cohort(2 * WARM_UP_PAIRS, program_id=driver.program_id, seed=1)
    await driver.publish_joiners(warm, rate=50.0)
    await wait_for(driver, [j.participant_id for j in warm], 120.0)
    joiners = cohort(max(2, round(rate * duration_s)), program_id=driver.program_id)
    ids = [j.participant_id for j in joiners]
    offered = await driver.publish_joiners(joiners, rate)
    await wait_for(driver, ids, settle_s)
    observed = driver.observed
    formed = {observed.pair_of[p] for p in ids if observed.pair_of.get(p) in observed.formed}
    return Result(
        joiners=len(ids),
        offered_rate=offered,
        pairs_formed=len(formed),
        unaccounted=tuple(p for p in ids if observed.pair_of.get(p) not in observed.formed),
        legs=legs(observed, ids),
        runs=tuple(observed.runs),
        planning_s=await mean_planning_s(service),
    )


# --- the report --------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def table(result: Result) -> list[str]:
    """The legs as a Markdown table."""
    lines = ["| leg | count | p50 | p90 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    for leg in result.legs:
        figures = [_ms(leg.percentile(q)) for q in (50, 90, 99)] + [_ms(leg.worst)]
        lines.append(f"| {leg.name} | {len(leg.seconds):,} | " + " | ".join(figures) + " |")
    return lines


def verdict(result: Result) -> str:
    """Whether Joined -> Formed p99 is under the budget with every joiner paired."""
    p99 = result.leg("Joined -> Formed").percentile(99)
    return "met" if p99 < BUDGET_S and not result.unaccounted else "**not met**"


def measured(result: Result, rate: float, duration_s: float) -> list[str]:
    """One rate's paragraph and table."""
    runs = result.runs
    return [
        f"### {rate:,.0f} joiners/s offered",
        "",
        f"Offered for {duration_s:,.0f} s; achieved {result.offered_rate:,.0f} joiners/s"
        f" ({result.joiners:,} joiners, {result.pairs_formed:,} pairs formed,"
        f" {len(result.unaccounted):,} joiners not in a formed pair by the end).",
        "",
        *table(result),
        "",
        f"Continuous runs that proposed pairs: {len(runs):,} (pairs per run: median"
        f" {np.median(runs) if runs else 0:.0f}, max {max(runs, default=0)}); mean planning"
        f" time of a run {_ms(result.planning_s)}. Joined -> Formed p99 < {BUDGET_S:.0f} s:"
        f" {verdict(result)}.",
        "",
    ]


def report(
    results: Sequence[tuple[float, Result]], *, duration_s: float, versions: str, command: str
) -> str:
    """The Markdown section written to docs/benchmarks.md."""
    lines = [
        "## Joiners: ParticipantJoined -> PairFormed latency",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` on {machine()};",
        f"{versions}, broker, database, the matching process and the driver on the same machine.",
        "",
        "The matching service runs as its own process with its production settings",
        "(`UPWARD_MATCHING_CONTINUOUS_DEBOUNCE_S` 0.05 s, interval 30 s as the safety net),",
        "a fresh database and topic prefix per rate.",
        "The driver publishes the joiners (alternately mentors and mentees of one reverse",
        "program, any two of whom can pair) at a steady rate, and accepts every proposal",
        "at once with a PairAccepted per side on `upward.pairs`, as an external system.",
        "Latencies are between **Kafka record timestamps** (CreateTime, stamped by each",
        "producer when it sends): the joiner's ParticipantJoined, then the PairProposed",
        "and PairFormed published by matching's outbox relay. Joined -> Proposed and",
        "Joined -> Formed are per joiner, Proposed -> Formed per pair (it contains the",
        "driver's reaction and both acceptances going through matching's consumer).",
        "",
    ]
    for rate, result in results:
        lines += measured(result, rate, duration_s)
    return "\n".join(lines)


def print_result(result: Result) -> None:
    """The figures on the terminal."""
    print(
        f"joiners {result.joiners:,} at {result.offered_rate:,.0f}/s, pairs formed"
        f" {result.pairs_formed:,}, unaccounted {len(result.unaccounted):,},"
        f" runs {len(result.runs):,}, mean planning {_ms(result.planning_s)}",
        flush=True,
    )
    for line in table(result):
        print(line, flush=True)


async def _fresh_database(admin_url: str) -> str:
    name = f"bench_joiners_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return database_url(admin_url, name)


async def run(rates: Sequence[float], duration_s: float, command: str) -> None:
    """Start a local stack, measure each rate, print and write the report."""
    results: list[tuple[float, Result]] = []
    with running_stack() as info, tempfile.TemporaryDirectory(prefix="upward-joiners-") as tmp:
        for rate in rates:
            db_url = await _fresh_database(info.postgres_admin_url)
            work_dir = Path(tmp) / f"rate-{rate:g}"
            work_dir.mkdir()
            result = await measure(
                info.bootstrap_servers, db_url, rate=rate, duration_s=duration_s, work_dir=work_dir
            )
            print_result(result)
            results.append((rate, result))
        versions = (
            f"Apache Kafka {info.kafka_version or '?'} (single node, KRaft),"
            f" {(info.postgres_version or 'PostgreSQL ?').split(' on ')[0]}"
        )
    write_section(
        "joiners", report(results, duration_s=duration_s, versions=versions, command=command)
    )
    print(f"written to {REPORT}")


def main(
    rates: Sequence[float] = RATES, duration_s: float = DURATION_S, command: str | None = None
) -> None:
    """Run the joiners suite (``python -m benchmarks --suite joiners``)."""
    listed = " ".join(f"{r:g}" for r in rates)
    command = command or f"python -m benchmarks --suite joiners --rate {listed}"
    asyncio.run(run(rates, duration_s, command))
