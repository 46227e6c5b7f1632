"""Prometheus metrics shared by every service (one process runs one service).

Hot paths take a metric's labelled child through :func:`child`, which remembers it:
``labels()`` validates and locks on every call, a cost paid per event otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

M = TypeVar("M", Counter, Gauge, Histogram)


@lru_cache(maxsize=4096)
def child(metric: M, *labels: str) -> M:
    """``metric.labels(*labels)``, looked up once per label combination."""
    return metric.labels(*labels)


EVENTS_CONSUMED = Counter(
    "upward_events_consumed_total",
    "Events taken from Kafka, by outcome (handled, duplicate, ignored, dead_lettered)",
    ["topic", "type", "outcome"],
)
EVENTS_PRODUCED = Counter(
    "upward_events_produced_total", "Events published from the outbox", ["topic", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "upward_events_dead_lettered_total", "Events sent to a dead-letter topic", ["topic", "reason"]
)
HANDLER_RETRIES = Counter(
    "upward_handler_retries_total", "Transient failures retried with backoff", ["topic", "error"]
)
HANDLER_LATENCY = Histogram(
    "upward_handler_latency_seconds",
    "Time one handler took inside its batch transaction (commit excluded)",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
OUTBOX_BACKLOG = Gauge("upward_outbox_backlog", "Outbox events not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "upward_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event"
)
CONSUMER_LAG = Gauge(
    "upward_consumer_lag_messages", "High watermark minus position", ["topic", "partition"]
)
TIMER_TICKS = Counter(
    "upward_timer_ticks_total",
    "Timer ticks, by outcome (ran, skipped, failed)",
    ["timer", "outcome"],
)
