"""The fault suite's workload: one program driven through all four services while faults hit.

An HR feed publishes ``ParticipantJoined`` on ``upward.participants`` with deterministic
event ids; the program is created, batch matched and every proposal accepted over HTTP;
then the four manual clocks move day by day while the pairs record their sessions (held,
a few missed) and answer their feedback requests; finally the program closes and the clocks
move past every delivery lease. Everything the driver did is kept in :class:`Input`: the
reconciliation (:mod:`tests.chaos.reconcile`) computes from it what the stores must hold.

Services die, the broker and a database stop while this runs, so every call is retried
(:class:`ResilientPlatform`): a call that never reached its service is simply sent again;
a call whose answer was lost is retried only when repeating it is harmless (``PUT``,
``POST /ops/clock``, ``accept``) or after checking in the service's store that it did not
take effect, so the driver itself cannot create a duplicate or lose an action. At named
points (:data:`POINTS`) the driver hands over to the fault schedule, which may start a
fault in the background and returns at once: faults land while events are in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import encode, new_event
from schemas.participants import ParticipantJoined
from upward.demo.cohort import load_cohort, program_body
from upward.demo.platform import Platform, ScenarioError, eventually
from upward.demo.scenario import DEMO_START, chance
from upward.events.broker import connection_options
from upward.identity import PLATFORM_ADMIN, Identity, auth_headers, participant
from upward.stack import SERVICES

HR_SOURCE = "/upward/chaos/hr-feed"
PARTICIPANTS_TOPIC = "upward.participants"
#: Transient store errors: the database is stopped or restarting.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
#: Answers that may be lost with the request applied (the connection broke after sending).
AMBIGUOUS: tuple[type[BaseException], ...] = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
    httpx.WriteError,
)


def join_event_id(participant_id: str) -> str:
    """The HR feed's deterministic event id for one join."""
    return f"chaos-join-{participant_id}"


@dataclass
class Input:
    """Everything the driver did: what the stores must reflect."""

    program_id: str
    joined: list[str] = field(default_factory=list)
    join_event_ids: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    """Pairs both people accepted."""
    held: set[str] = field(default_factory=set)
    missed: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    days: int = 0
    closed_at: datetime | None = None
    final_clock: datetime | None = None
    """The services' clocks when the run ended: deliveries due later are not sent yet."""
    http_retries: int = 0
    ambiguous_checked: int = 0


class FaultHook(Protocol):
    """The fault schedule as the driver sees it."""

    async def point(self, name: str) -> None:
        """The driver reached point *name*: maybe start a fault (never waits for it)."""

    async def finish(self) -> None:
        """Wait until every fault started is over (services back, servers up)."""


class NoFaults:
    """A schedule that injects nothing."""

    async def point(self, name: str) -> None:
        """Nothing happens."""

    async def finish(self) -> None:
        """Nothing to wait for."""


