"""Prometheus metrics of the notifications service (names the ops dashboards use)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

NOTIFICATIONS_SENT = Counter(
    "upward_notifications_sent_total",
    "Notifications accepted by their channel (a digest counts each notification it carries)",
    ["channel", "kind"],
)
NOTIFICATIONS_FAILED = Counter(
    "upward_notifications_failed_total",
    "Notifications given up on (NotificationFailed, final)",
    ["channel", "kind"],
)
NOTIFICATIONS_PENDING = Gauge(
    "upward_notifications_pending", "Deliveries planned and not yet sent or given up"
)
