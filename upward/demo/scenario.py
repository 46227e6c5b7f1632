"""The demo scenario: a reverse mentoring program run through simulated time.

Against running services on manual clocks (see :mod:`upward.demo.platform`): create the
program, join the cohort, screen and train the mentors, run a batch match, have the people
answer their proposals (a few decline), then move every clock forward one day at a time for
``weeks`` weeks. Each day the participants act like people would: they answer new proposals
(continuous matching re-pairs the decliners, late joiners and at-risk pairs), record the
sessions the sessions service scheduled (most held, some missed; a few "quiet" pairs record
nothing, so their sessions go missed and they stall), and answer their feedback requests
(a few unhappy pairs rate low, so feedback flags them at risk and matching rematches them;
some requests stay unanswered). Late joiners arrive in week ``late_week``. At the end the
program closes. Choices are deterministic for a seed. Time never passes by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from upward.demo.cohort import Cohort
from upward.demo.platform import Platform, eventually
from upward.identity import PLATFORM_ADMIN, participant

DEMO_START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
"""A Monday morning (UTC): the program's first day."""

Progress = Callable[[str, int, int], None]
"""``(phase, done, total)``: what the scenario is doing, for a progress display."""


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class ScenarioSettings:
    """The knobs of a run (shares are fractions of people, pairs or requests)."""

    program_id: str = "prg-demo"
    start: datetime = DEMO_START
    weeks: int = 6
    seed: int = 7
    late_share: float = 0.05
    late_week: int = 2
    decline_share: float = 0.05
    quiet_share: float = 0.04
    unhappy_share: float = 0.04
    missed_share: float = 0.1
    unanswered_share: float = 0.1
    concurrency: int = 8


@dataclass
class ScenarioTally:
    """What the participants did (the services' own figures are in the summary)."""

    joined: int = 0
    late_joined: int = 0
    screened: int = 0
    accepted: int = 0
    declined: int = 0
    held_recorded: int = 0
    missed_recorded: int = 0
    answers: int = 0
    days: int = 0
    run: dict[str, Any] = field(default_factory=dict)


