"""Prometheus metrics of the feedback service (names fixed by the ops dashboards)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FEEDBACK_SUBMITTED = Counter(
    "upward_feedback_submitted_total", "Feedback answers accepted, by kind", ["kind"]
)
PAIR_HEALTH_PAIRS = Gauge(
    "upward_pair_health_pairs",
    "Open pairs per health band (refreshed by the health-gauge timer; take max over replicas)",
    ["band"],
)
PAIRS_AT_RISK = Counter(
    "upward_pairs_at_risk_total", "Pairs that crossed into the at_risk band (PairAtRisk emitted)"
)
