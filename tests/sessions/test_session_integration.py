"""The sessions service on the real stack: Kafka in, PostgreSQL state, Kafka out, HTTP.

Events arrive out of order across topics (the pair before its program and people); the
clock is a manual one moved through ``POST /ops/clock``, never by sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import pytest
from ical.calendar_stream import IcsCalendarStream
from sessions_harness import ended, formed, participant, program

from schemas.base import EventData
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.participants import ParticipantForgotten
from schemas.registry import event_class
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from servicekit.settings import settings_for
from services.sessions.bootstrap import build_definition
from services.sessions.settings import SessionsSettings
from tests.fixtures import tokens
from tests.integration.kafka_io import eventually, publish, read_topic
from upward.stack import free_ports

pytestmark = pytest.mark.integration
START = datetime(2025, 3, 3, 8, tzinfo=UTC)
MENTOR = tokens.participant("emp-m")
MENTEE = tokens.participant("emp-e")
STRANGER = tokens.participant("emp-x")
ADMIN = tokens.admin("emp-00017")


@pytest.fixture
def settings(kafka_bootstrap: str, fresh_database_url: str) -> SessionsSettings:
    built = settings_for("sessions", base=SessionsSettings)(
        service_name="sessions",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        retry_initial_backoff_s=0.05,
        timer_interval_s=3600,
        calendar_feed_secret="feed-secret",
    )
    assert isinstance(built, SessionsSettings)
    return built


@pytest.fixture
async def service(settings: SessionsSettings) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(build_definition(settings), settings, clock=ManualClock(START))
    await runtime.start()
    yield runtime
    runtime.stop.set()
    await runtime.wait()


@pytest.fixture
async def client(
    service: ServiceRuntime, settings: SessionsSettings
) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await eventually(_answers(http), lambda ok: ok)
        yield http


def _answers(http: httpx.AsyncClient) -> Any:
    async def probe() -> bool:
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    return probe


async def send(settings: SessionsSettings, *events: CloudEvent) -> None:
    for event in events:
        logical = event_class(event.type.removeprefix("upward.")).topic
        topic = settings.physical_topic(logical)
        await publish(
            settings.kafka_bootstrap_servers, topic, [(event.subject.encode(), encode(event))]
        )


def wrap(data: EventData) -> CloudEvent:
    return new_event(data, source="/test")


async def sessions_out(
    settings: SessionsSettings, at_least: int, topic: str = "upward.sessions"
) -> list[Any]:
    records = await read_topic(
        settings.kafka_bootstrap_servers, settings.physical_topic(topic), at_least=at_least
    )
    return [decode(r.value, key=r.key).data for r in records]


def of_type(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if e.event_type == name]


async def my_sessions(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get("/sessions", headers=headers)
    assert answer.status_code == 200, answer.text
    sessions: list[dict[str, Any]] = answer.json()
    return sessions


async def scheduled_pair(
    settings: SessionsSettings, client: httpx.AsyncClient
) -> list[dict[str, Any]]:
    """The pair formed before its program and people are known, then they arrive."""
    await send(settings, wrap(formed()))
    await send(
        settings,
        wrap(program()),
        wrap(participant("emp-m", "Europe/London", role="mentor")),
        wrap(participant("emp-e", "America/New_York", role="mentee")),
    )
    found = await eventually(lambda: my_sessions(client, MENTEE), lambda s: len(s) == 2)
    assert len(found) == 2, found
    return found


async def move_clock(client: httpx.AsyncClient, when: datetime) -> None:
    answer = await client.post("/ops/clock", json={"now": when.isoformat()})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["timers"].values()) == {"ran"}


async def test_pair_formed_schedules_sessions_once_with_invites(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    sessions = await scheduled_pair(settings, client)
    first = sessions[0]
    assert first["number"] == 1 and first["status"] == "scheduled"
    assert datetime.fromisoformat(first["starts_at"]) == datetime(2025, 3, 5, 14, tzinfo=UTC)
    out = of_type(await sessions_out(settings, at_least=2), "SessionScheduled")
    assert [e.sequence for e in out] == [1, 2]
    assert icalendar.Calendar.from_ical(out[0].ics)["METHOD"] == "REQUEST"
    assert IcsCalendarStream.calendar_from_ics(out[0].ics).events[0].uid.endswith("@upward")

    again = wrap(formed())  # the same pair under a new event id, and an exact redelivery
    await send(settings, again, again, wrap(participant("emp-e", "America/New_York")))
    assert service.pool is not None
    await eventually(
        lambda: service.pool.fetchval(  # type: ignore[union-attr]
            "SELECT count(*) FROM kit_inbox WHERE event_id = $1 AND redeliveries = 1", again.id
        ),
        lambda n: n == 1,
    )
    assert len(await my_sessions(client, MENTOR)) == 2
    assert len(of_type(await sessions_out(settings, at_least=2), "SessionScheduled")) == 2


async def test_held_missed_and_stalled_as_time_moves(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    first, second = await scheduled_pair(settings, client)
    await move_clock(client, datetime.fromisoformat(first["starts_at"]) + timedelta(minutes=50))
    body = {
        "attendees": ["emp-m", "emp-e"],
        "duration_minutes": 50,
        "topics_covered": ["social-media"],
        "notes": "what is said in the pair stays in the pair",
    }
    path = f"/sessions/{first['session_id']}"
    assert (await client.post(f"{path}/held", json=body, headers=STRANGER)).status_code == 404
    assert (await client.post(f"{path}/held", json=body, headers=ADMIN)).status_code == 403
    held = await client.post(f"{path}/held", json=body, headers=MENTEE)
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "held"
    again = await client.post(f"{path}/held", json=body, headers=MENTEE)
    assert again.status_code == 409
    notes = await client.get(f"{path}/notes", headers=MENTOR)
    assert notes.status_code == 200 and notes.json()[0]["author_id"] == "emp-e"
    assert (await client.get(f"{path}/notes", headers=ADMIN)).status_code == 403
    assert (await client.get(f"{path}/notes", headers=STRANGER)).status_code == 404

    third = (await my_sessions(client, MENTOR))[2]
    await move_clock(client, datetime.fromisoformat(third["ends_at"]) + timedelta(hours=2))
    out = await eventually(
        lambda: sessions_out(settings, at_least=8),
        lambda events: len(of_type(events, "PairStalled")) == 1,
    )
    (held_event,) = of_type(out, "SessionHeld")
    assert "stays in the pair" not in held_event.model_dump_json()
    missed = of_type(out, "SessionMissed")
    assert [m.session_id for m in missed] == [second["session_id"], third["session_id"]]
    (stalled,) = of_type(out, "PairStalled")
    assert stalled.reason == "missed_sessions" and stalled.consecutive_missed == 2
    pairs = (await client.get("/pairs", headers=MENTOR)).json()
    assert pairs[0]["stalled"] is True


async def test_pair_end_cancels_and_the_program_end_completes(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    await scheduled_pair(settings, client)
    end = ended("emp-m")
    await send(settings, wrap(end))
    cancelled = await eventually(
        lambda: sessions_out(settings, at_least=4),
        lambda out: len(of_type(out, "SessionCancelled")) == 2,
    )
    for event in of_type(cancelled, "SessionCancelled"):
        calendar = icalendar.Calendar.from_ical(event.ics)
        assert calendar["METHOD"] == "CANCEL" and event.reason == "pair_ended"

    short = program(duration_weeks=1, program_id="prg-short")
    in_short = formed("pair-3").model_copy(update={"program_id": "prg-short"})
    await send(settings, wrap(short), wrap(in_short))
    await eventually(
        lambda: client.get("/pairs", headers=MENTOR),
        lambda r: any(p["pair_id"] == "pair-3" and p["status"] == "active" for p in r.json()),
    )
    await move_clock(client, START + timedelta(weeks=1, hours=1))
    ends = await eventually(
        lambda: sessions_out(settings, at_least=3, topic="upward.pairs"),
        lambda events: any(e.reason == "completed" for e in of_type(events, "PairEnded")),
    )
    completed = [e for e in of_type(ends, "PairEnded") if e.reason == "completed"]
    assert [e.pair_id for e in completed] == ["pair-3"]
    left = await client.get("/sessions", params={"pair_id": "pair-3"}, headers=MENTOR)
    assert [s["status"] for s in left.json()] == ["missed"]  # nothing stays scheduled


async def test_calendar_feed_and_openapi(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    sessions = await scheduled_pair(settings, client)
    link = await client.get("/me/calendar-feed", headers=MENTEE)
    assert link.status_code == 200
    url = httpx.URL(link.json()["url"])
    assert url.path == "/participants/emp-e/calendar.ics"
    feed = await client.get(url.path, params={"token": url.params["token"]})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    uids = {str(e["UID"]) for e in icalendar.Calendar.from_ical(feed.text).walk("VEVENT")}
    assert uids == {f"{s['session_id']}@upward" for s in sessions}
    assert len(IcsCalendarStream.calendar_from_ics(feed.text).events) == 2
    assert (await client.get(url.path)).status_code == 401
    other = "/participants/emp-m/calendar.ics"
    assert (await client.get(other, params={"token": url.params["token"]})).status_code == 403
    assert (await client.get("/me/calendar-feed", headers=ADMIN)).status_code == 403
    assert (await client.get("/sessions")).status_code == 401

    invite = await client.get(f"/sessions/{sessions[0]['session_id']}/invite.ics", headers=MENTOR)
    assert invite.status_code == 200 and "METHOD:REQUEST" in invite.text
    assert (
        await client.get(f"/sessions/{sessions[0]['session_id']}", headers=STRANGER)
    ).status_code == 404
    assert (await client.get("/sessions/ses-nope", headers=MENTOR)).status_code == 404
    bad = await client.post(
        f"/sessions/{sessions[0]['session_id']}/held", json={"attendees": []}, headers=MENTOR
    )
    assert bad.status_code == 422

    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/sessions",
        "/sessions/{session_id}",
        "/sessions/{session_id}/held",
        "/sessions/{session_id}/missed",
        "/sessions/{session_id}/reschedule",
        "/sessions/{session_id}/cancel",
        "/sessions/{session_id}/notes",
        "/sessions/{session_id}/invite.ics",
        "/pairs",
        "/me/calendar-feed",
        "/participants/{participant_id}/calendar.ics",
    ):
        assert path in paths, path

    await send(settings, wrap(ParticipantForgotten(participant_id="emp-e", requested_at=START)))
    gone = await eventually(
        lambda: client.get(url.path, params={"token": url.params["token"]}),
        lambda r: r.status_code != 200,
    )
    assert gone.status_code == 404 and "erased" in gone.text


async def test_reschedule_and_cancel_over_http(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    first, second = await scheduled_pair(settings, client)
    path = f"/sessions/{first['session_id']}"
    new_start = datetime(2025, 3, 6, 15, tzinfo=UTC)
    moved = await client.post(
        f"{path}/reschedule", json={"starts_at": new_start.isoformat()}, headers=MENTOR
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["ical_sequence"] == 1
    clash = await client.post(
        f"{path}/reschedule", json={"starts_at": second["starts_at"]}, headers=MENTOR
    )
    assert clash.status_code == 409
    naive = await client.post(
        f"{path}/reschedule", json={"starts_at": "2025-03-07T10:00:00"}, headers=MENTOR
    )
    assert naive.status_code == 422
    cancelled = await client.post(f"/sessions/{second['session_id']}/cancel", headers=ADMIN)
    assert cancelled.status_code == 200 and cancelled.json()["cancel_reason"] == "admin"
    out = await eventually(
        lambda: sessions_out(settings, at_least=5),
        lambda events: len(of_type(events, "SessionCancelled")) == 1,
    )
    (rescheduled,) = of_type(out, "SessionRescheduled")
    assert rescheduled.requested_by == "emp-m" and "SEQUENCE:1" in rescheduled.ics
    (cancel,) = of_type(out, "SessionCancelled")
    assert "METHOD:CANCEL" in cancel.ics and "SEQUENCE:1" in cancel.ics
    assert [e.sequence for e in of_type(out, "SessionScheduled")] == [1, 2, 3]


async def test_bad_input_answers_4xx_with_a_reason(
    service: ServiceRuntime, settings: SessionsSettings, client: httpx.AsyncClient
) -> None:
    first, second = await scheduled_pair(settings, client)
    path = f"/sessions/{first['session_id']}"
    for url, params in (
        ("/sessions/ses%00x", {}),
        ("/sessions/" + "x" * 300, {}),
        ("/sessions", {"pair_id": "pair\x00"}),
        ("/pairs", {"program_id": "prg\x00"}),
        ("/participants/emp%00e/calendar.ics", {"token": "x"}),
    ):
        answer = await client.get(url, params=params, headers=MENTOR)
        assert answer.status_code == 422, (url, answer.text)
    spaced = tokens.unchecked("admin", "adm 1")
    refused = await client.post(f"/sessions/{second['session_id']}/cancel", headers=spaced)
    assert refused.status_code == 401 and "'sub' claim" in refused.text
    for starts_at in ("0001-01-01T00:00:00+00:00", "0001-01-01T03:00:00+05:00"):
        answer = await client.post(
            f"{path}/reschedule", json={"starts_at": starts_at}, headers=MENTOR
        )
        assert answer.status_code == 422 and "future" in answer.text

    await move_clock(client, datetime.fromisoformat(first["starts_at"]) + timedelta(minutes=5))
    body = {"attendees": ["emp-m", "emp-m"], "duration_minutes": 30, "notes": "a\x00b"}
    assert (await client.post(f"{path}/held", json=body, headers=MENTOR)).status_code == 422
    body["notes"] = "fine"
    held = await client.post(f"{path}/held", json=body, headers=MENTOR)
    assert held.status_code == 200 and held.json()["attendees"] == ["emp-m"]
