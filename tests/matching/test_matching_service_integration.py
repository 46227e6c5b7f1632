"""The matching service end to end: its HTTP API, a real Kafka broker, a real PostgreSQL.

Joiners (through the API and straight from an "HR feed" on Kafka) are proposed by the
continuous mode, both accept and the pair is formed; redelivered and replayed events
and a restarted service make no second pair; a decline leads to a different proposal;
an unanswered proposal expires when the manual clock moves on.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest
from matching_service_fixtures import mentee, mentor, program_definition

from schemas.base import EventData
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.pairs import PairAccepted
from schemas.participants import ParticipantForgotten
from schemas.primitives import PairingMode, PairSide
from schemas.programs import ProgramClosedReason
from servicekit import db
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from servicekit.settings import settings_for
from servicekit.unit_of_work import unit_of_work
from services.matching import handlers
from services.matching.adapters.repository import PostgresMatchingRepository
from services.matching.bootstrap import DEFINITION
from services.matching.domain.pairs import Pair, PairStatus
from services.matching.domain.programs import ProgramIsClosed
from services.matching.domain.staging import RunNotStaged
from services.matching.settings import MatchingSettings
from tests.fixtures import tokens
from tests.integration.kafka_io import eventually, publish, read_topic
from upward.stack import free_ports

pytestmark = pytest.mark.integration
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ADMIN = tokens.admin("admin-1")


def person(participant_id: str) -> dict[str, str]:
    return tokens.participant(participant_id)


def matching_settings(
    database_url: str, bootstrap: str, prefix: str, **extra: Any
) -> MatchingSettings:
    settings = settings_for("matching", MatchingSettings)(
        service_name="matching",
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        http_port=free_ports(1)[0],
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.2,
        continuous_interval_s=3600,
        expiry_interval_s=3600,
        **extra,
    )
    assert isinstance(settings, MatchingSettings)
    return settings


class Service:
    """A running matching service and an HTTP client on it."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{runtime.settings.http_port}", timeout=30
        )

    @classmethod
    async def start(cls, settings: MatchingSettings, clock: ManualClock) -> Service:
        runtime = ServiceRuntime(DEFINITION, settings, clock=clock)
        await runtime.start()
        service = cls(runtime)
        ready = await eventually(service._alive, lambda ok: ok)
        assert ready, "the matching API never answered"
        return service

    async def _alive(self) -> bool:
        try:
            return (await self.http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def stop(self) -> None:
        await self.http.aclose()
        self.runtime.stop.set()
        await self.runtime.wait()

    async def create_program(self, program_id: str, **changes: Any) -> None:
        definition = program_definition(program_id, **changes).model_dump(mode="json")
        answer = await self.http.post("/programs", json=definition, headers=ADMIN)
        assert answer.status_code == 201, answer.text

    async def publish(self, *events: CloudEvent) -> None:
        """Publish events as an external system would (straight to Kafka)."""
        for event in events:
            topic = self.settings.physical_topic(_topic_of(event))
            await publish(
                self.settings.kafka_bootstrap_servers,
                topic,
                [(event.subject.encode(), encode(event))],
            )

    async def participants(self, program_id: str) -> list[str]:
        answer = await self.http.get(f"/programs/{program_id}/participants", headers=ADMIN)
        return [p["profile"]["participant_id"] for p in answer.json()]

    async def wait_for_participants(self, program_id: str, count: int) -> None:
        found = await eventually(lambda: self.participants(program_id), lambda p: len(p) >= count)
        assert len(found) == count, f"the consumer applied {found}"

    async def proposals(self, program_id: str, participant_id: str) -> list[dict[str, Any]]:
        answer = await self.http.get(
            f"/programs/{program_id}/proposals", headers=person(participant_id)
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    async def pairs_events(self, program_id: str, *, at_least: int) -> list[CloudEvent]:
        """Events of ``upward.pairs`` about ``program_id`` (read from the broker)."""
        records = await read_topic(
            self.settings.kafka_bootstrap_servers,
            self.settings.physical_topic("upward.pairs"),
            at_least=at_least,
        )
        events = [decode(r.value, key=r.key).envelope for r in records]
        return [e for e in events if e.data.get("program_id") == program_id]

    async def wait_for_pairs_events(self, program_id: str, names: list[str]) -> list[str]:
        """Event names about the program on ``upward.pairs``, once ``names`` are all there."""

        async def seen() -> list[str]:
            return [e.event_name for e in await self.pairs_events(program_id, at_least=0)]

        found = await eventually(seen, lambda got: _contains(got, names), timeout=60)
        return found


def _contains(found: list[str], wanted: list[str]) -> bool:
    return all(found.count(name) >= wanted.count(name) for name in set(wanted))


def _topic_of(event: CloudEvent) -> str:
    return {
        "ParticipantJoined": "upward.participants",
        "ParticipantForgotten": "upward.participants",
        "PairAccepted": "upward.pairs",
    }[event.event_name]


def hr_feed(data: EventData) -> CloudEvent:
    return new_event(data, source="/hr-feed")


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, postgres: Any) -> AsyncIterator[Service]:
    name = f"test_matching_svc_{uuid.uuid4().hex[:12]}"
    url = await postgres.create_database(name)
    settings = matching_settings(url, kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}.")
    running = await Service.start(settings, ManualClock(START))
    yield running
    await running.stop()
    await postgres.drop_database(name)


async def join_both_ways(service: Service, program_id: str) -> None:
    """m-1 joins through the API; e-1 arrives from the HR feed on Kafka."""
    body = mentor("m-1", program_id).model_dump(mode="json")
    answer = await service.http.post(
        f"/programs/{program_id}/participants", json=body, headers=person("m-1")
    )
    assert answer.status_code == 202, answer.text
    await service.publish(hr_feed(mentee("e-1", program_id)))
    await service.wait_for_participants(program_id, 2)


async def test_joiners_are_proposed_and_both_acceptances_form_the_pair(service: Service) -> None:
    await service.create_program("prg-flow")
    await join_both_ways(service, "prg-flow")
    await service.runtime.run_timers()
    (proposal,) = await service.proposals("prg-flow", "e-1")
    assert proposal["mentor_id"] == "m-1" and proposal["mode"] == "continuous"
    assert await service.proposals("prg-flow", "m-2") == []
    pair_id = proposal["pair_id"]
    first = await service.http.post(f"/pairs/{pair_id}/accept", headers=person("m-1"))
    second = await service.http.post(f"/pairs/{pair_id}/accept", headers=person("e-1"))
    assert first.json()["status"] == "proposed" and second.json()["status"] == "formed"
    names = await service.wait_for_pairs_events(
        "prg-flow",
        ["MatchRunCompleted", "PairProposed", "PairAccepted", "PairAccepted", "PairFormed"],
    )
    assert names.count("PairFormed") == 1 and names.count("PairProposed") == 1
    explained = await service.http.get(f"/pairs/{pair_id}/explanation", headers=person("e-1"))
    assert explained.status_code == 200 and explained.json()["score"] == proposal["score"]
    assert {f["factor"] for f in explained.json()["explanation"]} >= {"skill_coverage"}
    stranger = await service.http.get(f"/pairs/{pair_id}/explanation", headers=person("x-9"))
    assert stranger.status_code == 404
    metrics = (await service.http.get("/metrics")).text
    runs = re.search(
        r'upward_match_runs_total\{mode="continuous",program_id="prg-flow"\} (\S+)', metrics
    )
    assert runs is not None and float(runs.group(1)) >= 1  # each woken tick that planned
    for name in ("upward_pairs_formed_total", "upward_pairs_proposed_total"):
        assert f"{name} " in metrics
    assert "upward_match_run_seconds_count" in metrics


async def test_joiners_are_proposed_without_the_interval_elapsing(service: Service) -> None:
    """The timer's interval is an hour and nobody runs it: the joins' commits wake it."""
    await service.create_program("prg-woken")
    await service.publish(hr_feed(mentor("m-1", "prg-woken")), hr_feed(mentee("e-1", "prg-woken")))
    found = await eventually(lambda: service.proposals("prg-woken", "e-1"), lambda p: len(p) > 0)
    assert [(p["mentor_id"], p["mode"]) for p in found] == [("m-1", "continuous")]


async def _continuous_runs(service: Service, program_id: str) -> list[int]:
    assert service.runtime.pool is not None
    rows = await service.runtime.pool.fetch(
        "SELECT jsonb_array_length(plan->'pairs') AS pairs FROM match_runs"
        " WHERE program_id = $1 AND mode = 'continuous' ORDER BY created_at",
        program_id,
    )
    return [int(r["pairs"]) for r in rows]


async def test_a_burst_of_joiners_is_planned_in_one_run(service: Service) -> None:
    """Twenty joins land while another replica holds the timer; its woken ticks are
    skipped and tried again, and when the timer is free one run pairs all twenty."""
    await service.create_program("prg-burst")
    people = [mentor(f"m-{i}", "prg-burst") for i in range(10)]
    people += [mentee(f"e-{i}", "prg-burst") for i in range(10)]
    events = [hr_feed(p) for p in people]
    replica = await asyncpg.connect(service.settings.database_url.get_secret_value())
    key = "hashtext('upward-timer'), hashtext('matching:continuous-matching')"
    try:
        await replica.execute(f"SELECT pg_advisory_lock({key})")
        await publish(
            service.settings.kafka_bootstrap_servers,
            service.settings.physical_topic("upward.participants"),
            [(e.subject.encode(), encode(e)) for e in events],
        )
        await service.wait_for_participants("prg-burst", 20)
        assert await _continuous_runs(service, "prg-burst") == []
    finally:
        await replica.execute(f"SELECT pg_advisory_unlock({key})")
        await replica.close()
    runs = await eventually(lambda: _continuous_runs(service, "prg-burst"), lambda r: len(r) > 0)
    assert runs == [10]


async def test_a_keyed_join_sent_again_announces_nothing_new(service: Service) -> None:
    """A repeat with the same Idempotency-Key answers the first event, even concurrently
    and before the join is applied; a join without the key, once applied, is a 409."""
    await service.create_program("prg-keyed")
    path = "/programs/prg-keyed/participants"
    body = mentor("m-7", "prg-keyed").model_dump(mode="json")
    keyed = {**ADMIN, "Idempotency-Key": "import-row-7"}
    answers = await asyncio.gather(
        *(service.http.post(path, json=body, headers=keyed) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert len({a.json()["event_id"] for a in answers}) == 1
    await service.wait_for_participants("prg-keyed", 1)
    again = await service.http.post(path, json=body, headers=keyed)
    assert again.json()["event_id"] == answers[0].json()["event_id"]
    unkeyed = await service.http.post(path, json=body, headers=ADMIN)
    assert unkeyed.status_code == 409, unkeyed.text
    assert service.runtime.pool is not None
    joins = await service.runtime.pool.fetchval(
        "SELECT count(*) FROM kit_outbox WHERE event_type = 'upward.ParticipantJoined'"
        " AND convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'participant_id' = 'm-7'"
    )
    assert joins == 1
    bad_key = await service.http.post(path, json=body, headers={**ADMIN, "Idempotency-Key": "a b"})
    assert bad_key.status_code == 422


async def test_a_decline_leads_to_a_different_proposal(service: Service) -> None:
    await service.create_program("prg-decline")
    for profile in (mentor("m-1", "prg-decline"), mentor("m-2", "prg-decline")):
        await service.publish(hr_feed(profile))
    await service.publish(hr_feed(mentee("e-1", "prg-decline")))
    await service.wait_for_participants("prg-decline", 3)
    await service.runtime.run_timers()
    (first,) = await service.proposals("prg-decline", "e-1")
    declined = await service.http.post(f"/pairs/{first['pair_id']}/decline", headers=person("e-1"))
    assert declined.status_code == 200 and declined.json()["close_reason"] == "declined"
    await service.runtime.run_timers()
    (second,) = await service.proposals("prg-decline", "e-1")
    assert second["mentor_id"] != first["mentor_id"]
    names = await service.wait_for_pairs_events(
        "prg-decline", ["PairProposed", "PairDeclined", "PairProposed"]
    )
    assert names.count("PairProposed") == 2 and names.count("PairDeclined") == 1
    for topic in ("upward.pairs", "upward.participants"):
        dlq = service.settings.physical_topic(topic) + ".dlq"
        dead = await read_topic(
            service.settings.kafka_bootstrap_servers, dlq, at_least=0, timeout=2
        )
        assert dead == [], f"{topic}: matching dead-lettered its own or the feed's events"


async def test_an_unanswered_proposal_expires_when_the_clock_moves(service: Service) -> None:
    await service.create_program("prg-expiry", acceptance_timeout_hours=48)
    for profile in (mentor("m-1", "prg-expiry"), mentee("e-1", "prg-expiry")):
        await service.publish(hr_feed(profile))
    await service.wait_for_participants("prg-expiry", 2)
    await service.runtime.run_timers()
    (proposal,) = await service.proposals("prg-expiry", "e-1")
    moved = await service.http.post("/ops/clock", json={"advance_s": 49 * 3600})
    assert moved.json()["timers"] == {"acceptance-timeouts": "ran", "continuous-matching": "ran"}
    pair = await service.http.get(f"/pairs/{proposal['pair_id']}", headers=ADMIN)
    assert pair.json()["status"] == "declined" and pair.json()["close_reason"] == "expired"
    names = await service.wait_for_pairs_events("prg-expiry", ["PairProposed", "PairDeclined"])
    assert names.count("PairProposed") == 1  # the same two are never proposed again


async def test_a_forgotten_participant_is_erased_and_the_pair_ended(service: Service) -> None:
    await service.create_program("prg-forget")
    for profile in (mentor("m-1", "prg-forget"), mentee("e-1", "prg-forget")):
        await service.publish(hr_feed(profile))
    await service.wait_for_participants("prg-forget", 2)
    await service.runtime.run_timers()
    (proposal,) = await service.proposals("prg-forget", "e-1")
    for who in ("m-1", "e-1"):
        await service.http.post(f"/pairs/{proposal['pair_id']}/accept", headers=person(who))
    await service.publish(hr_feed(ParticipantForgotten(participant_id="e-1", requested_at=START)))
    await service.wait_for_pairs_events("prg-forget", ["PairFormed", "PairEnded"])
    ended = [
        e
        for e in await service.pairs_events("prg-forget", at_least=1)
        if e.event_name == "PairEnded"
    ]
    assert ended[0].data["reason"] == "participant_forgotten"
    handled = await eventually(lambda: _handled(service, ended[0].id), lambda n: n == 1)
    assert handled == 1, "matching never consumed its own PairEnded"
    pair = await service.http.get(f"/pairs/{proposal['pair_id']}", headers=ADMIN)
    assert pair.json()["mentee_id"] == f"erased:{proposal['pair_id']}"
    assert "e-1" not in await service.participants("prg-forget")
    dlq = service.settings.physical_topic("upward.pairs") + ".dlq"
    dead = await read_topic(service.settings.kafka_bootstrap_servers, dlq, at_least=0, timeout=2)
    assert [d for d in dead if b"prg-forget" in d.value] == []


async def test_erasure_is_filed_by_the_person_or_an_admin_only(service: Service) -> None:
    await service.create_program("prg-forget-api")
    for profile in (mentor("m-9", "prg-forget-api"), mentee("e-9", "prg-forget-api")):
        await service.publish(hr_feed(profile))
    await service.wait_for_participants("prg-forget-api", 2)
    base = "/programs/prg-forget-api/participants"
    someone_else = await service.http.post(f"{base}/m-9/forget", headers=person("e-9"))
    assert someone_else.status_code == 403, someone_else.text
    unknown = await service.http.post(f"{base}/nobody/forget", headers=ADMIN)
    assert unknown.status_code == 404, unknown.text
    filed = await service.http.post(f"{base}/m-9/forget", headers=ADMIN)
    assert filed.status_code == 202, filed.text
    event_id = filed.json()["event_id"]
    records = await read_topic(
        service.settings.kafka_bootstrap_servers,
        service.settings.physical_topic("upward.participants"),
        at_least=1,
    )
    (forgotten,) = [
        e for e in (decode(r.value, key=r.key) for r in records) if e.envelope.id == event_id
    ]
    assert isinstance(forgotten.data, ParticipantForgotten)
    assert forgotten.data.participant_id == "m-9" and forgotten.data.requested_by == "admin-1"
    gone = await eventually(
        lambda: service.participants("prg-forget-api"), lambda p: "m-9" not in p
    )
    assert gone == ["e-9"]
    again = await service.http.post(f"{base}/m-9/forget", headers=person("m-9"))
    assert again.status_code == 404, again.text


async def _handled(service: Service, event_id: str) -> int:
    assert service.runtime.pool is not None
    return int(
        await service.runtime.pool.fetchval(
            "SELECT count(*) FROM kit_inbox WHERE event_id = $1", event_id
        )
    )


async def test_a_batch_dry_run_is_staged_then_published(service: Service) -> None:
    await service.create_program("prg-batch", pairing_modes=["batch", "manual"])
    for profile in (
        mentor("m-1", "prg-batch"),
        mentee("e-1", "prg-batch"),
        mentee("e-2", "prg-batch"),
    ):
        await service.publish(hr_feed(profile))
    await service.wait_for_participants("prg-batch", 3)
    dry = await service.http.post(
        "/programs/prg-batch/match-runs", json={"dry_run": True}, headers=ADMIN
    )
    assert dry.status_code == 201, dry.text
    run = dry.json()
    assert run["status"] == "staged" and len(run["proposals"]) == 1
    (unmatched,) = run["unmatched"]
    assert unmatched["participant_id"] in {"e-1", "e-2"} and unmatched["reason"]
    assert await service.proposals("prg-batch", "e-1") == []
    published = await service.http.post(f"/match-runs/{run['run_id']}/publish", headers=ADMIN)
    assert published.json()["status"] == "published"
    assert len(published.json()["proposed_pair_ids"]) == 1
    again = await service.http.post(f"/match-runs/{run['run_id']}/publish", headers=ADMIN)
    assert again.status_code == 409
    names = await service.wait_for_pairs_events("prg-batch", ["PairProposed", "MatchRunCompleted"])
    assert names.count("PairProposed") == 1
    await service.publish(hr_feed(mentor("m-2", "prg-batch")))
    await service.wait_for_participants("prg-batch", 4)
    direct = await service.http.post(
        "/programs/prg-batch/match-runs", json={"dry_run": False}, headers=ADMIN
    )
    assert direct.status_code == 201 and direct.json()["status"] == "published"
    assert len(direct.json()["proposed_pair_ids"]) == 1
    (second,) = await service.proposals("prg-batch", unmatched["participant_id"])
    assert second["mentor_id"] == "m-2" and second["run_id"] == direct.json()["run_id"]


async def test_bad_requests_get_clear_4xx_answers(service: Service) -> None:
    await service.create_program("prg-refusals", pairing_modes=["manual", "self_match"])
    for profile in (
        mentor("m-1", "prg-refusals"),
        mentor("m-boss", "prg-refusals", grade=12),
        mentee("e-1", "prg-refusals"),
    ):
        await service.publish(hr_feed(profile))
    await service.wait_for_participants("prg-refusals", 3)
    manual = await service.http.post(
        "/programs/prg-refusals/manual-pairs",
        json={"mentor_id": "m-boss", "mentee_id": "e-1", "reason": "asked for"},
        headers=ADMIN,
    )
    assert manual.status_code == 422 and manual.json()["detail"]["violations"] == ["grade_gap"]
    not_admin = await service.http.post(
        "/programs/prg-refusals/manual-pairs",
        json={"mentor_id": "m-1", "mentee_id": "e-1", "reason": "asked for"},
        headers=person("e-1"),
    )
    assert not_admin.status_code == 403
    no_reason = await service.http.post(
        "/programs/prg-refusals/manual-pairs",
        json={"mentor_id": "m-1", "mentee_id": "e-1"},
        headers=ADMIN,
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    no_batch = await service.http.post(
        "/programs/prg-refusals/match-runs", json={"dry_run": True}, headers=ADMIN
    )
    assert no_batch.status_code == 409 and "batch" in no_batch.json()["detail"]
    missing = await service.http.get("/pairs/pair-nope", headers=ADMIN)
    assert missing.status_code == 404
    anonymous = await service.http.get("/programs")
    assert anonymous.status_code == 401
    wrong_path = mentor("m-7", "prg-other").model_dump(mode="json")
    mismatch = await service.http.post(
        "/programs/prg-refusals/participants", json=wrong_path, headers=person("m-7")
    )
    assert mismatch.status_code == 422
    asked = await service.http.post(
        "/programs/prg-refusals/self-match-requests",
        json={"mentor_id": "m-1"},
        headers=person("e-1"),
    )
    assert asked.status_code == 201 and asked.json()["mentee_accepted_at"] is not None


async def test_malformed_ids_strings_and_pages_get_4xx_never_500(service: Service) -> None:
    await service.create_program("prg-nul")
    for subject in ("admin one", "a" * 129, "adm\x01in"):
        refused = await service.http.get("/programs", headers=tokens.unchecked("admin", subject))
        assert refused.status_code == 401 and "'sub' claim" in refused.text
    for path in (
        "/programs/a%00b",
        "/pairs/a%00b",
        "/match-runs/a%00b",
        "/programs/prg-nul/participants/a%20b",
        "/programs/prg-nul/pairs?offset=99999999999999999999",
        "/programs/" + "p" * 129,
    ):
        answer = await service.http.get(path, headers=ADMIN)
        assert answer.status_code == 422, (path, answer.text)
    for path, body in (
        ("/pairs/a%00b/veto", {"reason": "r"}),
        ("/programs/prg-nul/participants/a%20b/leave", {}),
        ("/programs/prg-nul/vetoes", {"mentor_id": "m\x00", "mentee_id": "e-1", "reason": "r"}),
        ("/programs/prg-nul/vetoes", {"mentor_id": "m-1", "mentee_id": "e-1", "reason": "r\x00"}),
        ("/programs/prg-nul/vetoes", {"mentor_id": 5, "mentee_id": "e-1", "reason": "r"}),
        (
            "/programs/prg-nul/vetoes",
            {"mentor_id": "m-1", "mentee_id": "e-1", "reason": "r" * 10**5},
        ),
        ("/programs", program_definition("prg-x").model_dump(mode="json") | {"name": "a\x00"}),
    ):
        answer = await service.http.post(path, json=body, headers=ADMIN)
        assert answer.status_code == 422, (path, answer.text)
    profile = mentor("m-1", "prg-nul").model_dump(mode="json")
    nested = profile | {"offers": {"social-media": 4, "gen\x00ai": 2}}
    joined = await service.http.post("/programs/prg-nul/participants", json=nested, headers=ADMIN)
    assert joined.status_code == 422 and "body.offers key holds a NUL" in joined.text
    unknown = mentor("m-1", "prg-none").model_dump(mode="json")
    refused = await service.http.post(
        "/programs/prg-none/participants", json=unknown, headers=ADMIN
    )
    assert refused.status_code == 404 and "prg-none" in refused.text
    offers = {f"topic-{i:05}-{'x' * 40}": 3 for i in range(25_000)}
    oversized = profile | {"offers": offers}
    too_big = await service.http.post(
        "/programs/prg-nul/participants", json=oversized, headers=ADMIN
    )
    assert too_big.status_code == 413 and "ParticipantJoined" in too_big.text
    assert (await service.participants("prg-nul")) == []


async def participant_state(service: Service, program_id: str, pid: str) -> dict[str, Any]:
    answer = await service.http.get(f"/programs/{program_id}/participants/{pid}", headers=ADMIN)
    return dict(answer.json()) if answer.status_code == 200 else {}


SELF_AND_ADMIN_MODES = [PairingMode.BATCH, PairingMode.SELF_MATCH, PairingMode.MANUAL]
"""Continuous pairing would propose the joiners before they ask for a mentor themselves."""


async def test_the_admin_and_participant_endpoints(service: Service) -> None:
    base = "/programs/prg-admin"
    await service.create_program("prg-admin", pairing_modes=SELF_AND_ADMIN_MODES)
    changed_definition = program_definition(
        "prg-admin", cadence_days=7, pairing_modes=SELF_AND_ADMIN_MODES
    )
    updated = await service.http.put(
        base, json=changed_definition.model_dump(mode="json"), headers=ADMIN
    )
    assert updated.json()["revision"] == 2
    for who, profile in (("m-1", mentor("m-1", "prg-admin")), ("e-1", mentee("e-1", "prg-admin"))):
        joined = await service.http.post(
            base + "/participants", json=profile.model_dump(mode="json"), headers=person(who)
        )
        assert (
            joined.status_code == 202 and joined.json()["event_type"] == "upward.ParticipantJoined"
        )
    e2 = mentee("e-2", "prg-admin").model_dump(mode="json")
    assert (
        await service.http.post(base + "/participants", json=e2, headers=ADMIN)
    ).status_code == 202
    await service.wait_for_participants("prg-admin", 3)
    screening = await service.http.post(
        base + "/participants/m-1/screening", json={"outcome": "passed"}, headers=ADMIN
    )
    training = await service.http.post(
        base + "/participants/m-1/training", json={"course_id": "lms-101"}, headers=ADMIN
    )
    assert screening.status_code == 202 and training.status_code == 202
    m1 = await eventually(
        lambda: participant_state(service, "prg-admin", "m-1"), lambda p: p.get("trained") is True
    )
    assert m1["screening"] == "passed" and m1["trained"]
    e2["capacity"] = 2
    changed = await service.http.put(base + "/participants/e-2", json=e2, headers=person("e-2"))
    assert changed.status_code == 202 and changed.json()["event_id"]
    someone_else = await service.http.put(
        base + "/participants/e-2", json=e2, headers=person("e-1")
    )
    assert someone_else.status_code == 403

    asked = await service.http.post(
        base + "/self-match-requests", json={"mentor_id": "m-1"}, headers=person("e-1")
    )
    pair_id = asked.json()["pair_id"]
    formed = await service.http.post(f"/pairs/{pair_id}/accept", headers=person("m-1"))
    assert formed.json()["status"] == "formed"
    assert (await service.http.get(base + "/pairs", headers=person("e-2"))).json() == []
    assert len((await service.http.get(base + "/pairs", headers=ADMIN)).json()) == 1
    full = await service.http.post(
        base + "/self-match-requests", json={"mentor_id": "m-1"}, headers=person("e-2")
    )
    assert full.status_code == 422 and full.json()["detail"]["violations"] == ["no_capacity"]
    assert (
        await service.http.post(f"/pairs/{pair_id}/end", json={}, headers=person("e-2"))
    ).status_code == 404
    as_admin = await service.http.post(
        f"/pairs/{pair_id}/end", json={"reason": "admin_ended"}, headers=person("e-1")
    )
    assert as_admin.status_code == 403
    ended = await service.http.post(f"/pairs/{pair_id}/end", json={}, headers=person("e-1"))
    assert ended.json()["status"] == "ended" and ended.json()["close_reason"] == "no_fault_exit"

    veto = {"mentor_id": "m-1", "mentee_id": "e-2", "reason": "conflict of interest"}
    vetoed = await service.http.post(base + "/vetoes", json=veto, headers=ADMIN)
    assert vetoed.status_code == 201 and vetoed.json() == []
    manual = await service.http.post(
        base + "/manual-pairs",
        json={"mentor_id": "m-1", "mentee_id": "e-2", "reason": "asked for"},
        headers=ADMIN,
    )
    assert manual.json()["detail"]["violations"] == ["previously_excluded"]
    left = await service.http.post(base + "/participants/e-2/leave", json={}, headers=person("e-2"))
    assert left.status_code == 202
    e2_state = await eventually(
        lambda: participant_state(service, "prg-admin", "e-2"), lambda p: p.get("status") == "left"
    )
    assert e2_state["status"] == "left"

    staged = await service.http.post(base + "/match-runs", json={}, headers=ADMIN)
    discarded = await service.http.post(
        f"/match-runs/{staged.json()['run_id']}/discard", headers=ADMIN
    )
    assert discarded.json()["status"] == "discarded"
    audit = await service.http.get(base + "/audit", headers=ADMIN)
    actions = [a["action"] for a in audit.json()]
    assert actions == [
        "program_created",
        "program_updated",
        "veto_combination",
        "run_staged",
        "run_discarded",
    ]
    assert audit.json()[2]["reason"] == "conflict of interest"
    closed = await service.http.post(base + "/close", json={"reason": "completed"}, headers=ADMIN)
    assert closed.json()["status"] == "closed"
    late = mentee("e-9", "prg-admin").model_dump(mode="json")
    too_late = await service.http.post(base + "/participants", json=late, headers=person("e-9"))
    assert too_late.status_code == 409


async def test_the_openapi_document_is_generated_from_the_routes(service: Service) -> None:
    document = (await service.http.get("/openapi.json")).json()
    paths = set(document["paths"])
    assert {
        "/programs",
        "/programs/{program_id}",
        "/programs/{program_id}/participants",
        "/programs/{program_id}/participants/{participant_id}/leave",
        "/programs/{program_id}/match-runs",
        "/match-runs/{run_id}/publish",
        "/programs/{program_id}/proposals",
        "/programs/{program_id}/pairs",
        "/pairs/{pair_id}/accept",
        "/pairs/{pair_id}/decline",
        "/pairs/{pair_id}/explanation",
        "/programs/{program_id}/self-match-requests",
        "/programs/{program_id}/manual-pairs",
        "/programs/{program_id}/vetoes",
    } <= paths
    assert "RunView" in document["components"]["schemas"]
    join = document["paths"]["/programs/{program_id}/participants"]["post"]
    assert "202" in join["responses"] and "404 right after a join" in join["description"]


async def pair_rows(service: Service, program_id: str) -> list[dict[str, Any]]:
    assert service.runtime.pool is not None
    rows = await service.runtime.pool.fetch(
        "SELECT pair_id, status FROM pairs WHERE program_id = $1", program_id
    )
    return [dict(r) for r in rows]


async def test_redelivery_replay_and_restart_create_no_second_pair(
    kafka_bootstrap: str, fresh_database_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    clock = ManualClock(START)
    first = await Service.start(
        matching_settings(fresh_database_url, kafka_bootstrap, prefix), clock
    )
    try:
        await first.create_program("prg-once")
        joined = hr_feed(mentee("e-1", "prg-once"))
        await first.publish(hr_feed(mentor("m-1", "prg-once")), joined, joined)
        await first.wait_for_participants("prg-once", 2)
        await first.runtime.run_timers()
        (proposal,) = await first.proposals("prg-once", "e-1")
        accepted = [
            hr_feed(
                PairAccepted(
                    pair_id=proposal["pair_id"],
                    program_id="prg-once",
                    participant_id=who,
                    side=side,
                )
            )
            for who, side in (("m-1", PairSide.MENTOR), ("e-1", PairSide.MENTEE))
        ]
        await first.publish(*accepted, *accepted)
        await first.wait_for_pairs_events("prg-once", ["PairProposed", "PairFormed"])
        await first.publish(hr_feed(mentee("e-1", "prg-once")))  # the feed sends it again
        await first.runtime.run_timers()
    finally:
        await first.stop()
    replay = matching_settings(
        fresh_database_url, kafka_bootstrap, prefix, consumer_group=f"replay-{uuid.uuid4().hex}"
    )
    second = await Service.start(replay, clock)  # reads every topic again from the start
    try:
        # 3 distinct ParticipantJoined (one sent twice) + 2 distinct PairAccepted (each twice)
        handled = await eventually(lambda: _inbox_count(second, replay.group_id), lambda n: n >= 5)
        assert handled == 5
        await second.runtime.run_timers()
        assert await pair_rows(second, "prg-once") == [
            {"pair_id": proposal["pair_id"], "status": "formed"}
        ]
        names = [e.event_name for e in await second.pairs_events("prg-once", at_least=4)]
        assert names.count("PairProposed") == 1 and names.count("PairFormed") == 1
    finally:
        await second.stop()


async def _inbox_count(service: Service, group: str) -> int:
    assert service.runtime.pool is not None
    return int(
        await service.runtime.pool.fetchval(
            "SELECT count(*) FROM kit_inbox WHERE consumer_group = $1", group
        )
    )


class Store:
    """The matching store on a fresh migrated database, driven by the handlers directly."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.clock = ManualClock(START)

    def command(self) -> Any:
        return unit_of_work(self.pool, source="/test", region="test", clock=self.clock)

    async def run(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        async with self.command() as uow:
            return await step(*args, uow=uow, repo=PostgresMatchingRepository(uow.conn), **kwargs)

    async def proposed(self, mentor_id: str, mentee_id: str) -> Pair:
        """A manual proposal of two new joiners of program prg-race."""
        async with self.command() as uow:
            repo = PostgresMatchingRepository(uow.conn)
            if await repo.get_program(program_id="prg-race") is None:
                await handlers.create_program(
                    program_definition("prg-race"), by="a", uow=uow, repo=repo
                )
            for profile in (mentor(mentor_id, "prg-race"), mentee(mentee_id, "prg-race")):
                await handlers.record_participant_joined(profile, uow, repo)
        return cast(
            Pair,
            await self.run(
                handlers.assign_pair,
                "prg-race",
                mentor_id=mentor_id,
                mentee_id=mentee_id,
                by="a",
                reason="race",
            ),
        )

    async def pair(self, pair_id: str) -> Pair:
        async with self.command() as uow:
            found = await PostgresMatchingRepository(uow.conn).get_pair(pair_id=pair_id)
        assert found is not None
        return found

    async def blocked(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


@pytest.fixture
async def store(postgres: Any) -> AsyncIterator[Store]:
    name = f"test_matching_race_{uuid.uuid4().hex[:12]}"
    pool = await db.create_pool(await postgres.create_database(name), max_size=4)
    try:
        await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
        await db.apply_migrations(pool, "matching", DEFINITION.migrations)
        yield Store(pool)
    finally:
        await pool.close()
        await postgres.drop_database(name)


async def test_two_acceptances_at_once_both_count(store: Store) -> None:
    """The second acceptance waits for the first (row lock) instead of overwriting it."""
    pair = await store.proposed("m-1", "e-1")
    async with store.command() as first:
        repo = PostgresMatchingRepository(first.conn)
        await handlers.accept_pair(pair.pair_id, participant_id="m-1", uow=first, repo=repo)
        second = asyncio.create_task(
            store.run(handlers.accept_pair, pair.pair_id, participant_id="e-1")
        )
        waiting = await eventually(store.blocked, lambda n: n >= 1)
        assert waiting >= 1, "the second acceptance never waited for the first"
    await second
    formed = await store.pair(pair.pair_id)
    assert formed.status is PairStatus.FORMED
    assert formed.mentor_accepted_at is not None and formed.mentee_accepted_at is not None


async def test_a_proposal_accepted_at_its_deadline_is_not_expired_over(store: Store) -> None:
    """The expiry timer skips a proposal being accepted: a formed pair is never declined."""
    pair = await store.proposed("m-2", "e-2")
    await store.run(handlers.accept_pair, pair.pair_id, participant_id="m-2")
    store.clock.advance(timedelta(days=30))
    async with store.command() as accepting:
        repo = PostgresMatchingRepository(accepting.conn)
        await handlers.accept_pair(pair.pair_id, participant_id="e-2", uow=accepting, repo=repo)

        async def expire() -> None:
            async with store.command() as uow:
                await handlers.expire_proposals(uow, PostgresMatchingRepository(uow.conn))

        tick = asyncio.create_task(expire())
        settled = await eventually(lambda: _done_or_blocked(tick, store), lambda ok: ok)
        assert settled, "the expiry tick neither finished nor waited"
    await tick
    assert (await store.pair(pair.pair_id)).status is PairStatus.FORMED


async def _done_or_blocked(task: asyncio.Task[None], store: Store) -> bool:
    return task.done() or await store.blocked() >= 1


async def test_an_update_racing_the_close_does_not_reopen_the_program(store: Store) -> None:
    await store.proposed("m-4", "e-4")  # creates prg-race
    async with store.command() as closing:
        await handlers.close_program(
            "prg-race",
            reason=ProgramClosedReason.CANCELLED,
            by="a",
            uow=closing,
            repo=PostgresMatchingRepository(closing.conn),
        )
        changed = program_definition("prg-race", cadence_days=7)
        update = asyncio.create_task(store.run(handlers.update_program, changed, by="b"))
        waiting = await eventually(store.blocked, lambda n: n >= 1)
        assert waiting >= 1, "the update never waited for the close"
    with pytest.raises(ProgramIsClosed):
        await update
    program = await store.run(lambda *, uow, repo: handlers.load_program("prg-race", repo=repo))
    assert program.status.value == "closed" and program.revision == 1


async def test_a_discard_racing_the_publish_does_not_undo_it(store: Store) -> None:
    await store.proposed("m-5", "e-5")  # creates prg-race
    async with store.command() as uow:
        repo = PostgresMatchingRepository(uow.conn)
        await handlers.record_participant_joined(mentee("e-6", "prg-race"), uow, repo)
        await handlers.record_participant_joined(mentor("m-6", "prg-race"), uow, repo)
        snapshot = await handlers.load_pool("prg-race", PairingMode.BATCH, repo)
    run = await handlers.plan_run(snapshot, mode=PairingMode.BATCH, at=START, by="a")
    await store.run(handlers.stage_run, run, by="a")
    async with store.command() as publishing:
        repo = PostgresMatchingRepository(publishing.conn)
        await handlers.publish_run(run.run_id, by="a", uow=publishing, repo=repo)
        discard = asyncio.create_task(store.run(handlers.discard_run, run.run_id, by="b"))
        waiting = await eventually(store.blocked, lambda n: n >= 1)
        assert waiting >= 1, "the discard never waited for the publish"
    with pytest.raises(RunNotStaged):
        await discard
    stored = await store.run(lambda *, uow, repo: handlers.load_run(run.run_id, repo=repo))
    assert stored.status.value == "published" and len(stored.outcome.proposed) == 1
