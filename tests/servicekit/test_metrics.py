"""Labelled metric children are looked up once and count into the labelled series."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from servicekit import metrics


def test_child_is_remembered_and_counts_into_its_series() -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    first = metrics.child(metrics.EVENTS_PRODUCED, topic, "PairFormed")
    assert metrics.child(metrics.EVENTS_PRODUCED, topic, "PairFormed") is first
    first.inc(3)
    metrics.child(metrics.EVENTS_PRODUCED, topic, "PairEnded").inc()
    value = REGISTRY.get_sample_value(
        "upward_events_produced_total", {"topic": topic, "type": "PairFormed"}
    )
    assert value == 3
    other = REGISTRY.get_sample_value(
        "upward_events_produced_total", {"topic": topic, "type": "PairEnded"}
    )
    assert other == 1
