"""Wiring: the sessions service's ServiceDefinition.

Consumes programs, participants and pairs; publishes on ``upward.sessions``, plus
PairEnded (``completed``) on ``upward.pairs`` and ErasureCompleted on
``upward.participants``. Three timers notice missed sessions, stalled pairs and pairs
whose program is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from servicekit.runtime import ServiceDefinition
from servicekit.timers import Timer
from services.sessions.adapters.repository import PostgresSessionsRepository
from services.sessions.entrypoints import http
from services.sessions.handlers import (
    build_handlers,
    complete_pairs,
    flag_stalled_pairs,
    mark_missed_sessions,
)
from services.sessions.service_layer import Dependencies, Policy, RepositoryFactory
from services.sessions.settings import SessionsSettings

NAME = "sessions"
VERSION = "0.1.0"
SUBSCRIBES = ("upward.programs", "upward.participants", "upward.pairs")
PUBLISHES = ("upward.sessions", "upward.pairs", "upward.participants")


def timers(deps: Dependencies, every_s: float) -> Sequence[Timer]:
    """Missed sessions first, then stall rules, then completed pairs."""
    return (
        Timer("missed-sessions", every_s, partial(mark_missed_sessions, deps=deps)),
        Timer("stalled-pairs", every_s, partial(flag_stalled_pairs, deps=deps)),
        Timer("completed-pairs", every_s, partial(complete_pairs, deps=deps)),
    )


def build_definition(
    settings: SessionsSettings, repository: RepositoryFactory = PostgresSessionsRepository
) -> ServiceDefinition:
    """The sessions service, configured by ``settings``."""
    deps = Dependencies(Policy.from_settings(settings), repository)
    return ServiceDefinition(
        name=NAME,
        version=VERSION,
        subscribes=SUBSCRIBES,
        publishes=PUBLISHES,
        handlers=build_handlers(deps),
        migrations=Path(__file__).parent / "migrations",
        routers=lambda context: http.routers(context, deps, settings),
        timers=lambda context: timers(deps, settings.timer_interval_s),
    )
