"""The event catalogue's publishers and subscribers say what the four services really do.

Each event's ``subscribers``/``publishers`` feed the AsyncAPI document and the catalogue in
docs/events.md; these unit tests compare them with each service's definition (its handler
table, ``subscribes`` and ``publishes``), built with a dummy database URL (no I/O).
"""

from __future__ import annotations

import pytest

from schemas.registry import EVENTS
from servicekit.runtime import ServiceDefinition
from services.feedback.bootstrap import DEFINITION as FEEDBACK
from services.matching.bootstrap import DEFINITION as MATCHING
from services.notifications.bootstrap import definition as notifications_definition
from services.notifications.settings import NotificationsSettings
from services.sessions.bootstrap import build_definition as sessions_definition
from services.sessions.settings import SessionsSettings
from upward.demo.platform import SUBSCRIPTIONS

DUMMY_URL = "postgresql://upward:secret@db/upward"


def _definitions() -> dict[str, ServiceDefinition]:
    return {
        "matching": MATCHING,
        "sessions": sessions_definition(
            SessionsSettings(service_name="sessions", database_url=DUMMY_URL)
        ),
        "feedback": FEEDBACK,
        "notifications": notifications_definition(
            NotificationsSettings(service_name="notifications", database_url=DUMMY_URL)
        ),
    }


DEFINITIONS = _definitions()


def _declaring(service: str, role: str) -> set[str]:
    return {name for name, cls in EVENTS.items() if service in getattr(cls, role)}


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
def test_subscribers_are_the_events_the_service_handles(service: str) -> None:
    handled = {handler.event_type for handler in DEFINITIONS[service].handlers}
    assert _declaring(service, "subscribers") == handled


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
def test_subscribed_topics_are_those_of_the_declared_events(service: str) -> None:
    topics = {EVENTS[name].topic for name in _declaring(service, "subscribers")}
    assert set(DEFINITIONS[service].subscribes) == topics


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
def test_published_topics_are_those_of_the_declared_events(service: str) -> None:
    topics = {EVENTS[name].topic for name in _declaring(service, "publishers")}
    assert set(DEFINITIONS[service].publishes) == topics


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
def test_demo_waits_on_the_topics_the_service_reads(service: str) -> None:
    assert set(SUBSCRIPTIONS[service]) == set(DEFINITIONS[service].subscribes)


def test_every_service_is_checked() -> None:
    assert set(DEFINITIONS) == set(SUBSCRIPTIONS)
