"""The sessions service's own Prometheus metrics (the kit's are in servicekit.metrics).

Counted only once the transaction that made the change has committed
(``uow.after_commit``): a rolled-back batch or a retried command counts nothing.
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
