"""Wiring of the matching service: its ServiceDefinition.

Matching consumes participants (``upward.participants``), pair outcomes
(``upward.pairs``: accepted, declined, ended) and at-risk flags (``upward.feedback``),
and publishes programs, participant facts from its own API, and pairs. Two timers run
time-driven work: acceptance timeouts and the continuous micro-batches. The second is
also woken by every committed pool change (a ``NOTIFY`` the repository sends with it),
so a joiner is matched within a debounce and one planning run, not at the next interval.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from servicekit.runtime import ServiceContext, ServiceDefinition
from servicekit.timers import Timer, Wake
from servicekit.unit_of_work import UnitOfWork
from services.matching import handlers
from services.matching.adapters.repository import (
    POOL_CHANGED_CHANNEL,
    MatchingRepository,
    PostgresMatchingRepository,
)
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

    def setting(name: str) -> float:
        default = MatchingSettings.model_fields[name].default
        return float(getattr(settings, name, default))

    woken = Wake(POOL_CHANGED_CHANNEL, debounce_s=setting("continuous_debounce_s"))
    return (
        Timer(
            "acceptance-timeouts",
            setting("expiry_interval_s"),
            _on_store(handlers.expire_proposals),
        ),
        Timer(
            "continuous-matching",
            setting("continuous_interval_s"),
            _on_store(handlers.plan_continuous),
            wake=woken,
        ),
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
