"""Settings of the notifications service, read from ``UPWARD_NOTIFICATIONS_*``.

Load them with ``load_settings("notifications", base=NotificationsSettings)``; every
field below is also documented in docs/notifications.md.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr
from typing import Literal

from pydantic import Field, SecretStr

from servicekit.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """The kit's settings plus mail, chat, delivery and link settings."""

    smtp_host: str = Field(default="127.0.0.1", description="SMTP server host")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP server port")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="none: plain text; starttls: upgrade after connecting; tls: implicit TLS",
    )
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user (optional)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    smtp_validate_certs: bool = Field(default=True, description="Check the server certificate")
    smtp_cert_bundle: str | None = Field(
        default=None,
        description="PEM file of CA certificates to trust for the SMTP server (e.g. an"
        " internal CA); default: the system's",
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, description="SMTP connect/command timeout")
    mail_from: str = Field(
        default="Upward <no-reply@upward.example>", description="From: header of every e-mail"
    )
    message_id_domain: str | None = Field(
        default=None, description="Right-hand side of Message-IDs; default: the From domain"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Chat webhook timeout")
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts chat webhooks may point to (empty: any). Set it in production.",
    )
    delivery_interval_s: float = Field(
        default=5.0, gt=0, description="How often the delivery worker looks for due messages"
    )
    delivery_batch_max: int = Field(default=100, ge=1, description="Deliveries claimed per tick")
    delivery_concurrency: int = Field(default=8, ge=1, description="Messages sent at once")
    delivery_max_attempts: int = Field(
        default=5, ge=1, description="Attempts before NotificationFailed (final)"
    )
    delivery_initial_backoff_s: float = Field(
        default=60.0, gt=0, description="Delay after the first failed attempt; then doubles"
    )
    delivery_max_backoff_s: float = Field(default=3600.0, gt=0, description="Backoff cap")
    delivery_lease_s: float = Field(
        default=300.0,
        gt=0,
        description="A message still 'sending' after this long (worker died) is tried again",
    )
    rate_limit_per_hour: int = Field(
        default=20, ge=1, description="Messages per person per hour; more wait (never dropped)"
    )
    default_locale: str = Field(default="en", description="Locale when a person has no match")
    feedback_overdue_after_minutes: int = Field(
        default=0, ge=0, description="Overdue-feedback reminder this long after the due time"
    )
    app_url: str = Field(
        default="https://upward.example/app", description="Participant app base URL (links)"
    )
    admin_url: str = Field(
        default="https://upward.example/admin", description="Admin console base URL (links)"
    )

    @property
    def message_domain(self) -> str:
        """Domain used in Message-IDs."""
        address = parseaddr(self.mail_from)[1]
        return self.message_id_domain or address.rpartition("@")[2] or "upward.invalid"

    @property
    def lease(self) -> timedelta:
        """How long a claimed message may stay 'sending'."""
        return timedelta(seconds=self.delivery_lease_s)
