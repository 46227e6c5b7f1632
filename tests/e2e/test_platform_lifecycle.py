"""End to end: the four services as real processes on the real broker and PostgreSQL.

One small cohort goes through a whole program with the demo's own scenario
(:mod:`upward.demo.scenario`) on manual clocks: joins, screening and training, a batch run,
acceptances and declines, weeks of sessions held and missed, feedback, at-risk rematches,
late joiners, notifications by e-mail to a local SMTP sink, and the program's close. The
run happens once per module; each test then checks one promise against every service's
store and every topic. The processes are stopped whatever happens.
Topics are read with the topic census (:func:`upward.events.census.topic_census`), the
library behind ``upward events census``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.envelope import TYPE_PREFIX, CloudEvent
from tests.fixtures.infra import PostgresServerInfo
from upward.demo.cohort import Cohort, load_cohort
from upward.demo.platform import TOPICS, Platform, PlatformAddress
from upward.demo.scenario import Scenario, ScenarioSettings, ScenarioTally
from upward.demo.summary import Summary, collect_summary
from upward.events.census import topic_census
from upward.services.mailsink import Mailbox, read_mailbox
from upward.services.manager import Infrastructure, ServiceOptions, ServiceSupervisor
from upward.stack import SERVICES, free_ports

# The first test also pays for the whole run (about a minute here) in its setup.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SETTINGS = ScenarioSettings(
    program_id="prg-e2e",
    weeks=3,
    seed=11,
    decline_share=0.15,
    quiet_share=0.15,
    unhappy_share=0.15,
    late_share=0.1,
)
EMPLOYEES = 200


@dataclass(frozen=True)
class Census:
    """Every event of every topic, decoded, in offset order per partition."""

    events: dict[str, list[CloudEvent]]
    dead_letters: dict[str, int]
    duplicates: dict[str, dict[str, int]]
    undecodable: dict[str, int]

    def of_type(self, event_type: str) -> list[CloudEvent]:
        """All events of one type, whichever topic."""
        wanted = TYPE_PREFIX + event_type
        return [e for events in self.events.values() for e in events if e.type == wanted]


@dataclass(frozen=True)
class Run:
    """What one scenario run left behind."""

    cohort: Cohort
    tally: ScenarioTally
    summary: Summary
    census: Census
    mailbox: Mailbox
    stores: dict[str, dict[str, list[dict[str, Any]]]]
    clock: datetime
    """The services' clocks when the run ended."""


async def read_census(bootstrap: str, prefix: str) -> Census:
    """Read every topic (and dead-letter topic) of *prefix* from start to end."""
    census = await topic_census(bootstrap=bootstrap, prefix=prefix)
    events = {
        topic: [
            logged.event.envelope
            for partition in sorted(census.events.get(topic, {}))
            for logged in census.events[topic][partition]
        ]
        for topic in TOPICS
    }
    dead = {topic: census.dead_letters.get(topic, 0) for topic in TOPICS}
    return Census(events, dead, census.duplicates, census.undecodable)


STORE_QUERIES: dict[str, dict[str, str]] = {
    "matching": {
        "participants": "SELECT participant_id, profile->>'role' AS role, screening, trained"
        " FROM participants",
        "pairs": "SELECT * FROM pairs",
    },
    "sessions": {"pairs": "SELECT * FROM pairs", "sessions": "SELECT * FROM sessions"},
    "feedback": {"requests": "SELECT * FROM feedback_requests", "pairs": "SELECT * FROM pairs"},
    "notifications": {"deliveries": "SELECT * FROM deliveries"},
}


async def _stores(platform: Platform) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {
        service: {name: [dict(r) for r in await platform.fetch(service, sql)]
                  for name, sql in queries.items()}
        for service, queries in STORE_QUERIES.items()
    }  # fmt: skip


