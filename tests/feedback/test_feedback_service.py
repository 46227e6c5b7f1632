"""The feedback service on the real stack: Kafka in, PostgreSQL, HTTP, Kafka out.

One service runs for the module (its own topic prefix and database) on a manual clock;
each test uses its own pairs. The clock only moves in the last test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from schemas.base import EventData
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.feedback import FeedbackRequested, FeedbackSubmitted, PairAtRisk, RiskAction
from schemas.pairs import PairFormed
from schemas.participants import ErasureCompleted, ParticipantForgotten
from schemas.primitives import PairingMode, ServiceName
from schemas.programs import ProgramCreated
from schemas.sessions import SessionHeld
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from servicekit.settings import settings_for
from services.feedback.bootstrap import DEFINITION, FeedbackServiceSettings
from tests.fixtures import tokens
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually, publish, read_topic
from upward.stack import free_ports

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 3, 9, tzinfo=UTC)
PROGRAM = "prg-2025-digital"
OUTCOMES_PROGRAM = "prg-outcomes"
ADMIN = "emp-00017"


@pytest.fixture(scope="module")
async def service(request: pytest.FixtureRequest) -> AsyncIterator[ServiceRuntime]:
    postgres: PostgresServerInfo = request.getfixturevalue("postgres")
    kafka: str = request.getfixturevalue("kafka_bootstrap")
    name = f"test_feedback_{uuid.uuid4().hex[:12]}"
    settings = settings_for("feedback", FeedbackServiceSettings)(
        service_name="feedback",
        database_url=await postgres.create_database(name),
        kafka_bootstrap_servers=kafka,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.2,
    )
    runtime = ServiceRuntime(DEFINITION, settings, clock=ManualClock(START))
    await runtime.start()
    await send(runtime, program(PROGRAM), program(OUTCOMES_PROGRAM))
    try:
        yield runtime
    finally:
        runtime.stop.set()
        await runtime.wait()
        await postgres.drop_database(name)


def program(program_id: str) -> ProgramCreated:
    data = ProgramCreated.example().model_dump(mode="json") | {"program_id": program_id}
    return ProgramCreated.model_validate(data)


def formed(pair: str, program_id: str = PROGRAM) -> CloudEvent:
    data = PairFormed(
        pair_id=pair,
        program_id=program_id,
        mentor_id=f"{pair}-mentor",
        mentee_id=f"{pair}-mentee",
        topics=["social-media"],
        mode=PairingMode.BATCH,
    )
    return new_event(data, source="/upward/matching", time=START)


def held(pair: str, session: str, program_id: str = PROGRAM) -> CloudEvent:
    data = SessionHeld(
        pair_id=pair,
        program_id=program_id,
        session_id=session,
        sequence=1,
        held_at=START + timedelta(days=1),
        duration_minutes=60,
        attendees=[f"{pair}-mentor", f"{pair}-mentee"],
    )
    return new_event(data, source="/upward/sessions")


async def send(runtime: ServiceRuntime, *events: CloudEvent | EventData) -> None:
    s = runtime.settings
    for item in events:
        event = item if isinstance(item, CloudEvent) else new_event(item, source="/upward/test")
        topic = s.physical_topic(_topic_of(event))
        await publish(s.kafka_bootstrap_servers, topic, [(event.subject.encode(), encode(event))])


def _topic_of(event: CloudEvent) -> str:
    from schemas.registry import event_class

    return event_class(event.type.removeprefix("upward.")).topic


async def feedback_events(runtime: ServiceRuntime, at_least: int = 1) -> list[EventData]:
    s = runtime.settings
    records = await read_topic(
        s.kafka_bootstrap_servers, s.physical_topic("upward.feedback"), at_least=at_least
    )
    return [decode(r.value, key=r.key).data for r in records]


async def requests_for(runtime: ServiceRuntime, pair: str, n: int) -> list[FeedbackRequested]:
    async def probe() -> list[FeedbackRequested]:
        events = await feedback_events(runtime)
        return [e for e in events if isinstance(e, FeedbackRequested) and e.pair_id == pair]

    return await eventually(probe, lambda found: len(found) >= n, timeout=60)


def client(
    runtime: ServiceRuntime,
    role: str | None = None,
    subject: str | None = None,
    programs: tuple[str, ...] = tokens.ALL,
) -> Any:
    headers = {}
    if role is not None and subject is not None:
        headers = tokens.unchecked(role, subject)
        if role == "admin":
            headers = tokens.admin(subject, programs)
    base = f"http://127.0.0.1:{runtime.settings.http_port}"
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=10)


GOOD = {"ratings": {"satisfaction": 5, "usefulness": 4, "comfort": 5, "progress": 4}, "nps": 9}
POOR = {
    "ratings": {"satisfaction": 1, "usefulness": 1, "comfort": 1, "progress": 2},
    "nps": 2,
    "comment": "we never connect",
}


async def test_a_held_session_requests_feedback_from_both(service: ServiceRuntime) -> None:
    await send(service, formed("pair-a"), held("pair-a", "ses-a1"))
    found = await requests_for(service, "pair-a", 2)
    assert {(e.participant_id, e.side.value, e.session_id) for e in found} == {
        ("pair-a-mentor", "mentor", "ses-a1"),
        ("pair-a-mentee", "mentee", "ses-a1"),
    }
    assert {e.due_at for e in found} == {START + timedelta(days=7)}


async def test_redelivered_events_count_once(service: ServiceRuntime) -> None:
    once = held("pair-b", "ses-b1")
    same_fact = held("pair-b", "ses-b1")  # another event id, the same session
    await send(service, formed("pair-b"), once, once, same_fact, held("pair-b", "ses-b2"))
    found = await requests_for(service, "pair-b", 4)
    assert sorted(e.session_id or "" for e in found) == ["ses-b1", "ses-b1", "ses-b2", "ses-b2"]
    assert service.pool is not None
    rows = await service.pool.fetchval(
        "SELECT count(*) FROM feedback_requests WHERE pair_id = 'pair-b'"
    )
    held_rows = await service.pool.fetchval(
        "SELECT count(*) FROM held_sessions WHERE pair_id = 'pair-b'"
    )
    assert (rows, held_rows) == (4, 2)


async def test_poor_ratings_put_the_pair_at_risk_once(service: ServiceRuntime) -> None:
    submitted_before = sample("upward_feedback_submitted_total", kind="session")
    at_risk_before = sample("upward_pairs_at_risk_total")
    await send(service, formed("pair-c"), held("pair-c", "ses-c1"))
    found = await requests_for(service, "pair-c", 2)
    mentee = next(e for e in found if e.side.value == "mentee")
    mentor = next(e for e in found if e.side.value == "mentor")
    async with client(service, "participant", "pair-c-mentee") as http:
        mine = (await http.get("/feedback/requests")).json()
        assert [r["request_id"] for r in mine] == [mentee.request_id]
        answered = await http.post(f"/feedback/requests/{mentee.request_id}/answer", json=POOR)
        assert answered.status_code == 201, answered.text
        again = await http.post(f"/feedback/requests/{mentee.request_id}/answer", json=GOOD)
        assert again.status_code == 409 and "already answered" in again.json()["detail"]
        not_mine = await http.post(f"/feedback/requests/{mentor.request_id}/answer", json=GOOD)
        assert not_mine.status_code == 404
        [own] = (await http.get("/feedback/answers")).json()
        assert own["comment"] == "we never connect" and own["ratings"]["comfort"] == 1
    async with client(service, "participant", "pair-c-mentor") as http:
        assert (await http.get(f"/feedback/answers/{mentee.request_id}")).status_code == 404
        assert (await http.get("/feedback/answers")).json() == []

    async def at_risk() -> list[EventData]:
        return [e for e in await feedback_events(service) if e.pair_id == "pair-c"]  # type: ignore[attr-defined]

    events = await eventually(at_risk, lambda es: any(isinstance(e, PairAtRisk) for e in es))
    [risk] = [e for e in events if isinstance(e, PairAtRisk)]
    assert (risk.mentor_id, risk.mentee_id) == ("pair-c-mentor", "pair-c-mentee")
    assert risk.recommended_action is RiskAction.REMATCH
    [submitted] = [e for e in events if isinstance(e, FeedbackSubmitted)]
    assert submitted.ratings is None and submitted.request_id == mentee.request_id
    assert sample("upward_feedback_submitted_total", kind="session") == submitted_before + 1
    assert sample("upward_pairs_at_risk_total") == at_risk_before + 1
    async with client(service) as http:
        metrics = (await http.get("/metrics")).text
    assert 'upward_feedback_submitted_total{kind="session"}' in metrics
    assert "upward_pairs_at_risk_total" in metrics


async def test_bad_input_is_a_clear_4xx(service: ServiceRuntime) -> None:
    await send(service, formed("pair-e"), held("pair-e", "ses-e1"))
    found = await requests_for(service, "pair-e", 2)
    mentee = next(e for e in found if e.side.value == "mentee")
    mentor = next(e for e in found if e.side.value == "mentor")
    url = f"/feedback/requests/{mentee.request_id}/answer"
    async with client(service) as anonymous:
        assert (await anonymous.get("/feedback/requests")).status_code == 401
    async with client(service, "participant", "pair-e-mentee") as http:
        bad_rating = {**GOOD, "ratings": {**GOOD["ratings"], "satisfaction": 6}}  # type: ignore[dict-item]
        assert (await http.post(url, json=bad_rating)).status_code == 422
        assert (await http.post(url, json={**GOOD, "nps": 11})).status_code == 422
        unknown = {**GOOD, "skills": [{"topic": "astrology", "before": 1, "after": 2}]}
        refused = await http.post(url, json=unknown)
        assert refused.status_code == 422 and "astrology" in refused.json()["detail"]
        assert (await http.post("/feedback/requests/fbr-nope/answer", json=GOOD)).status_code == 404
        for wrong in (True, "4", 4.5):  # no coercion: true is not a rating of 1
            typed = {**GOOD, "ratings": {**GOOD["ratings"], "comfort": wrong}}  # type: ignore[dict-item]
            assert (await http.post(url, json=typed)).status_code == 422, wrong
        nul = await http.post(url, json={**GOOD, "comment": "a\x00b"})
        assert nul.status_code == 422 and "NUL" in nul.text
        for path in ("/feedback/requests/a%00b/answer", f"/feedback/requests/{'x' * 129}/answer"):
            assert (await http.post(path, json=GOOD)).status_code == 422
        assert (await http.get("/feedback/answers/a%00b")).status_code == 422
        skills = {**GOOD, "skills": [{"topic": "social-media", "before": 1, "after": 3}]}
        assert (await http.post(url, json=skills)).status_code == 201
    async with client(service, "participant", "pair-e-mentor") as http:
        mentor_url = f"/feedback/requests/{mentor.request_id}/answer"
        refused = await http.post(mentor_url, json=skills)
        assert refused.status_code == 422 and "mentee" in refused.json()["detail"]
    async with client(service, "admin", ADMIN) as http:
        assert (await http.get("/feedback/requests")).status_code == 403
        for path in ("/programs/a%00b/outcomes", "/programs/a%00b/outcomes.csv"):
            assert (await http.get(path)).status_code == 422
        assert (await http.get("/programs/a%00b/live")).status_code == 422


async def test_outcomes_for_the_programs_admins_only(service: ServiceRuntime) -> None:
    pairs = [f"pair-o{n}" for n in range(5)]
    for pair in pairs:
        await send(
            service, formed(pair, OUTCOMES_PROGRAM), held(pair, f"ses-{pair}", OUTCOMES_PROGRAM)
        )
    for pair in pairs:
        found = await requests_for(service, pair, 2)
        mentee = next(e for e in found if e.side.value == "mentee")
        async with client(service, "participant", f"{pair}-mentee") as http:
            answered = await http.post(f"/feedback/requests/{mentee.request_id}/answer", json=GOOD)
            assert answered.status_code == 201
    lone = next(e for e in await requests_for(service, "pair-o0", 2) if e.side.value == "mentor")
    async with client(service, "participant", "pair-o0-mentor") as http:
        await http.post(f"/feedback/requests/{lone.request_id}/answer", json=POOR)
    path = f"/programs/{OUTCOMES_PROGRAM}/outcomes"
    async with client(service, "admin", ADMIN) as http:
        body = (await http.get(path)).json()
        filtered = (await http.get(path, params={"side": "mentor", "kind": "session"})).json()
        csv = await http.get(f"{path}.csv")
        assert (await http.get(path, params={"side": "boss"})).status_code == 422
        assert (await http.get("/programs/prg-none/outcomes")).status_code == 404
    cells = {(c["side"], c["kind"]): c for c in body["feedback"]}
    mentees = cells[("mentee", "session")]["answers"]
    assert mentees["people"] == 5 and mentees["satisfaction"] == 5.0
    assert body["k_anonymity"] == 5 and body["figures_as_of"] is not None
    # the one mentor who answered is never visible, through any filter
    [mentor_cell] = filtered["feedback"]
    assert mentor_cell["suppressed"] or mentor_cell["answers"]["people"] == 0
    assert all(c["answers"] is None or c["answers"]["people"] in (0, 5) for c in body["feedback"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "section,side,kind,topic,metric,value"
    async with client(service, "admin", "emp-someone-else", ("prg-other",)) as http:
        assert (await http.get(path)).status_code == 403
    async with client(service, "participant", "pair-o1-mentee") as http:
        assert (await http.get(path)).status_code == 403
        assert (await http.get(f"{path}.csv")).status_code == 403


async def test_an_admin_who_takes_part_is_refused_the_outcomes(service: ServiceRuntime) -> None:
    """They could subtract their own answers; another admin of the program reads them."""
    program_id, other_admin = "prg-admin-takes-part", "emp-other-admin"
    data = program(program_id).model_dump(mode="json") | {"admin_ids": [ADMIN, other_admin]}
    pair = PairFormed(
        pair_id="pair-adm",
        program_id=program_id,
        mentor_id="pair-adm-mentor",
        mentee_id=ADMIN,
        topics=["social-media"],
        mode=PairingMode.BATCH,
    )
    await send(service, ProgramCreated.model_validate(data), pair)
    path = f"/programs/{program_id}/outcomes"

    async def as_admin(admin: str, suffix: str = "") -> httpx.Response:
        async with client(service, "admin", admin) as http:
            response: httpx.Response = await http.get(path + suffix)
            return response

    refused = await eventually(lambda: as_admin(ADMIN), lambda r: r.status_code == 403)
    assert "take part" in refused.json()["detail"]
    assert (await as_admin(ADMIN, ".csv")).status_code == 403
    assert (await as_admin(other_admin)).status_code == 200


async def test_live_counts_come_from_the_stream_table(service: ServiceRuntime) -> None:
    async def live() -> dict[str, Any]:
        async with client(service, "admin", ADMIN) as http:
            response = await http.get(f"/programs/{PROGRAM}/live")
            assert response.status_code == 200
            return dict(response.json())

    seen = await eventually(live, lambda b: (b["requests"] or 0) >= 8, timeout=90)
    assert seen["requests"] >= 8
    assert seen["answers"] is None  # fewer than k answers in this program: not shown


async def test_a_forgotten_participant_is_erased_and_confirmed(service: ServiceRuntime) -> None:
    person = "pair-f-mentee"
    await send(service, formed("pair-f"), held("pair-f", "ses-f1"))
    mine = next(e for e in await requests_for(service, "pair-f", 2) if e.side.value == "mentee")
    async with client(service, "participant", person) as http:
        answered = await http.post(f"/feedback/requests/{mine.request_id}/answer", json=POOR)
        assert answered.status_code == 201
    await send(service, ParticipantForgotten(participant_id=person, requested_at=START))
    s = service.settings

    async def confirmations() -> list[ErasureCompleted]:
        records = await read_topic(
            s.kafka_bootstrap_servers, s.physical_topic("upward.participants"), at_least=1
        )
        found = [decode(r.value, key=r.key).data for r in records]
        return [e for e in found if isinstance(e, ErasureCompleted)]

    [done] = await eventually(confirmations, lambda found: len(found) >= 1, timeout=60)
    assert (done.participant_id, done.service) == (person, ServiceName.FEEDBACK)
    assert done.records_erased >= 3
    async with client(service, "participant", person) as http:
        assert (await http.get("/feedback/answers")).json() == []
        assert (await http.get("/feedback/requests")).json() == []
    assert service.pool is not None
    comment = await service.pool.fetchval(
        "SELECT comment FROM feedback_answers WHERE request_id = $1", mine.request_id
    )
    assert comment is None


async def test_openapi_is_generated_from_the_code(service: ServiceRuntime) -> None:
    async with client(service) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    for path in (
        "/feedback/requests",
        "/feedback/requests/{request_id}/answer",
        "/feedback/answers",
        "/feedback/answers/{request_id}",
        "/programs/{program_id}/outcomes",
        "/programs/{program_id}/outcomes.csv",
        "/programs/{program_id}/live",
    ):
        assert path in paths


async def test_the_clock_sends_milestones_and_marks_overdue_requests(
    service: ServiceRuntime,
) -> None:
    """Runs last: it moves the module's clock two weeks on."""
    async with client(service) as http:
        moved = await http.post("/ops/clock", json={"advance_s": 14 * 24 * 3600})
    assert moved.status_code == 200
    assert moved.json()["timers"] == {"milestones": "ran", "overdue": "ran", "health-gauge": "ran"}
    found = await requests_for(service, "pair-a", 4)
    milestone = [e for e in found if e.milestone_week is not None]
    assert {(e.milestone_week, e.side.value) for e in milestone} == {(2, "mentor"), (2, "mentee")}
    async with client(service, "participant", "pair-a-mentee") as http:
        mine = (await http.get("/feedback/requests")).json()
        statuses = {r["kind"]: r["status"] for r in mine}
        assert statuses == {"session": "missing", "milestone": "open"}
        session_request = next(r for r in mine if r["kind"] == "session")
        late = await http.post(
            f"/feedback/requests/{session_request['request_id']}/answer", json=GOOD
        )
        assert late.status_code == 201 and late.json()["late"] is True
    assert sample("upward_pair_health_pairs", band="at_risk") >= 1  # pair-c at least
    async with client(service) as http:
        metrics = (await http.get("/metrics")).text
    assert 'upward_pair_health_pairs{band="healthy"}' in metrics


def sample(name: str, **labels: str) -> float:
    """A metric's current value in this process (the service runs in-process)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
