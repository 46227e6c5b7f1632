"""docs/feedback.md keeps its event tables, endpoints and settings in step with the code."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute

from servicekit.runtime import ServiceContext
from servicekit.settings import ServiceSettings
from services.feedback.bootstrap import DEFINITION, FeedbackServiceSettings
from services.feedback.entrypoints.http import routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "feedback.md"


def test_every_consumed_event_and_topic_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for event in DEFINITION.handlers:
        assert event.__name__ in text, event.__name__
    for topic in {*DEFINITION.subscribes, *DEFINITION.publishes}:
        assert f"`{topic}`" in text, topic


def test_every_endpoint_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    context = ServiceContext(pool=None, settings=FeedbackServiceSettings.model_construct())  # type: ignore[arg-type]
    paths = [
        (method, route.path)
        for router in routes(context)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]
    assert len(paths) == 7
    for method, path in paths:
        assert f"`{method} {path}" in text, (method, path)


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    own = FeedbackServiceSettings.model_fields.keys() - ServiceSettings.model_fields.keys()
    assert own
    for name in own:
        assert f"`UPWARD_FEEDBACK_{name.upper()}`" in text, name