def chance(seed: int, *parts: str) -> float:
    """A deterministic draw in [0, 1) for these ids (stable across runs and processes)."""
    digest = hashlib.sha256("|".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Scenario:
    """Drives one program through its life on a running platform."""

    def __init__(
        self,
        platform: Platform,
        cohort: Cohort,
        settings: ScenarioSettings,
        progress: Progress = _no_progress,
    ) -> None:
        """Nothing happens until :meth:`run`."""
        self.platform = platform
        self.cohort = cohort
        self.settings = settings
        self.progress = progress
        self.tally = ScenarioTally()
        self.declined_once: set[str] = set()
        self.program_id = str(cohort.program["program_id"])
        late = [m for m in cohort.members if self._draw("late", m) < settings.late_share]
        self.late = late
        self.early = [m for m in cohort.members if m not in late]

    def _draw(self, what: str, member: dict[str, Any]) -> float:
        return chance(self.settings.seed, what, str(member["participant_id"]))

    async def _each(
        self, phase: str, items: list[Any], act: Callable[[Any], Awaitable[None]]
    ) -> None:
        """Run *act* on every item, a few at a time, reporting progress."""
        gate = asyncio.Semaphore(self.settings.concurrency)
        done = 0

        async def one(item: Any) -> None:
            nonlocal done
            async with gate:
                await act(item)
            done += 1
            self.progress(phase, done, len(items))

        self.progress(phase, 0, len(items))
        await asyncio.gather(*(one(item) for item in items))

    # --------------------------------------------------------------- phases

    async def run(self) -> ScenarioTally:
        """The whole life of the program; returns what the participants did."""
        await self.platform.move_clock(self.settings.start)
        await self.create_program()
        await self.join(self.early, phase="joining")
        await self.screen_and_train(self.early)
        await self.batch_match()
        await self.answer_proposals()
        for day in range(1, self.settings.weeks * 7 + 1):
            await self.day(day)
        await self.close_program()
        return self.tally

    async def create_program(self) -> None:
        """``POST /programs`` (continuous pairing off until the kickoff batch has run), and
        the platform admin's contact for admin notices."""
        self.progress("creating the program", 0, 1)
        kickoff = dict(self.cohort.program)
        kickoff["pairing_modes"] = [m for m in kickoff["pairing_modes"] if m != "continuous"]
        await self.platform.call("matching", "POST", "/programs", body=kickoff)
        contact = {
            "display_name": "Upward programme office",
            "email": "programme-office@demo.upward.example",
            "timezone": "Europe/London",
            "languages": ["en"],
        }
        path = f"/contacts/{PLATFORM_ADMIN.subject}"
        await self.platform.call("notifications", "PUT", path, body=contact)
        self.progress("creating the program", 1, 1)

    async def join(self, members: list[dict[str, Any]], *, phase: str) -> None:
        """Each member joins (202), then waits until matching has applied every join."""
        path = f"/programs/{self.program_id}/participants"

        async def join_one(member: dict[str, Any]) -> None:
            who = participant(str(member["participant_id"]))
            await self.platform.call("matching", "POST", path, identity=who, body=member)

        await self._each(phase, members, join_one)
        self.tally.joined += len(members)
        sql = "SELECT count(*) FROM participants WHERE program_id = $1"

        async def applied() -> bool:
            count = await self.platform.value("matching", sql, self.program_id)
            return int(count) >= self.tally.joined

        await eventually(
            f"matching to apply {self.tally.joined} joins",
            applied,
            timeout_s=self.platform.wait_timeout_s,
        )

    async def screen_and_train(self, members: list[dict[str, Any]]) -> None:
        """Screen and train every mentor, as the program requires."""
        program = self.cohort.program
        if not (program.get("requires_screening") or program.get("requires_training")):
            return
        mentors = [m for m in members if m["role"] in ("mentor", "both")]
        base = f"/programs/{self.program_id}/participants"

        async def prepare(member: dict[str, Any]) -> None:
            path = f"{base}/{member['participant_id']}"
            if program.get("requires_screening"):
                body = {"outcome": "passed"}
                await self.platform.call("matching", "POST", f"{path}/screening", body=body)
            if program.get("requires_training"):
                body = {"course_id": "reverse-mentoring-101"}
                await self.platform.call("matching", "POST", f"{path}/training", body=body)

        await self._each("screening and training mentors", mentors, prepare)
        self.tally.screened += len(mentors)
        await self.platform.settle("matching to record screenings and trainings")

    async def batch_match(self) -> None:
        """One batch run, planned and published in one call; then continuous pairing on
        (late joiners, people declined or whose pair ended are matched as they come)."""
        self.progress("batch matching", 0, 1)
        path = f"/programs/{self.program_id}/match-runs"
        run = await self.platform.call("matching", "POST", path, body={"dry_run": False})
        self.tally.run = {key: value for key, value in run.items() if key not in ("pairs",)}
        self.progress("batch matching", 1, 1)
        if "continuous" in self.cohort.program["pairing_modes"]:
            path = f"/programs/{self.program_id}"
            await self.platform.call("matching", "PUT", path, body=self.cohort.program)
        await self.platform.settle("the batch run's proposals to reach every service")

    async def _open_proposals(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = await self.platform.call(
                "matching",
                "GET",
                f"/programs/{self.program_id}/proposals",
                params={"limit": 1000, "offset": len(found)},
            )
            found += page
            if len(page) < 1000:
                return found

    async def answer_proposals(self) -> None:
        """Both people accept each open proposal, except a few mentees who decline once."""
        proposals = await self._open_proposals()
        if not proposals:
            return

        async def answer(pair: dict[str, Any]) -> None:
            mentee = str(pair["mentee_id"])
            pair_path = f"/pairs/{pair['pair_id']}"
            first_time = mentee not in self.declined_once
            if first_time and chance(self.settings.seed, "decline", mentee) < (
                self.settings.decline_share
            ):
                self.declined_once.add(mentee)
                who = participant(mentee)
                await self.platform.call("matching", "POST", f"{pair_path}/decline", identity=who)
                self.tally.declined += 1
                return
            for side in ("mentor_id", "mentee_id"):
                if pair[side.replace("_id", "_accepted_at")] is None:
                    who = participant(str(pair[side]))
                    path = f"{pair_path}/accept"
                    await self.platform.call("matching", "POST", path, identity=who)
            self.tally.accepted += 1

        await self._each("answering proposals", proposals, answer)
        await self.platform.settle("accepted pairs to reach every service")

    async def day(self, day: int) -> None:
        """One simulated day: clocks forward, then people act on what happened."""
        now = self.settings.start + timedelta(days=day)
        week = (day - 1) // 7 + 1
        self.progress(f"week {week}/{self.settings.weeks}", day, self.settings.weeks * 7)
        await self.platform.move_clock(now)
        await self.platform.settle(f"day {day}'s timers to take effect")
        if day == self.settings.late_week * 7 and self.late:
            await self.join(self.late, phase="late joiners")
            await self.screen_and_train(self.late)
            self.tally.late_joined = len(self.late)
        await self.answer_proposals()
        await self.record_sessions(now)
        await self.answer_feedback()
        await self.platform.settle(f"day {day}'s records to take effect")
        self.tally.days = day

    def _pair_draw(self, what: str, row: dict[str, Any]) -> float:
        """A draw for the pair's two people (pair ids are random; people are not)."""
        return chance(self.settings.seed, what, str(row["mentor_id"]), str(row["mentee_id"]))

    async def record_sessions(self, now: datetime) -> None:
        """The pairs record the sessions that have started (quiet pairs record nothing)."""
        rows = await self.platform.fetch(
            "sessions",
            "SELECT s.session_id, s.number, s.agenda, p.mentor_id, p.mentee_id,"
            " EXTRACT(EPOCH FROM s.ends_at - s.starts_at)::int / 60 AS minutes"
            " FROM sessions s JOIN pairs p USING (pair_id)"
            " WHERE s.program_id = $1 AND s.status = 'scheduled' AND s.starts_at <= $2"
            " ORDER BY s.session_id",
            self.program_id,
            now,
        )
        quiet = self.settings.quiet_share
        todo = [dict(r) for r in rows if self._pair_draw("quiet", dict(r)) >= quiet]
        await self._each("recording sessions", todo, self._record_one)

    async def _record_one(self, row: dict[str, Any]) -> None:
        who = participant(str(row["mentor_id"]))
        path = f"/sessions/{row['session_id']}"
        if self._pair_draw(f"missed-{row['number']}", row) < self.settings.missed_share:
            body: dict[str, Any] = {"absent": [row["mentee_id"]]}
            await self.platform.call("sessions", "POST", f"{path}/missed", identity=who, body=body)
            self.tally.missed_recorded += 1
            return
        body = {
            "attendees": [row["mentor_id"], row["mentee_id"]],
            "duration_minutes": int(row["minutes"]),
            "topics_covered": list(row["agenda"]),
        }
        await self.platform.call("sessions", "POST", f"{path}/held", identity=who, body=body)
        self.tally.held_recorded += 1

    async def answer_feedback(self) -> None:
        """People answer their open feedback requests; unhappy pairs rate low."""
        rows = await self.platform.fetch(
            "feedback",
            "SELECT r.request_id, r.participant_id, p.mentor_id, p.mentee_id"
            " FROM feedback_requests r JOIN pairs p USING (pair_id)"
            " WHERE r.program_id = $1 AND r.status = 'open' ORDER BY r.request_id",
            self.program_id,
        )
        seed = self.settings.seed
        todo = [
            dict(row)
            for row in rows
            if chance(seed, "unanswered", str(row["request_id"])) >= self.settings.unanswered_share
        ]
        await self._each("answering feedback", todo, self._answer_one)

    async def _answer_one(self, row: dict[str, Any]) -> None:
        unhappy = self._pair_draw("unhappy", row) < self.settings.unhappy_share
        level = 1 if unhappy else 4 + int(chance(self.settings.seed, "r", row["request_id"]) * 2)
        body = {
            "ratings": {
                "satisfaction": level,
                "usefulness": level,
                "comfort": level,
                "progress": max(1, level - 1),
            },
            "nps": 2
            if unhappy
            else 6 + int(chance(self.settings.seed, "n", row["request_id"]) * 5),
        }
        who = participant(str(row["participant_id"]))
        path = f"/feedback/requests/{row['request_id']}/answer"
        await self.platform.call("feedback", "POST", path, identity=who, body=body, ok=(201,))
        self.tally.answers += 1

    async def close_program(self) -> None:
        """Close the program (its pairs end, open proposals are withdrawn), let it settle."""
        self.progress("closing the program", 0, 1)
        path = f"/programs/{self.program_id}/close"
        await self.platform.call("matching", "POST", path, body={"reason": "completed"})
        await self.platform.settle("the program's closing to reach every service")
        assert self.platform.now is not None
        await self.platform.move_clock(self.platform.now + timedelta(hours=1))
        await self.platform.settle("the last notifications to go out")
        self.progress("closing the program", 1, 1)


def members_by_id(members: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The cohort's join bodies by participant id."""
    return {str(m["participant_id"]): m for m in members}