class ResilientPlatform(Platform):
    """:class:`Platform` whose calls and store reads outlast a service, broker or database
    being down: retried until *patience_s* runs out."""

    def __init__(self, *args: Any, patience_s: float = 240.0, **kwargs: Any) -> None:
        """As :class:`Platform`; *patience_s* bounds every retry loop."""
        super().__init__(*args, **kwargs)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        self.patience_s = patience_s
        self.retries = 0
        self.ambiguous_checked = 0

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        identity: Identity = PLATFORM_ADMIN,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201, 202),
        done: Callable[[], Awaitable[bool]] | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        """One API call, retried while the service is unreachable or answers 5xx.

        *repeatable* (default: GET, PUT and the clock) says a lost answer may be retried
        blindly; otherwise *done* is asked first (``True``: it took effect, stop).
        """
        if repeatable is None:
            repeatable = method in ("GET", "PUT") or path == "/ops/clock"
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                response = await self.http.request(
                    method,
                    self.address.urls[service] + path,
                    json=body,
                    params=params,
                    headers=auth_headers(identity),
                )
            except AMBIGUOUS as exc:
                if not repeatable:
                    if done is None:
                        raise ScenarioError(f"{service}: {method} {path}: answer lost") from exc
                    self.ambiguous_checked += 1
                    if await self._checked(done, deadline):
                        return None
            except httpx.TransportError:
                pass  # never reached the service
            else:
                if response.status_code < 500:
                    if response.status_code not in ok:
                        raise ScenarioError(
                            f"{service}: {method} {path} answered "
                            f"{response.status_code}: {response.text}"
                        )
                    return response.json() if response.content else None
            self.retries += 1
            if time.monotonic() > deadline:
                raise ScenarioError(f"{service}: {method} {path} failed for {self.patience_s} s")
            await asyncio.sleep(0.5)

    async def _checked(self, done: Callable[[], Awaitable[bool]], deadline: float) -> bool:
        """Ask *done* until the store answers."""
        while True:
            try:
                return await done()
            except STORE_ERRORS:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def fetch(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """:meth:`Platform.fetch`, retried while the store is unreachable."""
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                return await super().fetch(service, sql, *args)
            except STORE_ERRORS:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def value(self, service: str, sql: str, *args: Any) -> Any:
        """:meth:`Platform.value`, retried while the store is unreachable."""
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                return await super().value(service, sql, *args)
            except STORE_ERRORS:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def consumer_lag(self) -> dict[str, int]:
        """:meth:`Platform.consumer_lag`; while the broker does not answer, every group
        counts as behind (-1)."""
        try:
            return await super().consumer_lag()
        except KafkaError:
            return dict.fromkeys(SERVICES, -1)

    async def _quiet(self) -> bool:
        """Not quiet while the broker or a store does not answer."""
        try:
            return await super()._quiet()
        except (KafkaError, *STORE_ERRORS):
            return False

    async def due_deliveries(self) -> int:
        """Due notifications a live worker can send now: a message still ``sending`` under
        a lease (its worker was killed) waits for the clock to pass the lease."""
        sql = (
            "SELECT count(*) FROM deliveries WHERE due_at <= $1 AND (status = 'pending'"
            " OR (status = 'sending' AND lease_until <= $1))"
        )
        assert self.now is not None
        return int(await self.value("notifications", sql, self.now))


@dataclass(frozen=True)
class WorkloadSettings:
    """Size and shape of a run."""

    employees: int = 160
    days: int = 10
    seed: int = 5
    program_id: str = "prg-chaos"
    start: datetime = DEMO_START
    missed_share: float = 0.15
    concurrency: int = 6


class Workload:
    """Drives one program through the platform, handing over to *faults* at each point."""

    def __init__(
        self, platform: ResilientPlatform, settings: WorkloadSettings, faults: FaultHook
    ) -> None:
        """Nothing happens until :meth:`run`."""
        self.platform = platform
        self.settings = settings
        self.faults = faults
        cohort = load_cohort(
            settings.employees,
            seed=settings.seed,
            program_id=settings.program_id,
            starts_on=settings.start.date(),
            weeks=max(1, settings.days // 7 + 1),
        )
        self.program = program_body(
            settings.program_id,
            starts_on=settings.start.date(),
            weeks=max(1, settings.days // 7 + 1),
            base=cohort.program,
        ) | {"requires_screening": False, "requires_training": False, "pairing_modes": ["batch"]}
        self.members = cohort.members
        self.input = Input(program_id=settings.program_id)

    async def _each(self, items: list[Any], act: Callable[[Any], Awaitable[None]]) -> None:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(item: Any) -> None:
            async with gate:
                await act(item)

        await asyncio.gather(*(one(item) for item in items))

    async def run(self) -> Input:
        """The whole program; returns what was done (faults all over by then)."""
        start = self.settings.start
        await self.platform.move_clock(start)
        await self.create_program()
        await self.faults.point("program-created")
        await self.join()
        await self.faults.point("joined")
        await self.batch_match()
        await self.faults.point("matched")
        await self.accept_proposals()
        await self.faults.point("accepted")
        for day in range(1, self.settings.days + 1):
            await self.day(day)
        await self.close_program()
        await self.faults.finish()
        assert self.platform.now is not None
        # Past every delivery lease: messages of a killed worker go out again.
        await self.platform.move_clock(self.platform.now + timedelta(hours=1))
        await self.platform.settle("the last notifications to go out")
        self.input.final_clock = self.platform.now
        self.input.http_retries = self.platform.retries
        self.input.ambiguous_checked = self.platform.ambiguous_checked
        return self.input

    async def create_program(self) -> None:
        """``POST /programs`` (checked in the store if the answer is lost), admin contact."""
        program_id = self.settings.program_id

        async def created() -> bool:
            sql = "SELECT count(*) FROM programs WHERE program_id = $1"
            return int(await self.platform.value("matching", sql, program_id)) > 0

        await self.platform.call("matching", "POST", "/programs", body=self.program, done=created)
        contact = {
            "display_name": "Upward programme office",
            "email": "programme-office@chaos.upward.example",
            "timezone": "Europe/London",
            "languages": ["en"],
        }
        await self.platform.call(
            "notifications", "PUT", f"/contacts/{PLATFORM_ADMIN.subject}", body=contact
        )

    async def join(self) -> None:
        """The HR feed publishes every join (deterministic ids; a resend after a broker
        failure is a wire duplicate the inbox absorbs); wait until matching applied all."""
        bootstrap = self.platform.address.bootstrap_servers
        topic = self.platform.physical(PARTICIPANTS_TOPIC)
        events = [
            new_event(
                ParticipantJoined.model_validate(member),
                source=HR_SOURCE,
                event_id=join_event_id(str(member["participant_id"])),
                time=self.settings.start,
            )
            for member in self.members
        ]
        half = len(events) // 2
        for batch, point in ((events[:half], "joining"), (events[half:], None)):
            await self._publish(bootstrap, topic, batch)
            if point:
                await self.faults.point(point)
        self.input.joined = [str(m["participant_id"]) for m in self.members]
        self.input.join_event_ids = [e.id for e in events]
        sql = "SELECT count(*) FROM participants WHERE program_id = $1"

        async def applied() -> bool:
            count = await self.platform.value("matching", sql, self.settings.program_id)
            return int(count) >= len(self.members)

        await eventually("matching to apply the joins", applied, timeout_s=self.platform.patience_s)

    async def _publish(self, bootstrap: str, topic: str, events: list[Any]) -> None:
        """Send *events* until the broker acknowledged every one (resend all on failure)."""
        deadline = time.monotonic() + self.platform.patience_s
        while True:
            producer = AIOKafkaProducer(
                **connection_options(bootstrap),
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=10_000,
            )
            try:
                await producer.start()
                sent = [
                    await producer.send(
                        topic,
                        value=encode(event),
                        key=event.subject.encode(),
                        headers=[("content-type", b"application/cloudevents+json")],
                    )
                    for event in events
                ]
                await asyncio.gather(*sent)
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)
            finally:
                await producer.stop()

    async def batch_match(self) -> None:
        """One batch run, published in the same call (checked in the store if lost)."""
        program_id = self.settings.program_id

        async def proposed() -> bool:
            sql = "SELECT count(*) FROM pairs WHERE program_id = $1"
            return int(await self.platform.value("matching", sql, program_id)) > 0

        path = f"/programs/{program_id}/match-runs"
        await self.platform.call(
            "matching", "POST", path, body={"dry_run": False}, ok=(201,), done=proposed
        )
        await self.platform.settle("the proposals to reach every service")

    async def accept_proposals(self) -> None:
        """Both people accept every proposal (a repeated accept changes nothing)."""
        path = f"/programs/{self.settings.program_id}/proposals"
        proposals = await self.platform.call("matching", "GET", path, params={"limit": 1000})
        if not proposals:
            raise ScenarioError("the batch run proposed no pair")
        half = len(proposals) // 2

        async def accept(pair: dict[str, Any]) -> None:
            for side in ("mentor_id", "mentee_id"):
                who = participant(str(pair[side]))
                await self.platform.call(
                    "matching", "POST", f"/pairs/{pair['pair_id']}/accept",
                    identity=who, repeatable=True,
                )  # fmt: skip
            self.input.accepted.add(str(pair["pair_id"]))

        await self._each(proposals[:half], accept)
        await self.faults.point("accepting")
        await self._each(proposals[half:], accept)
        await self.platform.settle("the formed pairs to reach every service")

    async def day(self, day: int) -> None:
        """Clocks one day forward; the pairs record sessions and answer feedback."""
        now = self.settings.start + timedelta(days=day)
        await self.platform.move_clock(now)
        await self.faults.point(f"day-{day}")
        await self.platform.settle(f"day {day}'s timers to take effect")
        await self.record_sessions(now)
        await self.faults.point(f"day-{day}-recorded")
        await self.answer_feedback()
        await self.platform.settle(f"day {day}'s records to take effect")
        self.input.days = day

    async def record_sessions(self, now: datetime) -> None:
        """Every session that has started is recorded held (a few missed)."""
        rows = await self.platform.fetch(
            "sessions",
            "SELECT s.session_id, s.number, s.agenda, p.mentor_id, p.mentee_id,"
            " EXTRACT(EPOCH FROM s.ends_at - s.starts_at)::int / 60 AS minutes"
            " FROM sessions s JOIN pairs p USING (pair_id)"
            " WHERE s.program_id = $1 AND s.status = 'scheduled' AND s.starts_at <= $2"
            " ORDER BY s.session_id",
            self.settings.program_id,
            now,
        )
        await self._each([dict(r) for r in rows], self._record_one)

    async def _record_one(self, row: dict[str, Any]) -> None:
        session_id = str(row["session_id"])
        who = participant(str(row["mentor_id"]))
        path = f"/sessions/{session_id}"

        async def recorded() -> bool:
            sql = "SELECT status FROM sessions WHERE session_id = $1"
            return bool(await self.platform.value("sessions", sql, session_id) != "scheduled")

        if chance(self.settings.seed, "missed", session_id) < self.settings.missed_share:
            body: dict[str, Any] = {"absent": [row["mentee_id"]]}
            await self.platform.call(
                "sessions", "POST", f"{path}/missed", identity=who, body=body, done=recorded
            )
            self.input.missed.add(session_id)
            return
        body = {
            "attendees": [row["mentor_id"], row["mentee_id"]],
            "duration_minutes": int(row["minutes"]),
            "topics_covered": list(row["agenda"]),
        }
        await self.platform.call(
            "sessions", "POST", f"{path}/held", identity=who, body=body, done=recorded
        )
        self.input.held.add(session_id)

    async def answer_feedback(self) -> None:
        """Every open feedback request is answered."""
        rows = await self.platform.fetch(
            "feedback",
            "SELECT request_id, participant_id FROM feedback_requests"
            " WHERE program_id = $1 AND status = 'open' ORDER BY request_id",
            self.settings.program_id,
        )
        await self._each([dict(r) for r in rows], self._answer_one)

    async def _answer_one(self, row: dict[str, Any]) -> None:
        request_id = str(row["request_id"])
        level = 4 + int(chance(self.settings.seed, "rating", request_id) * 2)
        body = {
            "ratings": {"satisfaction": level, "usefulness": level, "comfort": level,
                        "progress": level},
            "nps": 7 + int(chance(self.settings.seed, "nps", request_id) * 4),
        }  # fmt: skip

        async def answered() -> bool:
            sql = "SELECT status FROM feedback_requests WHERE request_id = $1"
            return bool(await self.platform.value("feedback", sql, request_id) == "submitted")

        who = participant(str(row["participant_id"]))
        path = f"/feedback/requests/{request_id}/answer"
        await self.platform.call(
            "feedback", "POST", path, identity=who, body=body, ok=(201,), done=answered
        )
        self.input.answered.add(request_id)

    async def close_program(self) -> None:
        """Close the program: its pairs end, the remaining sessions are cancelled."""
        program_id = self.settings.program_id

        async def closed() -> bool:
            sql = "SELECT status FROM programs WHERE program_id = $1"
            return bool(await self.platform.value("matching", sql, program_id) == "closed")

        path = f"/programs/{program_id}/close"
        await self.platform.call(
            "matching", "POST", path, body={"reason": "completed"}, done=closed
        )
        await self.faults.point("closed")
        self.input.closed_at = self.platform.now
        await self.platform.settle("the program's closing to reach every service")
