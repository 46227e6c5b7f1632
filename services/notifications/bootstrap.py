"""Wiring of the notifications service: its ServiceDefinition.

``definition(settings)`` binds the handlers, routers and the delivery timer to the
asyncpg store, the SMTP and webhook channels and the templates; ``DEFINITION`` is the
same with the settings read from the environment when the process starts.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from schemas.feedback import TOPIC as FEEDBACK
from schemas.notifications import TOPIC as NOTIFICATIONS
from schemas.pairs import TOPIC as PAIRS
from schemas.participants import TOPIC as PARTICIPANTS
from schemas.programs import TOPIC as PROGRAMS
from schemas.sessions import TOPIC as SESSIONS
from servicekit.runtime import ServiceContext, ServiceDefinition
from servicekit.timers import ExclusiveTimer
from services.notifications.adapters.channels import MessageChannel, SmtpChannel, WebhookChannel
from services.notifications.adapters.repository import PostgresNotificationsRepository
from services.notifications.adapters.templates import TemplateRenderer
from services.notifications.domain.planning import Links
from services.notifications.entrypoints.http import build_routers
from services.notifications.handlers import Dependencies, build_handlers
from services.notifications.sending import DeliveryWorker
from services.notifications.settings import NotificationsSettings

NAME = "notifications"
VERSION = "0.1.0"
MIGRATIONS = Path(__file__).parent / "migrations"
DELIVERY_TIMER = "deliveries"


def dependencies(settings: NotificationsSettings) -> Dependencies:
    """What the handlers need, from the settings."""
    return Dependencies(
        repository=PostgresNotificationsRepository,
        links=Links(app_url=settings.app_url, admin_url=settings.admin_url),
        overdue_after=timedelta(minutes=settings.feedback_overdue_after_minutes),
    )


def default_channels(settings: NotificationsSettings) -> list[MessageChannel]:
    """E-mail over SMTP and chat webhooks."""
    return [SmtpChannel(settings), WebhookChannel(settings)]


def delivery_worker(
    context: ServiceContext, channels: list[MessageChannel] | None = None
) -> DeliveryWorker:
    """The worker that sends due deliveries, on the context's pool and clock."""
    settings = context.settings
    assert isinstance(settings, NotificationsSettings)
    return DeliveryWorker(
        pool=context.pool,
        settings=settings,
        clock=context.clock,
        repository=PostgresNotificationsRepository,
        channels=channels if channels is not None else default_channels(settings),
        renderer=TemplateRenderer(default_locale=settings.default_locale),
    )


def timers(context: ServiceContext) -> list[ExclusiveTimer]:
    """One timer: the delivery worker's round.

    An :class:`ExclusiveTimer`: the runtime holds the timer's advisory lock (one replica
    sends at a time) with no transaction open, so no transaction waits on an SMTP server
    or a webhook; the worker commits its claims and completions in short transactions of
    its own.
    """
    worker = delivery_worker(context)
    settings = context.settings
    assert isinstance(settings, NotificationsSettings)

    async def deliver_due() -> None:
        await worker.run_round()

    return [ExclusiveTimer(DELIVERY_TIMER, settings.delivery_interval_s, deliver_due)]


def definition(settings: NotificationsSettings) -> ServiceDefinition:
    """The notifications service, wired with ``settings``."""
    return ServiceDefinition(
        name=NAME,
        version=VERSION,
        subscribes=(PROGRAMS, PARTICIPANTS, PAIRS, SESSIONS, FEEDBACK),
        publishes=(NOTIFICATIONS, PARTICIPANTS),
        handlers=build_handlers(dependencies(settings)),
        migrations=MIGRATIONS,
        routers=build_routers(PostgresNotificationsRepository),
        timers=timers,
    )