async def _drive(address: PlatformAddress, cohort: Cohort, mail_file: Path) -> Run:
    async with Platform(address, wait_timeout_s=90) as platform:
        tally = await Scenario(platform, cohort, SETTINGS).run()
        summary = await collect_summary(platform, SETTINGS.program_id, mail_file=mail_file)
        stores = await _stores(platform)
        assert platform.now is not None
        clock = platform.now
    census = await read_census(address.bootstrap_servers, address.topic_prefix)
    return Run(cohort, tally, summary, census, read_mailbox(mail_file), stores, clock)


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, postgres: PostgresServerInfo, tmp_path_factory: Any) -> Iterator[Run]:
    """The four services, one scenario run, then everything stopped and dropped."""
    tag = uuid.uuid4().hex[:8]
    names = {service: f"e2e_{tag}_{service}" for service in SERVICES}

    async def create() -> dict[str, str]:
        return {s: await postgres.create_database(n) for s, n in names.items()}

    urls = asyncio.run(create())
    *ports, mail_port = free_ports(len(SERVICES) + 1)
    options = ServiceOptions(
        run_dir=tmp_path_factory.mktemp("services"),
        ports=dict(zip(SERVICES, ports, strict=True)),
        mail_port=mail_port,
        topic_prefix=f"e2e{tag}.",
        clock_start=SETTINGS.start,
    )
    supervisor = ServiceSupervisor(options)
    cohort = load_cohort(
        EMPLOYEES,
        seed=SETTINGS.seed,
        program_id=SETTINGS.program_id,
        starts_on=SETTINGS.start.date(),
        weeks=SETTINGS.weeks,
    )
    address = PlatformAddress(
        {s: options.url(s) for s in SERVICES}, urls, kafka_bootstrap, options.topic_prefix
    )
    try:
        supervisor.up(Infrastructure(kafka_bootstrap, urls), timeout_s=120)
        yield asyncio.run(_drive(address, cohort, options.mail_file))
    finally:
        supervisor.down()

        async def drop() -> None:
            for name in names.values():
                await postgres.drop_database(name)

        asyncio.run(drop())


def _pair_people(run: Run) -> dict[str, tuple[str, str]]:
    return {
        str(e.data["pair_id"]): (str(e.data["mentor_id"]), str(e.data["mentee_id"]))
        for e in run.census.of_type("PairFormed")
    }


# ------------------------------------------------------------------ the whole run


def test_every_event_once_and_no_dead_letters(run: Run) -> None:
    ids = Counter(e.id for events in run.census.events.values() for e in events)
    assert all(run.census.events[topic] for topic in TOPICS), "a topic has no event"
    assert [i for i, n in ids.items() if n > 1] == []
    assert run.census.dead_letters == dict.fromkeys(TOPICS, 0)
    assert all(not ids for ids in run.census.duplicates.values()), run.census.duplicates
    assert all(n == 0 for n in run.census.undecodable.values()), run.census.undecodable
    assert run.summary.dead_letters == {}
    assert run.summary.duplicates == 0
    assert sum(run.summary.events.values()) == sum(ids.values())


def test_cohort_joined_and_mentors_prepared(run: Run) -> None:
    people = run.stores["matching"]["participants"]
    assert len(people) == len(run.cohort.members) == run.tally.joined
    assert run.tally.late_joined > 0
    assert len(run.census.of_type("ParticipantJoined")) == len(run.cohort.members)
    mentors = [p for p in people if p["role"] in ("mentor", "both")]
    assert mentors and all(p["screening"] == "passed" and p["trained"] for p in mentors)
    assert len(run.census.of_type("ParticipantScreened")) == len(mentors)


def test_pairs_proposed_formed_declined_and_ended(run: Run) -> None:
    pairs = run.stores["matching"]["pairs"]
    formed = [p for p in pairs if p["formed_at"] is not None]
    assert len(run.census.of_type("PairProposed")) == len(pairs)
    assert len(run.census.of_type("PairFormed")) == len(formed) == run.summary.pairs["formed"]
    declined = [p for p in pairs if p["status"] == "declined"]
    assert run.tally.declined > 0
    assert sum(1 for p in declined if p["close_reason"] == "declined") == run.tally.declined
    # The program closed: nothing is left open, every formed pair ended.
    assert {p["status"] for p in pairs} <= {"declined", "ended"}
    ended_events = {e.data["pair_id"] for e in run.census.of_type("PairEnded")}
    assert {p["pair_id"] for p in formed} <= ended_events
    assert run.stores["sessions"]["pairs"] and all(
        p["status"] == "ended" for p in run.stores["sessions"]["pairs"]
    )


