"""The sessions service's own Prometheus metrics (the kit's are in servicekit.metrics).

Counted when the state change is made, inside its transaction: a batch the kit rolls
back and applies again one event at a time counts its events twice. That happens only
when an event of the batch is dead-lettered, so the counters are close, not exact.
"""

from __future__ import annotations

from prometheus_client import Counter

SESSIONS = Counter(
    "upward_sessions_total",
    "Sessions by outcome: scheduled, held, missed, cancelled",
    ["outcome"],
)
PAIRS_STALLED = Counter("upward_pairs_stalled_total", "Pairs flagged as stalled (PairStalled)")

for _outcome in ("scheduled", "held", "missed", "cancelled"):
    SESSIONS.labels(_outcome)  # exported as 0 from the start, so dashboards see every series
