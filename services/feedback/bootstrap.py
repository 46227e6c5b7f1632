"""Wiring of the feedback service: its settings, timers and ServiceDefinition."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from pydantic import Field

from servicekit.runtime import ServiceContext, ServiceDefinition
from servicekit.settings import ServiceSettings
from servicekit.timers import Timer
from services.feedback.adapters.repository import PostgresFeedbackStore
from services.feedback.entrypoints.http import routes
from services.feedback.entrypoints.streams import declare_streams
from services.feedback.handlers import (
    HANDLERS,
    mark_overdue_requests,
    refresh_health_gauge,
    request_due_milestones,
)

MIGRATIONS = Path(__file__).parent / "migrations"


class FeedbackServiceSettings(ServiceSettings):
    """The feedback service's own settings (``UPWARD_FEEDBACK_*``)."""

    milestone_interval_s: float = Field(
        default=300.0, gt=0, description="How often due milestone surveys are sent"
    )
    overdue_interval_s: float = Field(
        default=300.0, gt=0, description="How often requests past due are marked missing"
    )
    health_gauge_interval_s: float = Field(
        default=30.0, gt=0, description="How often upward_pair_health_pairs is refreshed"
    )


def timers(context: ServiceContext) -> list[Timer]:
    """Milestone surveys, overdue requests and the health gauge."""
    s = context.settings
    own = s if isinstance(s, FeedbackServiceSettings) else FeedbackServiceSettings.model_construct()
    store = PostgresFeedbackStore
    return [
        Timer("milestones", own.milestone_interval_s, partial(request_due_milestones, store=store)),
        Timer("overdue", own.overdue_interval_s, partial(mark_overdue_requests, store=store)),
        Timer(
            "health-gauge", own.health_gauge_interval_s, partial(refresh_health_gauge, store=store)
        ),
    ]


DEFINITION = ServiceDefinition(
    name="feedback",
    version="0.1.0",
    subscribes=("upward.programs", "upward.participants", "upward.pairs", "upward.sessions"),
    publishes=("upward.feedback", "upward.participants"),
    handlers=HANDLERS,
    migrations=MIGRATIONS,
    routers=routes,
    streams=declare_streams,
    timers=timers,
)