def test_at_risk_pairs_are_rematched(run: Run) -> None:
    pairs = run.stores["matching"]["pairs"]
    rematched = [p for p in pairs if p["close_reason"] == "at_risk_rematch"]
    assert run.census.of_type("PairAtRisk")
    assert rematched and run.summary.rematches == len(rematched)
    mentees = {p["mentee_id"] for p in rematched}
    again = [p for p in pairs if p["mentee_id"] in mentees and p["mode"] == "continuous"]
    assert again, "a rematched mentee was never proposed a new partner"


def test_sessions_held_and_missed_match_every_record(run: Run) -> None:
    sessions = run.stores["sessions"]["sessions"]
    by_status = Counter(s["status"] for s in sessions)
    assert by_status["held"] == run.tally.held_recorded > 0
    assert by_status["missed"] >= run.tally.missed_recorded > 0
    assert len(run.census.of_type("SessionHeld")) == by_status["held"]
    assert len(run.census.of_type("SessionMissed")) == by_status["missed"]
    assert len(run.census.of_type("SessionScheduled")) == len(sessions)
    assert run.census.of_type("PairStalled"), "quiet pairs should stall"


def test_feedback_requested_and_answered(run: Run) -> None:
    requests = run.stores["feedback"]["requests"]
    submitted = [r for r in requests if r["status"] == "submitted"]
    assert len(run.census.of_type("FeedbackRequested")) == len(requests)
    assert len(run.census.of_type("FeedbackSubmitted")) == len(submitted) == run.tally.answers
    assert run.summary.satisfaction is not None or run.summary.feedback_answers < 5


def test_notifications_sent_match_the_mail_received(run: Run) -> None:
    deliveries = run.stores["notifications"]["deliveries"]
    sent = [d for d in deliveries if d["status"] == "sent"]
    unsent = [(d["status"], d["kind"], d["due_at"]) for d in deliveries if d["status"] != "sent"]
    # Only messages still in the future (feedback-overdue reminders, due after the
    # program) or withdrawn (reminders of sessions cancelled at the close) are not sent.
    assert [
        u for u in unsent if u[0] != "cancelled" and not (u[0] == "pending" and u[2] > run.clock)
    ] == []
    assert len(run.census.of_type("NotificationSent")) == len(sent)
    assert len(run.mailbox.messages) == len(sent)
    kinds = run.mailbox.by_kind()
    for kind in ("pair_proposed", "pair_formed", "session_invite", "feedback_request"):
        assert kinds[kind] > 0, kind


def test_each_pair_formed_is_followed_by_sessions_feedback_and_notifications(run: Run) -> None:
    scheduled = {e.data["pair_id"]: e.time for e in run.census.of_type("SessionScheduled")}
    asked = {(e.data["pair_id"], e.data["participant_id"])
             for e in run.census.of_type("FeedbackRequested")}  # fmt: skip
    told = {(e.data["recipient_id"], e.data["kind"])
            for e in run.census.of_type("NotificationSent")}  # fmt: skip
    ended = {e.data["pair_id"]: e.data["reason"] for e in run.census.of_type("PairEnded")}
    end = datetime.combine(SETTINGS.start.date(), time(), UTC) + timedelta(weeks=SETTINGS.weeks)
    for formed in run.census.of_type("PairFormed"):
        pair_id, mentor, mentee = (formed.data[k] for k in ("pair_id", "mentor_id", "mentee_id"))
        assert pair_id in scheduled and scheduled[pair_id] >= formed.time, pair_id
        assert (mentor, "pair_formed") in told and (mentee, "pair_formed") in told, pair_id
        # A pair gets its close survey when it completes or the program closes, unless
        # it formed after the program's last day (feedback: no milestone then).
        if ended.get(pair_id) in ("completed", "program_closed") and formed.time < end:
            assert (pair_id, mentor) in asked and (pair_id, mentee) in asked, pair_id
