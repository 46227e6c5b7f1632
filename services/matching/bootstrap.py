"""Wiring of the matching service: its ServiceDefinition.

Matching consumes participants (``upward.participants``), pair outcomes
(``upward.pairs``: accepted, declined, ended) and at-risk flags (``upward.feedback``),
and publishes programs, participant facts from its own API, and pairs. Two timers run
time-driven work: acceptance timeouts and the continuous micro-batches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from servicekit.runtime import ServiceContext, ServiceDefinition
from servicekit.timers import Timer
from servicekit.unit_of_work import UnitOfWork
from services.matching import handlers
from services.matching.adapters.repository import MatchingRepository, PostgresMatchingRepository
from services.matching.entrypoints.http import routes
from services.matching.settings import MatchingSettings

NAME = "matching"
Tick = Callable[[UnitOfWork, MatchingRepository], Awaitable[None]]


def _on_store(tick: Tick) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def run(uow: UnitOfWork) -> None:
        await tick(uow, PostgresMatchingRepository(uow.conn))

    return run


def timers(context: ServiceContext) -> Sequence[Timer]:
    """Acceptance timeouts first, so the people they free are matched in the same round."""
    settings = context.settings
    defaults = MatchingSettings.model_fields
    expiry = getattr(settings, "expiry_interval_s", defaults["expiry_interval_s"].default)
    continuous = getattr(
        settings, "continuous_interval_s", defaults["continuous_interval_s"].default
    )
    return (
        Timer("acceptance-timeouts", expiry, _on_store(handlers.expire_proposals)),
        Timer("continuous-matching", continuous, _on_store(handlers.plan_continuous)),
    )


DEFINITION = ServiceDefinition(
    name=NAME,
    version="0.1.0",
    subscribes=("upward.participants", "upward.pairs", "upward.feedback"),
    publishes=("upward.programs", "upward.participants", "upward.pairs"),
    handlers=handlers.handler_table(PostgresMatchingRepository),
    migrations=Path(__file__).parent / "migrations",
    routers=routes(PostgresMatchingRepository),
    timers=timers,
)
