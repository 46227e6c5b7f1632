"""Prometheus metrics of the matching service (names fixed for the ops dashboards).

Pairs proposed and formed are counted once their transaction commits
(``uow.after_commit``). Runs and planning time are counted when the engine has planned,
whether the plan is then stored or not. The figures of record are in the store.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MATCH_RUNS = Counter(
    "upward_match_runs_total",
    "Matching runs planned (batch runs, dry or published, and continuous micro-batches)",
    ["program_id", "mode"],
)
MATCH_RUN_SECONDS = Histogram(
    "upward_match_run_seconds",
    "Time the matching engine took to plan one run",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
PAIRS_PROPOSED = Counter("upward_pairs_proposed_total", "Pairs proposed (every mode)")
PAIRS_FORMED = Counter("upward_pairs_formed_total", "Pairs formed (both people accepted)")
